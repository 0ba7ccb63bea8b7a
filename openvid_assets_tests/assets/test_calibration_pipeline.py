"""Calibration end to end on generated videos whose right label is known (moving = good, still = bad): a few
labels fit a motion cut that separates every other video, and a learned filter on the stored embeddings and
scores alone ranks held-back videos correctly: fitted by the suitability_model asset, applied to every video by
suitability_scores, judged by its content rule in quality_candidates."""

import json

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from sklearn.metrics import roc_auc_score

from openvid_assets.assets.labels import record_labels
from openvid_assets.assets.recipe import record_recipe
from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.assets.suitability import MODEL_FILE
from openvid_assets.definitions import GLOBAL_JOB, SHARD_JOB, build_definitions
from openvid_assets import samples
from openvid_assets.curation.calibration import SuitabilityFilter
from openvid_assets.models.shards.tables import video_embeddings
from openvid_assets.store.labels import LabelStore
from openvid_assets_testing.pipeline import FAST, store_recipe

SCORED = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "motion_scores",
    "content_scores",
]
OFF = {"aesthetic": "off", "temporal": "off", "clarity": "off"}


def materialize(defs, instance, shards, keys, per_shard=True):
    job = defs.resolve_job_def(SHARD_JOB if per_shard else GLOBAL_JOB)
    record_recipe(instance, defs.resources["store"].recipe())
    record_labels(instance, defs.resources["store"].tables())
    for shard in shards if per_shard else [None]:
        job.execute_in_process(instance=instance, partition_key=shard, asset_selection=[AssetKey(k) for k in keys])


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration")
    videos, data = root / "videos", root / "data"
    videos.mkdir()
    for i in range(10):  # still shots and pans, interleaved so both land in every shard
        samples.static(videos, f"still_{i}.mp4", num_frames=24, seed=300 + i)
        samples.smooth_pan(videos, f"pan_{i}.mp4", num_frames=24, seed=400 + i, px_per_frame=2 + i % 4)
    # Near-duplicates off: the offline stand-in CLIP cannot tell two pans of one palette apart.
    store_recipe(
        str(data),
        FAST,
        selection={**OFF, "motion": "calibrated:f1"},
        filters={"near_duplicate": "off", "suitability": "min:0.5"},
    )
    defs = build_definitions(str(data))
    tables = defs.resources["store"].tables()
    with DagsterInstance.ephemeral() as instance:
        _, shards = store_new_shards(tables, str(videos), shard_size=10)
        instance.add_dynamic_partitions(shards_partitions.name, shards)
        materialize(defs, instance, shards, SCORED)
        manifest = pl.concat([tables.read("video_manifest", s) for s in shards])
        good = {r["video_id"]: "pan_" in r["source_uri"] for r in manifest.iter_rows(named=True)}
        names = {r["video_id"]: r["source_uri"].rsplit("/", 1)[1] for r in manifest.iter_rows(named=True)}
        # A small sample labelled: 3 still and 3 moving videos, by two reviewers.
        sample = [
            v
            for v in sorted(good, key=names.get)
            if names[v] in {"still_0.mp4", "still_1.mp4", "still_2.mp4", "pan_0.mp4", "pan_1.mp4", "pan_2.mp4"}
        ]
        store = LabelStore(tables.fs)
        for reviewer in ("ana", "bo"):
            store.append(
                reviewer,
                [
                    {
                        "item": v,
                        "score": "motion",
                        "label": "good" if good[v] else "bad",
                        "tags": [] if good[v] else ["static"],
                    }
                    for v in sample
                ],
            )
        materialize(
            defs, instance, shards, ["near_duplicates", "score_thresholds", "suitability_model"], per_shard=False
        )
        materialize(defs, instance, shards, ["suitability_scores", "quality_candidates"])
        observed = instance.get_latest_data_version_record(AssetKey("labels"))
        metadata = instance.get_latest_materialization_event(
            AssetKey("score_thresholds")
        ).asset_materialization.metadata
    return tables, shards, good, names, set(sample), (observed, metadata)


def test_a_few_labels_fit_a_motion_cut_that_separates_every_other_video(scored):
    tables, shards, good, names, sample, observed = scored
    cut = tables.read("score_thresholds", "global").filter(pl.col("score") == "motion").row(0, named=True)
    assert cut["rule"] == "calibrated:f1"
    assert cut["description"].startswith("calibrated f1 on 12 labels: precision 1.00, recall 1.00")
    candidates = pl.concat([tables.read("quality_candidates", s) for s in shards])
    held_back = candidates.filter(~pl.col("video_id").is_in(list(sample)))
    assert held_back.height == 14
    for row in held_back.iter_rows(named=True):  # the motion cut alone (the learned filter is judged below)
        assert (row["quality_reason"] is None) == good[row["video_id"]], (names[row["video_id"]], row["motion"], cut)
    labels_observed, metadata = observed
    assert labels_observed is not None  # the labels were observed before the run, as the run command does
    # The UI shows the precision/recall curve the cut was chosen on, as a plot in the step's metadata.
    assert "![motion: calibrated f1 on 12 labels" in metadata["calibration_curves"].value
    assert "data:image/png;base64," in metadata["calibration_curves"].value


def test_the_learned_filter_ranks_held_back_videos_from_stored_embeddings_and_scores(scored):
    tables, shards, good, names, sample, _ = scored
    ids, vectors = video_embeddings(pl.concat([tables.read("frame_embeddings", s) for s in shards]))
    scores = {}
    for name in ("aesthetic", "temporal", "motion"):
        table = pl.concat([tables.read(f"{name}_scores", s) for s in shards])
        scores[name] = dict(table.select("video_id", "score").iter_rows())
    features = np.array([[scores[n][v] for n in ("aesthetic", "temporal", "motion")] for v in ids])
    labels = np.array([good[v] for v in ids])
    train = np.array([names[v].split("_")[1][0] in "0123" for v in ids])  # 8 labelled, 12 held back
    f = SuitabilityFilter(("aesthetic", "temporal", "motion"), folds=4).fit(
        vectors[train], features[train], labels[train]
    )
    assert f.report["labelled"] == 8 and 0 <= f.report["auc"] <= 1 and f.report["folds"] == 4  # 2 per fold: noisy
    assert roc_auc_score(labels[~train], f.predict(vectors[~train], features[~train])) >= 0.9


def test_the_suitability_assets_fit_on_the_labels_and_judge_every_video(scored):
    tables, shards, good, names, sample, _ = scored
    stored = json.loads(tables.fs.get(MODEL_FILE))
    assert stored["labels"] == 12 and stored["model"]["report"]["labelled"] == 12  # 6 videos, 2 reviewers
    assert len(stored["model"]["embedding_weights"]) == 768  # the weights themselves, as JSON
    rows = pl.concat([tables.read("suitability_scores", s) for s in shards])
    assert rows.height == 20 and (rows["status"] == "ok").all()
    held = rows.filter(~pl.col("video_id").is_in(list(sample)))
    assert roc_auc_score([good[v] for v in held["video_id"]], held["score"]) >= 0.9
    candidates = pl.concat([tables.read("quality_candidates", s) for s in shards])
    for row in candidates.iter_rows(named=True):  # filters.suitability = min:0.5
        dropped = "unsuitable (learned filter)" in (row["content_reason"] or "")
        assert dropped == (row["suitability"] < 0.5), (names[row["video_id"]], row)
    assert candidates["content_reason"].str.contains("unsuitable").sum() >= 5  # the still videos, most of 10
    assert candidates.filter(pl.col("candidate"))["video_id"].map_elements(good.get, return_dtype=pl.Boolean).all()
