"""People's labels of videos and clips, kept under the data root as append-only data.

Every save is a new small parquet file, ``labels/<YYYY-MM-DD>/<time>-<random>.parquet``, written atomically
(a temporary file renamed into place; on S3 one PUT): nothing is ever rewritten, so two reviewers saving at
the same moment both keep what they saved, and a kill leaves either the whole file or none. Relabelling an
item is a newer row; ``latest`` reads the last word of each reviewer on each item. A part that cannot be read
(copied in by hand, cut short by a full disk) is named and skipped, never silently dropped or deleted.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import polars as pl

from openvid_assets.store.files import FileSystem

LABELS_DIR = "labels"
LABELS = ("good", "bad", "skip")
TAGS = ("static", "flicker", "too fast", "blurry", "dark", "overexposed", "text", "multi-scene", "bad caption")
KINDS = ("video", "clip")
REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$")
LABEL_SCHEMA = {
    "reviewer": pl.String,
    "time": pl.Datetime("us", "UTC"),
    "item": pl.String,  # a video_id or a clip_id
    "kind": pl.String,  # video | clip
    "score": pl.String,  # what the item was shown for: a score name, 'suitability' or 'captions'
    "score_version": pl.String,  # the scores' model identity (or a thresholds/model version) it was judged by
    "score_value": pl.Float64,
    "label": pl.String,  # good | bad | skip
    "tags": pl.List(pl.String),
}


class LabelError(ValueError):
    """A label that cannot be saved as given (what is wrong is in the message); nothing was written."""


def checked_reviewer(name: Any) -> str:
    if not isinstance(name, str) or not REVIEWER.match(name):
        raise LabelError(
            "a reviewer name is 1-40 letters, digits, spaces, '.', '_' or '-', starting with a letter "
            f"or digit; got {name!r}"
        )
    return name


def _checked(row: Mapping[str, Any], known_items: Mapping[str, str] | None) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise LabelError(f"a label is an object with item, score, label and tags; got {type(row).__name__}")
    item, label = row.get("item"), row.get("label")
    if not isinstance(item, str) or not item:
        raise LabelError(f"label without an item id: {dict(row)!r}")
    if known_items is not None and item not in known_items:
        raise LabelError(f"item {item!r} is not in this data root")
    if label not in LABELS:
        raise LabelError(f"label must be one of {LABELS}, got {label!r} (item {item})")
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or set(tags) - set(TAGS):
        raise LabelError(f"tags must be a list from {TAGS}, got {tags!r} (item {item})")
    kind = row.get("kind") or (known_items or {}).get(item, "video")
    if kind not in KINDS:
        raise LabelError(f"kind must be one of {KINDS}, got {kind!r} (item {item})")
    value = row.get("score_value")
    if value is not None and not isinstance(value, (int, float)):
        raise LabelError(f"score_value must be a number, got {value!r} (item {item})")
    return {
        "item": item,
        "kind": kind,
        "score": str(row.get("score") or ""),
        "score_version": str(row.get("score_version") or ""),
        "score_value": None if value is None else float(value),
        "label": label,
        "tags": sorted(set(tags)),
    }


class LabelStore:
    def __init__(self, fs: FileSystem):
        self.fs = fs

    def append(
        self, reviewer: str, rows: Iterable[Mapping[str, Any]], known_items: Mapping[str, str] | None = None
    ) -> str | None:
        """Save one batch of one reviewer's labels as a new part (all or nothing): its path, or None for an
        empty batch. ``known_items`` (item id -> kind): refuse items that are not in the data root."""
        reviewer = checked_reviewer(reviewer)
        now = datetime.now(timezone.utc)
        checked = [{"reviewer": reviewer, "time": now, **_checked(r, known_items)} for r in rows]
        if not checked:
            return None
        buffer = io.BytesIO()
        pl.DataFrame(checked, schema=LABEL_SCHEMA).write_parquet(buffer)
        rel = f"{LABELS_DIR}/{now:%Y-%m-%d}/{now:%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"
        self.fs.put(rel, buffer.getvalue())
        return rel

    def parts(self) -> list[str]:
        return sorted(p for p in self.fs.list(LABELS_DIR) if p.endswith(".parquet"))

    def read(self) -> tuple[pl.DataFrame, list[str]]:
        """Every saved label, oldest first, and the parts that could not be read (each with the reason)."""
        frames, problems = [], []
        for rel in self.parts():
            try:
                frame = pl.read_parquet(io.BytesIO(self.fs.get(rel)))
                frames.append(frame.select(list(LABEL_SCHEMA)).cast(LABEL_SCHEMA))
            except Exception as e:  # noqa: BLE001 - any unreadable part is reported, the others still count
                problems.append(f"{rel}: {type(e).__name__}: {str(e)[:200]}")
        table = pl.concat(frames) if frames else pl.DataFrame(schema=LABEL_SCHEMA)
        return table.sort("time", maintain_order=True), problems

    def latest(self) -> pl.DataFrame:
        """Each reviewer's last label of each item for each score."""
        table, _ = self.read()
        return table.unique(["reviewer", "item", "score"], keep="last", maintain_order=True)
