"""Clip files: frame-accurate ffmpeg cuts, and one shard's clip table."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import decord
import numpy as np
import pytest

from openvid_assets import samples
from openvid_assets.media.clips import ClipSettings, ClipStore, clip_id, cut_clip
from openvid_assets.models.scorers.shots import clip_shard  # media's, with TransNetV2 as its shot detector
from openvid_assets.media.tasks import VideoTask
from openvid_assets.media.clips import ClipSpan
from openvid_assets.store.files import LocalFileSystem


def _frames(path: Path) -> np.ndarray:
    reader = decord.VideoReader(str(path))
    return reader.get_batch(list(range(len(reader)))).asnumpy().astype(np.float32)


def _probe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,width,height,codec_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["streams"][0]


@pytest.fixture(scope="module")
def pan(tmp_path_factory) -> tuple[Path, samples.VideoSpec]:
    folder = tmp_path_factory.mktemp("clipsrc")
    # A 2 px/frame pan: neighbouring frames differ, so each frame of the source is recognisable.
    return folder, samples.smooth_pan(folder, "pan.mp4", num_frames=96, px_per_frame=2)


@pytest.mark.parametrize("start,end", [(0, 23), (37, 70), (50, 95)])
def test_reencoded_clips_hold_exactly_the_planned_frames(pan, tmp_path, start, end):
    folder, spec = pan
    span = ClipSpan(start, end)
    out = tmp_path / "clip.mp4"
    cut_clip(folder / spec.name, out, span, spec.fps)
    info = _probe(out)
    assert int(info["nb_read_frames"]) == span.num_frames
    assert (info["codec_name"], info["width"], info["height"]) == ("h264", spec.width, spec.height)
    source, clip = _frames(folder / spec.name), _frames(out)
    for k in (0, span.num_frames - 1):  # first and last frame: nearest source frame is the planned one
        errors = [np.abs(clip[k] - source[i]).mean() for i in range(len(source))]
        assert int(np.argmin(errors)) == start + k
    assert not list(tmp_path.glob(".tmp-*")), "no temporary file left behind"


def test_an_unreadable_source_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    from openvid_assets.media.sources import VideoInputError

    with pytest.raises(VideoInputError, match="ffmpeg"):
        cut_clip(bad, tmp_path / "out.mp4", ClipSpan(0, 9), 24.0)
    assert not (tmp_path / "out.mp4").exists()


def test_clip_ids_are_deterministic_and_name_the_range():
    assert clip_id("abc", ClipSpan(3, 50)) == clip_id("abc", ClipSpan(3, 50)) == "abc-0000003-0000050"
    assert clip_id("abc", ClipSpan(3, 51)) != clip_id("abc", ClipSpan(3, 50))


@pytest.fixture(scope="module")
def shard_videos(tmp_path_factory) -> tuple[Path, list[VideoTask]]:
    folder = tmp_path_factory.mktemp("shard")
    cuts = samples.hard_cuts(folder)
    fade = samples.fade_out(folder)
    (folder / "broken.mp4").write_bytes(b"\x00" * 4096)
    tasks = [
        VideoTask("vid-cuts", str(folder / cuts.name), cuts.width, cuts.height, cuts.fps, 0),
        VideoTask("vid-broken", str(folder / "broken.mp4"), 160, 90, 24.0, 0),
        VideoTask("vid-fade", str(folder / fade.name), fade.width, fade.height, fade.fps, 0),
    ]
    return folder, tasks


def _open(task: VideoTask):
    return contextlib.nullcontext(Path(task.source_uri))


def test_a_shard_gets_clip_rows_a_failed_row_and_a_no_clip_row(shard_videos, tmp_path):
    _, tasks = shard_videos
    store = ClipStore(LocalFileSystem(tmp_path), "shard-00000")
    result = clip_shard(tasks, _open, store, ClipSettings())
    table = result.table
    by_video = {v: table.filter(table["video_id"] == v) for v in ("vid-cuts", "vid-broken", "vid-fade")}
    clips = by_video["vid-cuts"]
    assert clips["status"].to_list() == ["ok"] * 4 and clips["clip_index"].to_list() == [0, 1, 2, 3]
    assert clips["start_frame"].to_list() == [0, 32, 62, 92]
    assert all(Path(u).is_file() for u in clips["clip_uri"].to_list())
    assert clips["start_s"][1] == pytest.approx(32 / 24) and clips["end_s"][0] == pytest.approx(28 / 24)
    (broken,) = by_video["vid-broken"].iter_rows(named=True)
    assert broken["status"] == "failed" and "decode" in broken["error"]
    (fade,) = by_video["vid-fade"].iter_rows(named=True)
    assert fade["status"] == "no_clips" and "transition" in fade["error"] and fade["clip_id"] is None
    assert (result.computed, result.reused) == (3, 0)

    # Same settings: everything but the failed video is reused, files untouched.
    mtimes = {u: Path(u).stat().st_mtime_ns for u in clips["clip_uri"].to_list()}
    again = clip_shard(tasks, _open, store, ClipSettings(), previous=table)
    assert (again.computed, again.reused) == (1, 2)
    assert again.table.equals(table)
    assert {u: Path(u).stat().st_mtime_ns for u in mtimes} == mtimes

    # A clip file lost since: that video is redone and the file is back.
    Path(clips["clip_uri"][2]).unlink()
    healed = clip_shard(tasks, _open, store, ClipSettings(), previous=table)
    assert healed.computed == 2 and Path(clips["clip_uri"][2]).is_file()


def test_ranges_only_mode_writes_no_files(shard_videos, tmp_path):
    _, tasks = shard_videos
    result = clip_shard(tasks[:1], _open, ClipStore(LocalFileSystem(tmp_path), "s"), ClipSettings(mode="none"))
    assert result.table["clip_uri"].null_count() == result.table.height == 4
    assert not (tmp_path / "clips").exists()


def test_unknown_clip_mode_is_refused():
    with pytest.raises(ValueError, match="clip mode"):
        ClipSettings(mode="keyframes")
