"""Control-plane benchmark: what planning, launching, the daemons and the UI cost at N shards, with no step executed.

For each N (``--shards``, default 100,1000,10000; the docs want 100, 1,000, 10,000 and 50,000 on SQLite):

1. State: a fresh instance (SQLite in a temporary DAGSTER_HOME; ``--postgres``: also a throwaway Postgres server)
   with N shard partitions, the recipe and labels observed, and one materialization per (per-shard curation asset,
   shard) plus one per global curation asset, written parents first and tagged with each asset's current
   ``dagster/code_version``: everything is up to date. Built SQLite states are cached per N (``--cache``).
2. Nothing to do: ``plan_stale`` over every curation asset; the plan must be empty.
3. UI partition status: the asset page's GraphQL queries for one per-shard asset, in-process, after a warm-up
   (the warm-up is the cold query: it computes Dagster's cached partition status).
4. One automation tick: ``dagster.evaluate_automation_conditions`` (public API), the first tick and the next.
5. One stale shard's input: a new ``aesthetic_scores`` materialization of one shard, then ``plan_stale`` again
   (expected: ``score_thresholds`` and everything below it, 7 x N + 10 asset partitions).
6. Launching everything: ``launch_backfill`` of every curation asset over every shard (the ``dagster-graphql``
   subprocess; a trivial query the same way gives its fixed cost), then one backfill daemon iteration (in a child
   process, so that it can be stopped after ``--budget-s``: its first pass queues one run per shard).
7. One queue pass: the queued run coordinator daemon over the runs step 6 queued.

The instance's dagster.yaml is the project's, plus a tag concurrency limit of 0 on ``dagster/backfill``: every queued
run is looked at by the queue pass and none is ever launched. (``max_concurrent_runs: 0`` is accepted too, but the
queue daemon then returns before reading the queue: its pass would measure nothing.)

Memory is VmRSS read from /proc every 20 ms (this process, and the sum over its child processes: the code server,
``dagster-graphql``): the peak during a step, and the peak minus this process's RSS when the step began.
``resource.getrusage`` cannot tell steps of one process apart (its maximum only grows). SQL statements are counted
with a SQLAlchemy ``before_cursor_execute`` listener, in this process only.

    .venv/bin/python bench/bench_control_plane.py                       # SQLite, 100 / 1,000 / 10,000 shards
    .venv/bin/python bench/bench_control_plane.py --quick               # 100 / 1,000: a few minutes
    .venv/bin/python bench/bench_control_plane.py --shards 100,1000,10000,50000 --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import logging
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench._report import machine_facts, markdown

REPO = Path(__file__).resolve().parents[1]

STATE_FORMAT = 1  # bump when the way states are built changes: cached states are rebuilt
DATA_VERSION_TAG = "dagster/data_version"
BLOCK_ALL = [{"key": "dagster/backfill", "limit": 0}]  # every backfill run stays queued
UI_ASSET = "clips"  # a per-shard asset whose partition status the UI shows
STALE_ASSET, STALE_CHILD = "aesthetic_scores", "score_thresholds"
BATCH = 5000  # events per write
EXPECT = {
    "nothing to do (plan_stale)": 30.0,
    "launching everything (GraphQL)": 120.0,
    "daemon tick": 60.0,
    "memory": 2048.0,
}  # at 50,000 shards on SQLite; seconds, MiB


# -- measuring ---------------------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return 0.0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


class Sampler:
    """Peak VmRSS of this process and of the sum of its descendants, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.start = self.peak_self = self.peak_children = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        self.peak_self = max(self.peak_self, _rss_mib(os.getpid()))
        self.peak_children = max(self.peak_children, sum(_rss_mib(p) for p in _descendants(os.getpid())))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self.start = self.peak_self = _rss_mib(os.getpid())
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class SqlCounter:
    """SQL statements executed by this process (every SQLAlchemy engine: Dagster's SQLite storage makes one per
    connection)."""

    def __init__(self):
        self.count = 0

    def _on_execute(self, *args, **kwargs) -> None:
        self.count += 1

    def __enter__(self) -> SqlCounter:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.remove(Engine, "before_cursor_execute", self._on_execute)


@dataclass
class Measure:
    seconds: float = 0.0
    rss_delta: float = 0.0  # MiB, this process: peak - at start
    rss_peak: float = 0.0  # MiB, this process
    children_peak: float = 0.0  # MiB, all child processes together
    sql: int | None = None
    extra: dict = field(default_factory=dict)


@contextlib.contextmanager
def measure(profile_to: Path | None = None) -> Iterator[Measure]:
    result = Measure()
    profiler = cProfile.Profile() if profile_to else None
    with Sampler() as sampler, SqlCounter() as sql:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            yield result
        finally:
            if profiler:
                profiler.disable()
            result.seconds = time.perf_counter() - started
    result.rss_delta, result.rss_peak = sampler.peak_self - sampler.start, sampler.peak_self
    result.children_peak, result.sql = sampler.peak_children, sql.count
    if profiler:
        profiler.dump_stats(str(profile_to))
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(f"\n--- profile {profile_to.name} (cumulative, top 30) ---\n{out.getvalue()}", flush=True)


