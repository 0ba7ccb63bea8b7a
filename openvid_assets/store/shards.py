"""Shards: fixed, named lists of video URIs, stored so membership is reproducible.

A shard list is written once and never changed. New videos found in a source
only ever form new shards after the last one, so adding videos never reshuffles
existing shards (and never invalidates work already done on them).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from openvid_assets.store.sql import copy_sql, run_sql
from openvid_assets.store.tables import TableStore

SHARD_LISTS = "shard_lists"
DEFAULT_SOURCE = "default"  # the source of shards registered outside a recipe's named sources
_KEY = re.compile(r"^shard-(\d+)$")


def shard_key(index: int) -> str:
    return f"shard-{index:05d}"


def shard_index(key: str) -> int:
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not a shard key: {key!r}")
    return int(match.group(1))


@dataclass(frozen=True)
class ShardMembers:
    key: str
    source_root: str
    uris: list[str]
    source: str = DEFAULT_SOURCE  # the named source the shard belongs to


class ShardRegistry:
    """The stored shard lists under a data root (one table per shard)."""

    def __init__(self, store: TableStore):
        self.store = store

    def keys(self) -> list[str]:
        return sorted(self.store.shards(SHARD_LISTS), key=shard_index)

    def members(self, key: str) -> ShardMembers:
        frame = self.store.read(SHARD_LISTS, key).sort("position")
        roots = frame["source_root"].unique().to_list()
        if len(roots) != 1:
            raise ValueError(f"shard {key} has {len(roots)} source roots; expected exactly one")
        source = frame["source"][0] if "source" in frame.columns else DEFAULT_SOURCE
        return ShardMembers(key, roots[0], frame["source_uri"].to_list(), source)

    def sources(self) -> dict[str, str]:
        """The source of every stored shard (shards listed before sources existed: 'default'), in one scan."""
        keys = self.keys()
        if not keys or "source" not in self.store.read(SHARD_LISTS, keys[-1]).columns:
            return dict.fromkeys(keys, DEFAULT_SOURCE)
        found = run_sql("shard_sources", {"shard_lists": self.store.scan_source(SHARD_LISTS, keys)})
        return dict(zip(found["shard"], found["source"]))

    def by_source(self) -> dict[str, list[str]]:
        """Every registered shard, grouped by its named source (in shard order)."""
        grouped: dict[str, list[str]] = {}
        for shard, source in self.sources().items():
            grouped.setdefault(source, []).append(shard)
        return grouped

    def register(
        self, source_root: str, listed_uris: Iterable[str], shard_size: int, source: str = DEFAULT_SOURCE
    ) -> list[str]:
        """Store shard lists (of one named ``source``) for every listed URI not in a shard yet; returns the new
        shard keys (:meth:`register_stream` also counts the listing)."""
        return self.register_stream(source_root, listed_uris, shard_size, source)[1]

    def register_stream(
        self, source_root: str, listed_uris: Iterable[str], shard_size: int, source: str = DEFAULT_SOURCE
    ) -> tuple[int, list[str]]:
        """:meth:`register` in flat memory, however long the listing: the URIs are spooled to a parquet file as
        they come, DuckDB anti-joins them with the stored lists and sorts what is new (spilling to disk past
        ``SPOOL_MEMORY``), and new shards are cut from that file a batch at a time. Returns (URIs listed, new
        shard keys).

        Each list is written atomically, so a killed registration leaves whole shards
        only; running it again picks up where it stopped.
        """
        if shard_size <= 0:
            raise ValueError("shard size must be positive")
        keys = self.keys()
        next_index = shard_index(keys[-1]) + 1 if keys else 0
        new_keys: list[str] = []
        with tempfile.TemporaryDirectory(prefix="openvid-listing-") as tmp:
            listed = _spool(listed_uris, f"{tmp}/listing.parquet")
            stored = (
                self.store.scan_source(SHARD_LISTS, keys) if keys else pl.DataFrame(schema={"source_uri": pl.String})
            )
            copy_sql(
                "unregistered_videos",
                {"listing": [f"{tmp}/listing.parquet"], "shard_lists": stored},
                f"{tmp}/new.parquet",
                memory_limit=SPOOL_MEMORY,
                temp_directory=tmp,
            )
            for uris in _chunks(pq.ParquetFile(f"{tmp}/new.parquet"), shard_size):
                key = shard_key(next_index + len(new_keys))
                self.store.write(SHARD_LISTS, key, shard_list(key, uris, source_root, source))
                new_keys.append(key)
        return listed, new_keys


SPOOL_MEMORY = "512MB"  # DuckDB's memory for the anti-join and sort of a listing; beyond it, it spills to disk
SPOOL_BATCH = 100_000  # URIs per parquet row group while spooling a listing


def _spool(uris: Iterable[str], path: str) -> int:
    """Write URIs to a one-column parquet file in batches; returns how many."""
    schema = pa.schema([("source_uri", pa.string())])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[str] = []
        for uri in uris:
            batch.append(uri)
            if len(batch) == SPOOL_BATCH:
                writer.write_batch(pa.record_batch([pa.array(batch, pa.string())], schema=schema))
                count, batch = count + len(batch), []
        if batch or not count:
            writer.write_batch(pa.record_batch([pa.array(batch, pa.string())], schema=schema))
            count += len(batch)
    return count


def _chunks(new: pq.ParquetFile, size: int) -> Iterator[list[str]]:
    """Consecutive lists of ``size`` URIs (the last one shorter) from a sorted parquet file, a batch at a time."""
    pending: list[str] = []
    for batch in new.iter_batches(batch_size=max(size, SPOOL_BATCH), columns=["source_uri"]):
        pending += batch.column(0).to_pylist()
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def shard_list(key: str, uris: list[str], source_root: str, source: str) -> pl.DataFrame:
    """A shard's stored list of videos (one row each, in shard order), as registration writes it."""
    return pl.DataFrame(
        {
            "shard": [key] * len(uris),
            "position": list(range(len(uris))),
            "source_uri": uris,
            "source_root": [source_root] * len(uris),
            "source": [source] * len(uris),
        },
        schema={
            "shard": pl.String,
            "position": pl.Int32,
            "source_uri": pl.String,
            "source_root": pl.String,
            "source": pl.String,
        },
    )
