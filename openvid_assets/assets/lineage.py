"""Lineage of every input video, and the OpenVid exports (one row per captioned clip).

Both are SQL files in sql/ run by DuckDB over every shard's tables; these assets
bind the tables, write the results atomically and describe them in metadata.
"""

import os

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from openvid_assets.assets.caption_filter import CAPTION_SCORES, CAPTION_SCORES_SCHEMA, caption_scores
from openvid_assets.assets.clips import CAPTION_CHECKS, CAPTIONS, CLIPS, caption_checks, captions, clips
from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import GLOBAL_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.shards import IMPORTED
from openvid_assets.assets.selection import (
    CANDIDATES,
    CLARITY_THRESHOLD,
    GLOBAL,
    SCORE_THRESHOLDS,
    SELECTED,
    all_shards,
    clarity_threshold,
    quality_candidates,
    score_thresholds,
    selected_videos,
)
from openvid_assets.media.clips import CLIP_SCHEMA
from openvid_assets.store.versions import save_version
from openvid_assets.recipe import ExportSettings, Recipe
from openvid_assets.store import TableStore, copy_sql, run_sql
from openvid_assets.store.selection import NOT_APPLIED, THRESHOLDS_SCHEMA
from openvid_assets.store.shards import ShardRegistry

LINEAGE = "lineage"
OPENVID_COLUMNS = [
    "video",
    "caption",
    "aesthetic score",
    "motion score",
    "temporal consistency score",
    "camera motion",
    "frame",
    "fps",
    "seconds",
]


def _not_reached(asset_name: str) -> pl.DataFrame:
    """What lineage reads for a step no shard has reached yet (its videos are then 'pending'): the step's own
    query over empty inputs, so the columns are the step's whatever it adds."""
    from openvid_assets.assets.filters import DUPLICATES_SCHEMA
    from openvid_assets.models.shards.tables import CAPTION_SCHEMA  # torch: only when a step needs the schema
    from openvid_assets.models.shards.tables import CONTENT_SCHEMA
    from openvid_assets.models.shards.tables import CAPTION_CHECK_SCHEMA, CODEC_MOTION_SCHEMA, SCORE_SCHEMA

    def empty(schema: dict) -> pl.DataFrame:
        return pl.DataFrame(schema=schema)

    if asset_name == CANDIDATES:
        scores = {name: empty(SCORE_SCHEMA) for name in ("aesthetic", "temporal", "motion")}
        return run_sql(
            "quality_candidates",
            {
                **scores,
                "content": empty(CONTENT_SCHEMA),
                "codec": empty(CODEC_MOTION_SCHEMA),
                "suitability": empty(SCORE_SCHEMA),
                "duplicates": empty(DUPLICATES_SCHEMA),
                "filters": Recipe().filters.table(),
                "thresholds": empty(THRESHOLDS_SCHEMA),
            },
        )
    if asset_name == SELECTED:
        return run_sql(
            "selected_videos",
            {
                "candidates": _not_reached(CANDIDATES),
                "clarity": empty(SCORE_SCHEMA),
                "thresholds": empty(THRESHOLDS_SCHEMA),
            },
            {"clarity_applied": True},
        )
    return empty({CLIPS: CLIP_SCHEMA, CAPTIONS: CAPTION_SCHEMA, CAPTION_CHECKS: CAPTION_CHECK_SCHEMA}[asset_name])


def _every_shard_or_empty(tables: TableStore, asset_name: str):
    return all_shards(tables, asset_name) if tables.shards(asset_name) else _not_reached(asset_name)


STEPS = ("temporal", "clarity", "clips", "captions")


def shard_sources(tables: TableStore, recipe: Recipe | None = None) -> pl.DataFrame:
    """One row per shard: its named source and the steps the recipe does not apply to it (or null)."""
    rows = []
    for shard, source in ShardRegistry(tables).sources().items():
        settings = recipe.source(source) if recipe is not None else None
        skipped = [step for step in STEPS if settings is not None and not settings.applies(step)]
        rows.append(
            {
                "shard": shard,
                "source": source,
                "not_applied": f"{', '.join(skipped)}: {NOT_APPLIED}" if skipped else None,
            }
        )
    return pl.DataFrame(rows, schema={"shard": pl.String, "source": pl.String, "not_applied": pl.String})


