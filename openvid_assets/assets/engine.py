"""The run command's engine: submit the stale parts of the graph to the Dagster instance, wait, report.

Nothing here executes a step. The command asks Dagster which asset partitions are
missing or stale (Dagster's own staleness: code versions, and data versions that
carry each step's recipe section and inputs), creates ordinary runs for them and
puts them on the instance's run queue; the Dagster daemon launches them, several
at once, each in its own process. Runs launched here are the runs the UI shows,
re-executes and retries, under the same queue limits, pools and policies.

The graph is walked in waves: a wave is a stretch of steps with the same
partitioning (per shard, or global), so one run per shard covers a per-shard wave
and one run a global wave. A wave is submitted once the one before it has ended.
Each run takes a worker slot (a run tag the queue limits to one run per value)
and, on a GPU machine, that slot's GPU.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, Definitions, RunsFilter

from openvid_assets.assets.progress import PROGRESS_PREFIX
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.assets.training import GROUP as TRAINING_GROUP
from openvid_assets.assets.ablation import GROUP as ABLATION_GROUP

LOCATION = "openvid_assets"  # the code location name in workspace.yaml and pyproject's [tool.dagster]
WORKER_TAG = "openvid/worker"  # the queue runs at most one run per value (dagster.yaml tag_concurrency_limits)
COMMAND_TAG = "openvid/command"
DATA_ROOT_TAG = "openvid/data_root"
COMMAND_PID_TAG, COMMAND_HOST_TAG = "openvid/command_pid", "openvid/command_host"
WORKER_PID_TAG, WORKER_HOST_TAG = "openvid/worker_pid", "openvid/worker_host"
REAP_EVERY_S = 5.0  # how often a waiting command looks for runs whose worker died
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
JOBS = {(True, False): "shard_pipeline", (False, False): "global_pipeline", (True, True): "mvdit_latents_job",
        (False, True): "mvdit_training"}  # (per shard, training) -> the job that holds those assets


@dataclass(frozen=True)
class Wave:
    per_shard: bool
    keys: list[AssetKey]


@dataclass(frozen=True)
class Workers:
    """How many runs at once, and what each gets: a GPU (pinned) or a share of the cores."""

    count: int
    gpus: int
    threads: int

    @classmethod
    def for_machine(cls, requested: int | None = None) -> Workers:
        gpus, cores = gpu_count(), os.cpu_count() or 1
        count = requested or gpus or cores  # default: one run per GPU, else one single-threaded run per core
        return cls(count, gpus, max(1, cores // count))

    def run_config(self, slot: int, data_root: str, resources: dict | None = None) -> dict:
        """What a run in ``slot`` is given: the data root, its GPU or threads, and any other resource config."""
        device = f"cuda:{slot % self.gpus}" if self.gpus else "cpu"
        return {"resources": {"store": {"config": {"data_root": data_root}},
                              "models": {"config": {"device": device, "threads": self.threads}},
                              **{k: {"config": v} for k, v in (resources or {}).items()}}}  # fmt: skip


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


def plan_waves(defs: Definitions, training: bool | None = False) -> list[Wave]:
    """Waves of the curation assets (``training=False``), of the MVDiT assets only (``True``), or of both (None)."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable
            and graph.get(k).group_name != ABLATION_GROUP  # asked for on its own (docs/EVALUATION.md)
            and (training is None or (graph.get(k).group_name == TRAINING_GROUP) == training)]  # fmt: skip
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


def daemon_alive(instance: DagsterInstance) -> bool:
    """Whether a Dagster daemon (``dagster dev`` or ``dagster-daemon run``) is serving this instance's run queue."""
    from dagster._daemon.controller import get_daemon_statuses
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    kind = QueuedRunCoordinatorDaemon.daemon_type()
    statuses = get_daemon_statuses(instance, [kind], ignore_errors=True, heartbeat_tolerance_seconds=75)
    return statuses[kind].healthy is True


