import pytest

from openvid_assets.store import TableStore
from openvid_assets.store.shards import ShardRegistry, shard_index, shard_key


def test_registration_splits_in_order_with_a_short_last_shard(tmp_path):
    registry = ShardRegistry(TableStore(str(tmp_path)))
    assert registry.register("/src", [f"/src/u{i}.mp4" for i in (6, 0, 1, 2, 3, 4, 5)], shard_size=3) == [
        "shard-00000",
        "shard-00001",
        "shard-00002",
    ]
    assert [registry.members(k).uris for k in registry.keys()] == [
        ["/src/u0.mp4", "/src/u1.mp4", "/src/u2.mp4"],
        ["/src/u3.mp4", "/src/u4.mp4", "/src/u5.mp4"],
        ["/src/u6.mp4"],
    ]
    assert registry.register("/src", [], shard_size=3) == []
    with pytest.raises(ValueError):
        registry.register("/src", ["/src/a.mp4"], shard_size=0)


def test_shard_keys_round_trip_and_reject_other_names():
    assert shard_key(42) == "shard-00042" and shard_index("shard-00042") == 42
    with pytest.raises(ValueError):
        shard_index("shard-xyz")


def test_adding_videos_later_creates_new_shards_and_never_reshuffles(tmp_path):
    registry = ShardRegistry(TableStore(str(tmp_path)))
    first = [f"/src/{c}.mp4" for c in "bdfhj"]
    assert registry.register("/src", first, shard_size=2) == ["shard-00000", "shard-00001", "shard-00002"]
    before = {k: registry.members(k).uris for k in registry.keys()}

    # New names sort before, between and after the old ones; old shards must not change.
    later = sorted(first + ["/src/a.mp4", "/src/c.mp4", "/src/z.mp4"])
    assert registry.register("/src", later, shard_size=2) == ["shard-00003", "shard-00004"]
    assert {k: registry.members(k).uris for k in before} == before
    assert registry.members("shard-00003").uris == ["/src/a.mp4", "/src/c.mp4"]
    assert registry.members("shard-00004").uris == ["/src/z.mp4"]
    assert registry.members("shard-00004").source_root == "/src"

    # Every listed video is in exactly one shard; registering again is a no-op.
    all_members = [u for k in registry.keys() for u in registry.members(k).uris]
    assert sorted(all_members) == later
    assert registry.register("/src", later, shard_size=2) == []


def test_killed_registration_resumes_without_duplicates(tmp_path, monkeypatch):
    store = TableStore(str(tmp_path))
    registry = ShardRegistry(store)
    uris = [f"/src/{i:02d}.mp4" for i in range(6)]
    real_write = store.write
    writes = []

    def write_then_die(asset, shard, frame):
        if len(writes) == 1:
            raise KeyboardInterrupt("killed")
        writes.append(shard)
        return real_write(asset, shard, frame)

    monkeypatch.setattr(store, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        registry.register("/src", uris, shard_size=2)
    monkeypatch.undo()
    assert registry.keys() == ["shard-00000"]
    assert registry.register("/src", uris, shard_size=2) == ["shard-00001", "shard-00002"]
    assert [u for k in registry.keys() for u in registry.members(k).uris] == uris


def test_a_long_listing_is_registered_from_a_stream_in_order_and_only_once(tmp_path):
    # A generator, as a source listing streams: 250,000 URIs in no order, some twice.
    def listing(n: int):
        for i in range(n):
            yield f"s3://bucket/raw/{(i * 7919) % n:07d}.mp4"
        yield "s3://bucket/raw/0000000.mp4"

    registry = ShardRegistry(TableStore(str(tmp_path)))
    listed, keys = registry.register_stream("s3://bucket/raw", listing(250_000), shard_size=1000)
    assert listed == 250_001 and len(keys) == 250 and keys[0] == "shard-00000" and keys[-1] == "shard-00249"
    first, last = registry.members(keys[0]), registry.members(keys[-1])
    assert first.uris[:2] == ["s3://bucket/raw/0000000.mp4", "s3://bucket/raw/0000001.mp4"] and len(first.uris) == 1000
    assert last.uris[-1] == "s3://bucket/raw/0249999.mp4"
    # Listing again registers nothing; ten new videos make one new shard after the last.
    assert registry.register_stream("s3://bucket/raw", listing(250_000), shard_size=1000) == (250_001, [])
    more = (f"s3://bucket/raw/{i:07d}.mp4" for i in range(249_995, 250_010))
    assert registry.register_stream("s3://bucket/raw", more, shard_size=1000) == (15, ["shard-00250"])
    assert registry.members("shard-00250").uris == [f"s3://bucket/raw/{i:07d}.mp4" for i in range(250_000, 250_010)]
