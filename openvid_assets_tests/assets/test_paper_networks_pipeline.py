"""The paper's motion and clarity networks run end to end in the pipeline, loading checkpoints
of the public files' exact layout (random values: only the layout is public knowledge here)."""

import json
from pathlib import Path

import polars as pl
import pytest
import torch
from dagster import DagsterInstance

from openvid_assets import samples
from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.definitions import build_definitions
from openvid_assets.models import profiles
from openvid_assets.models.networks.dover import DOVER_WEIGHTS
from openvid_assets.models.networks.unimatch import UNIMATCH_FLOW
from openvid_assets.models.registry.weights import file_digest
from openvid_assets_testing.pipeline import materialize_pipeline, store_recipe
from openvid_assets_tests.models.test_dover import random_dover_checkpoint

pytestmark = pytest.mark.slow  # the paper's network classes through the whole pipeline

DATA = Path(__file__).parents[1] / "data"


def test_unimatch_and_dover_checkpoints_run_in_the_pipeline(tmp_path, weights_dir, monkeypatch):
    weights = weights_dir
    for spec in (UNIMATCH_FLOW, DOVER_WEIGHTS):
        (weights / spec.filename).parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    flow_keys = json.loads((DATA / "unimatch_flow_keys.json").read_text())["keys"]
    torch.save(
        {"model": {k: torch.randn(s, generator=generator) * 0.02 for k, s in flow_keys.items()}},
        weights / UNIMATCH_FLOW.filename,
    )
    torch.save(random_dover_checkpoint(), weights / DOVER_WEIGHTS.filename)
    # The paper's motion and clarity backends; CLIP and the aesthetic head stay tiny to keep CI fast.
    profiles.get_profile("offline").with_backends("unimatch", "dover").check_weights()

    src = tmp_path / "src"
    samples.smooth_pan(src, "pan.mp4", num_frames=40)
    samples.portrait(src, "tall.mp4", num_frames=40)
    (src / "broken.mp4").write_text("not a video")

    store_recipe(
        str(tmp_path / "data"),
        models={"profile": "offline", "motion_backend": "unimatch", "clarity_backend": "dover"},
        selection={"thresholds_off": True},
        clips={"detectors": "cascade"},  # TransNetV2 has tests of its own
    )
    defs = build_definitions(str(tmp_path / "data"))
    with DagsterInstance.ephemeral() as instance:
        tables = defs.resources["store"].tables()
        _, keys = store_new_shards(tables, str(src), shard_size=10)
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        materialize_pipeline(defs, instance)

    motion = tables.read("motion_scores", keys[0])
    clarity = tables.read("clarity_scores", keys[0])
    ok_motion = motion.filter(pl.col("status") == "ok")
    assert ok_motion.height == 2 and set(ok_motion["model"]) == {"unimatch"}
    assert set(ok_motion["weights_digest"]) == {file_digest(weights / UNIMATCH_FLOW.filename)}
    assert ok_motion["frame_indices"].list.len().min() >= 2
    assert clarity.height == 2 and set(clarity["model"]) == {"dover-technical"}
    assert set(clarity["weights_digest"]) == {file_digest(weights / DOVER_WEIGHTS.filename)}
    assert clarity["score"].is_between(0, 1).all()  # the published rescale maps into (0, 1)
    broken = motion.filter(pl.col("source_uri").str.ends_with("broken.mp4")).row(0, named=True)
    assert broken["status"] == "failed"
    lineage = tables.read("lineage", "global")
    assert lineage.height == 3 and sorted(lineage["status"]) == ["failed", "kept", "kept"]
