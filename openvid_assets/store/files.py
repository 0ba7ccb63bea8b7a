"""Byte-level storage with atomic writes, on a local folder or an S3 prefix.

Atomicity is what lets a killed run leave either the old object or the new one,
never half of one: locally ``atomic_path`` (a temporary file in the same folder,
fsync'd and renamed over the target); on S3 an object only becomes visible once
its single PUT or multipart upload completes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

# A temporary file untouched for this long was left by a killed writer (a live one keeps writing to it): age
# means the same on every host that shares the folder. One whose writer (host and pid in its name) is this
# host's and dead goes at once.
STALE_TEMPORARY_S = 3600.0
HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())  # no '-', '+' or '.': the tag below stays parseable


def process_alive(pid: int) -> bool:
    """Whether a process of this host still runs (to tell a killed writer's leftovers from a live one's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped: its parent died too and no init reaps it) is not running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS), or it just went away
        return True


def _temporaries(target: Path) -> Iterator[Path]:
    return target.parent.glob(f".{target.name}.*.tmp{target.suffix}")


def writer_tag() -> str:
    """``<host>-<pid>+<random>``: who makes a temporary, read when it is made (a forked child is its own writer)."""
    return f"{HOST}-{os.getpid()}+{uuid.uuid4().hex[:8]}"


def left_by_dead_writer(tag: str, last_written: float, older_than_s: float = STALE_TEMPORARY_S) -> bool:
    """Whether a temporary whose name holds ``tag`` (``writer_tag()``) and last written then was abandoned."""
    host, _, pid = tag.partition("+")[0].rpartition("-")
    if host == HOST and pid.isdigit():
        return not process_alive(int(pid))
    return time.time() - last_written > older_than_s


def sweep_stale_temporaries(target: Path) -> None:
    """Remove the temporaries of ``target`` that killed writers left."""
    for stale in _temporaries(target):
        try:
            if left_by_dead_writer(stale.name[len(target.name) + 2 :].split(".", 1)[0], stale.stat().st_mtime):
                stale.unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # its writer just renamed or removed it


