"""People's labels as an observed source: what the review page saved (labels/ under the data root, written
outside any run). Like the recipe, its data version is recorded before runs (``record_labels``): new labels
make the thresholds fitted from them stale, and nothing else."""

import hashlib
import warnings

import polars as pl
from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DagsterInstance,
    DataVersion,
    ObserveResult,
    multi_observable_source_asset,
)

from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.recipe import DATA_VERSION_TAG
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.labels import LabelStore

LABELS_KEY = AssetKey("labels")
warnings.filterwarnings("ignore", message=r"Function `multi_observable_source_asset` is currently in beta")


def labels_version(tables: TableStore) -> str:
    """Parts are never rewritten, so their names identify every label saved."""
    return hashlib.sha256("\n".join(LabelStore(tables.fs).parts()).encode()).hexdigest()[:16]


def latest_labels(tables: TableStore) -> tuple[pl.DataFrame, list[str]]:
    """Each reviewer's latest label of each item for each score, and the parts that could not be read."""
    saved, problems = LabelStore(tables.fs).read()
    return saved.unique(["reviewer", "item", "score"], keep="last", maintain_order=True), problems


def _metadata(tables: TableStore) -> dict[str, object]:
    latest, problems = latest_labels(tables)
    return {
        "labels": latest.height,
        "reviewers": latest["reviewer"].n_unique(),
        "unreadable_parts": len(problems),
        "counts": markdown_table(run_sql("label_summary", {"labels": latest})),
        "agreement": markdown_table(run_sql("label_agreement", {"labels": latest})),
    }


def record_labels(instance: DagsterInstance, tables: TableStore) -> None:
    """Record the labels' data version in the instance (a runless observation) when it changed."""
    version = labels_version(tables)
    latest = instance.get_latest_data_version_record(LABELS_KEY)
    known = latest.asset_observation.tags.get(DATA_VERSION_TAG) if latest and latest.asset_observation else None
    if known != version:
        instance.report_runless_asset_event(
            AssetObservation(asset_key=LABELS_KEY, tags={DATA_VERSION_TAG: version}, metadata=_metadata(tables))
        )


# The multi form (one spec) is an asset definition like the recipe's, not a bare SourceAsset.
@multi_observable_source_asset(
    specs=[
        AssetSpec(
            LABELS_KEY,
            group_name="review",
            description="People's labels "
            "from the review page (labels/ under the data root, append-only): "
            "counts per score and label, agreement between reviewers.",
        )
    ]
)
def labels(store: OpenVidStore):
    tables = store.tables()
    yield ObserveResult(
        asset_key=LABELS_KEY, data_version=DataVersion(labels_version(tables)), metadata=_metadata(tables)
    )
