"""Per-shard clips (cut cascade + ffmpeg) and captions (a vision-language model).

Each asset gathers its shard's inputs, calls one function of ``media.clips`` or
``models.shards.captions``, writes its table atomically and describes it in metadata.
"""

from dataclasses import replace

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.filters import CONTENT, content_scores
from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import IO_STEP, MODEL_STEP
from openvid_assets.assets.progress import progress_callback
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import ModelsResource, OpenVidStore
from openvid_assets.assets.scores import _video_opener, motion_scores
from openvid_assets.assets.selection import SELECTED, selected_videos
from openvid_assets.assets.shards import IMPORTED, each_shard, shards_partitions, source_of
from openvid_assets.media.clips import ClipStore, clip_shard
from openvid_assets.media.tasks import clip_tasks, video_tasks
from openvid_assets.models.shards.content import picture_boxes
from openvid_assets.store.rows import ShardRows

CLIPS, CAPTIONS = "clips", "captions"
SHARD = {"partitions_def": shards_partitions, "group_name": "clips"}


@asset(
    **SHARD,
    **IO_STEP,
    deps=[
        video_manifest,
        selected_videos,
        content_scores,
        recipe_key("clips"),
        recipe_key("filters"),
        recipe_key("sources"),
    ],
    code_version="1",
    kinds={"ffmpeg", "parquet"},
    description="Single-scene clips of every selected video: one decode pass through three PySceneDetect detectors "
    "(hard cuts, slow transitions, fades) and TransNetV2, a cheaper second pass over scenes too long for one "
    "clip, optional CLIP stitching of false cuts, clip rules, and frame-accurate mp4 files under <data root>/clips/.",
)
@measured_step
def clips(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    def one(shard: str) -> MaterializeResult:
        selected = store.tables().read(SELECTED, shard).filter(pl.col("selected"))
        return clip_videos(context, store, models, shard, selected["source_uri"], CLIPS)

    return each_shard(context, one)


def clip_videos(
    context: AssetExecutionContext,
    store: OpenVidStore,
    models: ModelsResource,
    shard: str,
    videos: pl.Series,
    table: str,
) -> MaterializeResult:
    """Cut ``shard``'s ``videos`` (source uris) into clips, written to ``table``: the selected videos for clips,
    the ablation's other videos for ablation_clips."""
    tables, stored = store.tables(), store.recipe()
    tasks = video_tasks(
        tables.read(MANIFEST, shard),
        videos,
        crops=picture_boxes(tables.read(CONTENT, shard)) if stored.recipe.filters.crop_borders else None,
    )
    settings = stored.recipe.clips.build()
    if not stored.recipe.source(source_of(tables, shard)).applies("clips"):
        settings = replace(settings, whole_videos=True)  # the source skips clip extraction (the recipe)
    embedder = (
        models.embedder(stored.recipe.models) if settings.detection.stitch and not settings.whole_videos else None
    )
    settings = settings.stitching_with(embedder) if embedder else settings
    result = clip_shard(
        tasks,
        _video_opener(store, tables, shard),
        ClipStore(tables.fs, shard),
        settings,
        previous=tables.read_if_exists(table, shard),
        progress=progress_callback(context, "clipped"),
        workers=models.decode_workers,
        embedder=embedder,
        shots=models.shots(),
    )
    path = tables.write(table, shard, result.table)
    ok = result.table.filter(pl.col("status") == "ok")
    lengths = (ok["end_s"] - ok["start_s"]) if ok.height else pl.Series([], dtype=pl.Float64)
    return MaterializeResult(
        metadata={
            "dagster/row_count": ok.height,
            "videos": len(tasks),
            "videos_with_clips": ok["video_id"].n_unique(),
            "videos_without_clips": result.table.filter(pl.col("status") == "no_clips").height,
            "videos_failed": result.table.filter(pl.col("status") == "failed").height,
            "clips_cropped": ok.filter(pl.col("crop").is_not_null()).height,
            "clips_from_rescan": ok.filter(pl.col("split").str.starts_with("rescan")).height,
            "clips_split_equally": ok.filter(pl.col("split").str.starts_with("equal")).height,
            "cuts_stitched": int(result.table.unique("video_id")["stitched"].list.len().sum() or 0),
            "clip_hours": round(float(lengths.sum() or 0) / 3600, 4),
            "mean_clip_s": round(float(lengths.mean() or 0), 2),
            "computed": result.computed,
            "reused": result.reused,
            "mode": stored.recipe.clips.mode,
            "recipe_version": stored.label,
            "path": MetadataValue.path(path),
        }
    )


@asset(
    **SHARD,
    **MODEL_STEP,
    deps=[clips, video_manifest, motion_scores, recipe_key("captions"), recipe_key("sources")],
    code_version="1",
    kinds={"pytorch", "parquet"},
    description="A caption for every clip from a vision-language model (LLaVA-v1.6-34b in the paper profile), "
    "cleaned, with the camera motion from the motion step; cached by clip, model, prompt and generation settings. "
    "A source with 'captions: keep' keeps its imported captions; 'off' gives empty ones.",
)
@measured_step
def captions(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    return each_shard(context, lambda shard: caption_clips(context, store, models, shard, CLIPS, CAPTIONS))


def caption_clips(
    context: AssetExecutionContext,
    store: OpenVidStore,
    models: ModelsResource,
    shard: str,
    clips_table: str,
    table: str,
) -> MaterializeResult:
    """Caption ``shard``'s clips of ``clips_table`` into ``table`` (captions; ablation_captions)."""
    from openvid_assets.models.shards.captions import (
        camera_labels,
        caption_shard,
        given_caption_rows,
        given_captions,
    )  # torch, transformers: at run time

    tables, stored = store.tables(), store.recipe()
    manifest = tables.read(MANIFEST, shard)
    tasks = clip_tasks(tables.read(clips_table, shard), manifest)
    camera = camera_labels(tables.read_if_exists("motion_scores", shard), manifest)
    source = source_of(tables, shard)
    mode = stored.recipe.source(source).captions
    given, origin = given_captions(tasks, mode, tables.read_if_exists(IMPORTED, source) if mode == "keep" else None)
    generate = [t for t in tasks if t.clip_id not in given]
    captioner = models.captioner(stored.recipe.models) if generate else None  # a large model: only when needed
    result = given_caption_rows(tasks, given, origin, camera)
    if captioner is not None:
        made = caption_shard(
            generate,
            captioner,
            stored.recipe.captions.build(),
            _video_opener(store, tables, shard),
            camera=camera,
            previous=tables.read_if_exists(table, shard),
            progress=progress_callback(context, "captioned"),
            workers=models.decode_workers,
        )
        result = ShardRows(pl.concat([made.table, result.table]), made.computed, made.reused + result.reused)
    path = tables.write(table, shard, result.table)
    ok = result.table.filter(pl.col("status") == "ok")
    sample = ok.select("clip_id", "camera_motion", "caption").head(5)
    return MaterializeResult(
        metadata={
            "dagster/row_count": result.table.height,
            "captioned": ok.height,
            "failed": result.table.height - ok.height,
            "truncated": int(ok["truncated"].sum() or 0),
            "mean_words": round(float(ok["caption"].str.split(" ").list.len().mean() or 0), 1),
            "model": captioner.name if captioner else origin,
            "given": len(given),
            "recipe_version": stored.label,
            "computed": result.computed,
            "reused": result.reused,
            "sample": markdown_table(sample),
            "path": MetadataValue.path(path),
        }
    )


CAPTION_CHECKS = "caption_checks"


@asset(
    **SHARD,
    **MODEL_STEP,
    deps=[captions, clips, video_manifest, recipe_key("embedding"), recipe_key("filters"), recipe_key("sources")],
    code_version="1",
    kinds={"pytorch", "parquet"},
    description="Checks of every caption, no labels needed: empty, too short or long, repeated n-grams or "
    "sentences, cut off at the token limit, another language, boilerplate or refusal, and caption-clip agreement "
    "(the caption's CLIP text embedding against its own clip's frames, compared with the shard's other clips: a "
    "caption attached to the wrong clip). Each a column with its reason; filters.caption_checks, filters.defects "
    "and filters.content_types decide which drop a clip (reason), which lineage and the exports leave out.",
)
@measured_step
def caption_checks(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    from openvid_assets.models.scorers.caption_checks import CHECKS, CaptionCheckSettings
    from openvid_assets.models.shards.caption_checks import CaptionDrops, check_shard

    tables, stored = store.tables(), store.recipe()
    filters, m = stored.recipe.filters, stored.recipe.models
    drops = CaptionDrops(filters.caption_checks, filters.defects, filters.content_types)
    settings = CaptionCheckSettings(language=filters.caption_language or None)

    def one(shard: str) -> MaterializeResult:
        captioned = tables.read(CAPTIONS, shard)
        if not stored.recipe.source(source_of(tables, shard)).applies("captions"):
            captioned = captioned.clear()  # the source has no captions (captions: off): nothing to check
        manifest = tables.read(MANIFEST, shard)
        result = check_shard(
            captioned,
            {t.clip_id: t for t in clip_tasks(tables.read(CLIPS, shard), manifest)},
            models.embedder(m),
            models.text_encoder(m),
            settings,
            drops,
            _video_opener(store, tables, shard),
            previous=tables.read_if_exists(CAPTION_CHECKS, shard),
            progress=progress_callback(context, "checked"),
            workers=models.decode_workers,
        )
        path = tables.write(CAPTION_CHECKS, shard, result.table)
        flagged = {check: int(result.table[check].is_not_null().sum()) for check in CHECKS}
        return MaterializeResult(
            metadata={
                "dagster/row_count": result.table.height,
                "flagged": MetadataValue.json(flagged),
                "dropped": int(result.table["reason"].is_not_null().sum()),
                "drops": ", ".join([*drops.checks, *drops.defects, *drops.content_types]) or "none (flags only)",
                "computed": result.computed,
                "reused": result.reused,
                "path": MetadataValue.path(path),
            }
        )

    return each_shard(context, one)
