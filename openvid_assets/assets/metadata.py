"""Tables in asset metadata shown in the Dagster UI (charts: openvid_assets/charts.py)."""

from __future__ import annotations

import polars as pl
from dagster import AssetSpec, MetadataValue, TableColumn, TableSchema


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


def table_schemas() -> dict[str, dict]:
    """Each asset whose table has one fixed schema in the code, by asset name (motion and clarity add columns by
    backend, the global exports follow their SQL: those have none here)."""
    from openvid_assets.assets.caption_filter import CAPTION_SCORES_SCHEMA
    from openvid_assets.assets.filters import DUPLICATES_SCHEMA
    from openvid_assets.media.clips import CLIP_SCHEMA
    from openvid_assets.media.manifest import MANIFEST_SCHEMA
    from openvid_assets.media.previews import PREVIEW_SCHEMA
    from openvid_assets.models.shards.tables import CAPTION_SCHEMA, CONTENT_SCHEMA, EMBEDDING_SCHEMA, SCORE_SCHEMA
    from openvid_assets.store.selection import THRESHOLDS_SCHEMA

    return {
        "video_manifest": MANIFEST_SCHEMA,
        "frame_embeddings": EMBEDDING_SCHEMA,
        "aesthetic_scores": SCORE_SCHEMA,
        "temporal_scores": SCORE_SCHEMA,
        "content_scores": CONTENT_SCHEMA,
        "near_duplicates": DUPLICATES_SCHEMA,
        "score_thresholds": THRESHOLDS_SCHEMA,
        "clips": CLIP_SCHEMA,
        "captions": CAPTION_SCHEMA,
        "previews": PREVIEW_SCHEMA,
        "caption_scores": CAPTION_SCORES_SCHEMA,
    }


def with_column_schema(spec: AssetSpec) -> AssetSpec:
    """``spec`` with its table's ``dagster/column_schema``, when the code fixes one."""
    schema = table_schemas().get(spec.key.path[-1])
    return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(schema)}) if schema else spec
