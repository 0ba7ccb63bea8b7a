"""Motion from the encoder's motion vectors, on generated videos whose camera speed is known.

Speeds are in picture long sides per second: 1 px/frame at 160 px wide and 24 fps is 24 / 160 = 0.15. On these
x264 ultrafast encodes (no B-frames) the vectors of a whole-pixel pan are the pan itself, so the measured
scores match the truth to well under 1 %; the 2 % tolerances leave room for another x264 build choosing a few
different vectors, and are still far below the 2x steps between the videos compared.
"""

import os
import subprocess

import pytest

from openvid_assets import samples
from openvid_assets.media.codec_motion import CodecMotionSettings, codec_motion
from openvid_assets.media.frames import read_frames
from openvid_assets.models.scorers.motion import FarnebackMotion


def long_sides_per_second(spec: samples.VideoSpec) -> float:
    return spec.motion_px_per_frame * spec.fps / max(spec.width, spec.height)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    out = tmp_path_factory.mktemp("codec_motion")
    specs = {
        "static": samples.static(out),
        "pan": samples.smooth_pan(out),
        "shaky": samples.shaky(out),
        "fast": samples.fast_motion(out),
        "real": samples.real_shots(out, "real.mp4", join="none"),
        "real_cut": samples.real_shots(out, "real_cut.mp4", join="cut"),
    }
    return out, specs


def reencode(source, target, *args: str):
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-nostdin", "-y", "-i", str(source), "-an", *args, str(target)], check=True
    )
    return target


def test_scores_are_the_camera_speed_in_long_sides_per_second(videos):
    out, specs = videos
    assert specs["static"].motion_px_per_frame == 0.0
    static = codec_motion(out / specs["static"].name)
    # Every frame after the first is a P-frame (x264 ultrafast), all its blocks still.
    assert (static.frames, static.vector_frames, static.reason) == (48, 47, None)
    assert static.score == pytest.approx(0.0, abs=1e-3)  # 1e-3: under 1 % of the slow pan's 0.15

    pan = codec_motion(out / specs["pan"].name)
    assert pan.score == pytest.approx(0.15, rel=0.02)
    # A 160x90 frame is smaller than a 256-px tile: one tile, so its minimum is the frame's mean.
    assert pan.patch_min == pan.score
    # shaky: random jitter; its spec's motion is the mean displacement between consecutive frames.
    assert specs["shaky"].motion_px_per_frame > 2  # a jitter of up to 3 px each way, not a near-still shot
    for name in ("shaky", "fast"):  # fast: a 12 px/frame pan under four small objects moving their own ways
        got = codec_motion(out / specs[name].name)
        assert got.score == pytest.approx(long_sides_per_second(specs[name]), rel=0.02), name

    # The caller's probed rate wins over the stream's: the same vectors at twice the rate are twice as fast.
    assert codec_motion(out / specs["pan"].name, fps=48.0).score == pytest.approx(0.30, rel=0.02)


def test_orders_videos_as_farneback_flow_does(videos):
    out, specs = videos
    farneback = FarnebackMotion()
    flow, codec = {}, {}
    for name, spec in specs.items():
        decoded = read_frames(out / spec.name, farneback.request, width=spec.width, height=spec.height)
        flow[name] = farneback.score(decoded.indices, decoded.frames)["score"]
        codec[name] = codec_motion(out / spec.name).score
    synthetic = ["static", "pan", "shaky", "fast"]
    # Same order (Spearman rank correlation 1), and it is the true order of camera speeds.
    assert sorted(synthetic, key=codec.get) == sorted(synthetic, key=flow.get) == synthetic
    # Each step is at least 2x in codec score (0.15, 0.58, 1.8): an order that noise cannot flip.
    assert codec["shaky"] > 2 * codec["pan"] and codec["fast"] > 2 * codec["shaky"]

    # Real footage (a trailer's shot, alone and with a hard cut) moves: both measures put it between the
    # locked-off shot and the whip pan. (Against the slow pan it is close in both: 0.94x and 0.77x of it.)
    for name in ("real", "real_cut"):
        assert codec[name] > 0.2 * codec["pan"], name
        assert codec["static"] < codec[name] < codec["fast"], name
        assert flow["static"] < flow[name] < flow["fast"], name