def write_atomically(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``target`` for any writer (Python, ffmpeg, torch.save...): on success it is
    fsync'd and renamed over ``target``, so readers see the old file or the whole new one, never a part; on
    failure it is removed. The one atomic write of the package (S3 objects: one PUT or a completed upload)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temporaries(target)
    # The real extension last: writers that infer the format from the name (ffmpeg) see the target's.
    tmp = target.with_name(f".{target.name}.{writer_tag()}.tmp{target.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b')."""
    if not is_s3_uri(uri):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI has no bucket: {uri!r}")
    return bucket, key


def default_s3_client() -> Any:
    """A boto3 S3 client configured from the standard AWS environment.

    boto3 honours AWS_ENDPOINT_URL, so a local S3-compatible server needs no code.
    """
    import boto3

    return boto3.client("s3")


class FileSystem(Protocol):
    """The operations the store needs, with paths relative to a root."""

    root: str

    def uri(self, rel: str) -> str: ...
    def put(self, rel: str, data: bytes) -> None: ...
    def put_file(self, rel: str, path: str) -> None: ...
    def get(self, rel: str) -> bytes: ...
    def exists(self, rel: str) -> bool: ...
    def list(self, rel_prefix: str) -> list[str]: ...
    def local_path(self, rel: str) -> str | None: ...
    def stamp(self, rel: str) -> str | None: ...
    def modified(self, rel: str) -> float | None: ...
    def arrow(self) -> tuple[Any, str]: ...


class LocalFileSystem:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = str(Path(root).expanduser().resolve())

    def _path(self, rel: str) -> Path:
        return Path(self.root, rel)

    def uri(self, rel: str) -> str:
        return str(self._path(rel))

    def local_path(self, rel: str) -> str | None:
        return str(self._path(rel))

    def put(self, rel: str, data: bytes) -> None:
        write_atomically(self._path(rel), data)

    def put_file(self, rel: str, path: str) -> None:
        """Move a finished local file into place atomically (a copy first when it is on another disk)."""
        with atomic_path(self._path(rel)) as tmp:
            shutil.move(path, tmp)

    def get(self, rel: str) -> bytes:
        return self._path(rel).read_bytes()

    def arrow(self) -> tuple[Any, str]:
        """This root as a ``pyarrow.fs`` filesystem and base path (for streaming scans of many files)."""
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), self.root

    def exists(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def stamp(self, rel: str) -> str | None:
        """Changes whenever the file is rewritten (size and modification time), None if absent."""
        try:
            st = self._path(rel).stat()
        except FileNotFoundError:
            return None
        return f"{st.st_size}-{st.st_mtime_ns}"

    def modified(self, rel: str) -> float | None:
        try:
            return self._path(rel).stat().st_mtime
        except FileNotFoundError:
            return None

    def list(self, rel_prefix: str) -> list[str]:
        """Relative paths of files under a folder, sorted; temporary files are skipped."""
        base = self._path(rel_prefix)
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")
        )


class S3FileSystem:
    def __init__(self, root: str, client_factory: Callable[[], Any] = default_s3_client):
        self.bucket, prefix = split_s3_uri(root.rstrip("/"))
        self.prefix = f"{prefix}/" if prefix else ""
        self.root = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _key(self, rel: str) -> str:
        return self.prefix + rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def local_path(self, rel: str) -> str | None:
        return None

    def put(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def put_file(self, rel: str, path: str) -> None:
        """Upload a local file (multipart when large: the object appears only once complete), then delete it."""
        self.client.upload_file(path, self.bucket, self._key(rel))
        os.unlink(path)

    def arrow(self) -> tuple[Any, str]:
        """This prefix as a ``pyarrow.fs.S3FileSystem`` and base path, on the store client's endpoint and region
        (credentials from the standard AWS chain, as boto3's): DuckDB scans many objects through it as one
        dataset, a few at a time, instead of each table being fetched whole first.

        Writes stay with boto3: a failed ``upload_file`` aborts its multipart upload, where pyarrow's output
        stream, closed on an error, would publish the part written so far."""
        import pyarrow.fs

        meta = self.client.meta
        options: dict[str, Any] = {"region": meta.region_name or "us-east-1"}
        endpoint = meta.endpoint_url or ""
        if endpoint and not endpoint.split("://", 1)[-1].split("/", 1)[0].endswith("amazonaws.com"):
            scheme, _, host = endpoint.partition("://")  # a local or third-party S3 server: path-style requests
            options.update(endpoint_override=host.rstrip("/"), scheme=scheme or "https")
        return pyarrow.fs.S3FileSystem(**options), f"{self.bucket}/{self.prefix}".rstrip("/")

    def get(self, rel: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(self.uri(rel)) from None

    def exists(self, rel: str) -> bool:
        return self._head(rel) is not None

    def _head(self, rel: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(rel))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def stamp(self, rel: str) -> str | None:
        """The object's ETag and modification time, None if absent."""
        head = self._head(rel)
        return None if head is None else f"{head['ETag'].strip(chr(34))}-{head['LastModified'].timestamp()}"

    def modified(self, rel: str) -> float | None:
        head = self._head(rel)
        return None if head is None else head["LastModified"].timestamp()

    def list(self, rel_prefix: str) -> list[str]:
        prefix = self._key(rel_prefix.rstrip("/") + "/")
        return sorted(key[len(self.prefix) :] for key in iter_s3_keys(self.client, self.bucket, prefix))


def iter_s3_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def open_filesystem(root: str, s3_client_factory: Callable[[], Any] = default_s3_client) -> FileSystem:
    if is_s3_uri(root):
        return S3FileSystem(root, s3_client_factory)
    return LocalFileSystem(root)
