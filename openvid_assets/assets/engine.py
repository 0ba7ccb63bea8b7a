"""The run command's client of Dagster: find what is missing or stale, hand it to Dagster as one asset
backfill, follow it, report.

Nothing here executes or orders a step. ``assets/plan.py`` reads which shard partitions are missing or
stale in bulk from the instance's records; the whole of it, per-shard and global steps together, goes
to Dagster in one request: the UI's own ``launchPartitionBackfill`` GraphQL mutation, executed by
``dagster-graphql`` against this code location (or a team's webserver with ``--remote``). Dagster's
backfill daemon then orders the steps (per shard, global, per shard again), batches them into runs
by the assets' backfill policies, and puts the runs on the instance's queue, where pools and
concurrency limits decide how many run at once; the runs are the runs the UI shows, re-executes and
retries. What the command keeps is what Dagster lacks: progress lines from the runs' events, the
summary, refusing a second data root, and marking runs of a dead local worker failed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, Definitions, RunsFilter

from openvid_assets import settings
from openvid_assets.assets.progress import PROGRESS_PREFIX
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.assets.training import GROUP as TRAINING_GROUP
from openvid_assets.assets.ablation import GROUP as ABLATION_GROUP
from openvid_assets.assets.history import ESTIMATE_GROUP
from openvid_assets.assets.plan import Plan, plan_stale
from openvid_assets.store.files import process_alive

LOCATION = "openvid_assets"  # the code location name in workspace.yaml and pyproject's [tool.dagster]
WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"
COMMAND_TAG = "openvid/command"
DATA_ROOT_TAG = "openvid/data_root"
COMMAND_PID_TAG, COMMAND_HOST_TAG = "openvid/command_pid", "openvid/command_host"
WORKER_PID_TAG, WORKER_HOST_TAG = "openvid/worker_pid", "openvid/worker_host"
BACKFILL_TAG = "dagster/backfill"  # Dagster tags every run of a backfill with its id
GPU_POOL = "gpu"  # the model steps' pool (assets/policies.py); --workers sets its limit
REAP_EVERY_S = 5.0  # how often a waiting command looks for runs whose worker died
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}  # BulkActionStatus


@dataclass(frozen=True)
class Wave:
    per_shard: bool
    keys: list[AssetKey]


@dataclass(frozen=True)
class Workers:
    """How many model runs at once (the ``gpu`` pool's limit), and what each gets: a GPU, or a share of the cores."""

    count: int
    gpus: int
    threads: int
    asked: bool = False  # given with --workers (else this machine's default)

    @classmethod
    def for_machine(cls, requested: int | None = None) -> Workers:
        gpus, cores = gpu_count(), os.cpu_count() or 1
        count = requested or gpus or cores  # default: one run per GPU, else one single-threaded run per core
        return cls(count, gpus, max(1, cores // count), asked=requested is not None)

    def pool_limit(self, instance: DagsterInstance) -> int | None:
        """The ``gpu`` pool's limit to set: the runs at once asked for, or this machine's default where the runs are
        this machine's processes; a cluster's own limit is left alone unless asked."""
        local = type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        return self.count if self.asked or local else None

    def run_config(self, data_root: str, resources: dict | None = None) -> dict:
        """What every run is given: the data root, its threads, and any other resource config. On a GPU machine
        each run takes a GPU no other run holds when its models load (models.registry.runtime.pick_device)."""
        return {
            "resources": {
                "store": {"config": {"data_root": data_root}},
                "models": {"config": {"device": "auto" if self.gpus else "cpu", "threads": self.threads}},
                **{k: {"config": v} for k, v in (resources or {}).items()},
            }
        }


def gpu_count() -> int:
    """GPUs of this machine, without importing torch where there is no NVIDIA driver."""
    if not shutil.which("nvidia-smi"):
        return 0
    import torch

    return torch.cuda.device_count()


@dataclass
class RunReport:
    shards: int = 0
    runs_ok: int = 0
    runs_failed: list[str] = field(default_factory=list)
    skipped: int = 0
    reaped: list[str] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    outcome: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.runs_failed

    def summary(self, seconds: float) -> str:
        t = self.totals
        lines = [f"Marked {len(self.reaped)} run(s) of a dead earlier command as failed."] if self.reaped else []
        lines += [
            f"Done in {seconds:.1f}s: {self.shards} shard(s), {self.runs_ok} run(s) ok, "
            f"{len(self.runs_failed)} failed, {self.skipped} shard step(s) already up to date.",
        ]
        if t:
            lines.append(f"Videos: {t['videos']} ({t['ok']} ok, {t['failed']} failed), {t['hours_ok']:.3f} h usable.")
        for status, stage, count in self.outcome:
            lines.append(f"  {status:8s} at {stage:9s} x{count}")
        for run in self.runs_failed:
            lines.append(f"  RUN FAILED: {run}")
        return "\n".join(lines)


# Groups asked for on their own, never part of a run's plan: the ablation (docs/EVALUATION.md) and the estimate.
ASKED_GROUPS = (ABLATION_GROUP, ESTIMATE_GROUP)


def plan_waves(defs: Definitions, training: bool | None = False) -> list[Wave]:
    """Waves of the curation assets (``training=False``), of the MVDiT assets only (``True``), or of both (None):
    stretches of steps with the same partitioning. How the command shows its plan (Dagster orders the runs)."""
    graph = defs.resolve_asset_graph()
    keys = [
        k
        for k in graph.toposorted_asset_keys
        if graph.get(k).is_materializable
        and graph.get(k).group_name not in ASKED_GROUPS
        and (training is None or (graph.get(k).group_name == TRAINING_GROUP) == training)
    ]
    per_shard = {k: graph.get(k).partitions_def == shards_partitions for k in keys}
    depth: dict[AssetKey, int] = {}
    for key in keys:  # parents come first in toposorted order
        parents = [p for p in graph.get(key).parent_keys if p in per_shard]
        depth[key] = max((depth[p] + (per_shard[p] != per_shard[key]) for p in parents), default=0)
    waves: dict[tuple[int, bool], list[AssetKey]] = defaultdict(list)
    for key in keys:
        waves[(depth[key], not per_shard[key])].append(key)
    return [Wave(not is_global, waves[(d, is_global)]) for d, is_global in sorted(waves)]


# -- the daemon ---------------------------------------------------------------------------------------------

DAEMONS = ("QUEUED_RUN_COORDINATOR", "BACKFILL")  # the daemons a backfill needs: it makes runs, the queue starts them
HEARTBEAT_TOLERANCE_S = 75.0
DAEMON_PID_FILE = "openvid-daemon.pid"  # in the instance folder, while a command's own daemon runs


def daemon_alive(instance: DagsterInstance) -> bool:
    """Whether a Dagster daemon (``dagster dev``, ``dagster-daemon run``) is serving this instance's backfills and
    run queue: both have sent a heartbeat lately."""
    beats = instance.get_daemon_heartbeats()
    now = time.time()
    return all(kind in beats and now - beats[kind].timestamp < HEARTBEAT_TOLERANCE_S for kind in DAEMONS)


def _die_with_parent() -> None:  # runs in the child before exec: the daemon ends with the command
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DaemonKeeper:
    """Makes sure a Dagster daemon serves the instance's backfills and run queue while the command waits.

    A daemon that is already running (``dagster dev``, ``dagster-daemon run``, another run command's) is used.
    Otherwise the command runs ``dagster-daemon run`` itself, holding a lock file in the instance folder so that
    concurrent commands share one daemon; when its owner ends, a command still waiting starts the next.
    """

    def __init__(self, instance: DagsterInstance, config_dir: str | None = None):
        self.instance = instance
        self.home = Path(instance.root_directory).absolute()
        # Where the instance's dagster.yaml is (the project's embedded one lives beside .dagster/): the daemon gets
        # DAGSTER_HOME pointing at it and the command's working folder, so it opens the same instance.
        self.config_dir = Path(config_dir or instance.root_directory)
        self._lock = None
        self._daemon: subprocess.Popen | None = None
        self._next_check = 0.0

    def ensure(self) -> None:
        if self._daemon is not None and self._daemon.poll() is not None:
            raise RuntimeError(
                f"the Dagster daemon this command started exited (code {self._daemon.returncode}); "
                f"its log: {self.home / 'logs' / 'daemon.log'}"
            )
        if self._daemon is not None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + 5.0
        lock = try_lock(self.home / "openvid-daemon.lock")
        if lock is None:  # another command's daemon serves the queue
            return
        if self._daemon_of_a_dead_command_gone():  # its heartbeats would say "alive" for HEARTBEAT_TOLERANCE_S
            self.instance.wipe_daemon_heartbeats()
        if daemon_alive(self.instance):  # one this command does not manage (dagster dev)
            lock.close()
            return
        self._lock = lock
        (self.home / "logs").mkdir(exist_ok=True)
        env = {**os.environ, "DAGSTER_HOME": str(self.config_dir)}
        # Dagster rewrites a backfill's whole record after every chunk of runs it submits (default 25): at 50,000
        # shards 1 s a run; 1,000 a chunk makes it 0.19 s a run, flat in the number of shards (docs/BENCHMARKS.md).
        env.setdefault("DAGSTER_ASSET_BACKFILL_RUN_CHUNK_SIZE", "1000")
        if settings.shards_per_run() > 1:
            # A run of K shards otherwise writes a "materialization planned" event per asset and shard when it is
            # created: 9.1 s a 200-shard run at 50,000 shards, 1.3 s with one event per asset (docs/BENCHMARKS.md).
            # The price: a failed run's shards show as missing, not failed, in the UI (the command reports them).
            env.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
        with open(self.home / "logs" / "daemon.log", "ab") as log:
            self._daemon = subprocess.Popen(
                [*settings.daemon_command(), "run", "-w", str(WORKSPACE)],
                env=env,
                cwd=os.getcwd(),  # relative folders in dagster.yaml are relative to where the command runs
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        (self.home / DAEMON_PID_FILE).write_text(str(self._daemon.pid))

    def _daemon_of_a_dead_command_gone(self) -> bool:
        """Whether a daemon that a command started has stopped without that command stopping it (kill -9): its pid
        file is left. Still alive, it is shutting down (it gets SIGTERM when its command dies): wait for it."""
        pid_file = self.home / DAEMON_PID_FILE
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return False
        if process_alive(pid):
            return False
        pid_file.unlink(missing_ok=True)
        return True

    def stop(self) -> None:
        if self._daemon is None:
            return
        self._daemon.terminate()
        try:
            self._daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._daemon.kill()
        # Its heartbeats would say "alive" for a while: clear them so the next command starts a daemon at once.
        self.instance.wipe_daemon_heartbeats()
        (self.home / DAEMON_PID_FILE).unlink(missing_ok=True)
        self._daemon = None
        self._lock.close()
        self._lock = None


@contextmanager
def dagster_daemon(instance: DagsterInstance, config_dir: str | None = None) -> Iterator[DaemonKeeper]:
    keeper = DaemonKeeper(instance, config_dir)
    keeper.ensure()
    try:
        yield keeper
    finally:
        keeper.stop()


# -- launching ----------------------------------------------------------------------------------------------

LAUNCH = """mutation {
  %(limit)s
  launchPartitionBackfill(backfillParams: %(params)s) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""


def graphql_literal(value) -> str:
    """A JSON-like value written as a GraphQL input literal (object keys unquoted)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {graphql_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(graphql_literal(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers, true/false/null


def backfill_params(
    keys: list[AssetKey], shards: list[str] | None, run_config: dict, tags: dict[str, str], title: str
) -> dict:
    """``LaunchBackfillParams`` of one asset backfill of ``keys``: from ``shards`` (Dagster carries them down the
    graph, and every shard below a global step), or over every shard (``None``)."""
    where = {"allPartitions": True} if shards is None else {"partitionNames": shards}
    return {
        "assetSelection": [{"path": list(k.path)} for k in keys],
        **where,
        "runConfigData": run_config,
        "title": title,
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }


def backfill_requests(plan: Plan) -> list[tuple[list[AssetKey], list[str] | None]]:
    """``plan`` as asset backfills, in order: (assets, the shards they run on, or None for every shard).

    Dagster 1.13 takes a backfill's partitions as names given to the selection's roots, which must all be per shard
    (it carries them down the per-shard steps only), or as every partition; its per-asset ranges
    (``partitionsByAssets``) fail on dynamic partitions ("The instance is not available to load partitions"). So
    the plan is one request when every per-shard step has the same shards to do (a new data root, a changed step or
    model, training), and otherwise two: the steps before the first global one on their own shards (new shards, a
    shard's re-recorded input), then the rest, which is over every shard."""
    keys = [k for k, wanted in plan.partitions.items() if wanted]
    if not keys:
        return []
    first = [k for k in keys if plan.per_shard[k] and not (plan.after_global[k] & set(keys))]
    rest = [k for k in keys if k not in first]
    if not first:
        return [(keys, None)]  # everything per shard comes after a global step: every shard
    shards = sorted(set().union(*(plan.partitions[k] for k in first)))
    roots = [k for k in keys if not (plan.parents[k] & set(keys))]
    if all(plan.per_shard[k] for k in roots) and all(
        plan.partitions[k] <= set(shards) for k in rest if plan.per_shard[k]
    ):
        return [(keys, shards)]
    return [(first, shards), (rest, None)]


def execute_graphql(
    document: str, config_dir: str | None, variables: dict | None = None, remote: str | None = None
) -> dict:
    """Run a GraphQL document against this code location with Dagster's own ``dagster-graphql`` (in its process, on
    the instance of ``config_dir`` / $DAGSTER_HOME), or against a webserver (``remote``: its URL)."""
    with tempfile.NamedTemporaryFile("w", suffix=".graphql", delete=False) as f:
        f.write(document)  # a file: a large selection would not fit on a command line
    env = {**os.environ, **({"DAGSTER_HOME": config_dir} if config_dir else {})}
    target = ["--remote", remote] if remote else ["-w", str(WORKSPACE)]
    if variables:
        target += ["-v", json.dumps(variables)]
    try:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("dagster-graphql")), *target, "--file", f.name],
            env=env,
            cwd=os.getcwd(),
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(f.name)
    try:  # its one line of JSON, among the code server's log lines
        result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"')))
    except (StopIteration, ValueError):
        raise RuntimeError(
            f"dagster-graphql failed (exit {done.returncode}): {(done.stdout + done.stderr).strip()[-2000:]}"
        ) from None
    if result.get("errors"):
        raise RuntimeError(f"Dagster refused the request: {result['errors'][0].get('message')}")
    return result["data"]


def launch_backfill(
    keys: list[AssetKey],
    shards: list[str] | None,
    run_config: dict,
    tags: dict[str, str],
    title: str,
    config_dir: str | None,
    workers: int | None = None,
) -> str:
    """Hand ``keys`` from ``shards`` (None: every shard) to Dagster as one asset backfill (after setting the gpu
    pool's limit to
    ``workers``, if given); returns the backfill's id."""
    limit = f"setConcurrencyLimit(concurrencyKey: {json.dumps(GPU_POOL)}, limit: {int(workers)})" if workers else ""
    params = graphql_literal(backfill_params(keys, shards, run_config, tags, title))
    launched = execute_graphql(LAUNCH % {"limit": limit, "params": params}, config_dir)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(
            f"Dagster refused the backfill ({launched['__typename']}): "
            f"{launched.get('message') or launched.get('stack')}"
        )
    return launched["backfillId"]


# -- waiting and progress -----------------------------------------------------------------------------------


def _event_line(record, partition: str) -> str | None:
    entry = record.event_log_entry
    where = f"[{partition}] " if partition else ""
    step = entry.step_key or ""
    event = entry.dagster_event
    if event is None:
        message = entry.user_message or ""
        return (
            f"  {where}{step}: {message[len(PROGRESS_PREFIX) :].strip()}"
            if message.startswith(PROGRESS_PREFIX)
            else None
        )
    if event.event_type == DagsterEventType.STEP_START:
        return f"  {where}{step}: started"
    if event.event_type == DagsterEventType.STEP_SUCCESS:
        return f"  {where}{step}: done in {event.event_specific_data.duration_ms / 1000.0:.1f}s"
    if event.event_type == DagsterEventType.STEP_FAILURE:
        error = event.event_specific_data.error
        while error is not None and error.cause is not None:  # the user-facing cause, not Dagster's wrapper
            error = error.cause
        return f"  {where}{step}: FAILED: {error.message.strip() if error else entry.user_message}"
    if event.event_type == DagsterEventType.RUN_FAILURE:
        return f"  {where}run failed: {entry.user_message or event.message or ''}".rstrip()
    return None


def _partition_label(run) -> str:
    tags = run.tags
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return tags.get("dagster/partition") or (f"{start}..{end}" if start and start != end else start or "")


class RunFollower:
    """Prints the step starts, ends, failures and progress lines of runs as they happen, and keeps their ends.

    Each poll reads the runs changed since the one before and the new events of the runs in progress: the work is
    bounded by what runs at once, not by how many runs a backfill has made."""

    def __init__(
        self,
        instance: DagsterInstance,
        print_line: Callable[[str], None],
        on_run: Callable[[object, bool], None] | None = None,
    ):
        self.instance, self.print_line, self.on_run = instance, print_line, on_run  # on_run(run, ended)
        self.ended: dict[str, DagsterRunStatus] = {}
        self.labels: dict[str, str] = {}
        self._cursors: dict[str, str | None] = {}
        self._active: dict[str, object] = {}
        self._since: float | None = None

    def poll(self, run_ids: list[str] | None = None, tags: dict[str, str] | None = None) -> None:
        from datetime import datetime, timezone

        # A little overlap: a run updated during the last read is read again.
        since = datetime.fromtimestamp(self._since - 2.0, timezone.utc) if self._since is not None else None
        self._since = time.time()
        for run in self.instance.get_runs(RunsFilter(run_ids=run_ids, tags=tags or {}, updated_after=since)):
            if run.run_id not in self.ended:
                self._active[run.run_id] = run
                self.labels.setdefault(run.run_id, _partition_label(run))
        # Statuses first, then events: no event before a run's end is missed.
        for run in self.instance.get_runs(RunsFilter(run_ids=list(self._active))) if self._active else []:
            if run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
                continue
            if self.on_run is not None and run.run_id not in self._cursors:
                self.on_run(run, False)  # first seen running
            while True:
                page = self.instance.get_records_for_run(run.run_id, cursor=self._cursors.get(run.run_id), limit=500)
                self._cursors[run.run_id] = page.cursor
                for record in page.records:
                    if (line := _event_line(record, self.labels[run.run_id])) is not None:
                        self.print_line(line)
                if not page.has_more:
                    break
            if run.status in TERMINAL:
                self.ended[run.run_id] = run.status
                del self._active[run.run_id]
                self._cursors.pop(run.run_id, None)
                if self.on_run is not None:
                    self.on_run(run, True)

    @property
    def busy(self) -> bool:
        return bool(self._active)


def wait_for_runs(
    instance: DagsterInstance,
    run_ids: list[str],
    print_line: Callable[[str], None] = print,
    poll_s: float = 0.5,
    on_poll: Callable[[], None] | None = None,
) -> dict[str, DagsterRunStatus]:
    """Wait until every run has ended, printing its progress."""
    follower = RunFollower(instance, print_line)
    while True:
        follower.poll(run_ids=run_ids)
        if all(r in follower.ended for r in run_ids):
            return {r: follower.ended[r] for r in run_ids}
        if on_poll is not None:
            on_poll()
        time.sleep(poll_s)


def follow_backfill(
    instance: DagsterInstance,
    backfill_id: str,
    print_line: Callable[[str], None] = print,
    poll_s: float = 0.5,
    on_poll: Callable[[], None] | None = None,
    on_run: Callable[[object, bool], None] | None = None,
) -> RunFollower:
    """Wait until the backfill has ended and so has every run it made, printing their progress."""
    follower = RunFollower(instance, print_line, on_run)
    while True:
        done = instance.get_backfill(backfill_id).status.value in BACKFILL_DONE  # read before its runs: none missed
        follower.poll(tags={BACKFILL_TAG: backfill_id})
        if done and not follower.busy:
            return follower
        if on_poll is not None:
            on_poll()
        time.sleep(poll_s)


# -- runs of a dead command ---------------------------------------------------------------------------------


def reap_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark runs on this host that will never finish as failed, freeing their queue slot and pool slots; the
    daemon's launcher cannot see a dead local worker itself:

    - a started run whose worker process is gone (kill -9, power loss);
    - a run still starting, without a worker yet, for a run command that has died (its launch was cut short
      with it). Left alone, run monitoring fails it only after its start timeout (60 s); a worker that comes up
      late finds the run finished and does nothing (Dagster ignores it)."""
    reaped = []
    runs = instance.get_runs(
        RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={WORKER_HOST_TAG: socket.gethostname()}
        )
    )
    starting = instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus.STARTING], tags={COMMAND_HOST_TAG: socket.gethostname()})
    )
    for run in runs:
        pid = int(run.tags.get(WORKER_PID_TAG, "0") or 0)
        if pid and not process_alive(pid):
            _fail(instance, run, f"the run's worker process (pid {pid}) died; the next run redoes its unfinished steps")
            reaped.append(run.run_id)
    for run in starting:
        command = int(run.tags.get(COMMAND_PID_TAG, "0") or 0)
        if WORKER_PID_TAG not in run.tags and command and not process_alive(command):
            _fail(instance, run, f"its run command (pid {command}) died while it was starting; the next run redoes it")
            reaped.append(run.run_id)
    return reaped


def _fail(instance: DagsterInstance, run, reason: str) -> None:
    instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


UNFINISHED = {"REQUESTED", "CANCELING", "FAILING"}  # BulkActionStatus values of a backfill still at work


def unfinished_backfills(instance: DagsterInstance, limit: int = 100) -> list:
    """The instance's backfills still at work (the newest ``limit`` looked at: there are few)."""
    return [b for b in instance.get_backfills(limit=limit) if b.status.value in UNFINISHED]


def orphaned(backfill) -> bool:
    """A backfill launched by a run command on this host that has died: nobody follows it any more."""
    tags = backfill.tags or {}
    pid = int(tags.get(COMMAND_PID_TAG, "0") or 0)
    return tags.get(COMMAND_HOST_TAG) == socket.gethostname() and pid > 0 and not process_alive(pid)


def served_data_root(instance: DagsterInstance) -> str | None:
    """The data root this instance's backfills were for (one instance records one data root's materializations)."""
    for backfill in instance.get_backfills(limit=20):
        if DATA_ROOT_TAG in (backfill.tags or {}):  # backfills launched from the UI carry no such tag
            return backfill.tags[DATA_ROOT_TAG]
    return None


def check_data_root(instance: DagsterInstance, data_root: str) -> None:
    """Refuse a second data root on one instance: its shard partitions would look done for the other's tables."""
    served = served_data_root(instance)
    if served is not None and served != data_root:
        raise ValueError(
            f"this Dagster instance ({instance.root_directory}) holds the runs of data root {served}; "
            f"run {data_root} with an instance of its own (set DAGSTER_HOME to another folder)"
        )


# -- the command --------------------------------------------------------------------------------------------


def _progress_of(
    plan: Plan,
    waves: list[Wave],
    shards: list[str],
    workers: Workers,
    prior: tuple[Callable[[list[str]], float | None], str] | None,
    print_line: Callable[[str], None],
) -> Callable[[object, bool], None]:
    """What the command does as each run starts and ends: a line per finished shard run with its step's shards
    done and time left (assets/history.py, TimeLeft)."""
    from openvid_assets.assets.history import TimeLeft, run_shards

    numbered = [(n, w) for n, w in enumerate(waves, start=1) if w.per_shard]
    todo = {n: len(set().union(*(plan.partitions[k] for k in w.keys))) for n, w in numbered}
    seconds_a_shard, origin = prior or ((lambda _steps: None), "")
    clock = TimeLeft(
        todo, {n: seconds_a_shard([k.path[-1] for k in w.keys]) for n, w in numbered}, workers.count, origin
    )
    wave_of = {k: n for n, w in numbered for k in w.keys}
    order = {s: i for i, s in enumerate(shards)}

    def on_run(run, ended: bool) -> None:
        wave = next((wave_of[k] for k in run.asset_selection or () if k in wave_of), None)
        if wave is None:
            return
        if not ended:
            clock.run_started(wave, time.monotonic())
        elif run.status == DagsterRunStatus.SUCCESS:
            line = clock.run_ended(wave, len(run_shards(run.tags, order, shards)) or 1, time.monotonic())
            if line:
                print_line(line)

    return on_run


def cancel_backfill(backfill_id: str, config_dir: str | None) -> None:
    document = "mutation { cancelPartitionBackfill(backfillId: %s) { __typename ... on Error { message } } }"
    execute_graphql(document % json.dumps(backfill_id), config_dir)


def print_plan(plan: Plan, waves: list[Wave], shards: list[str], print_line: Callable[[str], None]) -> int:
    """One line per wave of the graph: how many shards have something to do; returns the shard steps up to date."""
    up_to_date = 0
    for number, wave in enumerate(waves, start=1):
        names = ", ".join(k.path[-1] for k in wave.keys)
        if wave.per_shard:
            todo = set().union(*(plan.partitions[k] for k in wave.keys))
            up_to_date += sum(len(shards) - plan.count(k) for k in wave.keys)
            print_line(f"Step {number}: {names} on {len(shards)} shard(s), {len(todo)} to run")
        else:
            fresh = not any(plan.partitions[k] for k in wave.keys)
            print_line(f"Step {number}: {names} (global){', up to date' if fresh else ''}")
    return up_to_date


def run_pipeline(
    defs: Definitions,
    instance: DagsterInstance,
    data_root: str,
    shards: list[str],
    workers: Workers,
    *,
    force: bool = False,
    training: bool | None = False,
    config_dir: str | None = None,
    resources: dict | None = None,
    print_line: Callable[[str], None] = print,
    prior: tuple[Callable[[list[str]], float | None], str] | None = None,
) -> RunReport:
    """Materialize what is missing or stale among the curation assets (``training=False``), the MVDiT assets
    (``True``) or both (None) as one backfill on the instance; returns when it and its runs have ended.
    ``resources``: config of further resources for every run (``{"mvdit": {...}}``: the train command's).
    ``prior``: (a wave's step names -> seconds a shard, where from) for the time left before the runs tell."""
    with one_command_at_a_time(instance, print_line):
        return _run_pipeline(
            defs, instance, data_root, shards, workers, force, training, config_dir, resources, print_line, prior
        )


@contextmanager
def one_command_at_a_time(instance: DagsterInstance, print_line: Callable[[str], None]) -> Iterator[None]:
    """Run commands on one instance (on this machine) plan and launch one after the other: a second one waits, then
    finds the first one's work done instead of launching it again."""
    import fcntl

    path = Path(instance.root_directory).absolute() / "openvid-command.lock"
    lock = try_lock(path)
    if lock is None:
        print_line("Another run command is working on this instance; waiting for it to end.")
        lock = open(path, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
    with lock:
        yield


def try_lock(path: Path):
    """The open file at ``path``, exclusively locked (the kernel drops the lock with the process), or None if another
    process holds it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def _run_pipeline(
    defs: Definitions,
    instance: DagsterInstance,
    data_root: str,
    shards: list[str],
    workers: Workers,
    force: bool,
    training: bool | None,
    config_dir: str | None,
    resources: dict | None,
    print_line: Callable[[str], None],
    prior: tuple[Callable[[list[str]], float | None], str] | None = None,
) -> RunReport:
    report = RunReport(shards=len(shards), reaped=reap_dead_runs(instance))
    if type(instance.run_coordinator).__name__ != "QueuedRunCoordinator":
        print_line(
            f"Note: the instance at {instance.root_directory} has no run queue (QueuedRunCoordinator in its "
            "dagster.yaml): runs start as soon as they are submitted and --workers is not enforced."
        )
    waiting = unfinished_backfills(instance)
    for backfill in waiting:
        if orphaned(backfill):  # its command died (kill -9): this command plans its work anew
            cancel_backfill(backfill.backfill_id, config_dir)
    graph = defs.resolve_asset_graph()
    waves = plan_waves(defs, training)
    # The train command always asks for training (its step target may have moved); --force asks for everything.
    forced = {k for w in waves if force or (training is True and not w.per_shard) for k in w.keys}
    command = uuid.uuid4().hex[:8]

    def make_plan() -> Plan:
        plan = plan_stale(
            instance, graph, [k for w in waves for k in w.keys], shards, shards_partitions, frozenset(forced)
        )
        report.skipped = print_plan(plan, waves, shards, print_line)
        return plan

    plan = None if waiting else make_plan()
    if plan is not None and plan.empty:
        return report  # nothing to do: no daemon, no request
    with dagster_daemon(instance, config_dir) as daemon:
        next_reap = [time.monotonic() + REAP_EVERY_S]

        def on_poll() -> None:
            daemon.ensure()
            if time.monotonic() >= next_reap[0]:  # a few queries: not on every poll
                next_reap[0] = time.monotonic() + REAP_EVERY_S
                report.reaped += reap_dead_runs(instance)

        for backfill in waiting:  # another command's or the UI's work on these shards: awaited, not duplicated
            print_line(f"Waiting for backfill {backfill.backfill_id} ({backfill.title or 'no title'}) to end first.")
            follow_backfill(instance, backfill.backfill_id, print_line, on_poll=on_poll)
        plan = plan or make_plan()
        if plan.empty:
            return report
        on_run = _progress_of(plan, waves, shards, workers, prior, print_line)
        tags = {
            COMMAND_TAG: command,
            DATA_ROOT_TAG: data_root,
            COMMAND_PID_TAG: str(os.getpid()),
            COMMAND_HOST_TAG: socket.gethostname(),
        }
        for keys, wanted in backfill_requests(plan):
            backfill_id = launch_backfill(
                keys,
                wanted,
                workers.run_config(data_root, resources),
                tags,
                f"openvid-assets run {command}",
                config_dir,
                workers.pool_limit(instance),
            )
            where = "every shard" if wanted is None else f"{len(wanted)} shard(s)"
            print_line(
                f"Backfill {backfill_id}: {len(keys)} asset(s) from {where}; Dagster orders, batches and "
                "queues their runs."
            )
            follower = follow_backfill(instance, backfill_id, print_line, on_poll=on_poll, on_run=on_run)
            for run_id, status in follower.ended.items():
                if status == DagsterRunStatus.SUCCESS:
                    report.runs_ok += 1
                else:
                    report.runs_failed.append(
                        f"{follower.labels[run_id] or 'global'}: run {run_id} {status.value.lower()}"
                    )
            status = instance.get_backfill(backfill_id).status.value
            if status not in ("COMPLETED", "COMPLETED_SUCCESS") and not report.runs_failed:
                report.runs_failed.append(f"backfill {backfill_id} ended {status.lower()}")
            if report.runs_failed:
                break  # what follows reads what this one should have written
    return report