def _die_with_parent() -> None:  # runs in the child before exec: the daemon ends with the command
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DaemonKeeper:
    """Makes sure a Dagster daemon serves the instance's run queue while the command waits.

    A daemon that is already running (``dagster dev``, ``dagster-daemon run``, another run command's) is used.
    Otherwise the command runs ``dagster-daemon run`` itself, holding a lock file in the instance folder so that
    concurrent commands share one daemon; when its owner ends, a command still waiting starts the next.
    """

    def __init__(self, instance: DagsterInstance, config_dir: str | None = None):
        self.instance = instance
        self.home = Path(instance.root_directory)
        # Where the instance's dagster.yaml is (the project's embedded one lives beside .dagster/): the daemon gets
        # DAGSTER_HOME pointing at it and the command's working folder, so it opens the same instance.
        self.config_dir = Path(config_dir or instance.root_directory)
        self._lock = None
        self._daemon: subprocess.Popen | None = None
        self._next_check = 0.0

    def ensure(self) -> None:
        if self._daemon is not None and self._daemon.poll() is not None:
            raise RuntimeError(f"the Dagster daemon this command started exited (code {self._daemon.returncode}); "
                               f"its log: {self.home / 'logs' / 'daemon.log'}")  # fmt: skip
        if self._daemon is not None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + 5.0
        import fcntl

        self.home.mkdir(parents=True, exist_ok=True)
        lock = open(self.home / "openvid-daemon.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()  # another run command's daemon serves the queue
            return
        if daemon_alive(self.instance):  # one this command does not manage (dagster dev)
            lock.close()
            return
        self._lock = lock
        workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
        (self.home / "logs").mkdir(exist_ok=True)
        env = {**os.environ, "DAGSTER_HOME": str(self.config_dir)}
        with open(self.home / "logs" / "daemon.log", "ab") as log:
            self._daemon = subprocess.Popen(
                [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)], env=env,
                cwd=os.getcwd(),  # relative folders in dagster.yaml are relative to where the command runs
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # fmt: skip

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


# -- submitting ---------------------------------------------------------------------------------------------


class Submitter:
    """Creates runs of this code location's jobs for asset selections and puts them on the run queue."""

    def __init__(self, instance: DagsterInstance):
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(executable_path=sys.executable, module_name="openvid_assets.definitions",
                                 attribute="defs"), location_name=LOCATION)  # fmt: skip
        self.instance = instance
        self._process = WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin]))
        self.workspace = self._process.create_request_context()
        self.location = self.workspace.get_code_location(LOCATION)
        self.repository = next(iter(self.location.get_repositories().values()))

    def close(self) -> None:
        self._process.__exit__(None, None, None)

    def stale(self, keys: list[AssetKey], partition: str | None) -> list[AssetKey]:
        """The keys Dagster finds missing or stale for this partition (and everything below them in ``keys``)."""
        from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus

        resolver = CachingStaleStatusResolver(self.instance, self.repository.asset_graph, self.workspace)
        graph = self.repository.asset_graph
        out: list[AssetKey] = []
        for key in keys:  # in dependency order
            status = resolver.get_status(key, partition)
            if status != StaleStatus.FRESH or any(p in out for p in graph.get(key).parent_keys):
                out.append(key)
        return out

    def submit(self, job_name: str, keys: list[AssetKey], partition: str | None, tags: dict[str, str],
               run_config: dict) -> str:  # fmt: skip
        from dagster._core.definitions.selector import JobSubsetSelector

        selector = JobSubsetSelector(location_name=LOCATION, repository_name=self.repository.name, job_name=job_name,
                                     op_selection=None, asset_selection=keys)  # fmt: skip
        job = self.location.get_job(selector)
        plan = self.location.get_execution_plan(job, run_config, step_keys_to_execute=None, known_state=None,
                                                instance=self.instance)  # fmt: skip
        run_tags = {**(job.run_tags or {}), **tags, **({"dagster/partition": partition} if partition else {})}
        run = self.instance.create_run(
            job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
            step_keys_to_execute=None, status=DagsterRunStatus.NOT_STARTED, op_selection=None, root_run_id=None,
            parent_run_id=None, tags=run_tags, job_snapshot=job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot, parent_job_snapshot=job.parent_job_snapshot,
            remote_job_origin=job.get_remote_origin(), job_code_origin=job.get_python_origin(),
            asset_selection=frozenset(keys), asset_check_selection=None, asset_graph=self.repository.asset_graph,
        )  # fmt: skip
        self.instance.submit_run(run.run_id, self.workspace)
        return run.run_id


# -- waiting and progress -----------------------------------------------------------------------------------


def _event_line(record, partition: str) -> str | None:
    entry = record.event_log_entry
    where = f"[{partition}] " if partition else ""
    step = entry.step_key or ""
    event = entry.dagster_event
    if event is None:
        message = entry.user_message or ""
        return f"  {where}{step}: {message[len(PROGRESS_PREFIX):].strip()}" if message.startswith(PROGRESS_PREFIX) else None
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


