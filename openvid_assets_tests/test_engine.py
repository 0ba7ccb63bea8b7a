"""The engine's promises, through the real command on a real instance: one model per score (a switched backend
re-scores every shard, thresholds refuse to mix), and two commands on one data root lose nothing."""

import re
import subprocess
import sys

import polars as pl
import pytest

from openvid_assets.store import TableStore
from openvid_assets.store.selection import MixedModelsError, require_one_identity
from openvid_assets_testing.harness import lineage_problems, make_dagster_home
from openvid_assets_tests.reliability.conftest import tiny_source

# The fast models but motion's backend, which a test switches (the library cut detectors: TransNetV2 has its own tests).
BASE = [
    "--models",
    "offline",
    "--clarity-backend",
    "laplacian",
    "--set",
    "clips.detectors=cascade",
    "--set",
    "captions.max_new_tokens=16",  # as harness.FAST_FLAGS
    "--shard-size",
    "1",
    "--no-filters",
]


def _run(source, data, env, *flags, cwd):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openvid_assets",
            "run",
            "--source",
            str(source),
            "--data-root",
            str(data),
            *BASE,
            *flags,
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def setup(tmp_path):
    import os

    source = tiny_source(tmp_path / "src")
    home = make_dagster_home(tmp_path / "home")
    # All four shards in one run (OPENVID_SHARDS_PER_RUN): what these tests prove is the same at any batching.
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1", "OPENVID_SHARDS_PER_RUN": "4"}
    return source, tmp_path / "data", env, tmp_path


def _models(data, name="motion_scores") -> set[str]:
    tables = TableStore(str(data))
    return {m for s in tables.shards(name) for m in tables.read(name, s).filter(pl.col("status") == "ok")["model"]}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two pipeline runs, a re-execution and a training run
