"""Tables in asset metadata shown in the Dagster UI (charts: openvid_assets/charts.py)."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

from openvid_assets.charts import markdown_text


def markdown_table(frame: pl.DataFrame, empty: str = "_none_") -> MetadataValue:
    return MetadataValue.md(markdown_text(frame, empty))


def column_schema(schema: dict[str, pl.DataType]) -> TableSchema:
    """A table's polars schema as Dagster's ``dagster/column_schema`` (the UI's column list)."""
    return TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in schema.items()])
