"""Against one uninterrupted reference run of the tiny source (conftest.reference_run, built once: both tests are in
this file so one test worker builds it): kill -9 at two points of a run, then a last re-run; and four shard runs
in parallel processes, then the rest by the run command. Each ends with the reference's outputs, no partial or
temporary files, every input exactly once in lineage."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from openvid_assets.assets.engine import plan_waves
from openvid_assets.definitions import defs

from openvid_assets_testing.harness import (
    FAST_FLAGS,
    WatchedRun,
    differences,
    instance_problems,
    leftovers,
    lineage_problems,
    make_dagster_home,
    materialize_args,
    partial_files,
    pipeline_env,
    register,
    run_args,
    run_in_parallel,
    run_to_end,
    shard_keys,
    snapshot,
    version_problems,
)
from openvid_assets_tests.reliability.conftest import ALL_SHARDS_PER_RUN, SHARD_SIZE, SHARDS_PER_RUN

# The whole pipeline through the daemon: a reference run, then three launches (two killed), then two more.
pytestmark = pytest.mark.slow

# (first output line to wait for, extra seconds before the kill): a model step of the first run (shards 0 and 1,
# two a run), then, in the re-run, the clip cutting of that run (ffmpeg children writing temporary clip files).
KILL_POINTS = [
    (r"\[shard-00000\.\.shard-00001\] frame_embeddings: started", 0.0),
    (r"\[shard-00000\.\.shard-00001\] clips: started", 0.3),
]


@pytest.mark.timeout(1800)  # three launches of the whole pipeline after the reference run
def test_kill_minus_9_twice_then_rerun_matches_an_uninterrupted_run(reference_run, tmp_path):
    data, home = tmp_path / "data", make_dagster_home(tmp_path / "dagster_home")
    args, env = (
        run_args(reference_run.source, data, SHARD_SIZE),
        pipeline_env(home, OPENVID_SHARDS_PER_RUN=SHARDS_PER_RUN),
    )
    killed_during = []
    for pattern, delay in KILL_POINTS:  # each launch resumes the previous one's work, then dies
        run = WatchedRun(args, env, tmp_path)
        assert run.wait_for(pattern, timeout=600), run.output
        time.sleep(delay)
        _, doing, alive = run.kill()
        assert alive, f"the run ended before the kill at {pattern!r}:\n{run.output}"
        killed_during.append(doing)
        assert partial_files(data) == [], (doing, run.output)  # only whole files under final names
    for doing in killed_during:  # mid shard runs
        assert re.fullmatch(r"(after )?\w+ \[shard-0000\d\.\.shard-0000\d\]", doing), killed_during

    final = run_to_end(args, env, tmp_path, timeout=600)
    assert final.proc.returncode == 0, final.output
    assert "0 new shard(s)" in final.output
    assert differences(reference_run.snapshot, snapshot(data)) == []
    assert leftovers(data) == []
    assert lineage_problems(data, reference_run.source) == []
    assert version_problems(data) == []
    # Every table has its materialization (a table written just before a kill has none, so Dagster finds it
    # missing and the re-run records it), and no killed run is left "started" or holds a slot.
    assert instance_problems(home, shard_keys(data)) == []


# The per-shard steps before the first global one (the run command's Step 1).
FIRST_WAVE = [k.path[-1] for k in plan_waves(defs)[0].keys]


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
    parallel = run_in_parallel([materialize_args(FIRST_WAVE, shard) for shard in shards], env, tmp_path, timeout=600)
    assert parallel.return_codes == [0, 0, 0, 0], "\n\n".join(parallel.outputs)
    assert parallel.lock_errors == []
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert sorted(r.tags.get("dagster/partition") for r in runs) == shards
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        for name in FIRST_WAVE:  # every run's events reached the shared asset index
            assert set(instance.get_materialized_partitions(AssetKey(name))) == set(shards), name

    # The run command then finds the first wave current on every shard and does the rest.
    env = pipeline_env(home, OPENVID_SHARDS_PER_RUN=ALL_SHARDS_PER_RUN)
    rest = run_to_end(run_args(reference_run.source, data, SHARD_SIZE), env, tmp_path, timeout=600)
    assert rest.proc.returncode == 0, rest.output
    assert re.search(r"^Step 1: .* on 4 shard\(s\), 0 to run$", rest.output, re.M), rest.output
    assert differences(reference_run.snapshot, snapshot(data)) == []  # no lost (or extra) rows, files or clips
    assert leftovers(data) == []
    assert lineage_problems(data, reference_run.source) == []
    assert version_problems(data) == []
    assert instance_problems(home, shards) == []
