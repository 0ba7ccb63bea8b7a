"""Tables in asset metadata shown in the Dagster UI (charts: openvid_assets/charts.py)."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema


def markdown_table(frame: pl.DataFrame, empty: str = "_none_") -> MetadataValue:
    if frame.is_empty():
        return MetadataValue.md(empty)
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.iter_rows()]
    return MetadataValue.md("\n".join([header, rule, *rows]))


def column_schema(schema: dict[str, pl.DataType]) -> TableSchema:
    """A table's polars schema as Dagster's ``dagster/column_schema`` (the UI's column list)."""
    return TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in schema.items()])
