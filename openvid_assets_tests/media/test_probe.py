import json
import shutil
import subprocess
from pathlib import Path

import pytest

from openvid_assets import samples
from openvid_assets.media.manifest import build_manifest, probe_one
from openvid_assets.media.probe import ProbeError, probe
from openvid_assets.media.sources import list_videos


def ffprobe_decoded(path: Path) -> dict:
    """Ground truth from ffprobe with full decoding (-count_frames), independent of our probe."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=width,height,nb_read_frames,avg_frame_rate",
            "-of",
            "json",
            f"file:{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stream = json.loads(out)["streams"][0]
    num, den = stream["avg_frame_rate"].split("/")
    return {
        "width": stream["width"],
        "height": stream["height"],
        "num_frames": int(stream["nb_read_frames"]),
        "fps": int(num) / int(den),
    }


def test_good_videos_match_ffprobe_decoding(sample_videos):
    root, specs = sample_videos
    good = [s for s in specs if not s.bad]
    assert len(good) >= 15
    for spec in good:
        path = root / spec.name
        got = probe(path)
        truth = ffprobe_decoded(path)
        assert (got.width, got.height, got.num_frames) == (truth["width"], truth["height"], truth["num_frames"]), (
            spec.name
        )
        assert got.fps == pytest.approx(truth["fps"]), spec.name
        assert (got.width, got.height, got.num_frames, got.codec) == (
            spec.width,
            spec.height,
            spec.num_frames,
            spec.codec,
        )
        assert got.duration_s == pytest.approx(spec.num_frames / spec.fps, abs=0.1)


def test_bad_inputs_become_failed_rows_with_reasons(sample_videos):
    root, specs = sample_videos
    bad = [s for s in specs if s.bad]
    assert {s.name for s in bad} >= {
        "empty.mp4",
        "truncated.mp4",
        "truncated_faststart.mp4",
        "notes.mp4",
        "picture.mkv",
        "audio_only.mp4",
        "escape.mp4",
    }
    for spec in bad:
        row = probe_one(str(root / spec.name), str(root))
        assert row["status"] == "failed", spec.name
        assert spec.expected_error in row["error"].lower(), (spec.name, row["error"])
        assert row["video_id"]  # even an unreadable file has an identity for lineage


def test_rotated_phone_video_reports_displayed_size(sample_videos, tmp_path):
    root, _ = sample_videos
    rotated = samples.rotated(root / "portrait.mp4", tmp_path / "rotated.mp4")
    got = probe(rotated)
    assert (got.width, got.height) == (320, 180)


def test_probe_time_limit_becomes_a_reason(sample_videos):
    root, _ = sample_videos
    with pytest.raises(ProbeError, match="timed out"):
        probe(root / "hd_1080p.mp4", timeout_s=0.001)


def test_vanished_and_broken_link_files_are_failed_rows(tmp_path):
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    assert "vanished" in probe_one(str(tmp_path / "never_there.mp4"), str(tmp_path))["error"]
    assert "broken symlink" in probe_one(str(tmp_path / "dangling.mp4"), str(tmp_path))["error"]


def test_listing_is_recursive_sorted_and_by_extension(sample_videos, tmp_path):
    root, specs = sample_videos
    listed = list_videos(str(root))
    assert listed == sorted(listed)
    assert sorted(Path(u).relative_to(root).as_posix() for u in listed) == sorted(s.name for s in specs)
    (tmp_path / "UPPER.MP4").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("not a video")
    assert [Path(u).name for u in list_videos(str(tmp_path))] == ["UPPER.MP4"]
    with pytest.raises(FileNotFoundError):
        list_videos(str(tmp_path / "missing"))


def test_manifest_has_every_file_once_and_flags_duplicate_content(sample_videos, tmp_path):
    root, specs = sample_videos
    src = tmp_path / "src"
    shutil.copytree(root, src, symlinks=True)
    shutil.copy(src / "static.mp4", src / "static_copy.mp4")
    uris = list_videos(str(src))
    frame = build_manifest(uris, str(src), "shard-00000", workers=2)
    assert frame["source_uri"].to_list() == uris
    assert frame["position"].to_list() == list(range(len(uris)))
    copy = frame.filter(frame["source_uri"].str.ends_with("static_copy.mp4")).row(0, named=True)
    original = frame.filter(frame["source_uri"].str.ends_with("/static.mp4")).row(0, named=True)
    assert copy["video_id"] == original["video_id"]
    assert (original["status"], copy["status"]) == ("ok", "failed")
    assert "duplicate content" in copy["error"]
    assert frame.filter(frame["status"] == "ok")["video_id"].n_unique() == frame.filter(frame["status"] == "ok").height
    assert frame.filter(frame["status"] == "failed").height == sum(s.bad for s in specs) + 1
