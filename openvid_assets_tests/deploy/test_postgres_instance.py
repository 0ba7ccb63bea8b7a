"""The Dagster instance at scale: 20,000 shard partitions and real shard runs on a real PostgreSQL server.

Every instance here is a real one: the embedded in-memory one, SQLite files on disk,
and dagster-postgres against the server of ``pgserver.py``. Timings are printed
(run with ``-s``) and recorded as test properties, never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from openvid_assets.assets.shards import register_partitions, shards_partitions, store_new_shards
from openvid_assets.definitions import build_definitions
from openvid_assets_testing.pipeline import FAST, materialize_pipeline, store_recipe
from openvid_assets import samples
from openvid_assets_testing.pgserver import PgParams

N_PARTITIONS = 20_000
BATCH = 1_000
PER_SHARD = [
    "video_manifest",
    "frame_embeddings",
    "aesthetic_scores",
    "temporal_scores",
    "motion_scores",
    "quality_candidates",
    "clarity_scores",
    "selected_videos",
    "clips",
    "captions",
]


def _timing(record_property, name: str, seconds: float) -> None:
    print(f"\nTIMING {name}: {seconds:.2f} s", flush=True)
    record_property(name, round(seconds, 3))


@pytest.fixture(params=["ephemeral", "sqlite", "postgres"])
def any_instance(request, tmp_path):
    """The same test on the in-memory instance, an on-disk SQLite instance and a Postgres instance."""
    if request.param == "ephemeral":
        with DagsterInstance.ephemeral() as instance:
            yield request.param, instance
    elif request.param == "sqlite":
        home = tmp_path / "dagster_home_sqlite"  # no dagster.yaml: Dagster's default, SQLite files in $DAGSTER_HOME
        home.mkdir()
        with DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "SqliteRunStorage"
            yield request.param, instance
    else:
        instance = request.getfixturevalue("pg_instance")
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        yield request.param, instance


def test_registering_20000_shard_partitions_in_batches(any_instance, record_property):
    backend, instance = any_instance
    keys = [f"shard-{i:05d}" for i in range(N_PARTITIONS)]

    started = time.perf_counter()
    added = register_partitions(instance, keys, batch=BATCH)
    _timing(record_property, f"register {N_PARTITIONS} partitions on {backend}", time.perf_counter() - started)
    assert added == keys

    stored = instance.get_dynamic_partitions(shards_partitions.name)
    assert len(stored) == N_PARTITIONS and set(stored) == set(keys)  # all present, none twice
    assert instance.has_dynamic_partition(shards_partitions.name, keys[-1])
    assert shards_partitions.get_partition_keys(dynamic_partitions_store=instance)[:3] == keys[:3]

    started = time.perf_counter()
    assert register_partitions(instance, keys, batch=BATCH) == []  # idempotent
    _timing(record_property, f"re-register {N_PARTITIONS} partitions on {backend}", time.perf_counter() - started)
    assert len(instance.get_dynamic_partitions(shards_partitions.name)) == N_PARTITIONS

    # Overlapping input (old keys, new keys, a key twice): only the new ones are added, once.
    more = [keys[0], "shard-20000", keys[5], "shard-20001", "shard-20000"]
    assert register_partitions(instance, more, batch=1) == ["shard-20000", "shard-20001"]
    assert len(instance.get_dynamic_partitions(shards_partitions.name)) == N_PARTITIONS + 2


def test_register_partitions_rejects_a_non_positive_batch():
    with DagsterInstance.ephemeral() as instance, pytest.raises(ValueError):
        register_partitions(instance, ["shard-00000"], batch=0)


@pytest.fixture
def tiny_source(tmp_path: Path) -> Path:
    """Three small generated videos: shard_size 2 makes two shards."""
    src = tmp_path / "src"
    samples.smooth_pan(src, "a.mp4", num_frames=24)
    samples.static(src, "b.mp4", num_frames=24)
    samples.fast_motion(src, "c.mp4", num_frames=24)
    return src


def _pg_rows(params: PgParams, sql: str) -> list[tuple]:
    conn = psycopg2.connect(
        host=params.hostname, port=params.port, user=params.username, password=params.password, dbname=params.db_name
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_shard_runs_against_the_postgres_instance(tiny_source, tmp_path, pg_instance, pg_database, record_property):
    data = tmp_path / "data"
    store_recipe(str(data), FAST, selection={"thresholds_off": True})  # every video reaches clips and captions
    defs = build_definitions(str(data))
    tables = defs.resources["store"].tables()
    listed, keys = store_new_shards(tables, str(tiny_source), shard_size=2)
    assert (listed, keys) == (3, ["shard-00000", "shard-00001"])
    assert register_partitions(pg_instance, keys) == keys

    started = time.perf_counter()
    run_count = materialize_pipeline(defs, pg_instance)
    _timing(record_property, "pipeline on 3 videos / 2 shards, Postgres instance", time.perf_counter() - started)

    for name in PER_SHARD:
        assert pg_instance.get_materialized_partitions(AssetKey(name)) == set(keys), name
    assert pg_instance.get_latest_materialization_event(AssetKey("lineage")) is not None

    runs = pg_instance.get_runs()
    # Three per-shard waves on two shards, three global waves.
    assert len(runs) == run_count == 3 * len(keys) + 3
    assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
    assert {run.tags.get("dagster/partition") for run in runs} == {*keys, None}

    # They are rows in Postgres itself, readable by any other process.
    assert _pg_rows(pg_database, "SELECT status, count(*) FROM runs GROUP BY status") == [("SUCCESS", len(runs))]
    stored = _pg_rows(pg_database, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'shards'")
    assert sorted(r[0] for r in stored) == keys

    lineage = pl.read_parquet(data / "exports" / "lineage.parquet")
    assert sorted(lineage["source_uri"]) == sorted(str(p) for p in tiny_source.glob("*.mp4"))  # each video once
    assert lineage["source_uri"].n_unique() == lineage.height == 3
