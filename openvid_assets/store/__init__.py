"""Shard tables on a local folder or S3, and the DuckDB runner for sql/.

Never imports Dagster: usable from notebooks and scripts as well as from assets.
"""

from openvid_assets.store.files import FileSystem, LocalFileSystem, S3FileSystem, is_s3_uri, split_s3_uri
from openvid_assets.store.tables import TableStore
from openvid_assets.store.sql import copy_sql, run_sql, sql_path

__all__ = [
    "FileSystem",
    "LocalFileSystem",
    "S3FileSystem",
    "TableStore",
    "copy_sql",
    "is_s3_uri",
    "run_sql",
    "split_s3_uri",
    "sql_path",
]
