"""The synthetic sample set is what it claims to be.

Every other media test trusts these files' ``VideoSpec`` as ground truth, so
here the truth is checked independently: geometry and frame counts with
ffprobe, content with simple physics on decoded frames (frame differences,
Laplacian variance, phase correlation).
"""

from __future__ import annotations

import json
import os
import subprocess
from fractions import Fraction
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from openvid_assets.samples import VideoSpec, smooth_pan, static

Sample = tuple[Path, list[VideoSpec]]


def ffprobe_video(path: Path) -> dict | None:
    """The first video stream as ffprobe counts it, or None when ffprobe fails or finds none."""
    proc = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=width,height,codec_name,nb_read_frames,nb_frames,avg_frame_rate",
            "-of",
            "json",
            str(path.absolute()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    streams = json.loads(proc.stdout).get("streams", [])
    return streams[0] if streams else None


def has_audio(path: Path) -> bool:
    proc = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "json",
            str(path.absolute()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return bool(json.loads(proc.stdout).get("streams"))


@cache
def gray_frames(path: Path) -> tuple[np.ndarray, ...]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32))
    cap.release()
    assert frames, f"cv2 decoded nothing from {path}"
    return tuple(frames)


def adjacent_diffs(path: Path) -> np.ndarray:
    """Mean absolute difference between frame i and i+1, for every i."""
    frames = gray_frames(path)
    return np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])


def by_name(sample: Sample) -> dict[str, VideoSpec]:
    return {s.name: s for s in sample[1]}


def path_of(sample: Sample, name: str) -> Path:
    return sample[0] / name


# --------------------------------------------------------------------------- layout and probing


def test_set_holds_exactly_the_specified_files(sample_videos: Sample) -> None:
    root, specs = sample_videos
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    on_disk = {os.path.relpath(os.path.join(folder, f), root) for folder, _, files in os.walk(root) for f in files}
    assert on_disk == set(names), "no temp files, sidecars or strays may be left in the source folder"
    assert {s.container for s in specs if not s.bad} == {"mp4", "mkv", "webm", "mov", "avi", "m4v"}
    assert any("/" in s.name for s in specs), "some videos must be nested for recursive listing"
    assert {"with space.mp4", "quote'\"s.mp4", "ünïcødé 视频.mp4", "-leading-dash.mp4"} <= set(names)
    assert {s.kind for s in specs} >= {
        "static",
        "smooth_pan",
        "fast_motion",
        "flicker",
        "sharp",
        "blurred",
        "hard_cuts",
        "fade_black",
        "cross_dissolve",
        "hd_1080p",
        "portrait",
    }


def test_good_videos_probe_exactly_as_specified(sample_videos: Sample) -> None:
    root, specs = sample_videos
    mismatches = []
    for spec in (s for s in specs if not s.bad):
        stream = ffprobe_video(root / spec.name)
        assert stream is not None, f"ffprobe rejected {spec.name}"
        got = (
            stream["width"],
            stream["height"],
            stream["codec_name"],
            int(stream["nb_read_frames"]),
            Fraction(stream["avg_frame_rate"]),
        )
        want = (spec.width, spec.height, spec.codec, spec.num_frames, Fraction(spec.fps).limit_denominator(1001))
        if got != want:
            mismatches.append(f"{spec.name}: ffprobe {got} != spec {want}")
    assert not mismatches, "\n".join(mismatches)


def test_hd_and_portrait_geometry(sample_videos: Sample) -> None:
    specs = by_name(sample_videos)
    assert (specs["hd_1080p.mp4"].width, specs["hd_1080p.mp4"].height) == (1920, 1080)
    assert specs["portrait.mp4"].height > specs["portrait.mp4"].width


# --------------------------------------------------------------------------- bad inputs