def lineage_inputs(tables: TableStore, recipe: Recipe | None = None) -> dict[str, object]:
    """Every table lineage.sql reads; the threshold tables are stacked into one."""
    thresholds = [
        tables.read(name, GLOBAL) for name in (SCORE_THRESHOLDS, CLARITY_THRESHOLD) if tables.exists(name, GLOBAL)
    ]
    inputs: dict[str, object] = {"manifest": all_shards(tables, MANIFEST), "sources": shard_sources(tables, recipe)}
    for name, asset_name in (
        ("candidates", CANDIDATES),
        ("selected", SELECTED),
        ("clips", CLIPS),
        ("captions", CAPTIONS),
    ):
        inputs[name] = _every_shard_or_empty(tables, asset_name)
    inputs["thresholds"] = (
        pl.concat(thresholds, how="diagonal_relaxed") if thresholds else pl.DataFrame(schema=THRESHOLDS_SCHEMA)
    )
    inputs["caption_verdicts"] = caption_verdicts(tables)
    return inputs


def caption_verdicts(tables: TableStore) -> pl.DataFrame:
    """Every clip a caption rule drops, and why: the caption filter's verdicts (empty before caption_scores has
    run) and the caption checks' drops (sql/caption_drops.sql)."""
    scores = tables.read_if_exists(CAPTION_SCORES, GLOBAL)
    return run_sql(
        "caption_drops",
        {
            "scores": scores if scores is not None else pl.DataFrame(schema=CAPTION_SCORES_SCHEMA),
            "checks": _every_shard_or_empty(tables, CAPTION_CHECKS),
        },
    )


@asset(
    **GLOBAL_STEP,
    deps=[
        video_manifest,
        quality_candidates,
        selected_videos,
        score_thresholds,
        clarity_threshold,
        clips,
        captions,
        caption_checks,
        caption_scores,
    ],
    group_name="selection",
    code_version="3",
    kinds={"duckdb", "parquet"},
    check_specs=[
        AssetCheckSpec(
            "every_video_exactly_once",
            asset="lineage",
            blocking=True,
            description="Every manifest video appears in lineage exactly once.",
        )
    ],
    description="Every input video exactly once: kept (captioned clips in the dataset), dropped (stage, reason) "
    "or failed, with its scores, clip counts and the threshold versions it was judged by. "
    "Also exported as exports/lineage.parquet, and kept per recipe version (tables/lineage_versions/vNNNN, with "
    "the cut lines: tables/threshold_versions) for recipe comparisons.",
)
def lineage(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    tables = store.tables()
    inputs = lineage_inputs(tables, store.recipe().recipe)
    # Streamed by DuckDB straight into parquet: one row per input video must never have to fit in memory.
    with tables.writing(LINEAGE, GLOBAL) as path:
        copy_sql("lineage", inputs, path, temp_directory=os.path.dirname(path))
    export = tables.export_table(LINEAGE, GLOBAL, "lineage.parquet")
    written = tables.scan_source(LINEAGE, [GLOBAL])
    stored = store.recipe()
    if stored.version:  # kept beside every other version's, for recipe comparisons
        save_version(tables, stored.version, tables.scan_source(LINEAGE, [GLOBAL]), inputs["thresholds"])
    check = run_sql("lineage_check", {"manifest": inputs["manifest"], "lineage": written}).row(0, named=True)
    summary = run_sql("lineage_summary", {"lineage": written})
    passed = check["missing"] == 0 and check["duplicated"] == 0 and check["unknown"] == 0
    kept = int(summary.filter(pl.col("status") == "kept")["videos"].sum() or 0)
    return MaterializeResult(
        metadata={
            "dagster/row_count": check["lineage_rows"],
            "where_videos_stopped": markdown_table(summary),
            "kept": kept,
            "recipe_version": stored.label,
            "export": MetadataValue.path(export),
        },
        check_results=[
            AssetCheckResult(
                check_name="every_video_exactly_once", passed=passed, severity=AssetCheckSeverity.ERROR, metadata=check
            )
        ],
    )


IMPORTED_SCHEMA = {"source_uri": pl.String, "caption": pl.String, "category": pl.String, "source_id": pl.String}


def imported_metadata(tables: TableStore) -> pl.DataFrame:
    """Every source's imported metadata rows (source_uri, caption, category, source_id; missing ones null)."""
    frames = [tables.read(IMPORTED, source) for source in tables.shards(IMPORTED)]
    empty = pl.DataFrame(schema=IMPORTED_SCHEMA)
    return pl.concat([empty, *frames], how="diagonal_relaxed").select(*IMPORTED_SCHEMA) if frames else empty


def _export(tables: TableStore, stem: str, hd_only: bool, exporting: ExportSettings) -> MaterializeResult:
    inputs = {
        "lineage": tables.scan_source(LINEAGE, [GLOBAL]),
        "clips": _every_shard_or_empty(tables, CLIPS),
        "captions": _every_shard_or_empty(tables, CAPTIONS),
        "imported": imported_metadata(tables),
        "caption_verdicts": caption_verdicts(tables),
    }
    table = run_sql("openvid_export", inputs, {"hd_only": hd_only, "conditioned": exporting.conditioned_captions})
    csv = tables.write_export(f"{stem}.csv", table.select(OPENVID_COLUMNS))
    parquet = tables.write_export(f"{stem}.parquet", table)
    files = {"csv": MetadataValue.path(csv), "parquet": MetadataValue.path(parquet)}
    if exporting.conditioned_captions:
        conditioned = table.select("video", "conditioned caption", *OPENVID_COLUMNS[1:])
        files["conditioned_csv"] = MetadataValue.path(tables.write_export(f"{stem}_conditioned.csv", conditioned))
    return MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            **files,
            "videos": table["video_id"].n_unique(),
            "hours": round(float(table["seconds"].sum() or 0) / 3600, 4),
        }
    )


