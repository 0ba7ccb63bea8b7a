"""Shards: fixed, named lists of video URIs, stored so membership is reproducible.

A shard list is written once and never changed. New videos found in a source
only ever form new shards after the last one, so adding videos never reshuffles
existing shards (and never invalidates work already done on them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from openvid_assets.store.sql import run_sql
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


def plan_shards(new_uris: list[str], next_index: int, shard_size: int) -> list[tuple[str, list[str]]]:
    """Split new URIs (already sorted) into consecutive shards of at most ``shard_size``."""
    if shard_size <= 0:
        raise ValueError("shard size must be positive")
    return [
        (shard_key(next_index + i), new_uris[start : start + shard_size])
        for i, start in enumerate(range(0, len(new_uris), shard_size))
    ]


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

    def unregistered(self, listed_uris: list[str]) -> list[str]:
        """The listed URIs that no stored shard holds yet, sorted (an anti-join in DuckDB)."""
        keys = self.keys()
        listing = pl.DataFrame({"source_uri": listed_uris}, schema={"source_uri": pl.String})
        if not keys:
            return sorted(set(listed_uris))
        stored = self.store.scan_source(SHARD_LISTS, keys)
        return run_sql("unregistered_videos", {"listing": listing, "shard_lists": stored})[
            "source_uri"
        ].to_list()

    def register(self, source_root: str, listed_uris: list[str], shard_size: int,
                 source: str = DEFAULT_SOURCE) -> list[str]:  # fmt: skip
        """Store shard lists (of one named ``source``) for every listed URI not in a shard yet; returns the new
        shard keys.

        Each list is written atomically, so a killed registration leaves whole shards
        only; running it again picks up where it stopped.
        """
        keys = self.keys()
        next_index = shard_index(keys[-1]) + 1 if keys else 0
        new_keys = []
        for key, uris in plan_shards(self.unregistered(listed_uris), next_index, shard_size):
            frame = pl.DataFrame(
                {
                    "shard": [key] * len(uris),
                    "position": list(range(len(uris))),
                    "source_uri": uris,
                    "source_root": [source_root] * len(uris),
                    "source": [source] * len(uris),
                },
                schema={"shard": pl.String, "position": pl.Int32, "source_uri": pl.String, "source_root": pl.String,
                        "source": pl.String},  # fmt: skip
            )
            self.store.write(SHARD_LISTS, key, frame)
            new_keys.append(key)
        return new_keys
