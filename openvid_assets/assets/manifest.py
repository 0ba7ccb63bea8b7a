"""``video_manifest``: probe every video of a shard into one table."""

import polars as pl
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from openvid_assets import settings
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import IO_STEP
from openvid_assets.assets.progress import progress_callback
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.shards import each_shard, shards_partitions
from openvid_assets.media.manifest import build_manifest
from openvid_assets.store import run_sql
from openvid_assets.store.shards import ShardRegistry

MANIFEST = "video_manifest"


class ManifestConfig(Config):
    probe_timeout_s: float = Field(
        default=settings.probe_timeout_s(), gt=0, description="Seconds one video may take to probe."
    )
    workers: int = Field(default=0, ge=0, description="Parallel probes; 0 means one per CPU core.")


def manifest_metadata(frame: pl.DataFrame) -> dict[str, object]:
    summary = run_sql("manifest_summary", {MANIFEST: frame}).row(0, named=True)
    resolutions = run_sql("manifest_resolutions", {MANIFEST: frame})
    failures = run_sql("manifest_failures", {MANIFEST: frame}, {"limit": 10})
    return {
        "dagster/row_count": summary["videos"],
        "videos": summary["videos"],
        "ok": summary["ok"],
        "failed": summary["failed"],
        "hours_ok": MetadataValue.float(round(summary["hours_ok"], 4)),
        "gigabytes_ok": MetadataValue.float(round(summary["bytes_ok"] / 1e9, 4)),
        "resolution_histogram": markdown_table(resolutions.drop("min_short_side"), "_no usable videos_"),
        "failure_reasons": markdown_table(failures),
    }


@asset(
    partitions_def=shards_partitions,
    group_name="ingest",
    code_version="1",
    **IO_STEP,
    kinds={"ffmpeg", "parquet"},
    description="One row per video of the shard: content-hash id, probe facts, status and reason.",
)
@measured_step
def video_manifest(context: AssetExecutionContext, config: ManifestConfig, store: OpenVidStore) -> MaterializeResult:
    tables = store.tables()

    def one(shard: str) -> MaterializeResult:
        members = ShardRegistry(tables).members(shard)
        frame = build_manifest(
            members.uris,
            members.source_root,
            members.key,
            s3_client=store.s3_client_for(members.source_root),
            timeout_s=config.probe_timeout_s,
            workers=config.workers or None,
            progress=progress_callback(context, "probed"),
        )
        path = tables.write(MANIFEST, members.key, frame)
        return MaterializeResult(metadata={**manifest_metadata(frame), "path": MetadataValue.path(path)})

    return each_shard(context, one)