# -- the instance's state ----------------------------------------------------------------------------------


def home_config(storage: dict | None = None) -> dict:
    """The project's dagster.yaml minus its folder settings (Dagster's default SQLite layout under DAGSTER_HOME, as
    the fault harness makes it), with every backfill run held in the queue."""
    from openvid_assets_testing.harness import instance_config

    config = instance_config()
    config.setdefault("concurrency", {}).setdefault("runs", {})["tag_concurrency_limits"] = BLOCK_ALL
    if storage:
        config["storage"] = storage
    return config


def write_home(home: Path, storage: dict | None = None) -> Path:
    import yaml

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(home_config(storage)))
    return home


def shard_keys(n: int) -> list[str]:
    return [f"shard-{i:05d}" for i in range(n)]


def curation_keys(defs) -> list:
    from openvid_assets.definitions import CURATION

    graph = defs.resolve_asset_graph()
    wanted = {k for a in CURATION for k in a.keys}
    return [k for k in graph.toposorted_asset_keys if k in wanted]


def fingerprint(defs) -> str:
    """What a cached state depends on: the curation assets, their code versions and partitioning, Dagster."""
    import dagster

    from openvid_assets.assets.shards import shards_partitions

    graph = defs.resolve_asset_graph()
    parts = [str(STATE_FORMAT), dagster.__version__]
    parts += [
        f"{k.to_user_string()}:{graph.get(k).code_version}:{graph.get(k).partitions_def == shards_partitions}"
        for k in curation_keys(defs)
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@contextlib.contextmanager
def captured_events(instance) -> Iterator[list]:
    """The EventLogEntry objects Dagster's own ``report_runless_asset_event`` builds, kept instead of stored one at
    a time (internals: ``handle_new_event`` is where DagsterInstance hands an event to its storage)."""
    kept: list = []
    instance.handle_new_event = lambda event, batch_metadata=None: kept.append(event)
    try:
        yield kept
    finally:
        del instance.handle_new_event


def store_materializations(instance, events: list) -> None:
    """Store runless materialization events in one transaction per storage, as Dagster's ``store_event`` stores each.

    Postgres: ``PostgresEventLogStorage.store_event_batch``, Dagster's own batched write (one INSERT ... RETURNING,
    the indexed tags, the asset's row from the last event). SQLite: its ``store_event_batch`` falls back to one
    ``store_event`` per event (~8 ms each: a new engine and transaction per write), so this does what
    ``SqliteEventLogStorage.store_event`` does, batched, with the storage's own (internal) row builders: the event
    row in the run's shard (run id "" here) and in the index shard, the index shard's ``asset_event_tags`` rows,
    and the ``asset_keys`` row updated from the last event (as Postgres' batch does)."""
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
    from sqlalchemy import func, select

    storage = instance.event_log_storage
    assert all(e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION for e in events)
    if not isinstance(storage, SqliteEventLogStorage):
        storage.store_event_batch(events)
        return
    rows = [storage._event_to_row(e) for e in events]  # internals: the row store_event inserts
    run_ids = {e.run_id for e in events}
    assert len(run_ids) == 1, "one run's events per batch"
    with storage.run_connection(run_ids.pop()) as conn:
        conn.execute(SqlEventLogStorageTable.insert(), rows)
    with storage.index_transaction() as conn:
        first = (conn.execute(select(func.max(SqlEventLogStorageTable.c.id))).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
        conn.execute(SqlEventLogStorageTable.insert(), [{**r, "id": i} for r, i in zip(rows, ids)])
        storage._store_asset_event_tags(conn, events, ids)
        storage._store_asset_event(conn, events[-1], ids[-1])


def materialize_records(instance, defs, shards: list[str], keys: list | None = None, print_line=print) -> int:
    """One runless materialization per (per-shard asset, shard) and per global asset, parents first, tagged with
    the asset's current code version and a data version; returns how many."""
    from dagster import AssetMaterialization

    from openvid_assets.assets.plan import CODE_VERSION_TAG
    from openvid_assets.assets.shards import shards_partitions

    graph = defs.resolve_asset_graph()
    written, started = 0, time.perf_counter()
    for key in keys or curation_keys(defs):
        node = graph.get(key)
        partitions = shards if node.partitions_def == shards_partitions else [None]
        for start in range(0, len(partitions), BATCH):
            with captured_events(instance) as events:
                for partition in partitions[start : start + BATCH]:
                    version = hashlib.sha256(f"{key.to_user_string()}/{partition}".encode()).hexdigest()
                    instance.report_runless_asset_event(
                        AssetMaterialization(
                            asset_key=key,
                            partition=partition,
                            tags={CODE_VERSION_TAG: node.code_version, DATA_VERSION_TAG: version},
                        )
                    )
            store_materializations(instance, events)
            written += len(events)
        print_line(
            f"    {key.to_user_string()}: {len(partitions)} record(s), {written} so far, "
            f"{time.perf_counter() - started:.0f}s"
        )
    return written


def build_state(instance, defs, data_root: Path, n: int, print_line=print) -> int:
    """N shards registered, the recipe and labels observed, every curation asset partition materialized."""
    from openvid_assets.assets.labels import record_labels
    from openvid_assets.assets.recipe import record_recipe
    from openvid_assets.assets.shards import register_partitions
    from openvid_assets.store import TableStore
    from openvid_assets_testing.pipeline import store_recipe

    register_partitions(instance, shard_keys(n))
    record_recipe(instance, store_recipe(str(data_root)))
    record_labels(instance, TableStore(str(data_root)))
    return materialize_records(instance, defs, shard_keys(n), print_line=print_line)


def check_records(instance, defs, n: int) -> None:
    """The records read back through the instance's public API as the plan and the UI read them."""
    from dagster import AssetRecordsFilter, DagsterEventType

    from openvid_assets.assets.plan import CODE_VERSION_TAG
    from openvid_assets.assets.shards import shards_partitions

    graph, shards = defs.resolve_asset_graph(), set(shard_keys(n))
    assert set(instance.get_dynamic_partitions(shards_partitions.name)) == shards
    previous_max = -1
    for key in curation_keys(defs):
        node = graph.get(key)
        latest = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records[0]
        tags = latest.asset_materialization.tags
        assert tags[CODE_VERSION_TAG] == node.code_version, (key, tags)
        indexed = instance.get_event_tags_for_asset(key, filter_event_id=latest.storage_id)  # asset_event_tags
        assert indexed == [{DATA_VERSION_TAG: tags[DATA_VERSION_TAG]}], (key, indexed)
        entry = instance.get_asset_records([key])[0].asset_entry
        assert entry.last_materialization_record.storage_id == latest.storage_id, key  # asset_keys
        if node.partitions_def == shards_partitions:
            ids = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
            assert set(ids) == shards, key
            assert instance.get_materialized_partitions(key) == shards, key
            assert min(ids.values()) > previous_max, key  # parents first
            previous_max = max(ids.values())
        else:
            assert latest.storage_id > previous_max, key
            previous_max = latest.storage_id


def check_writer(defs, work: Path) -> None:
    """The batched writer stores exactly what Dagster's one-event-at-a-time path stores (ids and timestamps aside):
    a few assets x shards written both ways into two scratch SQLite instances, their tables compared."""
    import sqlite3

    from dagster import DagsterInstance

    keys, shards = curation_keys(defs)[:3], shard_keys(4)

    def normalized(home: Path) -> dict:
        tables = {}
        for shard in ("index", ""):
            db = sqlite3.connect(home / "history" / "runs" / f"{shard}.db")
            rows = []
            for event, kind, key, partition in db.execute(
                "SELECT event, dagster_event_type, asset_key, partition FROM event_logs "
                "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id"
            ):
                event = json.loads(event)
                event.pop("timestamp")
                rows.append((json.dumps(event, sort_keys=True), kind, key, partition))
            tables[f"event_logs {shard or 'run shard'}"] = rows
            if shard == "index":
                tables["asset_event_tags"] = db.execute(
                    "SELECT asset_key, key, value FROM asset_event_tags ORDER BY id"
                ).fetchall()
                assets = []
                for key, last, run in db.execute(
                    "SELECT asset_key, last_materialization, last_run_id FROM asset_keys "
                    "WHERE last_materialization IS NOT NULL ORDER BY asset_key"
                ):
                    record = json.loads(last)
                    record.pop("storage_id")
                    record["event_log_entry"].pop("timestamp")
                    assets.append((key, json.dumps(record, sort_keys=True), run))
                tables["asset_keys"] = assets
            db.close()
        return tables

    homes = []
    for fast in (False, True):
        home = write_home(work / f"writer_{'batched' if fast else 'dagster'}")
        with DagsterInstance.from_config(str(home)) as instance:
            if fast:
                materialize_records(instance, defs, shards, keys, print_line=lambda line: None)
            else:
                from dagster import AssetMaterialization

                from openvid_assets.assets.plan import CODE_VERSION_TAG
                from openvid_assets.assets.shards import shards_partitions

                graph = defs.resolve_asset_graph()
                for key in keys:
                    node = graph.get(key)
                    for partition in shards if node.partitions_def == shards_partitions else [None]:
                        version = hashlib.sha256(f"{key.to_user_string()}/{partition}".encode()).hexdigest()
                        instance.report_runless_asset_event(
                            AssetMaterialization(
                                asset_key=key,
                                partition=partition,
                                tags={CODE_VERSION_TAG: node.code_version, DATA_VERSION_TAG: version},
                            )
                        )
        homes.append(normalized(home))
    for table in homes[0]:
        assert homes[0][table] == homes[1][table], f"batched writer differs from Dagster's in {table}"
        assert homes[0][table], f"nothing written to {table}"


def cached_sqlite_state(defs, n: int, cache: Path, print_line=print) -> tuple[Path, float | None]:
    """The cached folder holding ``home`` (a built DAGSTER_HOME) and ``data`` (its data root) for N shards; builds
    it if missing. Returns it and the build time (None: it was cached)."""
    from dagster import DagsterInstance

    target = cache / f"sqlite-{n}-{fingerprint(defs)}"
    if (target / "complete").exists():
        return target, None
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"building-{n}-", dir=cache))
    print_line(f"  building the SQLite state for {n} shards in {building}")
    started = time.perf_counter()
    try:
        with DagsterInstance.from_config(str(write_home(building / "home"))) as instance:
            written = build_state(instance, defs, building / "data", n, print_line)
            check_records(instance, defs, n)
        seconds = time.perf_counter() - started
        (building / "complete").write_text(json.dumps({"records": written, "build_s": round(seconds, 1)}))
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return target, seconds


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# -- the steps ---------------------------------------------------------------------------------------------