def test_bad_inputs_are_what_they_claim(sample_videos: Sample) -> None:
    root, specs = sample_videos
    bad = {s.name: s for s in specs if s.bad}
    assert set(bad) == {
        "empty.mp4",
        "truncated.mp4",
        "truncated_faststart.mp4",
        "notes.mp4",
        "picture.mkv",
        "audio_only.mp4",
        "escape.mp4",
    }
    assert all(s.expected_error and s.expected_error == s.expected_error.lower() for s in bad.values())

    assert (root / "empty.mp4").stat().st_size == 0

    assert ffprobe_video(root / "notes.mp4") is None
    assert (root / "notes.mp4").read_bytes().isascii()

    assert (root / "picture.mkv").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    audio = root / "audio_only.mp4"
    assert has_audio(audio) and ffprobe_video(audio) is None


def test_truncated_files_are_cut_short(sample_videos: Sample) -> None:
    root = sample_videos[0]
    named = by_name(sample_videos)
    for name in ("truncated.mp4", "truncated_faststart.mp4"):
        spec = named[name]
        assert spec.original_size is not None
        assert 0 < (root / name).stat().st_size < 0.6 * spec.original_size
    # Index at the end: nothing is left to probe.
    assert ffprobe_video(root / "truncated.mp4") is None
    # Index up front: the header promises every frame, but only some can be decoded.
    stream = ffprobe_video(root / "truncated_faststart.mp4")
    assert stream is not None
    assert int(stream["nb_frames"]) == named["truncated_faststart.mp4"].num_frames
    assert 0 < int(stream["nb_read_frames"]) < named["truncated_faststart.mp4"].num_frames
    # Same content as the intact default pan, which is in the set too.
    assert named["truncated.mp4"].original_size == (root / "smooth_pan.mp4").stat().st_size


def test_escape_is_a_symlink_resolving_outside_the_root(sample_videos: Sample) -> None:
    root = sample_videos[0]
    link = root / "escape.mp4"
    assert link.is_symlink()
    target = link.resolve()
    assert target.is_file()
    assert os.path.commonpath([target, root.resolve()]) != str(root.resolve())
    assert target.parent == (root.parent / f"{root.name}_outside").resolve()
    stream = ffprobe_video(target)
    assert stream is not None and int(stream["nb_read_frames"]) == by_name(sample_videos)["escape.mp4"].num_frames


# --------------------------------------------------------------------------- content physics


def test_motion_ordering_static_pan_fast(sample_videos: Sample) -> None:
    still = adjacent_diffs(path_of(sample_videos, "static.mp4")).mean()
    pan = adjacent_diffs(path_of(sample_videos, "smooth_pan.mp4")).mean()
    fast = adjacent_diffs(path_of(sample_videos, "fast_motion.mp4")).mean()
    assert still < 0.5
    assert still < pan < fast
    assert fast > 2.5 * pan


@pytest.mark.parametrize(
    "name", ["smooth_pan.mp4", "fast_motion.mp4", "portrait.mp4", "hd_1080p.mp4", "sub/pan_vp9.webm"]
)
def test_camera_displacement_matches_spec(sample_videos: Sample, name: str) -> None:
    spec = by_name(sample_videos)[name]
    frames = gray_frames(path_of(sample_videos, name))
    shifts = [cv2.phaseCorrelate(a, b)[0] for a, b in zip(frames[:6], frames[1:7])]
    measured = float(np.median([np.hypot(dx, dy) for dx, dy in shifts]))
    assert measured == pytest.approx(spec.motion_px_per_frame, abs=0.5)


def test_flicker_frames_are_unrelated(sample_videos: Sample) -> None:
    flick = adjacent_diffs(path_of(sample_videos, "flicker.mp4"))
    pan = adjacent_diffs(path_of(sample_videos, "smooth_pan.mp4"))
    assert np.median(flick) > 5 * pan.mean()
    assert flick.min() > pan.max()


def test_blurred_is_much_softer_than_its_sharp_twin(sample_videos: Sample) -> None:
    def laplacian_var(frames: tuple[np.ndarray, ...]) -> float:
        return float(np.mean([cv2.Laplacian(f, cv2.CV_32F).var() for f in frames]))

    sharp = gray_frames(path_of(sample_videos, "sharp.mp4"))
    soft = gray_frames(path_of(sample_videos, "blurred.mp4"))
    assert len(sharp) == len(soft)
    assert laplacian_var(soft) < 0.05 * laplacian_var(sharp)
    # Same content: blurring the sharp twin gets close to the blurred video (away from the borders).
    sigma = 3.5 * min(sharp[0].shape) / 90
    reblurred = cv2.GaussianBlur(sharp[10], (0, 0), sigma)
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(reblurred[inner] - soft[10][inner]).mean() < 3.0
    assert np.abs(sharp[10][inner] - soft[10][inner]).mean() > 2 * np.abs(reblurred[inner] - soft[10][inner]).mean()


