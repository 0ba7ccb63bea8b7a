"""Drive the whole asset graph on one machine, through Dagster, for the run command.

The graph is cut into waves: consecutive steps (in dependency order) that share a
partitioning. A per-shard wave runs once per shard, a global wave once, and each
run is recorded in the Dagster instance like a run launched from the UI.
"""

from dataclasses import dataclass, field
from itertools import groupby

from dagster import AssetKey, DagsterInstance, Definitions

from openvid_assets.assets.manifest import MANIFEST
from openvid_assets.assets.sensors import SHARD_JOB
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.store import run_sql
from openvid_assets.store.shards import ShardRegistry

GLOBAL_JOB = "global_pipeline"
QUIET_RUN_CONFIG = {"loggers": {"progress": {}}}


@dataclass
class RunReport:
    shards: int = 0
    runs_ok: int = 0
    runs_failed: list[str] = field(default_factory=list)
    skipped: int = 0
    totals: dict = field(default_factory=dict)
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.runs_failed

    def summary(self, seconds: float) -> str:
        t = self.totals
        lines = [
            f"Done in {seconds:.1f}s: {self.shards} shard(s), {self.runs_ok} run(s) ok, "
            f"{len(self.runs_failed)} failed, {self.skipped} step(s) already up to date.",
        ]
        if t:
            lines.append(
                f"Videos: {t['videos']} ({t['ok']} ok, {t['failed']} failed), {t['hours_ok']:.3f} h usable."
            )
        for reason, count in self.failure_reasons:
            lines.append(f"  failed x{count}: {reason}")
        for run in self.runs_failed:
            lines.append(f"  RUN FAILED: {run}")
        return "\n".join(lines)


def plan_waves(defs: Definitions) -> list[tuple[bool, list[AssetKey]]]:
    """(per_shard, asset keys) groups, in dependency order."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    per_shard = {k: graph.get(k).partitions_def == shards_partitions for k in keys}
    return [(flag, list(group)) for flag, group in groupby(keys, key=per_shard.__getitem__)]


def _table_name(key: AssetKey) -> str:
    return key.path[-1]  # every asset writes the table named after it


def run_pipeline(defs: Definitions, instance: DagsterInstance, *, force: bool = False) -> RunReport:
    store = defs.resources["store"].tables()
    shards = ShardRegistry(store).keys()
    report = RunReport(shards=len(shards))
    for step, (per_shard, keys) in enumerate(plan_waves(defs), start=1):
        names = ", ".join(_table_name(k) for k in keys)
        job = defs.resolve_job_def(SHARD_JOB if per_shard else GLOBAL_JOB)
        targets = shards if per_shard else [None]
        todo = [s for s in targets if force or s is None or not all(store.exists(_table_name(k), s) for k in keys)]
        report.skipped += len(targets) - len(todo)
        print(f"Step {step}: {names} on {len(targets) if per_shard else 'all'} shard(s), {len(todo)} to run", flush=True)
        for shard in todo:
            result = job.execute_in_process(
                instance=instance,
                partition_key=shard,
                asset_selection=keys,
                run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            if result.success:
                report.runs_ok += 1
            else:
                report.runs_failed.append(f"{shard or 'global'} ({names}): run {result.run_id}")
    manifests = store.shards(MANIFEST)
    if manifests:
        source = store.scan_source(MANIFEST, manifests)
        report.totals = run_sql("manifest_summary", {MANIFEST: source}).row(0, named=True)
        reasons = run_sql("manifest_failures", {MANIFEST: source}, {"limit": 10})
        report.failure_reasons = [(r["reason"], r["videos"]) for r in reasons.iter_rows(named=True)]
    return report
