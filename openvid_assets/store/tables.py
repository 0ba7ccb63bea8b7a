"""One parquet table per asset per shard: ``<data root>/tables/<asset>/<shard>.parquet``."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from openvid_assets.store.files import FileSystem, default_s3_client, left_by_dead_writer, open_filesystem, writer_tag

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


STAGE_PREFIX = ".tmp-stage-"


def _last_written(folder: Path) -> float:
    """The newest modification time in a staging folder (a writer appending to a file inside keeps it fresh)."""
    return max((p.stat().st_mtime for p in [folder, *folder.rglob("*")] if p.exists()), default=0.0)


def _check_name(kind: str, name: str) -> str:
    # Asset and shard names become path parts: keep them boring.
    if not _NAME.match(name):
        raise ValueError(f"invalid {kind} name {name!r}")
    return name


class ObjectStream:
    """Many parquet objects as one re-readable Arrow stream, opened ``group`` objects at a time.

    One ``pyarrow.dataset`` over every object keeps each object's footer once scanned (about 30 KB an object,
    measured: a 2,000-shard scan grows by 80 MiB, linearly with the pool); a dataset per group lets them go, so
    a scan's memory stays flat however many shards there are. DuckDB calls ``__arrow_c_stream__`` for every
    scan of the table, so a query may read it more than once. Objects missing a column read it as nulls.
    """

    def __init__(self, paths: list[str], filesystem: Any, schema: pa.Schema, group: int = 100):
        self.paths, self.filesystem, self.schema, self.group = paths, filesystem, schema, group

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.dataset as ds

        for start in range(0, len(self.paths), self.group):
            part = ds.dataset(
                self.paths[start : start + self.group], filesystem=self.filesystem, format="parquet", schema=self.schema
            )
            yield from part.to_batches()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches()).__arrow_c_stream__(requested_schema)


class TableStore:
    """Atomic parquet tables under a data root (a local folder or ``s3://bucket/prefix``)."""

    def __init__(self, data_root: str, s3_client_factory: Callable[[], Any] = default_s3_client):
        self.fs: FileSystem = open_filesystem(data_root, s3_client_factory)

    @property
    def root(self) -> str:
        return self.fs.root

    @staticmethod
    def rel_path(asset: str, shard: str) -> str:
        return f"tables/{_check_name('asset', asset)}/{_check_name('shard', shard)}.parquet"

    def uri(self, asset: str, shard: str) -> str:
        return self.fs.uri(self.rel_path(asset, shard))

    def write(self, asset: str, shard: str, frame: pl.DataFrame) -> str:
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="zstd", statistics=True)
        self.fs.put(self.rel_path(asset, shard), buf.getvalue())
        return self.uri(asset, shard)

    def read(self, asset: str, shard: str) -> pl.DataFrame:
        try:
            data = self.fs.get(self.rel_path(asset, shard))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no {asset!r} table for {shard!r} at {self.uri(asset, shard)}; "
                f"materialize {asset} for that shard first"
            ) from None
        return pl.read_parquet(io.BytesIO(data))

    def read_if_exists(self, asset: str, shard: str) -> pl.DataFrame | None:
        try:
            return self.read(asset, shard)
        except FileNotFoundError:
            return None

    def exists(self, asset: str, shard: str) -> bool:
        return self.fs.exists(self.rel_path(asset, shard))

    def stamp(self, asset: str, shard: str) -> str | None:
        """Changes whenever the table is rewritten; None if it does not exist."""
        return self.fs.stamp(self.rel_path(asset, shard))

    def modified(self, asset: str, shard: str) -> float | None:
        """When the table was last written (seconds since the epoch), None if it does not exist."""
        return self.fs.modified(self.rel_path(asset, shard))

    def fingerprint(self, asset: str, shards: list[str] | None = None) -> str:
        """A short hash of the stamps of an asset's tables: the 'version' of those inputs."""
        shards = self.shards(asset) if shards is None else shards
        digest = hashlib.sha256()
        for shard in shards:
            digest.update(f"{shard}={self.stamp(asset, shard)};".encode())
        return digest.hexdigest()[:16]

    @contextmanager
    def writing(self, asset: str, shard: str) -> Iterator[str]:
        """A local path to write the table to (e.g. by DuckDB ``COPY``); committed atomically on success."""
        with self._staging() as tmp:
            path = os.path.join(tmp, "table.parquet")
            yield path
            self.fs.put_file(self.rel_path(asset, shard), path)

    def export_table(self, asset: str, shard: str, name: str) -> str:
        """Publish a stored table as ``exports/<name>`` too (streamed: no full read into memory)."""
        with self._staging() as tmp:
            path = os.path.join(tmp, name)
            local = self.fs.local_path(self.rel_path(asset, shard))
            if local is not None:
                shutil.copyfile(local, path)
            else:
                with open(path, "wb") as f:
                    f.write(self.fs.get(self.rel_path(asset, shard)))
            rel = f"exports/{_check_name('export', name)}"
            self.fs.put_file(rel, path)
        return self.fs.uri(rel)

    def _staging(self) -> tempfile.TemporaryDirectory:
        return tempfile.TemporaryDirectory(prefix=STAGE_PREFIX + writer_tag(), dir=self._staging_dir())

    def _staging_dir(self) -> str | None:
        """Stage next to the data on a local root (so committing is a rename), in /tmp for S3.
        Staging folders left by a killed process are removed first."""
        local = self.fs.local_path("tables")
        if local is None:
            return None
        os.makedirs(local, exist_ok=True)
        for stale in Path(local).glob(".tmp-stage-*"):
            if left_by_dead_writer(stale.name[len(STAGE_PREFIX) :], _last_written(stale)):
                shutil.rmtree(stale, ignore_errors=True)
        return local

    def write_export(self, name: str, frame: pl.DataFrame) -> str:
        """``exports/<name>`` (.csv or .parquet; ``name`` may hold folders: ``tiers/tier_1/openvid.csv``),
        written atomically like every table."""
        buf = io.BytesIO()
        if name.endswith(".csv"):
            frame.write_csv(buf)
        elif name.endswith(".parquet"):
            frame.write_parquet(buf, compression="zstd")
        else:
            raise ValueError(f"unsupported export format: {name}")
        rel = "exports/" + "/".join(_check_name("export", part) for part in name.split("/"))
        self.fs.put(rel, buf.getvalue())
        return self.fs.uri(rel)

    def shards(self, asset: str) -> list[str]:
        """Shards that have a table for this asset, sorted."""
        prefix = f"tables/{_check_name('asset', asset)}"
        return [
            rel.rsplit("/", 1)[1].removesuffix(".parquet") for rel in self.fs.list(prefix) if rel.endswith(".parquet")
        ]

    def scan_source(self, asset: str, shards: list[str] | None = None) -> list[str] | pa.Table | ObjectStream:
        """What DuckDB should read for an asset's tables, streamed: never every table in memory at once.

        Local tables are handed to DuckDB as file paths (its own parquet reader streams and spills); S3 tables as
        one :class:`ObjectStream` over the objects, read a group of objects at a time.
        """
        shards = self.shards(asset) if shards is None else shards
        rels = [self.rel_path(asset, s) for s in shards]
        local = [self.fs.local_path(r) for r in rels]
        if all(p is not None for p in local):
            return [p for p in local if p is not None]
        if not rels:
            return pa.table({})
        import pyarrow.dataset as ds

        filesystem, base = self.fs.arrow()
        paths = [f"{base}/{r}" for r in rels]
        # The schema is the last shard's (the newest registered, written by the current code); an older table
        # without one of its columns reads as nulls there. Unifying every footer first would cost one request
        # per object before the scan even starts (66 s for 6,000 objects on the local S3 server).
        schema = ds.dataset(paths[-1], filesystem=filesystem, format="parquet").schema
        return ObjectStream(paths, filesystem, schema)
