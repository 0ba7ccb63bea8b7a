"""The one Definitions object of the code location (workspace.yaml points here)."""

from __future__ import annotations

import warnings

from dagster import (
    AssetSpec,
    map_asset_specs,
    AssetSelection,
    AutomationConditionSensorDefinition,
    Definitions,
    define_asset_job,
    in_process_executor,
)

from openvid_assets.assets.manifest import video_manifest
from openvid_assets.assets.metadata import column_schema
from openvid_assets.assets.caption_filter import CAPTION_SCORES_SCHEMA
from openvid_assets.assets.filters import DUPLICATES_SCHEMA
from openvid_assets.media.clips import CLIP_SCHEMA
from openvid_assets.media.manifest import MANIFEST_SCHEMA
from openvid_assets.media.previews import PREVIEW_SCHEMA
from openvid_assets.models.shards.tables import (
    CAPTION_CHECK_SCHEMA,
    CAPTION_SCHEMA,
    CODEC_MOTION_SCHEMA,
    CONTENT_SCHEMA,
    EMBEDDING_SCHEMA,
    SCORE_SCHEMA,
)
from openvid_assets.store.selection import THRESHOLDS_SCHEMA
from openvid_assets.assets.scores import (
    aesthetic_scores,
    clarity_scores,
    codec_motion,
    frame_embeddings,
    motion_scores,
    temporal_scores,
)
from openvid_assets.assets.recipe import edit_recipe, recipe
from openvid_assets.assets.resources import default_resources
from openvid_assets.assets.clips import caption_checks, captions, clips
from openvid_assets.assets.card import dataset_card
from openvid_assets.assets.filters import content_scores, near_duplicates
from openvid_assets.assets.labels import labels
from openvid_assets.assets.review import previews
from openvid_assets.assets.lineage import curated_dataset, hd_subset, lineage, quality_tiers
from openvid_assets.assets.versions import recipe_comparison
from openvid_assets.assets.estimate import GROUP as ESTIMATE_GROUP, recipe_estimate
from openvid_assets.assets.selection import clarity_threshold, quality_candidates, score_thresholds, selected_videos
from openvid_assets.assets.sensors import SHARD_JOB, new_videos_sensor
from openvid_assets.assets.shards import shards_partitions
from openvid_assets.assets.suitability import suitability_model, suitability_scores
from openvid_assets.assets.caption_filter import caption_scores
from openvid_assets.assets.training import (
    GROUP as TRAINING_GROUP,
    eval_prompts,
    mvdit_checkpoint,
    mvdit_eval,
    mvdit_latents,
    mvdit_samples,
)
from openvid_assets.assets.ablation import (
    GROUP as ABLATION_GROUP,
    ablation_captions,
    ablation_training,
    ablation_clarity,
    ablation_clips,
    ablation_eval,
    ablation_latents,
    ablation_pool,
    ablation_report,
    ablation_samples,
    ablation_variants,
)

ASSETS = [
    recipe,
    video_manifest,
    frame_embeddings,
    aesthetic_scores,
    temporal_scores,
    codec_motion,
    motion_scores,
    content_scores,
    near_duplicates,
    labels,
    suitability_model,
    suitability_scores,
    score_thresholds,
    quality_candidates,
    clarity_scores,
    clarity_threshold,
    selected_videos,
    clips,
    captions,
    caption_checks,
    previews,
    caption_scores,
    lineage,
    recipe_comparison,
    curated_dataset,
    hd_subset,
    quality_tiers,
    dataset_card,
    recipe_estimate,
    mvdit_latents,
    eval_prompts,
    mvdit_checkpoint,
    mvdit_samples,
    mvdit_eval,
    ablation_clarity,
    ablation_pool,
    ablation_clips,
    ablation_captions,
    ablation_latents,
    ablation_training,
    ablation_samples,
    ablation_eval,
    ablation_report,
]

# Job backfills run one shard per run, the smallest of the assets' policies, as intended (asset
# backfills from the UI follow each asset's own policy); say so once here instead of on every run.
warnings.filterwarnings("ignore", message=r"Asset job .* materializes assets with varying BackfillPolicies")

MATERIALIZED = [a for a in ASSETS if a not in (recipe, labels)]  # observed sources, never materialized
CURATION = [
    a for a in MATERIALIZED if a.group_names_by_key[a.key] not in (TRAINING_GROUP, ABLATION_GROUP, ESTIMATE_GROUP)
]
TRAINING = [a for a in MATERIALIZED if a.group_names_by_key[a.key] == TRAINING_GROUP]
ABLATION = [a for a in MATERIALIZED if a.group_names_by_key[a.key] == ABLATION_GROUP]

