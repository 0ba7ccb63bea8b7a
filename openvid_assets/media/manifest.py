"""Build one shard's video manifest: identity, probe facts and a status for every listed URI."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from openvid_assets.media.probe import probe
from openvid_assets.media.sources import VideoInputError, local_video
from openvid_assets.store.files import is_s3_uri

MANIFEST_SCHEMA: dict[str, Any] = {
    "video_id": pl.String,
    "source_uri": pl.String,
    "shard": pl.String,
    "position": pl.Int32,
    "size_bytes": pl.Int64,
    "content_sha256": pl.String,
    "container": pl.String,
    "codec": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
    "fps": pl.Float64,
    "num_frames": pl.Int64,
    "duration_s": pl.Float64,
    "rotation": pl.Int32,
    "status": pl.String,
    "error": pl.String,
}

VIDEO_ID_HEX = 20  # 80 bits: collision odds stay negligible at 10^8 videos


def video_id_for_content(sha256_hex: str) -> str:
    return sha256_hex[:VIDEO_ID_HEX]


def video_id_for_unreadable(uri: str) -> str:
    # A file we cannot read has no content hash; its URI is the only identity it has.
    return "uri-" + hashlib.sha256(uri.encode()).hexdigest()[: VIDEO_ID_HEX - 4]


# A local file that changes while it is hashed and probed (still being copied in, or replaced) is read
# again, up to this many times, a short pause apart; if it never holds still it is a failed row.
READ_ATTEMPTS = 3
RETRY_PAUSE_S = 0.5


def _file_state(uri: str) -> tuple[int, ...] | None:
    """What changes when a local file is rewritten, appended to or replaced (None: gone, or not local)."""
    if is_s3_uri(uri):
        return None  # an S3 object is replaced whole, and read from one download
    try:
        st = os.stat(uri)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def probe_one(uri: str, root: str, *, s3_client: Any = None, timeout_s: float = 60.0) -> dict[str, Any]:
    """One manifest row; never raises for a bad video (only for infrastructure errors).

    The hash and the probe facts must describe the same bytes: a local file whose size, time or
    inode moved while it was read is read again, and after ``READ_ATTEMPTS`` it is a failed row.
    """
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        before = _file_state(uri)
        row = _probe_once(uri, root, s3_client=s3_client, timeout_s=timeout_s)
        if _file_state(uri) == before:
            return row
    return {
        "source_uri": uri,
        "video_id": video_id_for_unreadable(uri),
        "status": "failed",
        "error": f"file changed while being read ({READ_ATTEMPTS} attempts, {RETRY_PAUSE_S:g}s apart): "
        "it is still being written or replaced",
    }


def _probe_once(uri: str, root: str, *, s3_client: Any, timeout_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {"source_uri": uri, "status": "ok", "error": None}
    try:
        with local_video(uri, root, s3_client) as (path, digest):
            row.update(video_id=video_id_for_content(digest), content_sha256=digest, size_bytes=os.path.getsize(path))
            row.update(vars(probe(path, timeout_s)))
    except VideoInputError as e:
        row.update(status="failed", error=str(e))
    row.setdefault("video_id", video_id_for_unreadable(uri))
    return row


def _mark_duplicates(rows: list[dict[str, Any]]) -> None:
    first_uri: dict[str, str] = {}
    for row in rows:
        if row["status"] != "ok":
            continue
        earlier = first_uri.setdefault(row["video_id"], row["source_uri"])
        if earlier != row["source_uri"]:
            row.update(status="failed", error=f"duplicate content of {earlier}")


def build_manifest(
    uris: Sequence[str],
    root: str,
    shard: str,
    *,
    s3_client: Any = None,
    timeout_s: float = 60.0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Probe every URI of a shard (in parallel threads: the work is ffprobe and hashing I/O)."""
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        futures = [pool.submit(probe_one, uri, root, s3_client=s3_client, timeout_s=timeout_s) for uri in uris]
        for done, future in enumerate(futures, start=1):
            rows.append(future.result())
            if progress:
                progress(done, len(uris))
    _mark_duplicates(rows)
    for position, row in enumerate(rows):
        row.update(shard=shard, position=position)
    return pl.DataFrame(rows, schema=MANIFEST_SCHEMA)
