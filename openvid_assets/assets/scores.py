"""Per-shard quality scores: CLIP frame embeddings, aesthetics, temporal consistency, motion, clarity.

Each asset reads its shard's upstream table, calls one function of
``models.shards.scores``, writes its table atomically and attaches metadata.
"""

import json
import time

import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.policies import IO_STEP, MODEL_STEP
from openvid_assets.assets.progress import progress_callback
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import ModelsResource, OpenVidStore
from openvid_assets.assets.shards import each_shard, shards_partitions, source_of
from openvid_assets.media.sources import local_file
from openvid_assets.media.tasks import OpenVideo
from openvid_assets.models.scorers.base import VideoScorer
from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.rows import ShardRows
from openvid_assets.store.selection import Rule
from openvid_assets.store.shards import ShardRegistry

EMBEDDINGS = "frame_embeddings"


def _video_opener(store: OpenVidStore, tables: TableStore, shard: str) -> OpenVideo:
    root = ShardRegistry(tables).members(shard).source_root
    client = store.s3_client_for(root)
    return lambda task: local_file(task.source_uri, root, client)


def _score_metadata(table: pl.DataFrame) -> dict[str, object]:
    """Numbers only: a shard's materialization is one of thousands in the event log (histogram images are on the
    global threshold assets, over every shard)."""
    summary = run_sql("score_summary", {"scores": table}).row(0, named=True)
    identity = table.select("model", "weights_digest", "params").head(1)
    meta: dict[str, object] = {"dagster/row_count": summary["videos"], "ok": summary["ok"], "failed": summary["failed"]}
    for stat in ("mean", "min", "p10", "p50", "p90", "max"):
        if summary[stat] is not None:
            meta[stat] = MetadataValue.float(round(float(summary[stat]), 5))
    if identity.height:
        model, digest, params = identity.row(0)
        meta.update(model=model, weights_digest=digest, params=MetadataValue.json(json.loads(params)))
    return meta


def _write_scores(store: OpenVidStore, name: str, shard: str, result: ShardRows) -> MaterializeResult:
    path = store.tables().write(name, shard, result.table)
    return MaterializeResult(
        metadata={
            **_score_metadata(result.table),
            "computed": result.computed,
            "reused": result.reused,
            "recipe_version": store.recipe().label,
            "path": MetadataValue.path(path),
        }
    )


SHARD_ASSET = {"partitions_def": shards_partitions, "group_name": "scores"}
# clarity_scores reads quality_candidates by name (defined in selection.py, which imports this module).