def test_same_speed_relative_to_the_frame_scores_the_same_at_any_size_and_rate(tmp_path):
    small = samples.smooth_pan(tmp_path, "small.mp4", width=160, height=90, px_per_frame=1, num_frames=24)
    large = samples.smooth_pan(tmp_path, "large.mp4", width=640, height=360, px_per_frame=4, num_frames=24)
    slow_rate = samples.smooth_pan(tmp_path, "fps24.mp4", fps=24.0, px_per_frame=2, num_frames=24)
    fast_rate = samples.smooth_pan(tmp_path, "fps48.mp4", fps=48.0, px_per_frame=1, num_frames=48)
    small_s, large_s, slow_s, fast_s = (
        codec_motion(tmp_path / s.name).score for s in (small, large, slow_rate, fast_rate)
    )
    assert small_s == pytest.approx(0.15, rel=0.02) and large_s == pytest.approx(small_s, rel=0.02)
    assert slow_s == pytest.approx(0.30, rel=0.02) and fast_s == pytest.approx(slow_s, rel=0.02)


def test_patch_min_finds_the_still_part_of_a_frame(tmp_path):
    settings = CodecMotionSettings(patch=128)
    # A 1 px/frame pan in the left 128 px of a 320x180 frame, black (still) to its right.
    boxed = samples.letterboxed(tmp_path, "boxed.mp4", width=320, height=180, picture=(0, 0, 128, 180))
    got = codec_motion(tmp_path / boxed.name, settings=settings)
    # The mean is area-weighted: the moving 40 % of the frame at 24 / 320 long sides per second.
    assert got.score == pytest.approx(0.4 * 24 / 320, rel=0.1)  # 10 %: black blocks may copy a neighbour's vector
    assert got.patch_min < 0.2 * got.score  # the black tiles (x >= 128) are still
    full = samples.smooth_pan(tmp_path, "full.mp4", width=320, height=180, num_frames=48)
    whole = codec_motion(tmp_path / full.name, settings=settings)
    assert whole.score == pytest.approx(24 / 320, rel=0.02)
    assert whole.patch_min == pytest.approx(whole.score, rel=0.02)  # every tile pans


def test_cuts_fades_and_new_scenes_are_not_motion(tmp_path):
    # x264 ultrafast puts no key frame at a cut: the cut frame is a P-frame of mostly intra blocks whose few
    # predicted ones point anywhere (100+ px). Such frames are left out (min_inter).
    cuts = samples.hard_cuts(tmp_path, width=320, height=180, scene_frames=(24, 24, 24))  # 1 px/frame pans
    got = codec_motion(tmp_path / cuts.name)
    assert got.score == pytest.approx(24 / 320, rel=0.02)
    assert got.vector_frames == cuts.num_frames - 1 - len(cuts.cuts)  # all but the first and the cut frames
    counted = codec_motion(tmp_path / cuts.name, settings=CodecMotionSettings(min_inter=0.0))
    assert counted.score > 1.5 * got.score  # what the cut frames would have added (about 2x here)
    fade = samples.fade_black(tmp_path)  # the pans keep going through the fade, at 1 px/frame
    assert codec_motion(tmp_path / fade.name).score == pytest.approx(0.15, rel=0.05)  # 5 %: vectors in the fades
    flicker = samples.flicker(tmp_path)  # every frame a new scene: nothing predicted, no score
    got = codec_motion(tmp_path / flicker.name)
    assert got.score is None and "motion-predicted" in got.reason


