"""The units of work of the per-shard steps: a readable video of the manifest (scores, clip cutting), or one
written clip of it (captions, latents). One record per kind of work; both read the manifest the same way."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class VideoTask:
    """A readable source video: where it is, its displayed size (after rotation), frame rate and rotation."""

    video_id: str
    source_uri: str
    width: int
    height: int
    fps: float
    rotation: int = 0
    num_frames: int = 0  # the probe's count (0 when unknown)
    crop: tuple[int, int, int, int] | None = None  # (x, y, w, h) of the picture inside black bars, displayed pixels


@dataclass(frozen=True)
class ClipTask:
    """One written clip: its source video and its inclusive frame range in that video."""

    clip_id: str
    video: VideoTask
    start_frame: int
    end_frame: int  # inclusive

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


# Opens a task's source video as a local file for the duration of the block (S3 objects are downloaded).
OpenVideo = Callable[[VideoTask], AbstractContextManager[Path]]


def _readable(manifest: pl.DataFrame) -> pl.DataFrame:
    return manifest.filter(pl.col("status") == "ok").unique("video_id", keep="first", maintain_order=True)


def _video(row: dict, crop: tuple[int, int, int, int] | None = None) -> VideoTask:
    return VideoTask(
        row["video_id"],
        row["source_uri"],
        row["width"],
        row["height"],
        row["fps"],
        row.get("rotation") or 0,
        row.get("num_frames") or 0,
        crop,
    )


def video_tasks(
    manifest: pl.DataFrame,
    source_uris: pl.Series | None = None,
    crops: dict[str, tuple[int, int, int, int]] | None = None,
) -> list[VideoTask]:
    """The manifest's readable videos (among ``source_uris`` if given), once each, in manifest order;
    ``crops``: the picture box of videos with black bars, by video id."""
    rows = _readable(manifest)
    if source_uris is not None:
        rows = rows.filter(pl.col("source_uri").is_in(source_uris.implode()))
    return [_video(r, (crops or {}).get(r["video_id"])) for r in rows.iter_rows(named=True)]


def clip_tasks(clips: pl.DataFrame, manifest: pl.DataFrame) -> list[ClipTask]:
    """Every ``ok`` clip row whose source video is readable, in clip-table order."""
    videos = {v.video_id: v for v in video_tasks(manifest)}
    return [
        ClipTask(r["clip_id"], videos[r["video_id"]], r["start_frame"], r["end_frame"])
        for r in clips.filter(pl.col("status") == "ok").iter_rows(named=True)
        if r["video_id"] in videos
    ]
