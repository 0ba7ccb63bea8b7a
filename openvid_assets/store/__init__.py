"""Shard tables on a local folder or S3, and the DuckDB runner for sql/.

Never imports Dagster: usable from notebooks and scripts as well as from assets. The names below load their
module on first use, so code that only needs the byte layer (``store.files``) does not import Polars or DuckDB.
"""

from importlib import import_module
from typing import Any

_MODULE_OF = {
    "FileSystem": "files",
    "LocalFileSystem": "files",
    "S3FileSystem": "files",
    "is_s3_uri": "files",
    "split_s3_uri": "files",
    "TableStore": "tables",
    "copy_sql": "sql",
    "run_sql": "sql",
    "sql_path": "sql",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