shard_pipeline = define_asset_job(
    SHARD_JOB,
    selection=AssetSelection.assets(*[a for a in CURATION if a.partitions_def == shards_partitions]),
    partitions_def=shards_partitions,
    description="Every per-shard curation step for one shard, in dependency order.",
)

GLOBAL_JOB = "global_pipeline"
global_pipeline = define_asset_job(
    GLOBAL_JOB,
    selection=AssetSelection.assets(*[a for a in CURATION if a.partitions_def is None]),
    description="The global steps (thresholds, lineage, exports) over every shard.",
)

TRAINING_SHARD_JOB, TRAINING_JOB = "mvdit_latents_job", "mvdit_training"
mvdit_latents_job = define_asset_job(
    TRAINING_SHARD_JOB,
    selection=AssetSelection.assets(*[a for a in TRAINING if a.partitions_def == shards_partitions]),
    partitions_def=shards_partitions,
    description="Encode one shard's captioned clips for MVDiT (VAE latents, T5 features).",
)
mvdit_training = define_asset_job(
    TRAINING_JOB,
    selection=AssetSelection.assets(*[a for a in TRAINING if a.partitions_def is None]),
    description="Train MVDiT on the curated dataset (resuming from the last checkpoint), then sample from it.",
)

ABLATION_SHARD_JOB, ABLATION_JOB = "ablation_shards", "ablation_variants"
ablation_shards = define_asset_job(
    ABLATION_SHARD_JOB,
    selection=AssetSelection.assets(*[a for a in ABLATION if a.partitions_def == shards_partitions]),
    partitions_def=shards_partitions,
    description="The ablation's per-shard steps for one shard: each variant's members, and clarity, clips, captions "
    "and latents of the members the recipe did not select.",
)
ablation_runs = define_asset_job(
    ABLATION_JOB,
    selection=AssetSelection.assets(*[a for a in ABLATION if a.partitions_def == ablation_variants]),
    partitions_def=ablation_variants,
    description="One ablation variant: train MVDiT on its clips, sample the evaluation prompts, score the samples.",
)


# Declarative automation of curation (see assets/policies.py); off until turned on in the UI, so a
# laptop never starts model runs on its own.
curation_automation = AutomationConditionSensorDefinition(
    "curation_automation",
    target=AssetSelection.assets(*CURATION),
    minimum_interval_seconds=60,
    description="Runs each new shard through every per-shard step and refreshes the global steps when "
    "their inputs change; what is current is never redone.",
)


# Each asset whose table has one fixed schema in the code (motion and clarity add columns by backend, the global
# exports follow their SQL: those have none here).
TABLE_SCHEMAS = {
    "video_manifest": MANIFEST_SCHEMA,
    "frame_embeddings": EMBEDDING_SCHEMA,
    "aesthetic_scores": SCORE_SCHEMA,
    "temporal_scores": SCORE_SCHEMA,
    "codec_motion": CODEC_MOTION_SCHEMA,
    "content_scores": CONTENT_SCHEMA,
    "near_duplicates": DUPLICATES_SCHEMA,
    "score_thresholds": THRESHOLDS_SCHEMA,
    "clips": CLIP_SCHEMA,
    "captions": CAPTION_SCHEMA,
    "caption_checks": CAPTION_CHECK_SCHEMA,
    "previews": PREVIEW_SCHEMA,
    "caption_scores": CAPTION_SCORES_SCHEMA,
}


def with_column_schema(spec: AssetSpec) -> AssetSpec:
    """``spec`` with its table's ``dagster/column_schema``, when the code fixes one."""
    schema = TABLE_SCHEMAS.get(spec.key.path[-1])
    return spec.merge_attributes(metadata={"dagster/column_schema": column_schema(schema)}) if schema else spec


def build_definitions(data_root: str | None = None, mvdit: dict | None = None) -> Definitions:
    """The code location. ``data_root`` only sets the store resource's default (runs launched by the CLI carry
    theirs in run config); everything that decides the dataset is read from the recipe under the data root."""
    return Definitions(
        assets=map_asset_specs(with_column_schema, ASSETS),
        jobs=[
            shard_pipeline,
            global_pipeline,
            mvdit_latents_job,
            mvdit_training,
            ablation_shards,
            ablation_runs,
            edit_recipe,
        ],
        sensors=[new_videos_sensor, curation_automation],
        resources=default_resources(data_root, mvdit),
        # One process per run, its steps in order: parallelism is several runs at once (the run queue), so a
        # shard's steps share loaded models and a run never oversubscribes the cores it was given.
        executor=in_process_executor,
    )


defs = build_definitions()
