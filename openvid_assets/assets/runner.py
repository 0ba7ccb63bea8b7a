"""Drive the whole asset graph on one machine, through Dagster, for the run command.

The graph is cut into waves: a step's wave is the number of times the partitioning
changes (per shard <-> global) on the way to it from the sources. A per-shard wave
runs once per shard, a global wave once, and each run is recorded in the Dagster
instance like a run launched from the UI.

Per-shard steps are skipped make-style: a step is current for a shard when its
table exists and is newer than every table it reads. A killed run therefore just
needs running again, and global steps that find their inputs unchanged leave their
tables untouched, so nothing downstream is redone.
"""

import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, Definitions, RunsFilter

from openvid_assets.assets.manifest import MANIFEST
from openvid_assets.assets.lineage import LINEAGE
from openvid_assets.assets.selection import GLOBAL
from openvid_assets.assets.sensors import SHARD_JOB
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.assets.training import GROUP as TRAINING_GROUP
from openvid_assets.definitions import GLOBAL_JOB, TRAINING_JOB, TRAINING_SHARD_JOB
from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.files import process_alive
from openvid_assets.store.shards import SHARD_LISTS, ShardRegistry

QUIET_RUN_CONFIG = {"loggers": {"progress": {}}}
RUNNER_PID, RUNNER_HOST = "openvid/runner_pid", "openvid/runner_host"
JOBS = {(True, False): SHARD_JOB, (False, False): GLOBAL_JOB, (True, True): TRAINING_SHARD_JOB,
        (False, True): TRAINING_JOB}  # (per shard, training) -> the job that holds those assets


@dataclass
class RunReport:
    shards: int = 0
    runs_ok: int = 0
    runs_failed: list[str] = field(default_factory=list)
    skipped: int = 0
    reaped: list[str] = field(default_factory=list)  # runs of a dead earlier command, marked failed
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


@dataclass(frozen=True)
class Wave:
    per_shard: bool
    keys: list[AssetKey]


def _table(key: AssetKey) -> str:
    return key.path[-1]  # every asset writes the table named after it


def plan_waves(defs: Definitions, training: bool | None = False) -> list[Wave]:
    """Waves of the curation assets (``training=False``), of the MVDiT assets only (``True``), or of both (None)."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable
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


def stale_steps(defs: Definitions, tables: TableStore, keys: list[AssetKey], shard: str, force: bool) -> list[AssetKey]:
    """The steps of a per-shard wave that must run for this shard, in dependency order."""
    graph = defs.resolve_asset_graph()
    stale: list[AssetKey] = []
    for key in keys:
        parents = list(graph.get(key).parent_keys)
        inputs = [(_table(p), shard if graph.get(p).partitions_def == shards_partitions else GLOBAL) for p in parents]
        own = tables.modified(_table(key), shard)
        outdated = own is None or any((tables.modified(a, s) or 0) > own for a, s in inputs or [(SHARD_LISTS, shard)])
        if force or outdated or any(p in stale for p in parents):
            stale.append(key)
    return stale


def _runner_tags() -> dict[str, str]:
    return {RUNNER_PID: str(os.getpid()), RUNNER_HOST: socket.gethostname()}


def reap_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark runs of run commands on this host that died (kill -9, power loss) as failed, and give back
    the concurrency-pool slots they held, which would otherwise block every later model step."""
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
                                        tags={RUNNER_HOST: socket.gethostname()}))  # fmt: skip
    reaped = []
    for run in runs:
        pid = int(run.tags.get(RUNNER_PID, "0") or 0)
        if pid and pid != os.getpid() and not process_alive(pid):
            instance.report_run_failed(run, f"the run command (pid {pid}) died while running it; "
                                            "the next run redoes its unfinished steps")  # fmt: skip
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reaped.append(run.run_id)
    return reaped


def run_pipeline(defs: Definitions, instance: DagsterInstance, *, force: bool = False,
                 training: bool | None = False) -> RunReport:  # fmt: skip
    """Materialize the curation assets, the MVDiT assets (``training=True``) or both (None)."""
    tables = defs.resources["store"].tables()
    shards = ShardRegistry(tables).keys()
    report = RunReport(shards=len(shards))
    report.reaped = reap_dead_runs(instance)
    graph = defs.resolve_asset_graph()
    for number, wave in enumerate(plan_waves(defs, training), start=1):
        names = ", ".join(_table(k) for k in wave.keys)
        if wave.per_shard:
            plan = {s: stale_steps(defs, tables, wave.keys, s, force) for s in shards}
            todo = {s: keys for s, keys in plan.items() if keys}
            report.skipped += sum(len(wave.keys) - len(keys) for keys in plan.values())
            print(f"Step {number}: {names} on {len(shards)} shard(s), {len(todo)} to run", flush=True)
        else:
            todo = {None: wave.keys}
            print(f"Step {number}: {names} (global)", flush=True)
        for shard, keys in todo.items():
            for is_training in sorted({graph.get(k).group_name == TRAINING_GROUP for k in keys}):
                selected = [k for k in keys if (graph.get(k).group_name == TRAINING_GROUP) == is_training]
                job = defs.resolve_job_def(JOBS[(wave.per_shard, is_training)])
                result = job.execute_in_process(instance=instance, partition_key=shard, asset_selection=selected,
                                                run_config=QUIET_RUN_CONFIG, raise_on_error=False,
                                                tags=_runner_tags())  # fmt: skip
                if result.success:
                    report.runs_ok += 1
                else:
                    report.runs_failed.append(f"{shard or 'global'} ({names}): run {result.run_id}")
        if report.runs_failed:
            break  # later waves read what this one should have written
    _summarise(tables, report)
    return report


def _summarise(tables: TableStore, report: RunReport) -> None:
    if tables.shards(MANIFEST):
        report.totals = run_sql("manifest_summary", {MANIFEST: tables.scan_source(MANIFEST)}).row(0, named=True)
    if tables.exists(LINEAGE, GLOBAL):
        outcome = run_sql("lineage_summary", {"lineage": tables.scan_source(LINEAGE, [GLOBAL])})
        report.outcome = [(r["status"], r["stage"], r["videos"]) for r in outcome.iter_rows(named=True)]
