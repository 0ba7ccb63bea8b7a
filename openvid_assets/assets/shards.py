"""Shards as Dagster dynamic partitions, registered from a source listing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dagster import AssetExecutionContext, DagsterInstance, DynamicPartitionsDefinition, MaterializeResult

from openvid_assets.media.sources import iter_videos, list_videos, match_metadata, normalize_source
from openvid_assets.store import TableStore
from openvid_assets.store.shards import DEFAULT_SOURCE, ShardRegistry

shards_partitions = DynamicPartitionsDefinition(name="shards")
IMPORTED = "imported_metadata"  # tables/imported_metadata/<source>.parquet: a source's matched metadata rows


def register_source(
    store: TableStore, uri: str, shard_size: int, s3_client: Any = None, name: str = DEFAULT_SOURCE, metadata: str = ""
) -> tuple[int, list[str], list[str]]:
    """List a source and store shard lists (of source ``name``) for its unseen videos, importing its
    ``metadata`` table first (one that matches no video stops here): (videos listed, new shard keys, metadata
    rows that match no video)."""
    listed: Iterable[str] = iter_videos(uri, s3_client)  # streamed: flat memory at any number of videos
    unmatched: list[str] = []
    if metadata:  # matching the imported table needs the whole listing
        listed = list_videos(uri, s3_client)
        matched, unmatched = match_metadata(metadata, uri, listed)
        store.write(IMPORTED, name, matched)
    count, new = ShardRegistry(store).register_stream(normalize_source(uri), listed, shard_size, source=name)
    return count, new, unmatched


def store_new_shards(store: TableStore, source: str, shard_size: int, s3_client: Any = None) -> tuple[int, list[str]]:
    """List the source and store shard lists for unseen videos: (videos listed, new shard keys)."""
    listed, new, _ = register_source(store, source, shard_size, s3_client)
    return listed, new


def each_shard(context: AssetExecutionContext, step: Callable[[str], MaterializeResult]) -> MaterializeResult:
    """``step`` for every shard of this run: one, or up to ``OPENVID_SHARDS_PER_RUN`` when a backfill hands a run
    several (assets/policies.py). Dagster records a materialization per shard; with several they share one set
    of metadata: the counts summed, what every shard has in common, and how many shards."""
    results = [step(shard) for shard in context.partition_keys]
    if len(results) == 1:
        return results[0]
    return MaterializeResult(
        metadata={**combined_metadata([r.metadata or {} for r in results]), "shards": len(results)}
    )


def combined_metadata(shards: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One set of metadata for several shards: integer counts summed, values every shard shares kept, the rest
    (per-shard means, paths, samples) left out rather than shown for one shard as if for all."""
    combined: dict[str, Any] = {}
    for key in shards[0]:
        values = [m.get(key) for m in shards]
        if all(type(v) is int for v in values):
            combined[key] = sum(values)
        elif all(v == values[0] for v in values):
            combined[key] = values[0]
    return combined


def source_of(store: TableStore, shard: str) -> str:
    """The named source a shard belongs to."""
    return ShardRegistry(store).members(shard).source


def unregistered_partitions(store: TableStore, instance: DagsterInstance) -> list[str]:
    """Stored shards the Dagster instance does not know yet (e.g. after a killed registration)."""
    known = set(instance.get_dynamic_partitions(shards_partitions.name))
    return [key for key in ShardRegistry(store).keys() if key not in known]


def register_partitions(instance: DagsterInstance, keys: list[str], batch: int = 1000) -> list[str]:
    """Add the keys the instance does not know yet as shard partitions, ``batch`` per write; returns those added.

    One read of the known keys, then one insert per batch: bounded statements (SQLite's
    bound-variable limit, Postgres round trips) at any number of shards. Idempotent.
    """
    if batch <= 0:
        raise ValueError("batch must be positive")
    added: list[str] = []
    for attempt in range(5):  # another command may add the same keys at the same moment: re-read and go on
        known = set(instance.get_dynamic_partitions(shards_partitions.name))
        new = [key for key in dict.fromkeys(keys) if key not in known]
        try:
            for start in range(0, len(new), batch):
                instance.add_dynamic_partitions(shards_partitions.name, new[start : start + batch])
                added += new[start : start + batch]
            return added
        except Exception:  # noqa: BLE001 - a unique-key race (SQLite/Postgres error classes differ)
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return added
