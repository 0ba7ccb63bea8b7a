"""Four shard runs in parallel processes against one data root and one on-disk SQLite instance."""

from __future__ import annotations

import re
import subprocess

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from openvid_assets_testing.harness import (
    FAST_FLAGS,
    differences,
    instance_problems,
    leftovers,
    lineage_problems,
    make_dagster_home,
    materialize_args,
    pipeline_env,
    register,
    run_args,
    run_in_parallel,
    run_to_end,
    snapshot,
    version_problems,
)
from openvid_assets_tests.reliability.conftest import SHARD_SIZE, SHARDS_PER_RUN

pytestmark = pytest.mark.slow  # the whole pipeline through the daemon, twice

FIRST_WAVE = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "content_scores",
    "temporal_scores",
    "motion_scores",
]


def test_four_parallel_shard_runs_then_the_rest_match_a_sequential_run(reference_run, tmp_path):
    data, home = tmp_path / "data", make_dagster_home(tmp_path / "dagster_home")
    shards = register(reference_run.source, data, home, SHARD_SIZE)
    assert len(shards) == 4

    # What a backfill or the new-videos sensor does: one run per shard, each in its own process,
    # all writing to the same instance (runs, event log, asset index) and the same data root.
    env = pipeline_env(home, OPENVID_DATA_ROOT=str(data))
    # The recipe the run command below asks for, stored first, so those runs use it too.
    recipe = subprocess.run(
        [
            *run_args(reference_run.source, data, SHARD_SIZE)[:3],
            "recipe",
            "--data-root",
            str(data),
            *FAST_FLAGS,
            "--set",
            "selection.thresholds_off=true",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert recipe.returncode == 0, recipe.stdout + recipe.stderr
    parallel = run_in_parallel([materialize_args(FIRST_WAVE, shard) for shard in shards], env, tmp_path, timeout=300)
    assert parallel.return_codes == [0, 0, 0, 0], "\n\n".join(parallel.outputs)
    assert parallel.lock_errors == []
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert sorted(r.tags.get("dagster/partition") for r in runs) == shards
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        for name in FIRST_WAVE:  # every run's events reached the shared asset index
            assert set(instance.get_materialized_partitions(AssetKey(name))) == set(shards), name

    # The run command then finds the first wave current on every shard and does the rest.
    env = pipeline_env(home, OPENVID_SHARDS_PER_RUN=SHARDS_PER_RUN)
    rest = run_to_end(run_args(reference_run.source, data, SHARD_SIZE), env, tmp_path, timeout=300)
    assert rest.proc.returncode == 0, rest.output
    assert re.search(r"^Step 1: .* on 4 shard\(s\), 0 to run$", rest.output, re.M), rest.output
    assert differences(reference_run.snapshot, snapshot(data)) == []  # no lost (or extra) rows, files or clips
    assert leftovers(data) == []
    assert lineage_problems(data, reference_run.source) == []
    assert version_problems(data) == []
    assert instance_problems(home, shards) == []
