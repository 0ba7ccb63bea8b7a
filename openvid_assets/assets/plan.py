"""What is missing or stale, for every shard at once, from the instance's own records.

Dagster's per-partition stale-status resolver (what the UI's "materialize stale" asks) costs about
60 SQL statements per partition: hours at 50,000 shards. This reads the same records in bulk, a
fixed number of queries per asset whatever the number of shards:

- one query per asset for the latest materialization's storage id of every partition
  (``DagsterInstance.get_latest_storage_id_by_partition``);
- one for each observed source (recipe sections, labels): its latest observation, which is
  recorded only when its data version changes (``assets/recipe.py``);
- a binary search of about 25 single-record reads per asset for where its current
  ``code_version`` began.

An asset partition is planned when it is missing, was made by an older ``code_version``, or
anything it reads was recorded after it (a newer materialization of a parent partition, any
shard's for a global step, or a newer recipe section); and then everything below what is
planned, as the run will rewrite it. A global step is therefore redone whenever any shard's
input to it changed, whoever re-materialized it, at any number of shards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

CODE_VERSION_TAG = "dagster/code_version"  # the tag Dagster writes on every materialization of a versioned asset
NEVER = -1  # storage id of what was never recorded


@dataclass(frozen=True)
class Plan:
    """Per asset: the shard keys to materialize (per-shard assets) or ``{None}`` (a global asset to redo)."""

    partitions: dict[AssetKey, set[str | None]]
    per_shard: dict[AssetKey, bool]
    after_global: dict[AssetKey, set[AssetKey]]  # the global assets among each one's ancestors (in ``keys``)
    parents: dict[AssetKey, set[AssetKey]]

    @property
    def empty(self) -> bool:
        return not any(self.partitions.values())

    def count(self, key: AssetKey) -> int:
        return len(self.partitions.get(key, ()))


def _latest_record(instance: DagsterInstance, key: AssetKey, before: int | None = None):
    result = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, before_storage_id=before), limit=1, ascending=False
    )
    return result.records[0] if result.records else None


def _code_version(record) -> str | None:
    return (record.asset_materialization.tags or {}).get(CODE_VERSION_TAG) if record else None


def current_code_since(instance: DagsterInstance, key: AssetKey, code_version: str | None, oldest: int) -> int:
    """The storage id from which the asset's materializations carry ``code_version``: partitions recorded earlier
    were made by other code. Binary search over storage ids (a code version, once current, stays so until the next
    change); ``oldest`` is the smallest storage id of interest."""
    latest = _latest_record(instance, key)
    if latest is None:
        return NEVER
    if _code_version(latest) != code_version:
        return latest.storage_id + 1  # nothing was made by the current code yet
    low, high = oldest - 1, latest.storage_id  # invariant: high is current, everything <= low is not
    while high - low > 1:
        middle = (low + high) // 2
        record = _latest_record(instance, key, before=middle + 1)  # the last one at or before middle
        if record is not None and _code_version(record) == code_version:
            high = record.storage_id
        else:
            low = middle
    return high


def _observed_at(instance: DagsterInstance, key: AssetKey) -> int:
    record = instance.get_latest_data_version_record(key, is_source=True)
    return record.storage_id if record else NEVER


def plan_stale(
    instance: DagsterInstance,
    graph,
    keys: Iterable[AssetKey],
    shards: list[str],
    partitions_def,
    force: frozenset[AssetKey] = frozenset(),
) -> Plan:
    """Which partitions of ``keys`` (in dependency order) need a run over the registered ``shards``; the keys in
    ``force`` are planned whole."""
    keys = [k for k in graph.toposorted_asset_keys if k in set(keys)]
    shard_set = set(shards)
    per_shard = {k: graph.get(k).partitions_def == partitions_def for k in graph.get_all_asset_keys()}
    planned: dict[AssetKey, set[str | None]] = {}
    recorded: dict[AssetKey, dict[str | None, int]] = {}  # storage id of each partition's latest record

    def storage_ids(key: AssetKey) -> dict[str | None, int]:
        if key not in recorded:
            node = graph.get(key)
            if not node.is_materializable:
                recorded[key] = {None: _observed_at(instance, key)}
            elif per_shard[key]:
                latest = instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
                recorded[key] = {p: s for p, s in latest.items() if p in shard_set}
            else:
                record = _latest_record(instance, key)
                recorded[key] = {None: record.storage_id if record else NEVER}
        return recorded[key]

    for key in keys:
        node = graph.get(key)
        own = storage_ids(key)
        targets: list[str | None] = shards if per_shard[key] else [None]
        if key in force:
            planned[key] = set(targets)
            continue
        oldest = min((s for s in own.values() if s != NEVER), default=NEVER)
        since = current_code_since(instance, key, node.code_version, oldest) if oldest != NEVER else NEVER
        todo = {p for p in targets if own.get(p, NEVER) == NEVER or own[p] < since}
        for parent in node.parent_keys:
            theirs = storage_ids(parent)
            if per_shard.get(parent) and per_shard[key]:
                todo |= {p for p in targets if theirs.get(p, NEVER) > own.get(p, NEVER)}
                todo |= planned.get(parent, set())
            elif per_shard.get(parent):  # every shard of the parent feeds this global step
                if planned.get(parent) or max(theirs.values(), default=NEVER) > own.get(None, NEVER):
                    todo.add(None)
            else:  # a global step or an observed source feeds every partition
                if planned.get(parent):
                    todo |= set(targets)
                else:
                    todo |= {p for p in targets if theirs.get(None, NEVER) > own.get(p, NEVER)}
        planned[key] = todo
    after_global: dict[AssetKey, set[AssetKey]] = {}
    for key in keys:  # toposorted: parents first
        parents = [p for p in graph.get(key).parent_keys if p in after_global]
        after_global[key] = set().union(*(after_global[p] | ({p} if not per_shard[p] else set()) for p in parents))
    parents = {k: set(graph.get(k).parent_keys) & set(keys) for k in keys}
    return Plan(planned, {k: per_shard[k] for k in keys}, after_global, parents)
