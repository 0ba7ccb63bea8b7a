"""Selection in SQL: thresholds (global), S_A ∩ S_T ∩ S_M (per shard), clarity on survivors.

Every computation is a file in sql/ run by DuckDB; these assets bind tables, write results
atomically and describe them in metadata.
"""

from typing import Any

import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.filters import CONTENT, DUPLICATES, content_scores, near_duplicates
from openvid_assets.assets.labels import labels, latest_labels
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import GLOBAL_STEP, SQL_SHARD_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.scores import (
    CODEC_MOTION,
    aesthetic_scores,
    clarity_scores,
    codec_motion,
    motion_scores,
    temporal_scores,
)
from openvid_assets.assets.shards import shards_partitions, source_of
from openvid_assets.assets.suitability import SUITABILITY, suitability_scores
from openvid_assets.charts import histogram_image, pr_curve_image
from openvid_assets.recipe import RecipeError
from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.selection import (
    SCORE_TABLES,
    MixedModelsError,
    Rule,
    SourceThresholds,
    Target,
    require_one_identity,
    thresholds_data_version,
)
from openvid_assets.store.shards import ShardRegistry

GLOBAL = "global"  # the table name of an unpartitioned asset
CANDIDATES, SELECTED = "quality_candidates", "selected_videos"
SCORE_THRESHOLDS, CLARITY_THRESHOLD = "score_thresholds", "clarity_threshold"
QUALITY_SCORES = ("aesthetic", "temporal", "motion")
HISTOGRAM_BINS = 30


def all_shards(tables: TableStore, asset_name: str):
    shards = tables.shards(asset_name)
    if not shards:
        raise FileNotFoundError(f"no {asset_name} tables yet: materialize {asset_name} for some shards first")
    return tables.scan_source(asset_name, shards)


def _thresholds_result(
    context: AssetExecutionContext, store: OpenVidStore, name: str, scores: tuple[str, ...]
) -> MaterializeResult:
    """Compute and store cut lines for ``scores``, per source with that source's rules, unless the same version
    is stored. Refuses (before writing anything) when one score's shards were made by different models."""
    tables, stored = store.tables(), store.recipe()
    try:
        for s in scores:
            require_one_identity(tables, SCORE_TABLES[s], store.data_root)
        by_source = ShardRegistry(tables).by_source()
        rules = {src: stored.recipe.source_rules(src) for src in by_source}
    except (MixedModelsError, RecipeError) as e:
        raise Failure(description=str(e), allow_retries=False) from None
    # Reasons name the source once the recipe names sources.
    fitted = _fitted_cuts(tables, rules)
    plan = SourceThresholds(
        tables,
        scores,
        rules,
        by_source,
        label=bool(stored.recipe.sources),
        fitted={score: (cut.lower, cut.upper, text) for score, (cut, text) in fitted.items()},
    )
    version = plan.version()
    previous = tables.read_if_exists(name, GLOBAL)
    if previous is not None and "source" in previous.columns and set(previous["version"]) == {version}:
        table, changed = previous, False  # same rules, same inputs: keep the file, downstream stays current
    else:
        table, changed = plan.compute(version), True
        tables.write(name, GLOBAL, table)
    images = []
    for row in table.filter(pl.col("rule") != "not applied").iter_rows(named=True):
        source_scores = plan.inputs(row["source"], row["score"])
        if source_scores is None:
            continue
        bins = run_sql("score_histogram", {"scores": source_scores}, {"bins": HISTOGRAM_BINS})
        cuts = {k: row[k] for k in ("lower", "upper") if row[k] is not None}
        images.append(histogram_image(bins, f"{row['score']} ({row['description']})", cuts))
    metadata: dict[str, object] = {
        "version": version,
        "changed": changed,
        "thresholds": markdown_table(table),
        "recipe_version": stored.label,
        "sources": len(by_source),
        "histograms": MetadataValue.md("\n\n".join(images)),
    }
    curves = [
        pr_curve_image(cut.curve, cut.lower, cut.upper, f"{score}: {text}")
        for score, (cut, text) in sorted(fitted.items())
        if score in scores
    ]
    if curves:
        metadata["calibration_curves"] = MetadataValue.md("\n\n".join(curves))
    context.log.info(f"thresholds {version} ({'new' if changed else 'unchanged'})")
    return MaterializeResult(metadata=metadata, data_version=DataVersion(thresholds_data_version(table)))