def test_hard_cuts_are_spikes_at_the_recorded_frames(sample_videos: Sample) -> None:
    spec = by_name(sample_videos)["hard_cuts.mp4"]
    assert len(spec.cuts) >= 2
    diffs = adjacent_diffs(path_of(sample_videos, "hard_cuts.mp4"))
    # diffs[i] compares frames i and i+1, so a scene starting at frame c shows up at diffs[c - 1].
    at_cuts = diffs[[c - 1 for c in spec.cuts]]
    within = np.delete(diffs, [c - 1 for c in spec.cuts])
    assert at_cuts.min() > 5 * within.max()
    # Each scene lasts at least about a second.
    bounds = (0, *spec.cuts, spec.num_frames)
    assert min(b - a for a, b in zip(bounds, bounds[1:])) >= spec.fps


def test_fade_to_black_dips_to_black(sample_videos: Sample) -> None:
    spec = by_name(sample_videos)["fade_black.mp4"]
    ((first, last),) = spec.transitions
    brightness = np.array([f.mean() for f in gray_frames(path_of(sample_videos, "fade_black.mp4"))])
    assert brightness[first : last + 1].min() < 2.0
    assert brightness[:first].min() > 30 and brightness[last + 1 :].min() > 30
    dip = int(np.argmin(brightness[first : last + 1])) + first
    assert np.all(np.diff(brightness[first - 1 : dip + 1]) <= 0.5), "fade-out should only darken"
    assert np.all(np.diff(brightness[dip : last + 2]) >= -0.5), "fade-in should only brighten"
    assert spec.cuts == ()


def test_cross_dissolve_has_no_spike(sample_videos: Sample) -> None:
    spec = by_name(sample_videos)["cross_dissolve.mp4"]
    ((first, last),) = spec.transitions
    frames = gray_frames(path_of(sample_videos, "cross_dissolve.mp4"))
    a, b = frames[first - 1], frames[last + 1]
    jump = np.abs(b - a).mean()
    diffs = adjacent_diffs(path_of(sample_videos, "cross_dissolve.mp4"))
    assert diffs.max() < 0.4 * jump
    # Halfway through, the frame looks more like the average of A and B than like either.
    mid = frames[(first + last) // 2]
    assert np.abs(mid - (a + b) / 2).mean() < min(np.abs(mid - a).mean(), np.abs(mid - b).mean())


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_frames(tmp_path: Path) -> None:
    first = smooth_pan(tmp_path / "a", num_frames=12, seed=5)
    again = smooth_pan(tmp_path / "b", num_frames=12, seed=5)
    other = smooth_pan(tmp_path / "c", num_frames=12, seed=6)
    assert first == again
    frames_a = gray_frames(tmp_path / "a" / first.name)
    frames_b = gray_frames(tmp_path / "b" / again.name)
    frames_c = gray_frames(tmp_path / "c" / other.name)
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b, strict=True))
    assert np.abs(frames_a[0] - frames_c[0]).mean() > 5


def test_generators_accept_other_sizes_and_rates(tmp_path: Path) -> None:
    spec = static(tmp_path, "odd rate.mov", width=64, height=48, fps=30000 / 1001, num_frames=10)
    stream = ffprobe_video(tmp_path / spec.name)
    assert stream is not None
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (64, 48, 10)
    assert Fraction(stream["avg_frame_rate"]) == Fraction(30000, 1001)
    with pytest.raises(ValueError):
        static(tmp_path, "odd.mp4", width=63, height=48, num_frames=2)
    with pytest.raises(ValueError):
        static(tmp_path, "clip.gif", num_frames=2)
