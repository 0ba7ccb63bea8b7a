import shutil

import pytest
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, materialize

from openvid_assets.assets.manifest import video_manifest
from openvid_assets.assets.resources import default_resources
from openvid_assets.assets.sensors import new_videos_sensor
from openvid_assets.assets.shards import shards_partitions, store_new_shards


@pytest.fixture
def source(sample_videos, tmp_path):
    root, specs = sample_videos
    src = tmp_path / "src"
    shutil.copytree(root, src, symlinks=True)
    return src, specs


def test_materializing_a_shard_writes_the_table_and_metadata(source, tmp_path):
    src, specs = source
    resources = default_resources(str(tmp_path / "data"))
    tables = resources["store"].tables()
    listed, keys = store_new_shards(tables, str(src), shard_size=100)
    assert listed == len(specs) and keys == ["shard-00000"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(shards_partitions.name, keys)
        result = materialize([video_manifest], partition_key="shard-00000", instance=instance, resources=resources)
        assert result.success
        (mat,) = result.asset_materializations_for_node("video_manifest")
    meta = {k: v.value for k, v in mat.metadata.items()}
    bad = sum(s.bad for s in specs)
    assert (meta["videos"], meta["ok"], meta["failed"]) == (len(specs), len(specs) - bad, bad)
    assert meta["hours_ok"] == pytest.approx(sum(s.num_frames / s.fps for s in specs if not s.bad) / 3600, rel=0.02)
    assert "1080p | landscape | 1" in meta["resolution_histogram"]
    assert "outside the source root" in meta["failure_reasons"]
    assert tables.read("video_manifest", "shard-00000").height == len(specs)


def test_sensor_registers_new_videos_as_new_shards_once(source, tmp_path, monkeypatch):
    src, specs = source
    monkeypatch.setenv("OPENVID_SOURCE", str(src))
    monkeypatch.setenv("OPENVID_SHARD_SIZE", "10")
    resources = default_resources(str(tmp_path / "data"))
    with DagsterInstance.ephemeral() as instance:

        def tick():
            with build_sensor_context(instance=instance, resources=resources) as ctx:
                return new_videos_sensor(ctx)

        result = tick()
        assert isinstance(result, SensorResult)
        expected = [f"shard-{i:05d}" for i in range((len(specs) + 9) // 10)]
        (request,) = result.dynamic_partitions_requests
        assert list(request.partition_keys) == expected
        assert [r.partition_key for r in result.run_requests] == expected
        instance.add_dynamic_partitions(shards_partitions.name, expected)  # what the daemon does

        assert isinstance(tick(), SkipReason)

        shutil.copy(src / "static.mp4", src / "zz_new_upload.mp4")
        result = tick()
        (request,) = result.dynamic_partitions_requests
        assert list(request.partition_keys) == [f"shard-{len(expected):05d}"]


def test_sensor_requests_runs_in_bounded_batches_across_ticks(source, tmp_path, monkeypatch):
    from openvid_assets.assets import sensors

    src, specs = source
    monkeypatch.setenv("OPENVID_SOURCE", str(src))
    monkeypatch.setenv("OPENVID_SHARD_SIZE", "2")
    monkeypatch.setattr(sensors, "MAX_RUNS_PER_TICK", 5)
    resources = default_resources(str(tmp_path / "data"))
    shards = [f"shard-{i:05d}" for i in range((len(specs) + 1) // 2)]
    requested, cursor = [], None
    with DagsterInstance.ephemeral() as instance:
        for _ in range(len(shards)):
            with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as ctx:
                result = new_videos_sensor(ctx)
            if isinstance(result, SkipReason):
                break
            for request in result.dynamic_partitions_requests:  # what the daemon does
                instance.add_dynamic_partitions(shards_partitions.name, list(request.partition_keys))
            assert len(result.run_requests) <= 5
            requested += [r.partition_key for r in result.run_requests]
            cursor = result.cursor
    assert requested == shards  # every shard once, in order, over several ticks


def test_sensor_without_a_source_skips_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENVID_SOURCE", raising=False)
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(instance=instance, resources=default_resources(str(tmp_path))) as ctx,
    ):
        result = new_videos_sensor(ctx)
    assert isinstance(result, SkipReason) and "OPENVID_SOURCE" in result.skip_message
    assert "no sources" in result.skip_message


def test_sensor_watches_the_recipes_named_sources(tmp_path, monkeypatch):
    from openvid_assets import samples
    from openvid_assets.store import TableStore
    from openvid_assets.store.shards import ShardRegistry
    from openvid_assets_testing.pipeline import store_recipe

    monkeypatch.delenv("OPENVID_SOURCE", raising=False)
    monkeypatch.setenv("OPENVID_SHARD_SIZE", "10")
    folders = {name: tmp_path / name for name in ("web", "clean")}
    for name, folder in folders.items():
        folder.mkdir()
        samples.static(folder, f"{name}.mp4", num_frames=8)
    data = tmp_path / "data"
    store_recipe(str(data), sources={name: {"uri": str(folder)} for name, folder in folders.items()})
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(instance=instance, resources=default_resources(str(data))) as ctx,
    ):
        result = new_videos_sensor(ctx)
    assert isinstance(result, SensorResult) and len(result.run_requests) == 2
    registry = ShardRegistry(TableStore(str(data)))
    assert sorted(registry.sources().values()) == ["clean", "web"]
    assert {registry.members(k).source: registry.members(k).uris[0].rsplit("/", 1)[1] for k in registry.keys()} == {
        "web": "web.mp4",
        "clean": "clean.mp4",
    }
