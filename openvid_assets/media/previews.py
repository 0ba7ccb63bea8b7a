"""Small previews for people to judge videos and clips by: an animated WebP and a poster frame, made once by
ffmpeg and kept under the data root (``previews/<shard>/<item>.webp`` and ``.jpg``).

A preview shows ``seconds`` from the middle of the item at ``fps`` frames a second, scaled so its long side is
``size`` px (portrait stays portrait); the poster is the middle frame at the same size. One ffmpeg call makes
both (two outputs of one decode). A video that cannot be read gives a failed row with ffmpeg's reason.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from openvid_assets.media.sources import VideoInputError
from openvid_assets.media.tasks import OpenVideo, VideoTask
from openvid_assets.store.files import FileSystem
from openvid_assets.store.rows import RowKey, ShardRows, reusable_rows

PREVIEW_TOOL = "ffmpeg-webp-preview"


@dataclass(frozen=True)
class PreviewSettings:
    size: int = 256  # long side, px
    seconds: float = 3.0
    fps: float = 8.0
    quality: int = 60  # WebP quality, 0-100

    def params(self) -> dict[str, Any]:
        return asdict(self)


def make_preview(
    source: str | Path,
    webp: str | Path,
    poster: str | Path,
    *,
    start_s: float,
    duration_s: float,
    settings: PreviewSettings = PreviewSettings(),
    timeout_s: float = 120.0,
) -> None:
    """Write the animated preview of ``duration_s`` seconds of ``source`` from ``start_s`` (its middle
    ``settings.seconds`` when longer) and the poster (the middle frame)."""
    length = min(settings.seconds, max(duration_s, 1.0 / settings.fps))
    begin = start_s + max(0.0, (duration_s - length) / 2)
    scale = f"scale='if(gt(iw,ih),{settings.size},-2)':'if(gt(iw,ih),-2,{settings.size})'"
    args = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-ss",
        f"{begin:.3f}",
        "-t",
        f"{length:.3f}",
        "-i",
        str(Path(source).absolute()),
        "-map",
        "0:v:0",
        "-vf",
        f"fps={settings.fps:g},{scale}",
        "-c:v",
        "libwebp_anim",
        "-loop",
        "0",
        "-quality",
        str(settings.quality),
        "-an",
        "-f",
        "webp",
        str(webp),
        "-ss",
        f"{length / 2:.3f}",
        "-map",
        "0:v:0",
        "-vf",
        scale,
        "-frames:v",
        "1",
        "-q:v",
        "4",
        "-f",
        "image2",
        str(poster),
    ]
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VideoInputError(f"ffmpeg took longer than {timeout_s:.0f}s making the preview") from None
    if done.returncode != 0 or not Path(webp).is_file() or not Path(poster).is_file() or not Path(webp).stat().st_size:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise VideoInputError(f"ffmpeg could not make the preview: {(message or ['no output'])[-1][:300]}")


class PreviewStore:
    """Preview files of one shard under ``<data root>/previews/<shard>/``, local or on S3."""

    def __init__(self, files: FileSystem, shard: str):
        self.files, self.shard, self.folder = files, shard, f"previews/{shard}"

    def rel(self, item: str, suffix: str) -> str:
        return f"{self.folder}/{item}.{suffix}"

    def present(self, item: str) -> bool:
        return self.files.exists(self.rel(item, "webp")) and self.files.exists(self.rel(item, "jpg"))

    def write(self, source: Path, item: str, start_s: float, duration_s: float, settings: PreviewSettings) -> None:
        """Make both files in a temporary folder, then put each in place atomically."""
        with tempfile.TemporaryDirectory(prefix="openvid-preview-") as tmp:
            webp, poster = os.path.join(tmp, "p.webp"), os.path.join(tmp, "p.jpg")
            make_preview(source, webp, poster, start_s=start_s, duration_s=duration_s, settings=settings)
            self.files.put(self.rel(item, "jpg"), Path(poster).read_bytes())
            self.files.put(self.rel(item, "webp"), Path(webp).read_bytes())


PREVIEW_SCHEMA = {
    "item": pl.String,
    "kind": pl.String,
    "video_id": pl.String,
    "shard": pl.String,
    "status": pl.String,
    "error": pl.String,
    "preview": pl.String,
    "poster": pl.String,
    "params_hash": pl.String,
}


@dataclass(frozen=True)
class PreviewItem:
    """What to preview: a whole video, or a clip of it (its time range in the source video)."""

    item: str
    kind: str  # video | clip
    video: VideoTask
    start_s: float
    duration_s: float


def preview_items(tasks: list[VideoTask], clips: pl.DataFrame | None) -> list[PreviewItem]:
    """Every readable video whole, and every ok clip, in that order."""
    items = [PreviewItem(t.video_id, "video", t, 0.0, t.num_frames / t.fps if t.fps else 0.0) for t in tasks]
    by_id = {t.video_id: t for t in tasks}
    if clips is not None:
        for r in clips.filter(pl.col("status") == "ok").iter_rows(named=True):
            if r["video_id"] in by_id:
                items.append(
                    PreviewItem(r["clip_id"], "clip", by_id[r["video_id"]], r["start_s"], r["end_s"] - r["start_s"])
                )
    return items


def preview_shard(
    items: list[PreviewItem],
    open_video: OpenVideo,
    store: PreviewStore,
    settings: PreviewSettings,
    previous: pl.DataFrame | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> ShardRows:
    """A preview and a poster of every item, made once: rows of ``previous`` with the same settings whose files
    are still there are kept; a video that cannot be read is a failed row."""
    key = RowKey(PREVIEW_TOOL, "", settings.params())
    cached = reusable_rows(previous, key)
    done = {r["item"]: r for r in cached.iter_rows(named=True)} if cached is not None else {}
    todo = [i for i in items if i.item not in done or not store.present(i.item)]

    def make(item: PreviewItem) -> dict[str, Any]:
        try:
            with open_video(item.video) as path:
                store.write(path, item.item, item.start_s, item.duration_s, settings)
        except VideoInputError as e:
            return {"item": item.item, "status": "failed", "error": str(e)}
        return {
            "item": item.item,
            "status": "ok",
            "preview": store.rel(item.item, "webp"),
            "poster": store.rel(item.item, "jpg"),
        }

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for count, row in enumerate(pool.map(make, todo), 1):
            done[row["item"]] = row
            if progress:
                progress(count, len(todo))
    rows = [
        {
            **done[i.item],
            "item": i.item,
            "kind": i.kind,
            "video_id": i.video.video_id,
            "shard": store.shard,
            "params_hash": key.params_hash,
        }
        for i in items
    ]
    return ShardRows(pl.DataFrame(rows, schema=PREVIEW_SCHEMA), len(todo), len(items) - len(todo))
