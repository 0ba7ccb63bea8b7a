"""kill -9 at two points of a run (the re-run killed again), then a last re-run: same outputs as an
uninterrupted run, no partial or temporary files, every input exactly once in lineage."""

from __future__ import annotations

import re
import time

import pytest

from openvid_assets_tests.reliability.conftest import SHARD_SIZE, SHARDS_PER_RUN
from openvid_assets_testing.harness import (
    WatchedRun,
    differences,
    instance_problems,
    leftovers,
    lineage_problems,
    make_dagster_home,
    partial_files,
    pipeline_env,
    run_args,
    run_to_end,
    shard_keys,
    snapshot,
    version_problems,
)

pytestmark = pytest.mark.slow  # three launches of the whole pipeline through the daemon, killed twice

# (first output line to wait for, extra seconds before the kill): a model step of the second shard, then,
# in the re-run, the clip cutting of that shard (ffmpeg children writing temporary clip files).
KILL_POINTS = [
    (r"\[shard-00000\.\.shard-00001\] frame_embeddings: started", 0.0),
    (r"\[shard-00000\.\.shard-00001\] clips: started", 0.3),
]


@pytest.mark.timeout(1800)  # a reference run and three launches of the whole pipeline: ~510 s beside another test
def test_kill_minus_9_twice_then_rerun_matches_an_uninterrupted_run(reference_run, tmp_path):
    data, home = tmp_path / "data", make_dagster_home(tmp_path / "dagster_home")
    args, env = (
        run_args(reference_run.source, data, SHARD_SIZE),
        pipeline_env(home, OPENVID_SHARDS_PER_RUN=SHARDS_PER_RUN),
    )
    killed_during = []
    for pattern, delay in KILL_POINTS:  # each launch resumes the previous one's work, then dies
        run = WatchedRun(args, env, tmp_path)
        assert run.wait_for(pattern, timeout=300), run.output
        time.sleep(delay)
        _, doing, alive = run.kill()
        assert alive, f"the run ended before the kill at {pattern!r}:\n{run.output}"
        killed_during.append(doing)
        assert partial_files(data) == [], (doing, run.output)  # only whole files under final names
    for doing in killed_during:  # mid shard runs
        assert re.fullmatch(r"(after )?\w+ \[shard-0000\d\.\.shard-0000\d\]", doing), killed_during

    final = run_to_end(args, env, tmp_path, timeout=300)
    assert final.proc.returncode == 0, final.output
    assert "0 new shard(s)" in final.output
    assert differences(reference_run.snapshot, snapshot(data)) == []
    assert leftovers(data) == []
    assert lineage_problems(data, reference_run.source) == []
    assert version_problems(data) == []
    # Every table has its materialization (a table written just before a kill has none, so Dagster finds it
    # missing and the re-run records it), and no killed run is left "started" or holds a slot.
    assert instance_problems(home, shard_keys(data)) == []
