"""The caption filter learned from people's labels: fitted on captions tagged "bad caption" or labelled good,
applied to every caption (global, after captioning). Its rule ``filters.caption_quality`` (off by default)
leaves the clips it drops out of lineage's counts and the exports."""

import hashlib
import json

import polars as pl
from dagster import AssetExecutionContext, DataVersion, Failure, MaterializeResult, asset

from openvid_assets.assets.clips import CAPTIONS, captions
from openvid_assets.assets.labels import labels, latest_labels
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import GLOBAL_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.store import TableStore, run_sql

CAPTION_SCORES, GLOBAL = "caption_scores", "global"
CAPTION_MODEL_FILE = "models/caption_filter.json"  # under the data root: the weights as JSON, never a pickle
CAPTION_SCORES_SCHEMA = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "caption_quality": pl.Float64,
    "reason": pl.String,
}


def _fit_caption_filter(tables: TableStore, judged: pl.DataFrame, shards: list[str]) -> tuple[object | None, str, int]:
    from openvid_assets.curation.calibration import CalibrationError, CaptionFilter

    if judged.is_empty() or not shards:
        return None, "no labelled captions yet: tag bad captions on the review page (openvid-assets review)", 0
    training = run_sql("caption_labels", {"labels": judged, "captions": tables.scan_source(CAPTIONS, shards)})
    try:
        return (
            CaptionFilter().fit(training["caption"].to_list(), training["good"].to_numpy()).linear(),
            "",
            training.height,
        )
    except CalibrationError as e:
        return None, str(e), training.height


@asset(
    **GLOBAL_STEP,
    deps=[captions, labels, recipe_key("filters")],
    group_name="filters",
    code_version="1",
    kinds={"scikitlearn", "duckdb", "parquet"},
    description="The caption filter: TF-IDF and a logistic regression fitted on captions people tagged 'bad "
    "caption' or labelled good (cross-validated; models/caption_filter.json), then P(good caption) of every "
    "caption, judged by filters.caption_quality: lineage and the exports leave out the clips it drops.",
)
def caption_scores(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    from openvid_assets.curation.calibration import latest_judgements

    tables, recipe = store.tables(), store.recipe().recipe
    saved, _ = latest_labels(tables)
    shards = tables.shards(CAPTIONS)
    model, reason, used = _fit_caption_filter(
        tables, latest_judgements(saved).select("reviewer", "item", "label", "tags"), shards
    )
    tables.fs.put(
        CAPTION_MODEL_FILE,
        json.dumps({"model": model.to_dict() if model else None, "reason": reason, "labels": used}).encode(),
    )
    rule_on = recipe.filters.caption_quality != "off"
    if model is None and rule_on:
        raise Failure(
            description=f"filters.caption_quality is {recipe.filters.caption_quality!r} but there is no "
            f"caption filter: {reason}",
            allow_retries=False,
        )
    if model is None:
        table = pl.DataFrame(schema=CAPTION_SCORES_SCHEMA)
    else:
        ok = run_sql("ok_captions", {"captions": tables.scan_source(CAPTIONS, shards)})
        scored = ok.select("clip_id", "video_id").with_columns(
            caption_quality=pl.Series(model.predict(ok["caption"].to_list()), dtype=pl.Float64)
        )
        table = run_sql("caption_verdicts", {"scored": scored, "filters": recipe.content_rules()})
    tables.write(CAPTION_SCORES, GLOBAL, table)
    dropped = table.filter(pl.col("reason").is_not_null())
    # Downstream cares about which clips are dropped, and by which filter.
    version = hashlib.sha256(json.dumps([model.digest if model else reason, dropped["clip_id"].to_list()]).encode())
    report = {k: round(v, 3) if isinstance(v, float) else v for k, v in (model.report if model else {}).items()}
    return MaterializeResult(
        metadata={
            "fitted": model is not None,
            "reason": reason,
            "labelled_captions": used,
            "scored": table.height,
            "dropped": dropped.height,
            "rule": recipe.filters.caption_quality,
            "cross_validation": markdown_table(pl.DataFrame([report])) if report else "not fitted",
        },
        data_version=DataVersion(version.hexdigest()[:16]),
    )
