"""What people review: a preview of every scored video and clip (per shard); their labels are assets/labels.py."""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from openvid_assets.assets.clips import CLIPS, clips
from openvid_assets.assets.manifest import MANIFEST, video_manifest
from openvid_assets.assets.measured import measured_step
from openvid_assets.assets.metadata import markdown_table
from openvid_assets.assets.policies import IO_STEP
from openvid_assets.assets.progress import progress_callback
from openvid_assets.assets.resources import ModelsResource, OpenVidStore
from openvid_assets.assets.scores import _video_opener
from openvid_assets.assets.shards import each_shard, shards_partitions
from openvid_assets.media.previews import PreviewSettings, PreviewStore, preview_items, preview_shard
from openvid_assets.media.tasks import video_tasks

PREVIEWS = "previews"


@asset(
    partitions_def=shards_partitions,
    group_name="review",
    **IO_STEP,
    deps=[video_manifest, clips],
    code_version="1",
    kinds={"ffmpeg", "parquet"},
    description="An animated WebP preview (3 s from the middle, 8 fps, long side 256 px) and a poster frame of "
    "every readable video and every clip, made once by ffmpeg under <data root>/previews/<shard>/: what the "
    "review page shows.",
)
@measured_step
def previews(context: AssetExecutionContext, store: OpenVidStore, models: ModelsResource) -> MaterializeResult:
    tables = store.tables()

    def one(shard: str) -> MaterializeResult:
        items = preview_items(video_tasks(tables.read(MANIFEST, shard)), tables.read_if_exists(CLIPS, shard))
        result = preview_shard(
            items,
            _video_opener(store, tables, shard),
            PreviewStore(tables.fs, shard),
            PreviewSettings(),
            previous=tables.read_if_exists(PREVIEWS, shard),
            workers=models.decode_workers,
            progress=progress_callback(context, "previewed"),
        )
        path = tables.write(PREVIEWS, shard, result.table)
        failed = result.table.filter(pl.col("status") != "ok")
        return MaterializeResult(
            metadata={
                "dagster/row_count": result.table.height,
                "videos": int((result.table["kind"] == "video").sum()),
                "clips": int((result.table["kind"] == "clip").sum()),
                "failed": failed.height,
                "failures": markdown_table(failed.select("item", "error").head(10)),
                "computed": result.computed,
                "reused": result.reused,
                "path": MetadataValue.path(path),
            }
        )

    return each_shard(context, one)
