"""Run the project's ``sql/*.sql`` files with DuckDB over shard tables.

Each query names its inputs as plain table names (``FROM video_manifest``); the
caller binds those names to parquet files, Arrow tables or Polars frames. The
connection is in-memory and only reads the files, so parallel shard runs never
contend for a database lock. Values always travel as bound parameters, never
pasted into SQL text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

import openvid_assets

# Parquet file paths, or anything Arrow-shaped DuckDB scans (tables, frames, objects with __arrow_c_stream__).
TableInput = list[str] | pa.Table | pl.DataFrame | Any


@cache
def sql_dir() -> Path:
    package = Path(openvid_assets.__file__).parent
    for candidate in (package / "sql", package.parent / "sql"):  # wheel, then source checkout
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the sql/ folder was not found next to the openvid_assets package")


def sql_path(name: str) -> Path:
    path = sql_dir() / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path


def _bind(con: duckdb.DuckDBPyConnection, name: str, source: TableInput) -> None:
    # Registered names belong to this connection alone: queries on other cursors of one database never see them.
    if isinstance(source, list):
        if not source:
            raise ValueError(f"table {name!r} has no files to read")
        con.register(name, con.read_parquet(source, union_by_name=True))
    elif isinstance(source, pl.DataFrame):
        con.register(name, source.to_arrow())
    else:
        con.register(name, source)


@cache
def _shared_database(pid: int) -> duckdb.DuckDBPyConnection:
    """One in-memory database a process, with the macros: opening one costs ~15 ms, a cursor on it microseconds
    (a shard step runs a dozen queries). Keyed by pid: a forked child opens its own."""
    con = duckdb.connect(":memory:")
    con.execute(sql_path("macros").read_text())
    return con


@contextmanager
def _connection(
    tables: dict[str, TableInput], memory_limit: str | None, temp_directory: str | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    if memory_limit or temp_directory:  # settings are the database's: a bounded query gets a database of its own
        opened = duckdb.connect(":memory:")
        if memory_limit:
            opened.execute("SET memory_limit = ?", [memory_limit])
        if temp_directory:
            opened.execute("SET temp_directory = ?", [temp_directory])
        opened.execute(sql_path("macros").read_text())
    else:
        opened = _shared_database(os.getpid()).cursor()
    with opened as con:
        for table_name, source in tables.items():
            _bind(con, table_name, source)
        yield con


def run_sql(
    name: str,
    tables: dict[str, TableInput],
    params: dict[str, Any] | None = None,
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> pl.DataFrame:
    """Run ``sql/<name>.sql`` with ``tables`` bound by name; returns the result as Polars."""
    with _connection(tables, memory_limit, temp_directory) as con:
        return con.sql(sql_path(name).read_text(), params=params or None).pl()


def copy_sql(
    name: str,
    tables: dict[str, TableInput],
    out_path: str,
    params: dict[str, Any] | None = None,
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> None:
    """Run ``sql/<name>.sql`` and stream its rows into a zstd parquet file (DuckDB ``COPY``):
    the result never has to fit in memory (lineage at tens of millions of videos)."""
    query = sql_path(name).read_text().strip().rstrip(";")
    with _connection(tables, memory_limit, temp_directory) as con:
        # COPY takes no parameter for its target; the path is ours (a staging file), quoted as a literal.
        target = out_path.replace("'", "''")
        con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)", params or None)
