"""The row cache: a shard table's earlier rows are reused when they were made the same way.

Every per-shard table that costs model or ffmpeg time (scores, embeddings, clips, captions, latents) keys
its rows by how they were made: the model or tool, its weights' digest and its parameters. A re-run reads
the previous table, keeps the rows whose key matches, and only works on the rest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

KEY_COLUMNS = {"model": pl.String, "weights_digest": pl.String, "params": pl.String, "params_hash": pl.String}


@dataclass(frozen=True)
class RowKey:
    """How a row was made; a cached row is reused only when model, weights digest and params all match."""

    model: str
    weights_digest: str
    params: dict[str, Any] = field(hash=False)

    @property
    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))

    @property
    def params_hash(self) -> str:
        return hashlib.sha256(self.params_json.encode()).hexdigest()[:16]

    def columns(self) -> dict[str, str]:
        """The key as the row's columns (``KEY_COLUMNS``)."""
        return {
            "model": self.model,
            "weights_digest": self.weights_digest,
            "params": self.params_json,
            "params_hash": self.params_hash,
        }


def reusable_rows(
    previous: pl.DataFrame | None, key: RowKey, statuses: tuple[str, ...] = ("ok",)
) -> pl.DataFrame | None:
    """Rows of an earlier table made with ``key`` and ending in one of ``statuses`` (failed rows are retried);
    None when there is no earlier table or it predates the params hash. A table without a model or weights
    column (clips: one tool, no weights) is matched on what it has."""
    if previous is None or previous.is_empty() or "params_hash" not in previous.columns:
        return None
    match = pl.col("status").is_in(list(statuses)) & (pl.col("params_hash") == key.params_hash)
    for column, value in (("model", key.model), ("weights_digest", key.weights_digest)):
        if column in previous.columns:
            match &= pl.col(column) == value
    return previous.filter(match)


@dataclass(frozen=True)
class ShardRows:
    """A shard table made by a row-cached step, with how many of its units were computed now and reused."""

    table: pl.DataFrame
    computed: int
    reused: int