def _fitted_cuts(tables: TableStore, rules: dict[str, dict[str, Rule | None]]) -> dict[str, tuple[Any, str]]:
    """The cut (curation.calibration.FittedCut, and how it was fitted) of every score some source gives a calibrated
    rule, fitted from the labels (one fit per score and target over every labelled video: the cut is a point on
    the score's scale, the same for every source)."""
    from openvid_assets.curation.calibration import CalibrationError, describe_cut, fit_from_labels

    wanted = {
        (score, rule.target)
        for by_score in rules.values()
        for score, rule in by_score.items()
        if rule is not None and rule.kind == "calibrated"
    }
    if not wanted:
        return {}
    labels, _ = latest_labels(tables)
    fitted = {}
    for score, target in sorted(wanted):
        try:
            if labels.is_empty():
                raise CalibrationError("no labels yet: label samples on the review page (openvid-assets review)")
            values = run_sql(
                "labelled_values",
                {"labels": labels.filter(pl.col("score") == score), "scores": all_shards(tables, SCORE_TABLES[score])},
            )
            cut = fit_from_labels(labels, values, score, Target.parse(target))
            fitted[score] = (cut, describe_cut(cut, Target.parse(target)))
        except CalibrationError as e:
            raise Failure(description=f"{score}: rule calibrated:{target}: {e}", allow_retries=False) from None
    return fitted


def source_thresholds(tables: TableStore, name: str, shard: str) -> pl.DataFrame:
    """The cut lines that judge one shard: its source's rows of a thresholds table."""
    source = source_of(tables, shard)
    table = tables.read(name, GLOBAL)
    return table.filter(pl.col("source") == source) if "source" in table.columns else table


