"""Where raw videos come from: a local folder or an ``s3://bucket/prefix``.

Listing is recursive, by extension, and sorted, so shard membership is a pure
function of the listing. Access to one video goes through :func:`local_video`,
which refuses anything that resolves outside the source root and turns an S3
object into a local temporary file for ffprobe/decord.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openvid_assets.store.files import is_s3_uri, iter_s3_keys, split_s3_uri

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v"})


class VideoInputError(Exception):
    """A video that cannot be read; the message is the reason stored in its row."""


def has_video_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def normalize_source(source: str) -> str:
    """A canonical form of the source root: absolute local path, or s3 URI without trailing slash."""
    if is_s3_uri(source):
        split_s3_uri(source)  # validates
        return source.rstrip("/")
    return os.path.abspath(os.path.expanduser(source))


def local_folder_missing(source: str) -> bool:
    """Whether ``source`` is a local folder that does not exist (an S3 prefix is checked by listing it)."""
    return not is_s3_uri(source) and not os.path.isdir(normalize_source(source))


def iter_videos(source: str, s3_client: Any = None) -> Iterator[str]:
    """Every file with a video extension under ``source``, as URIs, one at a time (in no promised order): a
    listing of tens of millions of videos never has to be held in memory.

    Symlinks are listed (not followed) so that one pointing outside the root
    still gets a row saying so, rather than silently disappearing.
    """
    root = normalize_source(source)
    if is_s3_uri(root):
        bucket, prefix = split_s3_uri(root)
        prefix = f"{prefix}/" if prefix else ""
        yield from (
            f"s3://{bucket}/{key}" for key in iter_s3_keys(s3_client, bucket, prefix) if has_video_extension(key)
        )
        return
    if local_folder_missing(root):
        raise FileNotFoundError(f"source folder does not exist: {root}")
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        yield from (text_uri(os.path.join(folder, f)) for f in sorted(files) if has_video_extension(f))


def list_videos(source: str, s3_client: Any = None) -> list[str]:
    """Every file with a video extension under ``source``, as sorted URIs (a list: for small sources and tests;
    registration streams :func:`iter_videos`)."""
    return sorted(iter_videos(source, s3_client))


def text_uri(path: str) -> str:
    """The path as valid UTF-8 text (tables store URIs as strings): bytes that are not UTF-8 become
    ``\\xNN`` escapes. Such a URI names no file; its row says why (see :func:`_check_local`)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:  # os.walk hands undecodable bytes over as surrogates
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_local(uri: str, root: str) -> Path:
    real_root = os.path.realpath(root)
    if not os.path.lexists(uri):
        folder = os.path.dirname(uri)
        if (
            "\\x" in uri
            and os.path.isdir(folder)
            and any(text_uri(os.path.join(folder, name)) == uri for name in os.listdir(folder))
        ):
            raise VideoInputError("file name is not valid UTF-8 (shown with \\x escapes): rename the file")
        raise VideoInputError("file vanished: it was listed but no longer exists")
    real = os.path.realpath(uri)
    if os.path.commonpath([real, real_root]) != real_root:
        raise VideoInputError(f"path resolves outside the source root (to {real})")
    if not os.path.exists(real):
        raise VideoInputError("broken symlink: its target does not exist")
    if not os.path.isfile(real):
        raise VideoInputError("not a regular file")
    return Path(real)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def local_file(uri: str, root: str, s3_client: Any = None, scratch_dir: str | None = None) -> Iterator[Path]:
    """Yield a local path for one video URI under ``root``.

    Raises :class:`VideoInputError` for anything that makes the video unreadable.
    S3 objects are streamed to a temporary file, removed afterwards; a transient
    S3 error is raised as is (the run fails and can be retried), only a missing
    object is a bad video.
    """
    if not is_s3_uri(uri):
        yield _check_local(uri, root)
        return

    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    root_bucket, root_prefix = split_s3_uri(root)
    if bucket != root_bucket or not key.startswith(root_prefix):
        raise VideoInputError(f"object is outside the source root {root}")
    with tempfile.TemporaryDirectory(prefix="openvid-", dir=scratch_dir) as tmp:
        path = Path(tmp, "video" + os.path.splitext(key)[1].lower())
        try:
            s3_client.download_file(bucket, key, str(path))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                raise VideoInputError("object vanished: it was listed but no longer exists") from None
            raise
        yield path


@contextmanager
def local_video(uri: str, root: str, s3_client: Any = None) -> Iterator[tuple[Path, str]]:
    """Like :func:`local_file`, also yielding the SHA-256 of the content."""
    with local_file(uri, root, s3_client) as path:
        try:
            digest = sha256_file(path)
        except OSError as e:
            raise VideoInputError(f"cannot read file: {e.strerror or e}") from None
        yield path, digest


METADATA_COLUMNS = ("caption", "category", "source_id")


class MetadataError(ValueError):
    """A metadata table that cannot be imported (unreadable, no 'file' column, no row matching a video)."""


def match_metadata(path: str, root: str, listed_uris: list[str]) -> tuple[Any, list[str]]:
    """A source's metadata table (CSV or parquet with a ``file`` column, relative to ``root``) matched to its
    listed videos: (one row per matched video: source_uri + the known columns present, as strings; the
    ``file`` values that match no listed video). No match at all is an error: the table is for another folder."""
    import polars as pl

    try:
        table = pl.read_parquet(path) if path.endswith(".parquet") else pl.read_csv(path, infer_schema=False)
    except Exception as e:  # noqa: BLE001 - polars raises many kinds; the message names the file
        raise MetadataError(f"metadata {path}: cannot be read: {e}") from None
    if "file" not in table.columns:
        raise MetadataError(f"metadata {path}: no 'file' column (columns: {', '.join(table.columns)})")
    columns = [c for c in METADATA_COLUMNS if c in table.columns]
    base = normalize_source(root)
    table = table.select(
        pl.col("file").cast(pl.String).str.strip_prefix("./"), *[pl.col(c).cast(pl.String) for c in columns]
    )
    table = table.with_columns(source_uri=pl.lit(base + "/") + pl.col("file")).unique("file", keep="first")
    listed = pl.DataFrame({"source_uri": listed_uris}, schema={"source_uri": pl.String})
    matched = table.join(listed, on="source_uri", how="semi")
    unmatched = table.join(listed, on="source_uri", how="anti")["file"].to_list()
    if matched.height == 0:
        raise MetadataError(
            f"metadata {path}: none of its {table.height} rows names a video under {base} "
            f"(first: {', '.join(unmatched[:3])})"
        )
    return matched.select("source_uri", *columns), unmatched