EXPORT = {**GLOBAL_STEP, "group_name": "exports", "kinds": {"duckdb", "csv", "parquet"}}


@asset(
    **EXPORT,
    deps=[lineage, recipe_key("exports")],
    code_version="3",
    description="exports/openvid.csv: one row per captioned clip with the OpenVid-1M release columns; "
    "openvid.parquet adds clip ranges, paths, sources and structured captions; openvid_conditioned.csv the "
    "captions with their scores appended (Open-Sora 1.2 style), when the recipe asks.",
)
def curated_dataset(store: OpenVidStore) -> MaterializeResult:
    return _export(store.tables(), "openvid", hd_only=False, exporting=store.recipe().recipe.exports)


@asset(
    **EXPORT,
    deps=[lineage, recipe_key("exports")],
    code_version="3",
    description="exports/openvid_hd.csv/.parquet: the clips of at least 1920x1080 (landscape).",
)
def hd_subset(store: OpenVidStore) -> MaterializeResult:
    return _export(store.tables(), "openvid_hd", hd_only=True, exporting=store.recipe().recipe.exports)


TIERS_DIR = "tiers"


@asset(
    **EXPORT,
    deps=[curated_dataset, recipe_key("exports")],
    code_version="1",
    description="Quality tiers of the curated dataset (MiraData-style): every clip in exactly one tier by the "
    "combined percent rank of the recipe's exports.tier_by scores; exports/tiers/<tier>/openvid.csv and "
    ".parquet, and exports/tiers/tiers.csv with each tier's size and score ranges.",
)
def quality_tiers(store: OpenVidStore) -> MaterializeResult:
    tables, exporting = store.tables(), store.recipe().recipe.exports
    if exporting.tiers == 0:
        return MaterializeResult(metadata={"tiers": 0, "note": "exports.tiers is 0: no tiers written"})
    if not tables.fs.exists("exports/openvid.parquet"):
        raise FileNotFoundError("exports/openvid.parquet does not exist yet: materialize curated_dataset first")
    dataset = pl.read_parquet(tables.fs.get("exports/openvid.parquet"))
    tiered = run_sql("quality_tiers", {"dataset": dataset}, {"tiers": exporting.tiers, **exporting.tier_weights()})
    summary = run_sql("quality_tier_summary", {"tiered": tiered})
    for (tier,), rows in tiered.group_by("tier", maintain_order=True):
        tables.write_export(f"{TIERS_DIR}/{tier}/openvid.csv", rows.select(OPENVID_COLUMNS))
        tables.write_export(f"{TIERS_DIR}/{tier}/openvid.parquet", rows)
    path = tables.write_export(f"{TIERS_DIR}/tiers.csv", summary)
    return MaterializeResult(
        metadata={
            "dagster/row_count": tiered.height,
            "tiers": exporting.tiers,
            "tier_by": ", ".join(exporting.tier_by),
            "sizes": markdown_table(summary),
            "summary": MetadataValue.path(path),
        }
    )
