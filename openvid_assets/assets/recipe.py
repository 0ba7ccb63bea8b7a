"""The recipe in Dagster: one observable source asset per section, and a job that edits it from the UI.

Each ``recipe/<section>`` asset's data version is that section's version (openvid_assets/recipe.py),
and every step depends on the sections it reads. Dagster's own staleness then covers settings and
models: after the motion backend changes, every shard's ``motion_scores`` is stale (and what reads
it), nothing else is.
"""

import warnings

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    Config,
    DagsterInstance,
    DataVersion,
    MetadataValue,
    ObserveResult,
    OpExecutionContext,
    job,
    multi_observable_source_asset,
    op,
)
from pydantic import Field

from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.recipe import StoredRecipe, describe_change, parse_changes

DATA_VERSION_TAG = "dagster/data_version"  # the tag Dagster reads an observation's data version from
SECTIONS = {
    "embedding": "CLIP model, weights and frame sampling (frame_embeddings)",
    "aesthetic": "LAION aesthetic head on that CLIP (aesthetic_scores)",
    "motion": "motion backend and its weights (motion_scores)",
    "clarity": "clarity backend and its weights (clarity_scores)",
    "selection": "selection rules (score_thresholds, clarity_threshold)",
    "clips": "cut detection and clip writing (clips)",
    "captions": "caption model, prompt and generation (captions)",
    "exports": "quality tiers and score-conditioned captions (curated_dataset, hd_subset, quality_tiers)",
    "filters": "content filters: near-duplicates, exposure, text, NSFW, borders (content_scores, near_duplicates, "
    "quality_candidates, clips)",
    "sources": "named source datasets: their rules, steps and imported metadata (every step they change)",
}
RECIPE_GROUP = "recipe"
# Observable source assets are the documented way to give Dagster a data version it does not compute.
warnings.filterwarnings("ignore", message=r"Function `multi_observable_source_asset` is currently in beta")


def recipe_key(section: str) -> AssetKey:
    if section not in SECTIONS:
        raise KeyError(f"no recipe section {section!r}")
    return AssetKey(["recipe", section])


def _section_metadata(stored: StoredRecipe) -> dict[str, object]:
    return {"recipe_version": stored.label, "recipe": MetadataValue.md(f"```yaml\n{stored.recipe.to_yaml()}```")}


def recipe_observations(stored: StoredRecipe) -> list[AssetObservation]:
    """What observing the recipe records: each section's data version (for the CLI and the edit job)."""
    versions = stored.recipe.sections()
    return [
        AssetObservation(
            asset_key=recipe_key(s), tags={DATA_VERSION_TAG: versions[s]}, metadata=_section_metadata(stored)
        )
        for s in SECTIONS
    ]


def record_recipe(instance: DagsterInstance, stored: StoredRecipe) -> None:
    """Record the recipe's section versions in the instance (runless observations), if any changed."""
    versions = stored.recipe.sections()
    for event in recipe_observations(stored):
        latest = instance.get_latest_data_version_record(event.asset_key)
        known = latest.asset_observation.tags.get(DATA_VERSION_TAG) if latest and latest.asset_observation else None
        if known != versions[event.asset_key.path[-1]]:
            instance.report_runless_asset_event(event)


@multi_observable_source_asset(
    specs=[
        AssetSpec(recipe_key(s), group_name=RECIPE_GROUP, description=f"Recipe section: {d}.")
        for s, d in SECTIONS.items()
    ],
    description="The recipe stored under the data root (recipe/vNNNN.yaml); one data version per section.",
)
def recipe(store: OpenVidStore):
    stored = store.recipe()
    versions = stored.recipe.sections()
    for section in SECTIONS:
        yield ObserveResult(
            asset_key=recipe_key(section),
            data_version=DataVersion(versions[section]),
            metadata=_section_metadata(stored),
        )


class RecipeChanges(Config):
    changes: list[str] = Field(
        description="SECTION.FIELD=VALUE lines, e.g. selection.aesthetic=top:30 or "
        "models.motion_backend=farneback; values are YAML."
    )


@op(description="Validate the changes, store them as the next recipe version and record its section versions.")
def apply_recipe_changes(context: OpExecutionContext, config: RecipeChanges, store: OpenVidStore) -> None:
    current = store.recipe()
    new = current.recipe.updated(parse_changes(config.changes))
    stored, written = store.recipes().save(new)
    for line in describe_change(current.recipe, new) or ["no change"]:
        context.log.info(line)
    context.log.info(f"recipe {stored.label} ({'new' if written else 'unchanged'})")
    for event in recipe_observations(stored):
        context.log_event(event)


@job(
    description="Change the recipe from the UI: launch it with `changes` in the launchpad. Every later run, "
    "whoever launches it, uses the new version; the steps it affects show as stale."
)
def edit_recipe():
    apply_recipe_changes()