def test_b_frames_inflate_the_score_but_keep_the_order(videos, tmp_path):
    # x264's default GOP has B-frames: P-frames predict from several frames back, B-frames from both sides.
    out, specs = videos
    got = {
        name: codec_motion(reencode(out / specs[name].name, tmp_path / f"{name}.mp4", "-c:v", "libx264")).score
        for name in ("static", "pan", "fast")
    }
    assert got["static"] == pytest.approx(0.0, abs=1e-3)
    assert 0.15 < got["pan"] < 3 * 0.15  # about 2x on this encode: an ordering, not a flow measurement
    assert got["fast"] > 4 * got["pan"]


def test_streams_without_vectors_have_no_score_and_say_why(videos, tmp_path):
    out, specs = videos
    pan = out / specs["pan"].name
    intra = reencode(pan, tmp_path / "intra.mp4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "1")
    mjpeg = reencode(pan, tmp_path / "mjpeg.avi", "-c:v", "mjpeg")
    vp9 = tmp_path / samples.smooth_pan(tmp_path, "pan.webm", num_frames=24).name
    mpeg4 = tmp_path / samples.smooth_pan(tmp_path, "pan.avi", num_frames=24).name
    for path in (intra, mjpeg):
        got = codec_motion(path)
        assert (got.score, got.patch_min, got.vector_frames) == (None, None, 0), path.name
        assert got.frames == 72 and "intra-only" in got.reason, path.name
    got = codec_motion(vp9)
    assert got.score is None and got.reason == "no motion vectors: the vp9 decoder exports none"
    assert codec_motion(mpeg4).score == pytest.approx(0.15, rel=0.02)  # the MPEG-4 Part 2 decoder does export
    # The cap: only the first max_frames frames are decoded.
    capped = codec_motion(pan, settings=CodecMotionSettings(max_frames=10))
    assert (capped.frames, capped.vector_frames) == (10, 9) and capped.score == pytest.approx(0.15, rel=0.02)


def test_bad_files_raise_errors_that_are_not_infrastructure_errors(tmp_path):
    out = tmp_path / "bad"
    specs = {s.name: s for s in samples.write_bad_inputs(out, tmp_path / "outside")}
    # A cut-off faststart file: PyAV decodes 26 of its 72 frames, then raises at the first partial packet.
    # Those frames are kept (the pan's true speed), with the reason decoding stopped.
    partial = codec_motion(out / "truncated_faststart.mp4")
    assert 0 < partial.frames < specs["truncated_faststart.mp4"].num_frames
    assert partial.score == pytest.approx(0.15, rel=0.02)
    assert "decoding stopped after" in partial.decode_error
    # A PNG in an mkv: one frame, nothing to compare it with.
    assert codec_motion(out / "picture.mkv").reason == "no motion vectors: a single frame"
    # Several PyAV errors subclass OSError, which the pipeline treats as infrastructure trouble that fails
    # the run: a bad file must raise a ValueError (its own failed row) instead.
    for name, message in [
        ("empty.mp4", "not a readable video"),
        ("truncated.mp4", "not a readable video"),  # cut before its index: nothing to demux
        ("notes.mp4", "not a readable video"),
        ("audio_only.mp4", "no video stream"),
    ]:
        with pytest.raises(ValueError, match=message) as raised:
            codec_motion(out / name)
        assert not isinstance(raised.value, OSError), name
    huge = samples.huge_header(out)  # headers claim 16384x16384: FFmpeg refuses to decode it
    with pytest.raises(ValueError, match="decode failed"):
        codec_motion(out / huge.name)
    # A path that is not there is the storage's trouble, not the video's: the builtin OSError.
    with pytest.raises(FileNotFoundError):
        codec_motion(out / "missing.mp4")
    # A named pipe would block an open until a writer came: refused without reading it.
    os.mkfifo(out / "pipe.mp4")
    with pytest.raises(ValueError, match="not a regular file"):
        codec_motion(out / "pipe.mp4")
