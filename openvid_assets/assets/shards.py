"""Shards as Dagster dynamic partitions, registered from a source listing."""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, DynamicPartitionsDefinition

from openvid_assets.media.sources import list_videos, normalize_source
from openvid_assets.store import TableStore
from openvid_assets.store.shards import ShardRegistry

shards_partitions = DynamicPartitionsDefinition(name="shards")


def store_new_shards(store: TableStore, source: str, shard_size: int, s3_client: Any = None) -> tuple[int, list[str]]:
    """List the source and store shard lists for unseen videos: (videos listed, new shard keys)."""
    listed = list_videos(source, s3_client)
    return len(listed), ShardRegistry(store).register(normalize_source(source), listed, shard_size)


def unregistered_partitions(store: TableStore, instance: DagsterInstance) -> list[str]:
    """Stored shards the Dagster instance does not know yet (e.g. after a killed registration)."""
    known = set(instance.get_dynamic_partitions(shards_partitions.name))
    return [key for key in ShardRegistry(store).keys() if key not in known]
