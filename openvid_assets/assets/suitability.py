"""The learned suitability filter: fitted once over the pool from people's labels (global), applied to every
video of every shard from its stored embedding and scores (no new model pass). Its rule is the content rule
``filters.suitability`` (off by default), applied in sql/quality_candidates.sql."""

import json

import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.labels import labels, latest_labels
from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import GLOBAL_STEP, SQL_SHARD_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.scores import (
    EMBEDDINGS,
    SHARD_ASSET,
    aesthetic_scores,
    frame_embeddings,
    motion_scores,
    temporal_scores,
)
from openvid_assets.store import TableStore, run_sql

SUITABILITY = "suitability_scores"
MODEL_FILE = "models/suitability.json"  # under the data root: the weights as JSON, never a pickle
SCORE_INPUTS = {"aesthetic": "aesthetic_scores", "temporal": "temporal_scores", "motion": "motion_scores"}


def load_model(tables: TableStore) -> tuple[object | None, str]:
    """(the fitted filter, '') or (None, why there is none)."""
    from openvid_assets.curation.calibration import LinearSuitability

    if not tables.fs.exists(MODEL_FILE):
        return None, "suitability_model has not been materialized"
    stored = json.loads(tables.fs.get(MODEL_FILE))
    return (LinearSuitability.from_dict(stored["model"]), "") if stored["model"] else (None, stored["reason"])


def _inputs(tables: TableStore, shards: list[str]) -> tuple[pl.DataFrame | None, dict[str, pl.DataFrame]]:
    """The frame embeddings and the filter's input scores of the shards that have all of them (None: none has)."""
    names = [EMBEDDINGS, *SCORE_INPUTS.values()]
    complete = [s for s in shards if all(tables.exists(name, s) for name in names)]
    if not complete:
        return None, {}
    embeddings, *scores = (pl.concat([tables.read(name, s) for s in complete]) for name in names)
    return embeddings, dict(zip(SCORE_INPUTS, scores))


@asset(
    **GLOBAL_STEP,
    deps=[labels, video_manifest, frame_embeddings, aesthetic_scores, temporal_scores, motion_scores],
    group_name="filters",
    code_version="1",
    kinds={"scikitlearn", "parquet"},
    description="The learned filter: a logistic regression on the labelled videos' stored CLIP embeddings and "
    "scores, cross-validated (AUC and accuracy with their spread), stored as its weights (models/"
    "suitability.json). Too few labels: no model, and the reason.",
)
def suitability_model(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    from openvid_assets.curation.calibration import CalibrationError, fit_suitability

    tables = store.tables()
    saved, problems = latest_labels(tables)
    judged = saved.filter(pl.col("label").is_in(["good", "bad"])).select("item")
    manifests = tables.shards(MANIFEST)
    shards = (
        run_sql("labelled_shards", {"labels": judged, "manifest": tables.scan_source(MANIFEST, manifests)})[
            "shard"
        ].to_list()
        if judged.height and manifests
        else []
    )
    model, reason, used = None, "", pl.DataFrame()
    try:
        embeddings, scores = _inputs(tables, shards)
        if embeddings is None:
            raise CalibrationError("no labels on videos yet: label videos on the review page (openvid-assets review)")
        model, used = fit_suitability(saved, embeddings, scores)
    except CalibrationError as e:
        reason = str(e)
    stored = {"model": model.to_dict() if model else None, "reason": reason, "labels": used.height}
    tables.fs.put(MODEL_FILE, json.dumps(stored).encode())
    version = model.digest if model else f"unfitted: {reason}"
    context.log.info(f"suitability model: {'fitted on %d labels' % used.height if model else reason}")
    report = {k: round(v, 3) if isinstance(v, float) else v for k, v in (model.report if model else {}).items()}
    return MaterializeResult(
        metadata={
            "fitted": model is not None,
            "reason": reason,
            "labels_used": used.height,
            "unreadable_label_parts": len(problems),
            "shards_read": len(shards),
            "cross_validation": markdown_table(pl.DataFrame([report])) if report else "not fitted",
            "path": MetadataValue.path(tables.fs.uri(MODEL_FILE)),
        },
        data_version=DataVersion(version),
    )


@asset(
    **{**SHARD_ASSET, "group_name": "filters"},
    **SQL_SHARD_STEP,
    code_version="1",
    deps=[suitability_model, frame_embeddings, aesthetic_scores, temporal_scores, motion_scores, recipe_key("filters")],
    kinds={"numpy", "parquet"},
    description="P(good) of every video from the learned filter (its stored embedding and scores); rows say "
    "why when there is no model. Judged by filters.suitability in quality_candidates.",
)
@measured_step
def suitability_scores(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    from openvid_assets.curation.calibration import suitability_rows

    tables, recipe = store.tables(), store.recipe().recipe
    model, reason = load_model(tables)
    if model is None and recipe.filters.suitability != "off":
        raise Failure(
            description=f"filters.suitability is {recipe.filters.suitability!r} but there is no learned "
            f"filter: {reason}",
            allow_retries=False,
        )
    ok = 0
    for shard in context.partition_keys:  # one shard, or the shards a backfill puts in this run
        embeddings, scores = _inputs(tables, [shard])
        if embeddings is None:
            raise FileNotFoundError(
                f"{shard}: frame_embeddings and the aesthetic, temporal and motion scores must be materialized first"
            )
        table = suitability_rows(embeddings, scores, model, reason)
        tables.write(SUITABILITY, shard, table)
        ok += int((table["status"] == "ok").sum())
    return MaterializeResult(
        metadata={
            "ok": ok,
            "model": model.digest if model else f"none ({reason})",
            "shards": len(context.partition_keys),
        }
    )