def wait_for_runs(instance: DagsterInstance, run_ids: list[str], print_line: Callable[[str], None] = print,
                  poll_s: float = 0.5, on_poll: Callable[[], None] | None = None) -> dict[str, DagsterRunStatus]:  # fmt: skip
    """Wait until every run has ended, printing its step starts, ends, failures and progress lines."""
    if not run_ids:
        return {}
    cursors: dict[str, str | None] = {r: None for r in run_ids}
    partitions = {r.run_id: r.tags.get("dagster/partition") or "" for r in instance.get_runs(RunsFilter(run_ids=run_ids))}
    ended: dict[str, DagsterRunStatus] = {}
    while len(ended) < len(run_ids):
        # One query for every status, read before the events so that no event after a run's end is missed; queued
        # runs have no step events to read yet.
        pending = instance.get_runs(RunsFilter(run_ids=[r for r in run_ids if r not in ended]))
        for run in pending:
            if run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED):
                continue
            while True:
                page = instance.get_records_for_run(run.run_id, cursor=cursors[run.run_id], limit=500)
                cursors[run.run_id] = page.cursor
                for record in page.records:
                    if (line := _event_line(record, partitions[run.run_id])) is not None:
                        print_line(line)
                if not page.has_more:
                    break
            if run.status in TERMINAL:
                ended[run.run_id] = run.status
        if on_poll is not None:
            on_poll()
        if len(ended) < len(run_ids):
            time.sleep(poll_s)
    return ended


# -- runs of a dead command ---------------------------------------------------------------------------------


def reap_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark started runs whose worker process on this host is gone (kill -9, power loss) as failed, freeing their
    queue slot and pool slots; the daemon's launcher cannot see a dead local worker itself."""
    from openvid_assets.store.files import process_alive

    reaped = []
    # Created by a command that died before putting them on the queue: they would never start.
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.NOT_STARTED],
                                            tags={COMMAND_HOST_TAG: socket.gethostname()})):  # fmt: skip
        pid = int(run.tags.get(COMMAND_PID_TAG, "0") or 0)
        if pid and not process_alive(pid):
            instance.report_run_canceled(run, f"the run command (pid {pid}) died before submitting this run")
            reaped.append(run.run_id)
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
                                        tags={WORKER_HOST_TAG: socket.gethostname()}))  # fmt: skip
    for run in runs:
        pid = int(run.tags.get(WORKER_PID_TAG, "0") or 0)
        if pid and not process_alive(pid):
            instance.report_run_failed(run, f"the run's worker process (pid {pid}) died; the next run redoes "
                                            "its unfinished steps")  # fmt: skip
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reaped.append(run.run_id)
    return reaped


