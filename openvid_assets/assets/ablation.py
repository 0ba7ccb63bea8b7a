"""The paper's data ablation (Table 9) as assets: each recipe variant's training set, MVDiT run, samples and scores.

Per shard (``ablation`` group, asked for, never automatic): the variants' members in SQL from the score tables
the recipe wrote (``ablation_pool``), clarity of the members the recipe never scored (``ablation_clarity``), and
clips, captions and latents of the members the recipe did not select (``ablation_clips``, ``ablation_captions``,
``ablation_latents``): the recipe's own tables are never touched. Per variant (static partitions, named in
``OPENVID_ABLATION_VARIANTS``): a training run of the same budget, initialisation and seed on that variant's clips
(``ablation_training``), samples of the same prompts with the same seed (``ablation_samples``) and their scores
(``ablation_eval``). ``ablation_report`` lays them out as Table 9.
"""

from pathlib import Path

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
)

from openvid_assets import settings
from openvid_assets.assets.clips import caption_clips, clip_videos, clips as recipe_clips
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import (
    ASKED_GLOBAL_STEP,
    ASKED_IO_STEP,
    ASKED_MODEL_STEP,
    ASKED_SQL_STEP,
    ONE_PARTITION_PER_RUN,
    TRAINING_STEP,
)
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import ModelsResource, MVDiTResource, OpenVidStore
from openvid_assets.assets.scores import _per_video_asset, clarity_scores, motion_scores
from openvid_assets.assets.selection import (
    CANDIDATES,
    CLARITY_THRESHOLD,
    SELECTED,
    all_shards,
    clarity_threshold,
    quality_candidates,
    selected_videos,
    source_thresholds,
)
from openvid_assets.assets.shards import shards_partitions, source_of
from openvid_assets.assets.training import (
    EVAL_PROMPTS,
    LATENTS,
    encode_latents,
    eval_prompts,
    evaluate_run,
    held_out,
    latents_key,
    mvdit_latents,
    sample_run,
    samples_folder,
    samples_scored_spec,
    train_run,
)
from openvid_assets.mvdit.ablation import parse_variants, variants_frame
from openvid_assets.charts import bars_png, inline_png
from openvid_assets.store import TableStore, run_sql

GROUP = "ablation"
POOL, CLARITY, CLIPS, CAPTIONS = "ablation_pool", "ablation_clarity", "ablation_clips", "ablation_captions"
ABLATION_LATENTS, RUNS, EVALS = "ablation_latents", "ablation_runs", "ablation_eval"
VARIANTS = parse_variants(settings.ablation_variants())  # a bad name stops the code location from loading
ablation_variants = StaticPartitionsDefinition([v.name for v in VARIANTS])
SHARD = {"partitions_def": shards_partitions, "group_name": GROUP, "code_version": "1"}
VARIANT = {
    "partitions_def": ablation_variants,
    "group_name": GROUP,
    "code_version": "1",
    **TRAINING_STEP,
    "backfill_policy": ONE_PARTITION_PER_RUN,
}  # one variant per run


def shard_members(store: OpenVidStore, tables: TableStore, shard: str, clarity_known: bool = True) -> pl.DataFrame:
    """(variant, filters, video_id, source_uri) of one shard (sql/ablation_members.sql); ``clarity_known``
    False: as if every video passed clarity (which videos a variant with clarity needs scored)."""
    from openvid_assets.models.shards.tables import SCORE_SCHEMA

    scored = [
        t.select(list(SCORE_SCHEMA))
        for t in (tables.read_if_exists("clarity_scores", shard), tables.read_if_exists(CLARITY, shard))
        if t is not None
    ]
    return run_sql(
        "ablation_members",
        {
            "candidates": tables.read(CANDIDATES, shard),
            "variants": variants_frame(VARIANTS),
            "clarity": pl.concat(scored) if scored else pl.DataFrame(schema=SCORE_SCHEMA),
            "thresholds": source_thresholds(tables, CLARITY_THRESHOLD, shard),
        },
        {
            "clarity_applied": store.recipe().recipe.source(source_of(tables, shard)).applies("clarity"),
            "clarity_known": clarity_known,
        },
    )


