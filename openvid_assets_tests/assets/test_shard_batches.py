"""Several shards in one run (OPENVID_SHARDS_PER_RUN): the same tables as one shard a run, a materialization per shard."""

import polars as pl
from dagster import AssetKey, DagsterInstance, materialize

from openvid_assets.assets.resources import default_resources
from openvid_assets.assets.shards import combined_metadata, shards_partitions, store_new_shards
from openvid_assets.definitions import ASSETS
from openvid_assets.samples import smooth_pan, static
from openvid_assets_testing.pipeline import FAST, store_recipe

FIRST_STEPS = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "motion_scores",
    "content_scores",
]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_metadata_of_several_shards_sums_counts_and_keeps_only_what_they_share():
    shards = [
        {"dagster/row_count": 3, "failed": 0, "model": "clip", "mean": 0.5, "path": "a", "sorted": True},
        {"dagster/row_count": 4, "failed": 1, "model": "clip", "mean": 0.7, "path": "b", "sorted": True},
    ]
    assert combined_metadata(shards) == {"dagster/row_count": 7, "failed": 1, "model": "clip", "sorted": True}
    assert combined_metadata([{"sorted": True}, {"sorted": False}]) == {}  # a flag is not a count


def test_one_run_over_three_shards_writes_what_three_runs_write(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        (static if i % 2 else smooth_pan)(src, f"v{i}.mp4", width=64, height=36, num_frames=12, seed=i)
    (src / "broken.mp4").write_bytes(b"not a video")  # a bad video is a row in its shard, never a failed run
    tables = {}
    for layout in ("batched", "one_by_one"):
        resources = default_resources(str(tmp_path / layout))
        store_recipe(str(tmp_path / layout), FAST)
        _, keys = store_new_shards(resources["store"].tables(), str(src), shard_size=1)
        assert len(keys) == 4
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(shards_partitions.name, keys)
            if layout == "batched":
                result = materialize(
                    ASSETS,
                    instance=instance,
                    resources=resources,
                    selection=FIRST_STEPS,
                    tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
                )
                assert result.success
                events = result.get_asset_materialization_events()
                for name in FIRST_STEPS:  # Dagster records every shard of the run
                    mine = [e.materialization for e in events if e.materialization.asset_key == AssetKey(name)]
                    assert sorted(m.partition for m in mine) == keys, name
                    assert mine[0].metadata["shards"].value == 4, name
                manifest_meta = next(
                    e.materialization.metadata
                    for e in events
                    if e.materialization.asset_key == AssetKey("video_manifest")
                )
                assert manifest_meta["dagster/row_count"].value == 4  # summed over the shards
            else:
                for key in keys:
                    assert materialize(
                        ASSETS, instance=instance, resources=resources, selection=FIRST_STEPS, partition_key=key
                    ).success
        store = resources["store"].tables()
        tables[layout] = {name: pl.concat([store.read(name, k) for k in keys]) for name in FIRST_STEPS}
    for name in FIRST_STEPS:
        batched, single = tables["batched"][name], tables["one_by_one"][name]
        volatile = [c for c in batched.columns if c.endswith("_at") or c in ("elapsed_s", "seconds")]
        assert batched.drop(volatile).equals(single.drop(volatile)), name
    assert tables["batched"]["video_manifest"]["status"].to_list().count("failed") == 1