def in_flight(instance: DagsterInstance, job_name: str, partition: str | None) -> list[str]:
    """Queued or running runs of this job and partition (another command's, say): awaited, not duplicated."""
    tags = {"dagster/partition": partition} if partition else {}
    runs = instance.get_runs(RunsFilter(job_name=job_name, tags=tags, statuses=[
        DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
    return [r.run_id for r in runs if partition or not r.tags.get("dagster/partition")]


def served_data_root(instance: DagsterInstance) -> str | None:
    """The data root this instance's pipeline runs used (one instance records one data root's materializations)."""
    for run in instance.get_runs(RunsFilter(job_name=JOBS[(True, False)]), limit=20):
        if DATA_ROOT_TAG in run.tags:  # runs launched from the UI carry no such tag
            return run.tags[DATA_ROOT_TAG]
    return None


def check_data_root(instance: DagsterInstance, data_root: str) -> None:
    """Refuse a second data root on one instance: its shard partitions would look done for the other's tables."""
    served = served_data_root(instance)
    if served is not None and served != data_root:
        raise ValueError(f"this Dagster instance ({instance.root_directory}) holds the runs of data root {served}; "
                         f"run {data_root} with an instance of its own (set DAGSTER_HOME to another folder)")


# -- the command --------------------------------------------------------------------------------------------


@dataclass
class _Command:
    """One run command's submissions: its id, its worker slots, and what it has run so far."""

    instance: DagsterInstance
    submitter: Submitter
    graph: Any  # the code location's asset graph
    data_root: str
    workers: Workers
    resources: dict | None
    report: RunReport
    print_line: Callable[[str], None]
    on_poll: Callable[[], None]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    slots: Counter = field(default_factory=Counter)
    ran_before: bool = False

    def submit(self, job_name: str, keys: list[AssetKey], shard: str | None) -> str:
        slot = min(range(self.workers.count), key=lambda k: self.slots[k])
        self.slots[slot] += 1
        tags = {WORKER_TAG: f"{self.id}-{slot}", COMMAND_TAG: self.id, DATA_ROOT_TAG: self.data_root,
                COMMAND_PID_TAG: str(os.getpid()), COMMAND_HOST_TAG: socket.gethostname()}  # fmt: skip
        run_config = self.workers.run_config(slot, self.data_root, self.resources)
        return self.submitter.submit(job_name, keys, shard, tags, run_config)

    def plan(self, wave: Wave, shards: list[str], everything: bool) -> dict[str | None, list[AssetKey]]:
        """The keys to materialize per partition: all of them (``everything``) or what Dagster finds stale."""
        partitions = shards if wave.per_shard else [None]
        return {p: (wave.keys if everything else self.submitter.stale(wave.keys, p)) for p in partitions}

    def run_wave(self, number: int, wave: Wave, shards: list[str], force: bool, training: bool | None) -> None:
        names = ", ".join(k.path[-1] for k in wave.keys)
        # Training is always asked for by the train command (its step target may have moved).
        everything = force or (not wave.per_shard and (self.ran_before or training is True))
        plan = self.plan(wave, shards, everything)
        todo = sum(bool(keys) for keys in plan.values())
        if wave.per_shard:
            self.report.skipped += sum(len(wave.keys) - len(keys) for keys in plan.values())
            self.print_line(f"Step {number}: {names} on {len(shards)} shard(s), {todo} to run")
        else:
            self.print_line(f"Step {number}: {names} (global){'' if todo else ', up to date'}")
        while True:
            own, others, labels = [], [], {}
            for shard, keys in plan.items():
                for is_training in sorted({self.graph.get(k).group_name == TRAINING_GROUP for k in keys}):
                    selected = [k for k in keys if (self.graph.get(k).group_name == TRAINING_GROUP) == is_training]
                    job_name = JOBS[(wave.per_shard, is_training)]
                    if waiting := in_flight(self.instance, job_name, shard):
                        others += waiting  # another command is materializing this: wait for it, then look again
                        continue
                    run_id = self.submit(job_name, selected, shard)
                    own.append(run_id)
                    labels[run_id] = f"{shard or 'global'} ({names})"
            ended = wait_for_runs(self.instance, own + others, self.print_line, on_poll=self.on_poll)
            self.ran_before = self.ran_before or bool(own or others)
            for run_id in own:
                if ended[run_id] == DagsterRunStatus.SUCCESS:
                    self.report.runs_ok += 1
                else:
                    self.report.runs_failed.append(f"{labels[run_id]}: run {run_id} {ended[run_id].value.lower()}")
            if not others:
                return
            plan = self.plan(wave, shards, everything=False)  # the other command's runs may have failed


def run_pipeline(defs: Definitions, instance: DagsterInstance, data_root: str, shards: list[str], workers: Workers,
                 *, force: bool = False, training: bool | None = False, config_dir: str | None = None,
                 resources: dict | None = None, print_line: Callable[[str], None] = print) -> RunReport:  # fmt: skip
    """Materialize what is missing or stale among the curation assets (``training=False``), the MVDiT assets
    (``True``) or both (None), as runs on the instance's queue; returns when they have all ended. ``resources``:
    config of further resources for every run (``{"mvdit": {...}}``: the train command's overrides)."""
    report = RunReport(shards=len(shards), reaped=reap_dead_runs(instance))
    if type(instance.run_coordinator).__name__ != "QueuedRunCoordinator":
        print_line(f"Note: the instance at {instance.root_directory} has no run queue (QueuedRunCoordinator in its "
                   "dagster.yaml): runs start as soon as they are submitted and --workers is not enforced.")
    submitter = Submitter(instance)
    try:
        with dagster_daemon(instance, config_dir) as daemon:

            next_reap = [time.monotonic() + REAP_EVERY_S]

            def on_poll() -> None:
                daemon.ensure()
                if time.monotonic() >= next_reap[0]:  # a few queries: not on every poll
                    next_reap[0] = time.monotonic() + REAP_EVERY_S
                    report.reaped += reap_dead_runs(instance)

            command = _Command(instance, submitter, defs.resolve_asset_graph(), data_root, workers, resources, report,
                               print_line, on_poll)  # fmt: skip
            for number, wave in enumerate(plan_waves(defs, training), start=1):
                command.run_wave(number, wave, shards, force, training)
                if report.runs_failed:
                    break  # later waves read what this one should have written
    finally:
        submitter.close()
    return report