def test_switching_the_motion_backend_rescores_every_shard_and_nothing_else(setup):
    source, data, env, cwd = setup
    first = _run(source, data, env, "--motion-backend", "farneback", cwd=cwd)
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out
    assert _models(data) == {"farneback"}
    embeddings = {
        s: TableStore(str(data)).stamp("frame_embeddings", s) for s in TableStore(str(data)).shards("frame_embeddings")
    }

    second = _run(source, data, env, "--motion-backend", "unimatch-tiny", cwd=cwd)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert "models.motion_backend: 'farneback' -> 'unimatch-tiny'" in out
    models = _models(data)  # every shard re-scored by the new backend
    assert len(models) == 1 and "farneback" not in models
    # Only the motion step and what reads it ran again: the embeddings were current.
    assert {s: TableStore(str(data)).stamp("frame_embeddings", s) for s in embeddings} == embeddings
    step1 = re.search(r"^Step 1: (.*) on 4 shard\(s\), 4 to run$", out, re.M)
    assert step1 and set(step1.group(1).split(", ")) == {
        "video_manifest", "codec_motion", "frame_embeddings", "motion_scores", "aesthetic_scores", "content_scores",
        "temporal_scores",
    }, out  # fmt: skip
    require_one_identity(TableStore(str(data)), "motion_scores", str(data))  # one model: thresholds may proceed

    # The command's runs are ordinary runs: re-executed the way the UI does it (its GraphQL mutation), the copy
    # goes through the queue and the daemon and succeeds, for the same shard.
    reexecuted = _reexecute_a_shard_run(env["DAGSTER_HOME"])
    assert reexecuted.status.value == "SUCCESS" and reexecuted.parent_run_id
    assert reexecuted.tags.get("dagster/asset_partition_range_start", "").startswith("shard-")
    assert reexecuted.tags["dagster/asset_partition_range_end"] == "shard-00003"  # the same four shards

    # The train command's settings reach its runs (run config of the mvdit resource). Resuming from the last
    # checkpoint at a higher step target is shown in-process (assets/test_training_pipeline.py).
    train = subprocess.run(
        [sys.executable, "-m", "openvid_assets", "train", "--data-root", str(data), "--steps", "2"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    meta = _checkpoint_metadata(env["DAGSTER_HOME"])
    assert (meta["steps"], meta["resumed_from_step"]) == (2, 0), meta


def _checkpoint_metadata(home: str) -> dict:
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(home) as instance:
        event = instance.get_latest_materialization_event(AssetKey("mvdit_checkpoint"))
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _reexecute_a_shard_run(home: str):
    from dagster import DagsterInstance, DagsterRunStatus
    from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION

    from openvid_assets.assets.engine import dagster_daemon, execute_graphql, wait_for_runs

    with DagsterInstance.from_config(home) as instance:
        # A run of the per-shard steps (a backfill run names its shards as a partition range).
        parent = next(
            r
            for r in instance.get_runs()
            if r.status == DagsterRunStatus.SUCCESS
            and r.tags.get("dagster/asset_partition_range_start", "").startswith("shard-")
        )
        result = execute_graphql(
            LAUNCH_PIPELINE_REEXECUTION_MUTATION,
            home,
            variables={"reexecutionParams": {"parentRunId": parent.run_id, "strategy": "ALL_STEPS"}},
        )
        launched = result["launchPipelineReexecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        with dagster_daemon(instance) as daemon:
            wait_for_runs(instance, [run_id], print_line=lambda line: None, on_poll=daemon.ensure)
        return instance.get_run_by_id(run_id)


def test_thresholds_refuse_shards_scored_by_different_models(tmp_path):
    tables = TableStore(str(tmp_path))
    row = {"video_id": "v", "source_uri": "a.mp4", "status": "ok", "score": 1.0, "weights_digest": "-", "params": "{}"}
    tables.write("motion_scores", "shard-00000", pl.DataFrame([{**row, "model": "farneback", "params_hash": "p1"}]))
    tables.write("motion_scores", "shard-00001", pl.DataFrame([{**row, "model": "unimatch", "params_hash": "p2"}]))
    with pytest.raises(MixedModelsError) as error:
        require_one_identity(tables, "motion_scores", str(tmp_path))
    message = str(error.value)
    assert "farneback" in message and "unimatch" in message and "shard-00000" in message and "shard-00001" in message
    assert f"openvid-assets run --data-root {tmp_path}" in message


@pytest.mark.slow
def test_two_run_commands_on_one_data_root_lose_nothing(setup):
    source, data, env, cwd = setup
    runs = [_run(source, data, env, "--motion-backend", "farneback", cwd=cwd) for _ in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], "\n\n".join(outputs)
    assert lineage_problems(data, source) == []  # every input exactly once
    tables = TableStore(str(data))
    assert tables.shards("video_manifest") == tables.shards("shard_lists") and len(tables.shards("shard_lists")) == 4


def test_workers_set_the_gpu_pool_of_a_local_instance_and_of_a_cluster_only_when_asked(tmp_path):
    from dagster import DagsterInstance

    from openvid_assets.assets.engine import Workers

    local = make_dagster_home(tmp_path / "home")  # the project's dagster.yaml: runs are this machine's processes
    with DagsterInstance.from_config(str(local)) as instance, DagsterInstance.ephemeral() as elsewhere:
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert Workers(3, 0, 1).pool_limit(instance) == 3
        assert type(elsewhere.run_launcher).__name__ != "DefaultRunLauncher"  # stands for a cluster's launcher
        assert Workers(3, 0, 1).pool_limit(elsewhere) is None
        assert Workers.for_machine(5).pool_limit(elsewhere) == 5


def test_the_daemon_of_a_killed_command_is_replaced_at_once_not_when_its_heartbeats_expire(tmp_path, monkeypatch):
    """kill -9 takes the command and its daemon; the daemon's heartbeats look alive for a while after. The next
    command starts its own daemon at once instead of waiting for them to age (measured: 82 s after each kill)."""
    import os
    import signal
    import time

    from dagster import DagsterInstance

    from openvid_assets.assets.engine import DaemonKeeper, daemon_alive

    with DagsterInstance.from_config(str(make_dagster_home(tmp_path / "home"))) as instance:
        killed = DaemonKeeper(instance)
        killed.ensure()
        deadline = time.monotonic() + 120
        while not daemon_alive(instance):
            assert time.monotonic() < deadline, "the daemon sent no heartbeat"
            time.sleep(0.5)
        os.kill(killed._daemon.pid, signal.SIGKILL)  # the command and its daemon die together...
        killed._daemon.wait()
        killed._lock.close()  # ...and the command's lock goes with its process
        assert daemon_alive(instance)  # what a command would otherwise believe for up to HEARTBEAT_TOLERANCE_S

        # What the next command starts is not the point here, only that it starts one: a stand-in process, which
        # stops at once (a real daemon still starting up may take its 60 s grace to stop on a loaded machine).
        monkeypatch.setenv("OPENVID_DAGSTER_DAEMON", "sh -c 'sleep 600' daemon")
        after = DaemonKeeper(instance)
        after.ensure()
        try:
            assert after._daemon is not None and after._daemon.poll() is None  # its own daemon, on the first look
        finally:
            after.stop()


def test_runs_that_will_never_finish_are_failed_and_live_ones_left_alone():
    import os
    import socket
    import uuid

    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

    from openvid_assets.assets.engine import (
        COMMAND_HOST_TAG,
        COMMAND_PID_TAG,
        WORKER_HOST_TAG,
        WORKER_PID_TAG,
        reap_dead_runs,
    )

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has
    host, alive = socket.gethostname(), str(os.getpid())
    cases = {  # name: (status, tags, reaped)
        "worker died": ("STARTED", {WORKER_HOST_TAG: host, WORKER_PID_TAG: str(gone.pid)}, True),
        "worker alive": ("STARTED", {WORKER_HOST_TAG: host, WORKER_PID_TAG: alive}, False),
        "launch cut short": ("STARTING", {COMMAND_HOST_TAG: host, COMMAND_PID_TAG: str(gone.pid)}, True),
        "launching": ("STARTING", {COMMAND_HOST_TAG: host, COMMAND_PID_TAG: alive}, False),
        "worker up, command gone": (
            "STARTING",
            {COMMAND_HOST_TAG: host, COMMAND_PID_TAG: str(gone.pid), WORKER_HOST_TAG: host, WORKER_PID_TAG: alive},
            False,
        ),
        "another host": ("STARTING", {COMMAND_HOST_TAG: f"not-{host}", COMMAND_PID_TAG: str(gone.pid)}, False),
        "from the UI": ("STARTING", {}, False),
    }
    with DagsterInstance.ephemeral() as instance:
        ids = {}
        for name, (status, tags, _) in cases.items():
            run = DagsterRun(job_name="j", run_id=str(uuid.uuid4()), status=DagsterRunStatus[status], tags=tags)
            ids[name] = instance.add_run(run).run_id
        reaped = set(reap_dead_runs(instance))
        assert reaped == {ids[name] for name, (_, _, dead) in cases.items() if dead}
        for name, (status, _, dead) in cases.items():
            assert instance.get_run_by_id(ids[name]).status.value == ("FAILURE" if dead else status), name
