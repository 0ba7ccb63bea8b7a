"""``recipe_estimate``: what running the data root's sources through the recipe as it stands would take, per source
and step (``openvid-assets estimate``'s numbers, in the UI). Asked for, never automatic: it lists every source."""

import polars as pl
from dagster import AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from openvid_assets.assets.engine import Workers
from openvid_assets.assets.history import ESTIMATE_GROUP, SourceEstimate, estimate_source
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import ASKED_GLOBAL_STEP
from openvid_assets.assets.recipe import recipe_key
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.media.sources import local_folder_missing
from openvid_assets.store.shards import ShardRegistry

GROUP = ESTIMATE_GROUP
REPORT = "exports/estimate/estimate.md"
STEPS = "estimate/steps.parquet"  # under exports/


class EstimateConfig(Config):
    price: float | None = Field(default=None, ge=0, description="price per device-hour, for a cost (none: no cost)")
    sample: int = Field(default=100, ge=1, description="videos of each source probed with ffprobe")
    workers: int | None = Field(default=None, ge=1, description="runs at once (none: one per GPU, else per core)")


def estimated_sources(recipe: object, registry: ShardRegistry) -> dict[str, str]:
    """name -> folder or bucket of every source to estimate: the recipe's declared sources, else the sources of the
    shards already registered (a run's ``--source``)."""
    if recipe.sources:
        return {name: s.uri for name, s in recipe.sources.items()}
    return {name: registry.members(shards[0]).source_root for name, shards in registry.by_source().items()}


@asset(
    **ASKED_GLOBAL_STEP,
    group_name=GROUP,
    deps=[recipe_key(s) for s in ("sources", "selection", "embedding", "motion", "clarity", "captions")],
    code_version="1",
    kinds={"duckdb", "parquet"},
    description="What the data root's sources would take through the recipe as it stands: per source and step, "
    "the videos (or clips) and hours it works on, wall time, device-hours and a cost at the configured price, from "
    "this instance's recorded step costs (else the shipped table) and this data root's pass rates (else the "
    "recipe's); exports/estimate/ (estimate.md, steps.parquet). Sources are listed and a sample probed, no decoding.",
)
def recipe_estimate(context: AssetExecutionContext, config: EstimateConfig, store: OpenVidStore) -> MaterializeResult:
    tables, recipe = store.tables(), store.recipe().recipe
    sources = estimated_sources(recipe, ShardRegistry(tables))
    # Errors of the recipe or the folders, before any source is listed or probed: not retried, they would not pass.
    if not sources:
        raise Failure(
            "no sources to estimate: declare them in the recipe's sources section, or run one first",
            allow_retries=False,
        )
    missing = [f"{name} ({uri})" for name, uri in sources.items() if local_folder_missing(uri)]
    if missing:
        raise Failure(f"no such source folder: {', '.join(missing)}", allow_retries=False)
    machine = Workers.for_machine(config.workers)  # the runs at once: one machine for every source
    found: dict[str, SourceEstimate] = {}
    for name, uri in sources.items():
        found[name] = estimate_source(
            context.instance,
            tables,
            recipe,
            uri,
            store.s3_client_for(uri),
            machine=machine,
            source=name,
            sample=config.sample,
            price=config.price,
        )
    steps = pl.concat(
        [
            e.steps.with_columns(source=pl.lit(name)).select("source", pl.all().exclude("source"))
            for name, e in found.items()
        ]
    )
    report = "# Estimate\n\n" + "\n\n".join(f"## {name}\n\n{e.report()}" for name, e in found.items()) + "\n"
    tables.fs.put(REPORT, report.encode())
    tables.write_export(STEPS, steps)
    per_step = steps.group_by("step", maintain_order=True).agg(
        pl.col("units", "hours", "cpu_s", "wall_s", "device_hours").sum()
    )
    return MaterializeResult(
        metadata={
            "videos": sum(e.survey.videos for e in found.values()),
            "hours": MetadataValue.float(round(sum(e.survey.hours for e in found.values()), 3)),
            "wall_hours": MetadataValue.float(round(sum(e.wall_hours for e in found.values()), 4)),
            "device_hours": MetadataValue.float(round(sum(e.device_hours for e in found.values()), 4)),
            "cpu_hours": MetadataValue.float(round(sum(e.cpu_hours for e in found.values()), 4)),
            **({"cost": MetadataValue.float(round(float(steps["cost"].sum()), 2))} if config.price is not None else {}),
            "per_step": markdown_table(per_step),
            "report": MetadataValue.md(report),
            "path": MetadataValue.path(tables.fs.uri(REPORT)),
        }
    )
