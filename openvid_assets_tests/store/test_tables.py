import os
import sys
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from openvid_assets.store import TableStore, run_sql
from openvid_assets.store.files import HOST, STALE_TEMPORARY_S, LocalFileSystem


def _frame(n: int, offset: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {"video_id": [f"v{i}" for i in range(offset, offset + n)], "score": [float(i) for i in range(n)]}
    )


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> TableStore:
    if request.param == "local":
        return TableStore(str(tmp_path / "root"))
    bucket = request.getfixturevalue("s3_bucket")
    return TableStore(f"s3://{bucket}/data/root")


def test_write_read_list_round_trip(store: TableStore):
    assert store.shards("scores") == []
    assert not store.exists("scores", "shard-00001")
    store.write("scores", "shard-00001", _frame(3))
    store.write("scores", "shard-00000", _frame(2))
    assert store.shards("scores") == ["shard-00000", "shard-00001"]
    assert store.exists("scores", "shard-00001")
    assert store.read("scores", "shard-00001").equals(_frame(3))
    store.write("scores", "shard-00001", _frame(5))  # overwrite replaces whole
    assert store.read("scores", "shard-00001").height == 5


def test_missing_table_error_names_asset_and_shard(store: TableStore):
    with pytest.raises(FileNotFoundError, match="no 'scores' table for 'shard-00009'"):
        store.read("scores", "shard-00009")


def _manifest(statuses: list[str], seconds: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source_uri": [f"/v/{i}.mp4" for i in range(len(statuses))],
            "status": statuses,
            "duration_s": [seconds] * len(statuses),
            "size_bytes": [1000] * len(statuses),
            "error": [None if s == "ok" else "bad" for s in statuses],
        }
    )


def test_sql_over_shard_tables_is_the_same_locally_and_on_s3(store: TableStore):
    store.write("video_manifest", "shard-00000", _manifest(["ok", "failed", "ok"], 1800.0))
    store.write("video_manifest", "shard-00001", _manifest(["ok", "failed"], 1800.0))
    source = store.scan_source("video_manifest")
    assert isinstance(source, list) == (not store.root.startswith("s3://"))  # local: DuckDB reads files
    row = run_sql("manifest_summary", {"video_manifest": source}).row(0, named=True)
    assert (row["videos"], row["ok"], row["failed"]) == (5, 3, 2)
    assert row["hours_ok"] == pytest.approx(1.5)
    assert row["bytes_ok"] == 3000


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
def test_hostile_table_names_are_rejected(tmp_path, name):
    with pytest.raises(ValueError):
        TableStore(str(tmp_path)).write(name, "shard-00000", _frame(1))
    with pytest.raises(ValueError):
        TableStore(str(tmp_path)).write("scores", name, _frame(1))


def test_crash_during_local_write_keeps_the_old_table(tmp_path, monkeypatch):
    store = TableStore(str(tmp_path))
    store.write("scores", "shard-00000", _frame(2))

    def crash(src, dst):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write("scores", "shard-00000", _frame(7))
    monkeypatch.undo()
    assert store.read("scores", "shard-00000").equals(_frame(2))
    assert [p.name for p in Path(tmp_path, "tables/scores").iterdir()] == ["shard-00000.parquet"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temp_file_from_killed_writer_is_swept_and_never_listed(tmp_path):
    fs = LocalFileSystem(tmp_path)
    folder = tmp_path / "tables" / "scores"
    folder.mkdir(parents=True)
    stale = folder / ".shard-00000.parquet.abc123.tmp.parquet"
    stale.write_bytes(b"half a parquet file")
    hours_ago = time.time() - 2 * STALE_TEMPORARY_S
    os.utime(stale, (hours_ago, hours_ago))  # untouched for long: its writer was killed (on whatever host)
    store = TableStore(str(tmp_path))
    assert store.shards("scores") == []
    assert fs.list("tables/scores") == []
    live = folder / ".shard-00000.parquet.otherhost-1+xyz789.tmp.parquet"  # written just now, another host
    live.write_bytes(b"being written")
    dead_here = folder / f".shard-00000.parquet.{HOST}-{_dead_pid()}+q1.tmp.parquet"
    dead_here.write_bytes(b"killed a second ago on this host")
    store.write("scores", "shard-00000", _frame(1))
    assert not stale.exists() and not dead_here.exists()  # by age; by its dead pid on this host, at once
    assert live.exists()  # not swept from under a concurrent writer, even one on another host
    assert store.read("scores", "shard-00000").height == 1


def test_streamed_table_writes_commit_atomically_and_export(store: TableStore):
    """copy_sql streams a query into parquet (no DataFrame in between); the table appears only when done."""
    from openvid_assets.store import copy_sql

    store.write("video_manifest", "shard-00000", pl.DataFrame({"status": ["ok", "failed", "ok"], "stage": ["a"] * 3}))
    with store.writing("lineage_summary_test", "global") as path:
        copy_sql("lineage_summary", {"lineage": store.scan_source("video_manifest")}, path)
        assert not store.exists("lineage_summary_test", "global")  # not visible before the block ends
    table = store.read("lineage_summary_test", "global")
    assert sorted(zip(table["status"], table["videos"])) == [("failed", 1), ("ok", 2)]
    uri = store.export_table("lineage_summary_test", "global", "summary.parquet")
    assert uri.endswith("exports/summary.parquet")
    assert pl.read_parquet(store.fs.get("exports/summary.parquet")).equals(table)

    with pytest.raises(RuntimeError), store.writing("never", "global") as path:
        pl.DataFrame({"a": [1]}).write_parquet(path)
        raise RuntimeError("killed half way")
    assert not store.exists("never", "global")
    local = store.fs.local_path("tables")
    if local is not None:  # no staging folder left behind
        assert not [p for p in os.listdir(local) if p.startswith(".tmp")]


def test_scan_reads_tables_of_an_older_schema_as_nulls(store: TableStore):
    """A shard written before a column existed scans with that column null, on a local root and on S3 alike."""
    store.write("scores", "shard-00000", pl.DataFrame({"video_id": ["a"], "status": ["ok"], "score": [1.0]}))
    store.write(
        "scores", "shard-00001", pl.DataFrame({"video_id": ["b"], "status": ["ok"], "score": [2.0], "flow_dx": [0.5]})
    )
    out = run_sql("score_summary", {"scores": store.scan_source("scores")}).row(0, named=True)
    assert out["videos"] == 2 and out["mean"] == 1.5
    import duckdb

    con = duckdb.connect()
    source = store.scan_source("scores")
    if isinstance(source, list):
        con.read_parquet(source, union_by_name=True).create_view("t")
    else:
        con.register("t", source)
    assert con.sql("SELECT video_id, flow_dx FROM t ORDER BY video_id").fetchall() == [("a", None), ("b", 0.5)]


def test_a_dead_process_not_yet_reaped_is_not_alive():
    """A zombie answers os.kill(pid, 0); a writer or daemon killed with its parent stays one where nothing reaps it."""
    import os
    import subprocess
    import time

    from openvid_assets.store.files import process_alive

    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 30
    while process_alive(child.pid):  # exits at once; not waited for, it stays a zombie
        assert time.monotonic() < deadline, "a finished child still counts as running"
        time.sleep(0.05)
    assert child.wait() == 0
    assert process_alive(os.getpid())