def workspace_context(instance):
    """Dagster's workspace for workspace.yaml, as the daemon and the webserver load it (internals: there is no
    public way to run one daemon pass or a GraphQL query in this process). It starts the code server."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    from openvid_assets.assets.engine import WORKSPACE

    return WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)]))


UI_STATS = """query { assetNodes(assetKeys: [{path: ["%s"]}]) {
  partitionStats { numMaterialized numPartitions numFailed numMaterializing } } }"""
UI_STATUSES = """query { assetNodes(assetKeys: [{path: ["%s"]}]) { assetPartitionStatuses {
  __typename ... on DefaultPartitionStatuses { materializedPartitions failedPartitions unmaterializedPartitions
  materializingPartitions } } } }"""


def graphql_in_process(context, document: str) -> dict:
    from dagster_graphql.test.utils import execute_dagster_graphql  # internals: Dagster's own test helper

    result = execute_dagster_graphql(context.create_request_context(), document)
    if result.errors:
        raise RuntimeError(f"GraphQL errors: {result.errors}")
    return result.data


def run_size(
    n: int, label: str, instance, home: Path, data_root: Path, defs, args, out: dict, print_line=print
) -> None:
    """Steps 2-7 on an instance holding the up-to-date state of ``n`` shards, into ``out`` ({measure: Measure}) as
    they are measured."""
    from dagster import AssetKey, AssetMaterialization, DagsterRunStatus, RunsFilter, evaluate_automation_conditions
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
    from dagster._utils.error import SerializableErrorInfo

    from openvid_assets.assets.engine import COMMAND_TAG, DATA_ROOT_TAG, Workers, execute_graphql, launch_backfill
    from openvid_assets.assets.plan import CODE_VERSION_TAG, plan_stale
    from openvid_assets.assets.shards import shards_partitions

    graph, keys = defs.resolve_asset_graph(), curation_keys(defs)
    shards = sorted(instance.get_dynamic_partitions(shards_partitions.name))
    assert len(shards) == n
    profile = (lambda name: Path(args.profile) / f"{label}-{n}-{name}.prof") if args.profile else (lambda name: None)

    def step(name: str) -> None:
        print_line(
            f"  [{label} {n}] {name}: {out[name].seconds:.2f}s, +{out[name].rss_delta:.0f} MiB "
            f"(peak {out[name].rss_peak:.0f}, children {out[name].children_peak:.0f}), {out[name].sql} SQL "
            f"{out[name].extra or ''}"
        )

    # 2. Nothing to do.
    with measure(profile("plan")) as m:
        plan = plan_stale(instance, graph, keys, shards, shards_partitions)
    planned = {k.to_user_string(): len(v) for k, v in plan.partitions.items() if v}
    m.extra = {"planned": sum(planned.values())}
    out["plan_stale, nothing to do"] = m
    step("plan_stale, nothing to do")
    if not plan.empty:
        raise AssertionError(f"plan_stale planned work on the up-to-date state: {planned}")

    with workspace_context(instance) as context:
        # 3. UI partition status, after one warm-up (the first query fills Dagster's cached partition status).
        for name, document in (("partitionStats", UI_STATS), ("assetPartitionStatuses", UI_STATUSES)):
            with measure() as m:
                data = graphql_in_process(context, document % UI_ASSET)
            cold = m
            with measure(profile(f"ui-{name}")) as m:
                data = graphql_in_process(context, document % UI_ASSET)
            node = data["assetNodes"][0]
            if name == "partitionStats":
                stats = node["partitionStats"]
                assert stats["numMaterialized"] == n and stats["numPartitions"] == n, stats
            m.extra = {"cold_s": round(cold.seconds, 2)}
            out[f"UI {name} ({UI_ASSET})"] = m
            step(f"UI {name} ({UI_ASSET})")

        # 4. One automation tick (public API), the first (no cursor) and the next (its cursor). After the UI queries:
        # a tick fills the partition status cache that the UI's first query would otherwise compute.
        cursor = None
        for tick in () if args.skip_automation else ("first", "second"):
            with measure(profile(f"automation-{tick}")) as m:
                result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            cursor = result.cursor
            m.extra = {"requested": result.total_requested}
            out[f"automation tick ({tick})"] = m
            step(f"automation tick ({tick})")

        # 5. One stale shard's input.
        shard = shards[len(shards) // 2]
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key=AssetKey(STALE_ASSET),
                partition=shard,
                tags={CODE_VERSION_TAG: graph.get(AssetKey(STALE_ASSET)).code_version, DATA_VERSION_TAG: "changed"},
            )
        )
        with measure(profile("plan-stale")) as m:
            plan = plan_stale(instance, graph, keys, shards, shards_partitions)
        planned = {k: len(v) for k, v in plan.partitions.items() if v}
        per_shard = [k for k in planned if plan.per_shard[k]]
        expected_keys = {
            STALE_CHILD,
            "near_duplicates",
            "suitability_model",
            "suitability_scores",
            "quality_candidates",
            "clarity_scores",
            "clarity_threshold",
            "selected_videos",
            "clips",
            "captions",
            "previews",
            "caption_scores",
            "lineage",
            "curated_dataset",
            "hd_subset",
            "quality_tiers",
            "dataset_card",
        }
        ok = (
            {k.to_user_string() for k in planned} == expected_keys
            and all(planned[k] == n for k in per_shard)
            and AssetKey(STALE_CHILD) in planned
        )
        m.extra = {"planned": sum(planned.values()), "expected": 7 * n + 10, "plan_ok": ok}
        out["plan_stale, one stale shard"] = m
        step("plan_stale, one stale shard")
        if not ok:
            print_line(f"  PLAN MISMATCH: { ({k.to_user_string(): c for k, c in planned.items()}) }")

        # 6. Launching everything: the GraphQL call (a dagster-graphql process), and a trivial query the same way.
        run_config = Workers(2, 0, 1).run_config(str(data_root))
        tags = {COMMAND_TAG: "bench", DATA_ROOT_TAG: str(data_root)}
        with measure() as m:
            launch_backfill(keys, shards, run_config, tags, f"bench {n}", str(home), workers=2)
        out["launch_backfill (dagster-graphql)"] = m
        step("launch_backfill (dagster-graphql)")
        with measure() as m:
            execute_graphql("query { version }", str(home))
        out["trivial query (dagster-graphql)"] = m
        step("trivial query (dagster-graphql)")

        # One backfill daemon iteration (internals), in a child process: it runs as one asyncio call that yields
        # only at its end, so only a process can be stopped at --budget-s.
        m = backfill_iteration(home, instance, args.budget_s, print_line)
        out["backfill daemon iteration"] = m
        step("backfill daemon iteration")
        if m.extra["first_run_queued_s"] is not None:  # derived: no memory or SQL of their own
            out["backfill: time to the first queued run"] = Measure(m.extra["first_run_queued_s"], sql=None)
        out["backfill: time per queued run"] = Measure(m.extra["s_per_run"], sql=None)
        for error in m.extra.pop("error_text", [])[:3]:
            print_line(f"  BACKFILL DAEMON ERROR:\n{error}")
        errors: list[str] = []

        # 7. One queue pass over the queued runs (internals), none launched.
        with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon, measure(profile("queue-pass")) as m:
            for item in daemon.run_iteration(context):
                if isinstance(item, SerializableErrorInfo):
                    errors.append(item.to_string())
        launched = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
        m.extra = {
            "runs_queued": instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED])),
            "launched": launched,
        }
        out["queue pass"] = m
        step("queue pass")


def backfill_iteration(home: Path, instance, budget_s: float, print_line=print) -> Measure:
    """One backfill daemon iteration in a child process (``--backfill-iteration``), timed from when its workspace is
    loaded; the queue is polled meanwhile for when the first run appears. Killed after ``budget_s``."""
    import signal
    import subprocess

    from dagster import DagsterRunStatus, RunsFilter

    def queued() -> int:
        return instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))

    result = Measure()
    report = Path(tempfile.mkstemp(prefix="backfill_iteration_", suffix=".json")[1])
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--backfill-iteration", str(home), "--report", str(report)],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        start_new_session=True,
    )
    first, stopped, began = None, False, None
    with Sampler() as sampler:
        while child.poll() is None:
            time.sleep(0.5)
            if began is None:
                if report.read_text().strip():
                    began = time.perf_counter()  # the child has loaded its workspace
                continue
            if first is None and queued():
                first = time.perf_counter() - began
            if time.perf_counter() - began > budget_s:
                stopped = True
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
    ended = time.perf_counter()
    lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    report.unlink()
    done = lines[-1] if lines and "seconds" in lines[-1] else None
    result.seconds = done["seconds"] if done else ended - (began or ended)
    result.sql = done["sql"] if done else None
    # The child's own peak (getrusage: one process, one step); unknown when it was stopped.
    result.rss_peak = done["maxrss_mib"] if done else float("nan")
    result.rss_delta = result.rss_peak - (lines[0]["rss_mib"] if lines else 0.0)
    result.children_peak = sampler.peak_children  # the child and its code server together
    runs = queued()
    result.extra = {
        "runs_queued": runs,
        "first_run_queued_s": first and round(first, 1),
        "s_per_run": round(result.seconds / max(runs, 1), 3),
        "stopped_at_budget": stopped,
        "backfill_status": instance.get_backfills(limit=1)[0].status.value,
        "errors": len(done["errors"]) if done else None,
    }
    if done and done["errors"]:
        result.extra["error_text"] = done["errors"]
    if child.returncode not in (0, None) and not stopped:
        print_line(f"  backfill iteration process exited {child.returncode}")
    return result


def backfill_iteration_child(home: str, report: str) -> None:
    """The child of ``backfill_iteration``: load the workspace, say so, run one iteration, report."""
    import resource

    from dagster import DagsterInstance
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._utils.error import SerializableErrorInfo

    logging.getLogger("dagster").setLevel(logging.WARNING)
    with DagsterInstance.from_config(home) as instance, workspace_context(instance) as context:
        context.create_request_context()  # the code location is loaded
        with open(report, "a") as f:
            f.write(json.dumps({"rss_mib": _rss_mib(os.getpid())}) + "\n")
        errors = []
        with SqlCounter() as sql:
            started = time.perf_counter()
            for item in execute_backfill_iteration(context, logging.getLogger("bench.backfill")):
                if isinstance(item, SerializableErrorInfo):
                    errors.append(item.to_string())
            seconds = time.perf_counter() - started
        with open(report, "a") as f:
            f.write(
                json.dumps(
                    {
                        "seconds": seconds,
                        "sql": sql.count,
                        "errors": errors,
                        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    }
                )
                + "\n"
            )


# -- the table ---------------------------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def tables(results: list[tuple[str, int, dict]]) -> str:
    names = list(dict.fromkeys(name for _, _, r in results for name in r))
    columns = [f"{label} {n:,}" for label, n, _ in results]
    # Slopes between consecutive N of the same backend: ms per 1,000 shards.
    pairs = [
        (i, j)
        for i in range(len(results))
        for j in range(i + 1, len(results))
        if results[i][0] == results[j][0]
        and j == next(k for k in range(i + 1, len(results)) if results[k][0] == results[i][0])
    ]
    slope_cols = [f"{results[i][0]} {results[i][1]:,}→{results[j][1]:,}: ms / 1,000 shards" for i, j in pairs]
    rows = []
    for name in names:
        cells = [fmt_s(r[2][name].seconds) if name in r[2] else "-" for r in results]
        slopes = []
        for i, j in pairs:
            a, b = results[i], results[j]
            stopped = any(r[2][name].extra.get("stopped_at_budget") for r in (a, b) if name in r[2])
            if name in a[2] and name in b[2] and not stopped:
                slopes.append(f"{(b[2][name].seconds - a[2][name].seconds) * 1000 / ((b[1] - a[1]) / 1000):.1f}")
            else:
                slopes.append("-")
        rows.append([name, *cells, *slopes])
    text = "### Time\n\n" + markdown(["measure", *columns, *slope_cols], rows)

    def mib(value: float) -> str:
        return "?" if value != value else f"{value:.0f}"  # NaN: a child process stopped before it could say

    rows = [
        [
            name,
            *[
                (
                    f"+{mib(r[2][name].rss_delta)} / {mib(r[2][name].rss_peak)} / {mib(r[2][name].children_peak)}"
                    if name in r[2]
                    else "-"
                )
                for r in results
            ],
        ]
        for name in names
        if not name.startswith("backfill: ")
    ]
    text += (
        "\n\n### Memory (MiB: peak RSS increase of this process / its peak RSS / peak RSS of its child "
        "processes together; VmRSS sampled every 20 ms)\n\n" + markdown(["measure", *columns], rows)
    )
    rows = [
        [
            name,
            *[
                (
                    f"{'?' if r[2][name].sql is None else r[2][name].sql}"
                    + (f"; {json.dumps(r[2][name].extra)}" if r[2][name].extra else "")
                    if name in r[2]
                    else "-"
                )
                for r in results
            ],
        ]
        for name in names
        if not name.startswith("backfill: ")
    ]
    text += "\n\n### SQL statements in this process, and counts\n\n" + markdown(["measure", *columns], rows)
    return text


def shards_per_run() -> int:
    from openvid_assets import settings

    return settings.shards_per_run()


def expectations(results: list[tuple[str, int, dict]]) -> str:
    sqlite = [(n, r) for label, n, r in results if label == "SQLite"]
    lines = [
        "### Expectations at 50,000 shards on SQLite",
        "",
        "nothing to do <= 30 s, launching everything <= 2 min, a daemon tick <= 60 s, memory <= 2 GiB anywhere.",
    ]
    if not sqlite:
        return "\n".join(lines)
    (n1, r1), (n2, r2) = (sqlite[-2] if len(sqlite) > 1 else sqlite[-1]), sqlite[-1]

    def at_50k(name: str) -> tuple[float, str]:
        if name not in r2:
            return float("nan"), "not measured"
        if n2 == 50_000 or n1 == n2 or name not in r1:
            return r2[name].seconds, f"measured at {n2:,}"
        slope = (r2[name].seconds - r1[name].seconds) / (n2 - n1)
        # Never below what was measured: a negative slope between two sizes is noise.
        return max(
            r2[name].seconds, r2[name].seconds + slope * (50_000 - n2)
        ), f"extrapolated linearly from {n1:,} and {n2:,}"

    checks = [
        ("nothing to do (plan_stale)", "plan_stale, nothing to do"),
        ("launching everything (GraphQL)", "launch_backfill (dagster-graphql)"),
        ("daemon tick", "backfill daemon iteration"),
        ("daemon tick", "queue pass"),
        ("daemon tick", "automation tick (second)"),
    ]
    lines.append("")
    for target, name in checks:
        value, how = at_50k(name)
        per_run = r2[name].extra.get("s_per_run") if name in r2 else None
        if per_run:  # its first pass queues a run per OPENVID_SHARDS_PER_RUN shards: at 50,000, the rate measured
            runs = 50_000 // shards_per_run() + (50_000 % shards_per_run() > 0)
            value, how = per_run * runs, f"{per_run:.3f} s per queued run at {n2:,} x {runs:,} runs"
            first = r2[name].extra.get("first_run_queued_s")
            how += f"; the first run was queued after {first} s" if first is not None else ""

        verdict = "PASS" if value <= EXPECT[target] else "FAIL" if value > EXPECT[target] else "?"
        lines.append(f"- {name}: {value:.1f} s ({how}; target {EXPECT[target]:.0f} s): {verdict}")
    peak = max(max(m.rss_peak if m.rss_peak == m.rss_peak else 0.0, m.children_peak) for m in r2.values())
    lines.append(
        f"- memory: peak {peak:.0f} MiB in one process or its children at {n2:,} "
        f"(target {EXPECT['memory']:.0f} MiB): {'PASS' if peak <= EXPECT['memory'] else 'FAIL'}"
    )
    if any(r2[name].extra.get("stopped_at_budget") for name in r2):
        lines.append("- the backfill daemon iteration was stopped at --budget-s: its time is a lower bound")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------------


def run_sqlite(n: int, defs, args, work: Path, out: dict) -> str:
    from dagster import DagsterInstance

    cached, built = cached_sqlite_state(defs, n, Path(args.cache).expanduser())
    note = (
        f"built in {built:.0f}s"
        if built is not None
        else f"cached (built in {json.loads((cached / 'complete').read_text())['build_s']}s)"
    )
    print(f"  SQLite {n}: state {note}, {folder_mib(cached):.0f} MiB", flush=True)
    copy = work / f"sqlite-{n}"
    started = time.perf_counter()
    shutil.copytree(cached, copy)
    write_home(copy / "home")  # this run's dagster.yaml, whatever the cached one said
    print(f"  SQLite {n}: copied to {copy} in {time.perf_counter() - started:.0f}s", flush=True)
    os.environ["DAGSTER_HOME"] = str(copy / "home")
    try:
        with DagsterInstance.from_config(str(copy / "home")) as instance:
            print(f"  SQLite {n}: measuring", flush=True)
            run_size(n, "SQLite", instance, copy / "home", copy / "data", defs, args, out)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return note


def run_postgres(sizes: list[int], defs, args, work: Path, results: list, notes: list, failures: list) -> None:
    from dagster import DagsterInstance

    from openvid_assets_testing.pgserver import SCHEME, PostgresServer, pg_bin_dir

    server = PostgresServer(pg_bin_dir())
    try:
        server.start()
        for n in sizes:
            db, out = f"bench_{n}", {}
            server.execute(f"CREATE DATABASE {db}")
            storage = {"postgres": {"postgres_db": {**server.params(db).postgres_db(), "scheme": SCHEME}}}
            home = write_home(work / f"pg-{n}" / "home", storage)
            os.environ["DAGSTER_HOME"] = str(home)
            try:
                with DagsterInstance.from_config(str(home)) as instance:
                    started = time.perf_counter()
                    build_state(instance, defs, work / f"pg-{n}" / "data", n)
                    check_records(instance, defs, n)
                    note = f"built in {time.perf_counter() - started:.0f}s (not cached: a throwaway server)"
                    print(f"  Postgres {n}: state {note}", flush=True)
                    notes.append(f"Postgres {n:,}: state {note}")
                    run_size(n, "Postgres", instance, home, work / f"pg-{n}" / "data", defs, args, out)
            except Exception:  # noqa: BLE001 - reported, the other sizes go on
                failures.append(f"Postgres {n:,}:\n{traceback.format_exc()}")
                print(failures[-1], flush=True)
            if out:
                results.append(("Postgres", n, out))
            server.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", default="100,1000,10000", help="comma-separated N (SQLite)")
    parser.add_argument("--quick", action="store_true", help="N = 100,1000 only")
    parser.add_argument("--postgres", action="store_true", help="also N = 1,000 and 10,000 on a throwaway Postgres")
    parser.add_argument("--pg-shards", default="1000,10000")
    parser.add_argument("--cache", default="~/.cache/openvid-bench", help="where built SQLite states are kept")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=900.0,
        help="stop the backfill daemon iteration after this long (its time is then a lower bound)",
    )
    parser.add_argument(
        "--profile", help="write cProfile stats of the in-process steps into this folder and print them"
    )
    parser.add_argument("--json", help="also write the numbers here")
    parser.add_argument(
        "--shards-per-run",
        type=int,
        help="OPENVID_SHARDS_PER_RUN for the code location (default: the environment's, else 1)",
    )
    parser.add_argument(
        "--skip-automation", action="store_true", help="leave out the automation ticks (minutes at 50,000)"
    )
    parser.add_argument("--backfill-iteration", help=argparse.SUPPRESS)  # the child of backfill_iteration
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.shards_per_run:  # before the definitions load: it is the per-shard steps' backfill policy
        os.environ["OPENVID_SHARDS_PER_RUN"] = str(args.shards_per_run)
    if args.backfill_iteration:
        backfill_iteration_child(args.backfill_iteration, args.report)
        return
    sizes = [100, 1000] if args.quick else [int(x) for x in args.shards.split(",") if x.strip()]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    import dagster
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    facts = machine_facts(dagster=dagster.__version__, shards_per_run=str(shards_per_run()))
    for key, value in facts.items():
        print(f"{key}: {value}", flush=True)
    from openvid_assets.definitions import defs

    begun = time.perf_counter()
    results: list[tuple[str, int, dict]] = []
    notes: list[str] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_control_plane_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        check_writer(defs, work)
        print(
            f"batched writer stores what report_runless_asset_event stores ({time.perf_counter() - started:.1f}s)",
            flush=True,
        )
        for n in sizes:
            out: dict[str, Measure] = {}
            started = time.perf_counter()
            try:
                notes.append(f"SQLite {n:,}: state {run_sqlite(n, defs, args, work, out)}")
            except Exception:  # noqa: BLE001 - reported, the other sizes go on
                failures.append(f"SQLite {n:,}:\n{traceback.format_exc()}")
                print(failures[-1], flush=True)
            notes.append(f"SQLite {n:,}: measured in {time.perf_counter() - started:.0f}s")
            if out:
                results.append(("SQLite", n, out))
        if args.postgres:
            run_postgres([int(x) for x in args.pg_shards.split(",")], defs, args, work, results, notes, failures)

    print("\n## Control plane at N shards\n")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    if results:
        print("\n" + tables(results))
    print("\n" + "\n".join(f"- {line}" for line in notes))
    for failure in failures:
        print(f"\nFAILED: {failure}")
    print("\n" + expectations(results))
    print(f"\nTotal: {time.perf_counter() - begun:.0f}s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "backend": label,
                        "shards": n,
                        **{
                            name: {
                                "s": round(m.seconds, 3),
                                "rss_delta_mib": mib(m.rss_delta),
                                "rss_peak_mib": mib(m.rss_peak),
                                "children_peak_mib": mib(m.children_peak),
                                "sql": m.sql,
                                **m.extra,
                            }
                            for name, m in r.items()
                        },
                    }
                    for label, n, r in results
                ],
                indent=2,
            )
        )


def mib(value: float) -> int | None:
    return None if value != value else round(value)


if __name__ == "__main__":
    main()