@asset(
    **GLOBAL_STEP,
    deps=[aesthetic_scores, temporal_scores, motion_scores, recipe_key("selection"), recipe_key("sources"), labels],
    group_name="selection",
    code_version="3",
    kinds={"duckdb", "parquet"},
    description="Cut lines for aesthetics, temporal consistency and motion over each source's shards (DuckDB "
    "quantiles, each source with its own rules), versioned by the rules and the input tables.",
)
def score_thresholds(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    return _thresholds_result(context, store, SCORE_THRESHOLDS, QUALITY_SCORES)


def _shard_sql(
    tables: TableStore,
    query: str,
    inputs: dict[str, tuple[str, str] | pl.DataFrame],
    params: dict[str, object] | None = None,
) -> pl.DataFrame:
    """Run a query with each input name bound to one (asset, shard) table, or to a frame given as is."""
    return run_sql(
        query,
        {name: v if isinstance(v, pl.DataFrame) else tables.scan_source(v[0], [v[1]]) for name, v in inputs.items()},
        params,
    )


SHARD = {
    "partitions_def": shards_partitions,
    "group_name": "selection",
    "code_version": "1",
    "kinds": {"duckdb", "parquet"},
}


def shard_candidates(tables: TableStore, shard: str, filters: pl.DataFrame, duplicates: pl.DataFrame) -> pl.DataFrame:
    """One shard's quality_candidates table: its scores and content measures judged by its source's cut lines,
    the content rules (``filters``) and the pool's near-duplicates."""
    from openvid_assets.models.shards.tables import CODEC_MOTION_SCHEMA, SCORE_SCHEMA

    suitability = tables.read_if_exists(SUITABILITY, shard)
    if suitability is None:  # a data root from before the learned filter: nothing to judge unless it is asked for
        if filters.filter(
            (pl.col("measure") == "suitability") & pl.any_horizontal(pl.col("lower", "upper").is_not_null())
        ).height:
            raise FileNotFoundError(f"{shard}: filters.suitability is on: materialize suitability_scores first")
        suitability = pl.DataFrame(schema=SCORE_SCHEMA)
    codec = tables.read_if_exists(CODEC_MOTION, shard)  # none in a data root from before the pre-filter
    return _shard_sql(
        tables,
        "quality_candidates",
        {
            "aesthetic": ("aesthetic_scores", shard),
            "temporal": ("temporal_scores", shard),
            "motion": ("motion_scores", shard),
            "content": (CONTENT, shard),
            "codec": codec if codec is not None else pl.DataFrame(schema=CODEC_MOTION_SCHEMA),
            "duplicates": duplicates,
            "suitability": suitability,
            "filters": filters,
            "thresholds": source_thresholds(tables, SCORE_THRESHOLDS, shard),
        },
    )


@asset(
    **{**SHARD, "code_version": "2"},  # 2: the codec-motion pre-filter's drops and column
    **SQL_SHARD_STEP,
    deps=[
        aesthetic_scores,
        temporal_scores,
        codec_motion,
        motion_scores,
        score_thresholds,
        content_scores,
        near_duplicates,
        suitability_scores,
        recipe_key("filters"),
    ],
    description="S_A ∩ S_T ∩ S_M for one shard, less near-duplicates and videos a content rule drops, with the "
    "reasons each other video fell short.",
)
@measured_step
def quality_candidates(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    tables, rows, candidates, failed, near, content = store.tables(), 0, 0, 0, 0, 0
    filters, duplicates = store.recipe().recipe.content_rules(), tables.read(DUPLICATES, GLOBAL)
    for shard in context.partition_keys:  # one shard, or the shards a backfill puts in this run
        table = shard_candidates(tables, shard, filters, duplicates)
        tables.write(CANDIDATES, shard, table)
        rows, candidates = rows + table.height, candidates + int(table["candidate"].sum())
        failed += table["failure"].is_not_null().sum()
        near += table["duplicate_reason"].is_not_null().sum()
        content += table["content_reason"].is_not_null().sum()
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "candidates": candidates,
            "failed": failed,
            "near_duplicates": near,
            "content_dropped": content,
            "shards": len(context.partition_keys),
        }
    )


@asset(
    **GLOBAL_STEP,
    deps=[clarity_scores, recipe_key("selection"), recipe_key("sources"), labels],
    group_name="selection",
    code_version="3",
    kinds={"duckdb", "parquet"},
    description="Cut line for clarity over the candidates of each source's shards (sources that skip clarity: "
    "'not applied').",
)
def clarity_threshold(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    return _thresholds_result(context, store, CLARITY_THRESHOLD, ("clarity",))


@asset(
    **SHARD,
    **SQL_SHARD_STEP,
    deps=[quality_candidates, clarity_scores, clarity_threshold],
    description="The shard's videos that pass every filter: candidates above the clarity cut.",
)
@measured_step
def selected_videos(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    tables, rows, selected = store.tables(), 0, 0
    for shard in context.partition_keys:  # one shard, or the shards a backfill puts in this run
        applied = store.recipe().recipe.source(source_of(tables, shard)).applies("clarity")
        table = _shard_sql(
            tables,
            "selected_videos",
            {
                "candidates": (CANDIDATES, shard),
                "clarity": ("clarity_scores", shard),
                "thresholds": source_thresholds(tables, CLARITY_THRESHOLD, shard),
            },
            {"clarity_applied": applied},
        )
        tables.write(SELECTED, shard, table)
        rows, selected = rows + table.height, selected + int(table["selected"].sum())
    return MaterializeResult(
        metadata={"dagster/row_count": rows, "selected": selected, "shards": len(context.partition_keys)}
    )
