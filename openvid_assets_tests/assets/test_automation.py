"""Declarative automation, retries, backfill policies and the GPU pool, on the real definitions."""

import os

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, evaluate_automation_conditions

from openvid_assets.assets.policies import GPU_POOL
from openvid_assets.assets.recipe import record_recipe
from openvid_assets.assets.shards import shards_partitions, store_new_shards
from openvid_assets.definitions import ABLATION, ASSETS, CURATION, MATERIALIZED, SHARD_JOB, TRAINING, build_definitions
from openvid_assets import samples, settings
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe

FIRST_WAVE = (
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "codec_motion",
    "motion_scores",
    "content_scores",
)
MODEL_STEPS = {"frame_embeddings", "aesthetic_scores", "motion_scores", "clarity_scores", "captions", "caption_checks"}


def _by_name():
    return {a.key.path[-1]: a for a in MATERIALIZED}


def test_every_step_has_the_policy_its_kind_needs():
    assets = _by_name()
    for name, a in assets.items():
        op = a.op
        assert op.retry_policy is not None and op.retry_policy.max_retries >= 2, name
        # Models, training and sampling hold a GPU slot; SQL, ffmpeg and the reports do not.
        on_gpu = name in MODEL_STEPS or a in TRAINING or (a in ABLATION and name not in ABLATION_OFF_GPU)
        assert (op.pool == GPU_POOL) == on_gpu, name
        if a.partitions_def is not None and a not in TRAINING:
            # Curation: one policy for every per-shard step (OPENVID_SHARDS_PER_RUN shards a run), so a shard's
            # consecutive steps share a run; the ablation's SQL step takes every shard at once, its others one.
            policy = a.backfill_policy
            if a in CURATION:
                assert policy.max_partitions_per_run == settings.shards_per_run(), name
            elif name == "ablation_pool":
                assert policy.max_partitions_per_run is None, name  # single_run()
            else:
                assert policy.max_partitions_per_run == 1, name
        # Curation is automatic; training and the ablation are asked for.
        assert (a.automation_conditions_by_key.get(a.key) is None) == (a not in CURATION), name


ABLATION_OFF_GPU = {"ablation_pool", "ablation_clips", "ablation_report"}


def test_the_embedded_instance_queues_runs_and_holds_model_runs_to_the_gpu_pool():
    config = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "..", "..", "dagster.yaml")))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # A queued run with a model step starts only when the gpu pool (--workers) has a slot for it.
    assert config["concurrency"]["pools"]["granularity"] == "run"


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    samples.smooth_pan(src, "a.mp4", num_frames=30)
    samples.hard_cuts(src, "b.mp4", scene_frames=(30, 30))
    return src


def test_new_shards_flow_through_and_nothing_current_is_redone(source, tmp_path, monkeypatch):
    store_recipe(str(tmp_path / "data"), FAST, selection={"thresholds_off": True})
    defs = build_definitions(str(tmp_path / "data"))
    tables = defs.resources["store"].tables()
    keys = [k for a in ASSETS for k in a.keys]
    requested = lambda result: {
        (k.path[-1], p)
        for k in keys  # noqa: E731
        for p in result.get_requested_partitions(k) or ()
    }
    with DagsterInstance.ephemeral() as instance:
        record_recipe(instance, defs.resources["store"].recipe())  # as the run command or the sensor does
        baseline = evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor is turned on
        assert baseline.total_requested == 0

        _, first = store_new_shards(tables, str(source), shard_size=1)
        instance.add_dynamic_partitions(shards_partitions.name, first)
        arrived = evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
        # New shards go through every per-shard step up to the first global one (the thresholds need
        # every shard), planned in one tick: each step waits in the run for the one before.
        assert requested(arrived) == {(name, k) for name in FIRST_WAVE for k in first}

        materialize_pipeline(defs, instance)  # everything becomes current
        settled = evaluate_automation_conditions(defs=defs, instance=instance, cursor=arrived.cursor)
        assert settled.total_requested == 0

        samples.smooth_pan(source, "c.mp4", num_frames=30, seed=5)
        _, new = store_new_shards(tables, str(source), shard_size=1)
        instance.add_dynamic_partitions(shards_partitions.name, new)
        later = evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
        # With thresholds in place, a new shard is planned through every per-shard step; old shards and
        # the global steps wait (the thresholds refresh once the new scores land).
        per_shard = {a.key.path[-1] for a in CURATION if a.partitions_def is not None}
        assert new and requested(later) == {(name, k) for name in per_shard for k in new}


def test_a_backfill_runs_the_sql_steps_of_many_shards_in_one_run(source, tmp_path, monkeypatch):
    store_recipe(str(tmp_path / "data"), FAST, selection={"thresholds_off": True})
    defs = build_definitions(str(tmp_path / "data"))
    tables = defs.resources["store"].tables()
    with DagsterInstance.ephemeral() as instance:
        _, keys = store_new_shards(tables, str(source), shard_size=1)
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        materialize_pipeline(defs, instance)
        before = {k: tables.stamp("selected_videos", k) for k in keys}
        job = defs.resolve_job_def(SHARD_JOB)
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[AssetKey("selected_videos")],
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        )
        assert result.success
        assert all(tables.stamp("selected_videos", k) != before[k] for k in keys)  # both shards rewritten
        assert len(instance.get_runs()) and instance.get_materialized_partitions(AssetKey("selected_videos")) == set(
            keys
        )
