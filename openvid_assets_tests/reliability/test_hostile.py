"""A hostile source: every trap ends as one lineage row with a clear status, and nothing hangs."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import polars as pl
import pytest

from openvid_assets.media import manifest as manifest_module
from openvid_assets.media.manifest import build_manifest, probe_one
from openvid_assets.media.probe import ProbeError, probe
from openvid_assets.media.sources import list_videos
from openvid_assets.samples import huge_header, keep_changing, smooth_pan, ten_hour_video, write_hostile_source
from openvid_assets_testing.harness import (
    leftovers,
    lineage_problems,
    make_dagster_home,
    pipeline_env,
    run_args,
    run_to_end,
)


@pytest.fixture(scope="module")
def ten_hours(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    return folder / ten_hour_video(folder).name


def test_ten_hour_video_is_refused_by_the_duration_limit_in_about_a_second(ten_hours):
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"too long: 10.00 h \(36000s\) is over the 4.00 h limit"):
        probe(ten_hours)
    assert time.monotonic() - started < 15  # counting 864,000 packets, no decoding
    # Under a higher limit it is an ordinary video: every frame is really there.
    facts = probe(ten_hours, max_duration_s=11 * 3600)
    assert (facts.num_frames, facts.fps, facts.width, facts.height) == (864_000, 24.0, 64, 36)


def test_duration_limit_comes_from_the_environment(ten_hours, monkeypatch):
    monkeypatch.setenv("OPENVID_MAX_DURATION_S", str(11 * 3600))
    assert probe(ten_hours).duration_s == pytest.approx(36_000)
    monkeypatch.setenv("OPENVID_MAX_DURATION_S", "-1")
    with pytest.raises(ValueError, match="OPENVID_MAX_DURATION_S must be a positive number"):
        probe(ten_hours)


def test_frame_size_limits(tmp_path, monkeypatch):
    bomb = tmp_path / huge_header(tmp_path).name
    assert bomb.stat().st_size < 2000
    with pytest.raises(ProbeError, match=r"frame too large: 16384x16384 \(268.4 Mpx\) is over the 35.4 Mpx limit"):
        probe(bomb)
    # Under a limit FFmpeg's own is stricter than: still a clear reason, not "no frame size".
    with pytest.raises(ProbeError, match="frame too large: FFmpeg cannot decode a 16384x16384 frame"):
        probe(bomb, max_pixels=10**9)
    pan = tmp_path / smooth_pan(tmp_path, num_frames=8).name
    assert probe(pan).width == 160
    monkeypatch.setenv("OPENVID_MAX_PIXELS", str(160 * 90 - 1))
    with pytest.raises(ProbeError, match=r"frame too large: 160x90 \(0.0 Mpx\)"):
        probe(pan)


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_file_that_keeps_changing_while_read_is_a_failed_row(tmp_path, mode):
    path = tmp_path / smooth_pan(tmp_path, num_frames=24).name
    with keep_changing(path, mode=mode) as changing:
        row = probe_one(str(path), str(tmp_path))
    assert changing.count > 10
    assert row["status"] == "failed" and "changed while being read (3 attempts" in row["error"]
    assert row["video_id"].startswith("uri-")  # its bytes have no single hash


def test_a_file_that_changes_once_is_read_again(tmp_path, monkeypatch):
    path = tmp_path / smooth_pan(tmp_path, num_frames=24).name
    real, calls = manifest_module._probe_once, []

    def first_read_races_a_writer(uri, root, **kwargs):  # the real probe, with a writer finishing mid-read
        row = real(uri, root, **kwargs)
        calls.append(row)
        if len(calls) == 1:
            with open(path, "ab") as f:
                f.write(b"last bytes of a copy")
        return row

    monkeypatch.setattr(manifest_module, "_probe_once", first_read_races_a_writer)
    row = probe_one(str(path), str(tmp_path))
    assert len(calls) == 2 and row["status"] == "ok", row
    assert row["size_bytes"] == path.stat().st_size  # the facts of the final bytes


def test_a_non_utf8_file_name_is_a_row(tmp_path):
    from openvid_assets.store import TableStore
    from openvid_assets.store.shards import ShardRegistry

    src = tmp_path / "src"
    smooth_pan(src, num_frames=8)
    smooth_pan(src, "ok.mp4", num_frames=8)
    os.rename(src / "smooth_pan.mp4", os.path.join(os.fsencode(src), b"caf\xe9.mp4"))
    listed = list_videos(str(src))
    assert len(listed) == 2 and listed[0].endswith("caf\\xe9.mp4")  # stored as text, escaped
    ShardRegistry(TableStore(str(tmp_path / "data"))).register(str(src), listed, 10)
    manifest = build_manifest(listed, str(src), "shard-00000")
    bad, good = manifest.row(0, named=True), manifest.row(1, named=True)
    assert bad["status"] == "failed" and "not valid UTF-8" in bad["error"]
    assert good["status"] == "ok"  # the other video of the shard is unaffected


@pytest.mark.slow
def test_hostile_source_through_the_whole_pipeline(tmp_path):
    src = tmp_path / "hostile"
    specs = write_hostile_source(src)
    data, home = tmp_path / "data", make_dagster_home(tmp_path / "dagster_home")
    with keep_changing(src / "still_copying.mp4") as changing:  # being copied in for the whole run
        run = run_to_end(run_args(src, data, 100), pipeline_env(home), tmp_path, timeout=600)
    assert run.proc.returncode == 0, run.output
    assert changing.count > 0
    probe_s = float(re.search(r"video_manifest: done in ([\d.]+)s", run.output)[1])
    assert probe_s < 30, run.output  # ten hours and a 16k header cost a probe each, nothing more

    lineage = pl.read_parquet(data / "exports" / "lineage.parquet")
    rows = {Path(r["source_uri"]).relative_to(src).as_posix(): r for r in lineage.iter_rows(named=True)}
    assert sorted(rows) == sorted(s.name for s in specs)  # every input exactly once (no name mangled)
    assert lineage_problems(data, src) == []
    for spec in specs:
        row = rows[spec.name]
        got = (row["status"], row["stage"])
        if not spec.bad:
            assert got == ("kept", "captioned"), (spec.name, row)
        elif spec.kind == "duplicate_link":
            assert got == ("dropped", "dedup") and spec.expected_error in row["reason"], (spec.name, row)
        else:
            assert got == ("failed", "probe") and spec.expected_error in row["reason"].lower(), (spec.name, row)
    kept = {name for name, r in rows.items() if r["status"] == "kept"}
    clips = pl.read_parquet(data / "exports" / "openvid.parquet")
    assert {Path(u).relative_to(src).as_posix() for u in clips["source_uri"]} == kept  # names survive ffmpeg
    assert all(Path(u).is_file() for u in clips["clip_uri"])
    assert leftovers(data) == []
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*"))  # "$(touch pwned)" was never run by a shell
