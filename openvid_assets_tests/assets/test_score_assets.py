import shutil

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from openvid_assets.assets.resources import default_resources
from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.definitions import ASSETS
from openvid_assets_testing.pipeline import FAST, store_recipe

pytestmark = pytest.mark.slow  # the score assets of a shard of the sample set, twice

SCORES = ["frame_embeddings", "aesthetic_scores", "temporal_scores", "motion_scores", "clarity_scores"]


def test_every_score_asset_materializes_with_metadata_and_rematerializing_recomputes_nothing(sample_videos, tmp_path):
    root, specs = sample_videos
    src = tmp_path / "src"
    shutil.copytree(root, src, symlinks=True)
    # The weight-free motion and clarity backends: the score assets' plumbing (metadata, one row per video, the
    # row cache) is the same for every backend, and the networks have tests of their own (models/).
    store_recipe(str(tmp_path / "data"), FAST)
    resources = default_resources(str(tmp_path / "data"))
    tables = resources["store"].tables()
    _, keys = store_new_shards(tables, str(src), shard_size=100)
    ok = len(specs) - sum(s.bad for s in specs)

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        # The score assets and all they read (the whole graph after them has tests of its own).
        scores = AssetSelection.assets(*SCORES, "quality_candidates").upstream()
        first = materialize(ASSETS, partition_key=keys[0], instance=instance, resources=resources, selection=scores)
        assert first.success
        meta = {
            m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()}
            for m in first.get_asset_materialization_events()
            for m in [m.materialization]
        }
        second = materialize(
            ASSETS,
            partition_key=keys[0],
            instance=instance,
            resources=resources,
            selection=["frame_embeddings", "motion_scores", "clarity_scores"],
        )
        assert second.success
        again = {
            m.materialization.asset_key.path[-1]: m.materialization.metadata
            for m in second.get_asset_materialization_events()
        }

    for name in ["aesthetic_scores", "temporal_scores", "motion_scores"]:
        table = tables.read(name, keys[0])
        assert table.height == len(specs), name  # one row per manifest video
        assert table.filter(pl.col("status") == "ok").height == ok, name
        assert meta[name]["ok"] == ok and meta[name]["failed"] == len(specs) - ok
        assert "histogram" not in meta[name]  # images only on the global threshold assets: small event rows
        assert meta[name]["min"] <= meta[name]["p10"] <= meta[name]["p50"] <= meta[name]["p90"] <= meta[name]["max"]
    assert meta["frame_embeddings"]["videos_ok"] == ok
    # Clarity is scored on the candidates (S_A ∩ S_T ∩ S_M) only, as in the paper.
    candidates = tables.read("quality_candidates", keys[0]).filter(pl.col("candidate"))["source_uri"]
    clarity = tables.read("clarity_scores", keys[0])
    assert 0 < clarity.height == meta["quality_candidates"]["candidates"] < ok
    assert sorted(clarity["source_uri"]) == sorted(candidates)
    for name in ["frame_embeddings", "motion_scores"]:
        assert again[name]["computed"].value == 0 and again[name]["reused"].value == ok, name
    assert again["clarity_scores"]["computed"].value == 0
    assert again["clarity_scores"]["reused"].value == clarity.height