@asset(
    **SHARD,
    **ASKED_MODEL_STEP,
    deps=[quality_candidates, clarity_scores, clarity_threshold, recipe_key("clarity"), recipe_key("sources")],
    kinds={"pytorch", "parquet"},
    description="Clarity of the videos a variant with the clarity filter would keep that the recipe never scored "
    "(clarity is scored on S_A ∩ S_T ∩ S_M only): the same scorer, a table of its own.",
)
def ablation_clarity(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    tables, shard = store.tables(), context.partition_key
    needed = shard_members(store, tables, shard, clarity_known=False).filter(
        pl.col("variant").is_in([v.name for v in VARIANTS if "clarity" in v.filters])
    )
    scored = tables.read(CANDIDATES, shard).filter(pl.col("candidate"))["source_uri"]
    only = needed.filter(~pl.col("source_uri").is_in(scored.implode()))["source_uri"].unique()
    return _per_video_asset(
        context, store, models, CLARITY, models.clarity(store.recipe().recipe.models), shard, only=only
    )


@asset(
    **SHARD,
    **ASKED_SQL_STEP,
    deps=[quality_candidates, clarity_scores, ablation_clarity, clarity_threshold],
    kinds={"duckdb", "parquet"},
    description="Which videos of the shard each ablation variant keeps: the recipe's cut lines applied filter by "
    "filter (sql/ablation_members.sql), with the filters each variant used.",
)
def ablation_pool(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    tables, counts = store.tables(), {v.name: 0 for v in VARIANTS}
    for shard in context.partition_keys:  # a backfill hands this SQL step every shard in one run
        table = shard_members(store, tables, shard)
        tables.write(POOL, shard, table)
        for variant, n in table.group_by("variant").len().iter_rows():
            counts[variant] += n
    return MaterializeResult(
        metadata={"dagster/row_count": sum(counts.values()), **counts, "shards": len(context.partition_keys)}
    )


@asset(
    **SHARD,
    **ASKED_IO_STEP,
    deps=[
        ablation_pool,
        selected_videos,
        recipe_clips,
        recipe_key("clips"),
        recipe_key("filters"),
        recipe_key("sources"),
    ],
    kinds={"ffmpeg", "parquet"},
    description="Clips of the variants' videos that the recipe did not select (the recipe's clip settings; "
    "the selected videos' clips are the recipe's own).",
)
def ablation_clips(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    tables, shard = store.tables(), context.partition_key
    selected = tables.read(SELECTED, shard).filter(pl.col("selected"))["source_uri"]
    others = tables.read(POOL, shard).filter(~pl.col("source_uri").is_in(selected.implode()))["source_uri"].unique()
    return clip_videos(context, store, models, shard, others.sort(), CLIPS)


@asset(
    **SHARD,
    **ASKED_MODEL_STEP,
    deps=[ablation_clips, motion_scores, recipe_key("captions"), recipe_key("sources")],
    kinds={"pytorch", "parquet"},
    description="Captions of the ablation's own clips (the recipe's caption model and settings).",
)
def ablation_captions(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    return caption_clips(context, store, models, context.partition_key, CLIPS, CAPTIONS)


@asset(
    **SHARD,
    **ASKED_MODEL_STEP,
    deps=[ablation_captions],
    kinds={"pytorch", "parquet"},
    description="MVDiT latents of the ablation's own captioned clips (as mvdit_latents).",
)
def ablation_latents(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    return encode_latents(context, store, mvdit, CLIPS, CAPTIONS, ABLATION_LATENTS)


def _directory(store: OpenVidStore, mvdit: MVDiTResource, variant: str) -> Path:
    return mvdit.checkpoints(store.tables(), store.recipe().recipe.models.profile) / "ablation" / variant


def _folder(store: OpenVidStore, mvdit: MVDiTResource, variant: str) -> str:
    return f"{samples_folder(store, mvdit)}/ablation/{variant}"


# A variant's run reads every shard's tables.
EVERY_SHARD = [
    AssetDep(a, partition_mapping=AllPartitionMapping()) for a in (ablation_pool, ablation_latents, mvdit_latents)
]


@asset(
    **VARIANT,
    deps=[*EVERY_SHARD, eval_prompts],
    kinds={"pytorch", "duckdb"},
    description="An MVDiT run on one variant's clips (sql/ablation_training_clips.sql, held-out prompts left "
    "out): the mvdit resource's budget, initialisation and seed, the same for every variant.",
)
def ablation_training(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    from openvid_assets.mvdit.train import latest_checkpoint

    tables, variant = store.tables(), context.partition_key
    if not tables.exists(EVAL_PROMPTS, "global"):  # else the held-out clips could be trained on
        raise Failure("no evaluation prompts yet: materialize eval_prompts first", allow_retries=False)
    shape = mvdit.shape(store.recipe().recipe.models.profile)
    members = all_shards(tables, POOL)
    clips = run_sql(
        "ablation_training_clips",
        {
            "members": members,
            "latents": all_shards(tables, LATENTS),
            "ablation_latents": all_shards(tables, ABLATION_LATENTS),
            "held_out": held_out(tables),
        },
        {"variant": variant, **latents_key(shape)},
    )
    (spec,) = [v for v in VARIANTS if v.name == variant]
    directory = _directory(store, mvdit, variant)
    meta = train_run(context, store, mvdit, clips, directory, f"variant {variant}")
    run = pl.DataFrame(
        {
            "variant": [variant],
            "filters": [spec.label],
            "videos": [clips["video_id"].n_unique()],
            "clips": [clips.height],
            "steps": [shape.steps],
            "checkpoint": [latest_checkpoint(directory).stem],
        }
    )
    tables.write(RUNS, variant, run)
    return MaterializeResult(metadata={**meta, "variant": variant, "filters": spec.label, "videos": run["videos"][0]})


@asset(
    **VARIANT,
    deps=[ablation_training, eval_prompts],
    kinds={"pytorch", "mp4"},
    description="One variant's samples: the evaluation prompts, the same seed for every variant.",
)
def ablation_samples(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    variant = context.partition_key
    return sample_run(
        context, store, mvdit, _directory(store, mvdit, variant), _folder(store, mvdit, variant), "ablation_training"
    )


@asset(
    **{**VARIANT, "code_version": "2"},  # 2: the metrics under named definitions (EvalCrafter's)
    deps=[ablation_samples],
    kinds={"pytorch", "duckdb"},
    check_specs=[samples_scored_spec("ablation_eval")],
    description="One variant's samples scored with the paper's metrics (as mvdit_eval).",
)
def ablation_eval(context: AssetExecutionContext, store: OpenVidStore, mvdit: MVDiTResource) -> MaterializeResult:
    variant = context.partition_key
    return evaluate_run(
        context,
        store,
        mvdit,
        _directory(store, mvdit, variant),
        _folder(store, mvdit, variant),
        EVALS,
        variant,
        "ablation_training",
        variant=variant,
    )


def ablation_table(tables: TableStore) -> pl.DataFrame:
    """Table 9: one row per variant (sql/ablation_report.sql); a variant not run yet has empty cells."""
    if not tables.shards(EVALS):
        raise FileNotFoundError("no variant is scored yet: materialize ablation_eval for some variants first")
    variants = variants_frame(VARIANTS).with_row_index("position")
    evals = all_shards(tables, EVALS)
    definitions = run_sql("metric_definitions", {"evals": evals}).rows()
    if len(definitions) > 1 or definitions[0][0] is None:  # two definitions' numbers are not comparable
        found = "; ".join(f"{d or 'none recorded'}: {', '.join(v)}" for d, v in definitions)
        raise ValueError(
            f"the variants were scored with different metric definitions ({found}): rematerialize ablation_eval "
            "for them with one mvdit metrics setting"
        )
    return run_sql("ablation_report", {"variants": variants, "runs": all_shards(tables, RUNS), "evals": evals})


@asset(
    group_name=GROUP,
    code_version="1",
    deps=[ablation_eval],
    kinds={"duckdb", "csv"},
    **ASKED_GLOBAL_STEP,
    description="The ablation as the paper's Table 9: each variant's filters, data size and mean metrics, as a "
    "table and bar charts here and as exports/ablation.csv and exports/ablation.md.",
)
def ablation_report(context: AssetExecutionContext, store: OpenVidStore) -> MaterializeResult:
    from openvid_assets.mvdit.evaluate import METRICS

    tables = store.tables()
    table = ablation_table(tables)
    if table["scored"].fill_null(0).sum() == 0:
        raise Failure("no variant has a scored sample: see ablation_eval's failed rows", allow_retries=False)
    shown = table.select(
        "variant",
        "aesthetic",
        "temporal",
        "motion",
        "clarity",
        "videos",
        "clips",
        *[pl.col(m).round(4) for m in METRICS],
        "scored",
    )
    markdown = markdown_table(shown).value
    tables.write_export("ablation.csv", table)
    tables.fs.put("exports/ablation.md", f"# Data ablation (OpenVid-1M Table 9 layout)\n\n{markdown}\n".encode())
    labels = table["variant"].to_list()
    charts = [inline_png(bars_png(labels, {m: table[m].fill_null(0).to_list()}, m, m), m) for m in METRICS]
    context.log.info(
        f"ablation report: {table.height} variant(s), {int(table['scored'].fill_null(0).sum())} scored sample(s)"
    )
    return MaterializeResult(
        metadata={
            "table": MetadataValue.md(markdown),
            "charts": MetadataValue.md("\n\n".join(charts)),
            "variants": table.height,
            "csv": MetadataValue.path(tables.fs.uri("exports/ablation.csv")),
            "markdown": MetadataValue.path(tables.fs.uri("exports/ablation.md")),
        }
    )