@asset(
    **SHARD_ASSET,
    **MODEL_STEP,
    deps=[video_manifest, recipe_key("embedding")],
    code_version="2",
    kinds={"pytorch", "parquet"},
    description="CLIP (ViT-L/14) embeddings of the sampled frames of every video, fp16, one row per frame; "
    "shared by aesthetics, temporal consistency and the content filters (one decode, one embedding pass), with "
    "each frame's content measures (picture box, exposure; burnt-in text on the aesthetic frames).",
)
@measured_step
def frame_embeddings(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    return each_shard(context, lambda shard: _embed_shard(context, store, models, shard))


def _embed_shard(
    context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource, shard: str
) -> MaterializeResult:
    from openvid_assets.models.shards.scores import embed_shard

    tables = store.tables()
    result = embed_shard(
        tables.read(MANIFEST, shard),
        models.embedder(store.recipe().recipe.models),
        store.recipe().recipe.models.sampling(),
        _video_opener(store, tables, shard),
        previous=tables.read_if_exists(EMBEDDINGS, shard),
        progress=progress_callback(context, "embedded"),
        workers=models.decode_workers,
        inspector=models.inspector(),
    )
    path = tables.write(EMBEDDINGS, shard, result.table)
    frames = result.table.filter(pl.col("status") == "ok")
    return MaterializeResult(
        metadata={
            "dagster/row_count": result.table.height,
            "videos_ok": frames["video_id"].n_unique(),
            "videos_failed": result.table.filter(pl.col("status") == "failed").height,
            "frames": frames.height,
            "computed": result.computed,
            "reused": result.reused,
            "model": models.embedder(store.recipe().recipe.models).name,
            "weights_digest": models.embedder(store.recipe().recipe.models).weights_digest,
            "recipe_version": store.recipe().label,
            "path": MetadataValue.path(path),
        }
    )


@asset(
    **SHARD_ASSET,
    **MODEL_STEP,
    deps=[frame_embeddings, recipe_key("aesthetic")],
    code_version="1",
    kinds={"pytorch", "parquet"},
    description="LAION aesthetic score per video: mean over the aesthetic frames' CLIP embeddings.",
)
@measured_step
def aesthetic_scores(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    from openvid_assets.models.shards.scores import aesthetic_scores as compute_aesthetic

    tables, m = store.tables(), store.recipe().recipe.models

    def one(shard: str) -> MaterializeResult:
        table = compute_aesthetic(tables.read(EMBEDDINGS, shard), models.aesthetic(m), m.sampling())
        return _write_scores(store, "aesthetic_scores", shard, ShardRows(table, table.height, 0))

    return each_shard(context, one)


@asset(
    **SHARD_ASSET,
    **IO_STEP,
    deps=[frame_embeddings],
    code_version="1",
    kinds={"parquet"},
    description="Temporal consistency per video: mean CLIP cosine similarity of adjacent sampled frames.",
)
@measured_step
def temporal_scores(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    from openvid_assets.models.shards.scores import temporal_scores as compute_temporal

    tables, sampling = store.tables(), store.recipe().recipe.models.sampling()

    def one(shard: str) -> MaterializeResult:
        table = compute_temporal(tables.read(EMBEDDINGS, shard), sampling)
        return _write_scores(store, "temporal_scores", shard, ShardRows(table, table.height, 0))

    return each_shard(context, one)


def _per_video_asset(
    context: AssetExecutionContext,
    store: OpenVidStore,
    models: ModelsResource,
    name: str,
    scorer: VideoScorer,
    shard: str,
    only: pl.Series | None = None,
    skip: dict[str, str] | None = None,
) -> MaterializeResult:
    """Score one shard's videos (``only`` these source uris, if given; ``skip``: video id -> why not) with
    ``scorer`` into table ``name``."""
    from openvid_assets.models.shards.scores import score_shard

    tables = store.tables()
    manifest = tables.read(MANIFEST, shard)
    result = score_shard(
        manifest if only is None else manifest.filter(pl.col("source_uri").is_in(only.implode())),
        scorer,
        _video_opener(store, tables, shard),
        previous=tables.read_if_exists(name, shard),
        progress=progress_callback(context, "scored"),
        workers=models.decode_workers,
        skip=skip,
    )
    return _write_scores(store, name, shard, result)


CODEC_MOTION = "codec_motion"
CODEC_SKIP_NOTE = "flow network not run"  # ends the reason of every video the codec-motion rule drops


@asset(
    **SHARD_ASSET,
    **IO_STEP,
    deps=[video_manifest],
    code_version="1",
    kinds={"pyav", "parquet"},
    description="Motion per video from the compressed stream's motion vectors (no optical flow): mean magnitude "
    "and the minimum over 256 px patches, in picture long sides per second; a stream without vectors says so. "
    "The recipe's selection.codec_motion rule keeps clearly static or far too fast videos from the flow network.",
)
@measured_step
def codec_motion(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    from openvid_assets.media.codec_motion import CodecMotionSettings
    from openvid_assets.models.shards.scores import NO_VECTORS, codec_motion_shard

    tables = store.tables()

    def one(shard: str) -> MaterializeResult:
        result = codec_motion_shard(
            tables.read(MANIFEST, shard),
            _video_opener(store, tables, shard),
            CodecMotionSettings(),
            previous=tables.read_if_exists(CODEC_MOTION, shard),
            progress=progress_callback(context, "read"),
            workers=models.decode_workers,
        )
        written = _write_scores(store, CODEC_MOTION, shard, result)
        no_vectors = int((result.table["status"] == NO_VECTORS).sum())
        return MaterializeResult(metadata={**written.metadata, "no_vectors": no_vectors})

    return each_shard(context, one)


def codec_skips(tables: TableStore, shard: str, rule: Rule) -> dict[str, str]:
    """video id -> why the recipe's codec-motion rule keeps it from the flow network (none when the rule is off)."""
    if rule.kind == "off":
        return {}
    found = run_sql(
        "codec_skips",
        {"codec": tables.scan_source(CODEC_MOTION, [shard])},
        {**_bounds(rule), "description": rule.describe(), "note": CODEC_SKIP_NOTE},
    )
    return dict(zip(found["video_id"], found["reason"]))


def _bounds(rule: Rule) -> dict[str, float | None]:
    params = rule.sql_params()
    return {"lower": params["lower_abs"], "upper": params["upper_abs"]}


@asset(
    **SHARD_ASSET,
    **MODEL_STEP,
    deps=[video_manifest, codec_motion, recipe_key("motion")],
    code_version="1",
    kinds={"opencv", "parquet"},
    description="Motion per video: mean optical-flow magnitude (px/frame at a fixed working size), "
    "plus the mean flow vector and divergence for camera-motion labels. Videos the codec-motion rule "
    "(selection.codec_motion, off by default) finds clearly static or far too fast are 'skipped' rows, not scored.",
)
@measured_step
def motion_scores(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    recipe = store.recipe().recipe
    scorer, rule, tables = models.motion(recipe.models), recipe.selection.codec_rule(), store.tables()

    def one(shard: str) -> MaterializeResult:
        skip = codec_skips(tables, shard, rule)
        started = time.perf_counter()
        result = _per_video_asset(context, store, models, "motion_scores", scorer, shard, skip=skip)
        if not skip:
            return result
        # What the skipped videos would have cost, at this shard's measured seconds per scored video.
        per_video = (
            (time.perf_counter() - started) / result.metadata["computed"] if result.metadata["computed"] else None
        )
        saved = MetadataValue.float(round(per_video * len(skip), 2)) if per_video else None
        return MaterializeResult(
            metadata={**result.metadata, "skipped_by_codec": len(skip), "network_seconds_saved": saved}
        )

    return each_shard(context, one)


@asset(
    **SHARD_ASSET,
    **MODEL_STEP,
    deps=[video_manifest, AssetKey("quality_candidates"), recipe_key("clarity"), recipe_key("sources")],
    code_version="1",
    kinds={"opencv", "parquet"},
    description="Clarity per candidate video (only S_A ∩ S_T ∩ S_M, as in the paper): technical sharpness.",
)
@measured_step
def clarity_scores(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    tables, recipe = store.tables(), store.recipe().recipe
    scorer = models.clarity(recipe.models)

    def one(shard: str) -> MaterializeResult:
        candidates = tables.read("quality_candidates", shard).filter(pl.col("candidate"))
        if not recipe.source(source_of(tables, shard)).applies("clarity"):
            candidates = candidates.clear()  # the source skips clarity (the recipe): nothing to score
        return _per_video_asset(context, store, models, "clarity_scores", scorer, shard, only=candidates["source_uri"])

    return each_shard(context, one)
