"""Sensor: new videos in the source become new shards, and each new shard gets a run."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from openvid_assets import settings
from openvid_assets.assets.labels import record_labels
from openvid_assets.assets.recipe import record_recipe
from openvid_assets.assets.resources import OpenVidStore
from openvid_assets.assets.shards import register_source, shards_partitions, unregistered_partitions
from openvid_assets.store.shards import DEFAULT_SOURCE, ShardRegistry

SHARD_JOB = "shard_pipeline"
ADD_BATCH = 1000  # partition keys per add request
MAX_RUNS_PER_TICK = 500


@sensor(
    job_name=SHARD_JOB,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Lists the recipe's sources (or OPENVID_SOURCE); videos not in any shard yet form new shards, "
    "each run once.",
)
def new_videos_sensor(context: SensorEvaluationContext, store: OpenVidStore) -> SensorResult | SkipReason:
    stored = store.recipe()
    # The recipe's named sources, else OPENVID_SOURCE as the one 'default' source.
    watched = [(name, s.uri, s.metadata) for name, s in stored.recipe.sources.items()]
    if not watched and settings.source():
        watched = [(DEFAULT_SOURCE, settings.source(), "")]
    if not watched:
        return SkipReason("the recipe declares no sources and OPENVID_SOURCE is not set: nothing to watch")
    source = ", ".join(uri for _, uri, _ in watched)
    tables = store.tables()
    record_recipe(context.instance, stored)  # a recipe changed by hand or from the UI makes its steps stale
    record_labels(context.instance, tables)  # so do labels saved on the review page
    known = set(context.instance.get_dynamic_partitions(shards_partitions.name))
    listed = sum(
        register_source(tables, uri, settings.shard_size(), store.s3_client(), name=name, metadata=metadata)[0]
        for name, uri, metadata in watched
    )
    # Also picks up shards stored by an earlier tick or command that died before registering them.
    new_keys = unregistered_partitions(tables, context.instance)
    # Runs go out in shard order, at most MAX_RUNS_PER_TICK per tick (20,000 new shards must not become
    # 20,000 queued runs at once); the cursor is the last shard a run was requested for. On the first
    # tick it starts after the shards the instance already knew (the run command may have done them).
    after = context.cursor if context.cursor is not None else max(known, default="")
    waiting = [key for key in ShardRegistry(tables).keys() if key > after]
    batch = waiting[:MAX_RUNS_PER_TICK]
    if not new_keys and not batch:
        return SkipReason(f"no new videos among {listed} listed in {source}")
    return SensorResult(
        run_requests=[RunRequest(partition_key=key, run_key=key) for key in batch],
        # In batches, like register_partitions: each request is one bounded insert by the daemon.
        dynamic_partitions_requests=[
            shards_partitions.build_add_request(new_keys[i : i + ADD_BATCH]) for i in range(0, len(new_keys), ADD_BATCH)
        ],
        cursor=batch[-1] if batch else after,
    )
