"""The cut cascade on generated videos whose cuts, fades and dissolves are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from openvid_assets import samples
from openvid_assets.media.clips import ClipRules, plan_clips
from openvid_assets.media.scenes import CutDetection, SceneSignals, Transition, find_transitions
from openvid_assets.models.scorers.shots import detect_clips  # media's, with TransNetV2 bound
from openvid_assets.samples import VideoSpec

# name -> generator call; sizes, rates and transition lengths vary so no default happens to fit.
CASES = {
    "hard_cuts": lambda d: samples.hard_cuts(d),
    "hard_cuts_30fps": lambda d: samples.hard_cuts(
        d, "hc30.mp4", width=320, height=180, fps=30, scene_frames=(20, 45, 33)
    ),
    "hard_cuts_720p": lambda d: samples.hard_cuts(d, "hc720.mp4", width=1280, height=720, scene_frames=(40, 30)),
    "fade_black": lambda d: samples.fade_black(d),
    "fade_no_hold_30fps": lambda d: samples.fade_black(d, "fb30.mp4", fps=30, fade_frames=8, black_frames=0),
    "fade_720p": lambda d: samples.fade_black(
        d, "fb720.mp4", width=1280, height=720, scene_frames=30, fade_frames=10, black_frames=3
    ),
    "dissolve": lambda d: samples.cross_dissolve(d),
    "dissolve_long": lambda d: samples.cross_dissolve(d, "cd24.mp4", dissolve_frames=24),
    "dissolve_short_30fps": lambda d: samples.cross_dissolve(d, "cd8.mp4", fps=30, dissolve_frames=8),
    "dissolve_720p": lambda d: samples.cross_dissolve(d, "cd720.mp4", width=1280, height=720, scene_frames=30),
    "static": lambda d: samples.static(d),
    "pan": lambda d: samples.smooth_pan(d),
    "pan_3px": lambda d: samples.smooth_pan(d, "pan3.mp4", px_per_frame=3),
    "pan_60fps": lambda d: samples.smooth_pan(
        d, "pan60.mp4", fps=60, num_frames=120, width=320, height=180, px_per_frame=2
    ),
    "pan_720p": lambda d: samples.smooth_pan(d, "pan720.mp4", width=1280, height=720, num_frames=48, px_per_frame=4),
    "tilt_portrait": lambda d: samples.portrait(d),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, VideoSpec]]:
    folder = tmp_path_factory.mktemp("cuts")
    return {name: (folder, make(folder)) for name, make in CASES.items()}


@pytest.fixture(scope="module")
def detected(videos):
    """Each video's default detection, run once: several tests check different facts of the same result."""
    found = {}

    def detect(name: str):
        if name not in found:
            folder, spec = videos[name]
            found[name] = (spec, *detect_clips(folder / spec.name, width=spec.width, height=spec.height, fps=spec.fps))
        return found[name]

    return detect


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("hard_cuts")])
def test_every_hard_cut_is_found_within_two_frames(detected, name):
    spec, signals, plan = detected(name)
    found = [t.cut_frame for t in plan.transitions]
    assert len(found) == len(spec.cuts), f"found {found}, truth {spec.cuts}"
    for truth, cut in zip(spec.cuts, found):
        assert abs(cut - truth) <= 2, f"cut at {cut}, truth {truth}"
    assert signals.num_frames == spec.num_frames


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("fade", "dissolve"))])
def test_every_gradual_transition_is_one_cut_inside_it(detected, name):
    spec, _, plan = detected(name)
    ((first, last),) = spec.transitions
    assert len(plan.transitions) == 1, f"one transition expected, got {plan.transitions}"
    (found,) = plan.transitions
    assert first <= found.cut_frame <= last
    assert not found.is_hard


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("fade", "dissolve", "hard_cuts"))])
def test_no_clip_holds_a_transition_frame_and_every_scene_gives_a_clip(detected, name):
    spec, _, plan = detected(name)
    mixed = {f for a, b in spec.transitions for f in range(a, b + 1)}
    for clip in plan.clips:
        frames = set(range(clip.start_frame, clip.end_frame + 1))
        assert not frames & mixed, f"clip {clip} holds transition frames"
        assert not any(clip.start_frame < cut <= clip.end_frame for cut in spec.cuts), f"clip {clip} spans a cut"
    # Every scene long enough for the rules, once trimmed beside its transitions, became one clip.
    rules = ClipRules()
    long_enough = [
        (a, b)
        for a, b in _true_scenes(spec)
        if (b - a + 1) - rules.trim_frames * ((a > 0) + (b < spec.num_frames - 1)) >= rules.min_clip_s * spec.fps
    ]
    assert len(plan.clips) == len(long_enough) > 0


def _true_scenes(spec: VideoSpec) -> list[tuple[int, int]]:
    """Inclusive frame ranges between the spec's cuts and transitions."""
    edges = sorted([(c, c - 1) for c in spec.cuts] + [(a, b) for a, b in spec.transitions])
    scenes, start = [], 0
    for first, last in edges:
        scenes.append((start, first - 1))
        start = last + 1
    return scenes + [(start, spec.num_frames - 1)]


@pytest.mark.parametrize("name", ["static", "pan", "pan_3px", "pan_60fps", "pan_720p", "tilt_portrait"])
def test_no_false_cuts_on_static_or_smoothly_moving_video(detected, name):
    spec, signals, plan = detected(name)
    assert plan.transitions == [], signals.raw_cuts
    assert [(c.start_frame, c.end_frame) for c in plan.clips] == [(0, spec.num_frames - 1)]


def test_one_decode_feeds_every_detector(detected):
    spec, signals, _ = detected("fade_black")  # detect_clips' one scan_video
    assert set(signals.raw_cuts) == {"content", "slow", "fade", "transnetv2"}  # the default: both
    assert signals.raw_cuts["fade"], "the threshold detector saw the fade"
    assert len(signals.luma) == len(signals.step) == spec.num_frames
    assert signals.luma[:30].mean() > 60 and signals.luma[50] < 5  # black in the middle of the fade


def test_a_video_that_is_all_transition_yields_no_clip(tmp_path):
    spec = samples.fade_out(tmp_path)
    _, plan = detect_clips(tmp_path / spec.name, width=spec.width, height=spec.height, fps=spec.fps)
    assert plan.clips == []
    assert "whole video is a transition" in plan.reason


def test_too_short_scenes_are_dropped_with_a_reason(videos):
    folder, spec = videos["hard_cuts"]  # 30-frame scenes: 1.25 s, 1.08 s after trimming
    _, plan = detect_clips(
        folder / spec.name,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        rules=ClipRules(min_clip_s=1.5, max_clip_s=10),
    )
    assert plan.clips == [] and "no scene of at least 1.5s" in plan.reason


# --------------------------------------------------------------------------- plan_clips on its own


def test_long_scenes_are_split_into_equal_pieces_within_the_limits():
    plan = plan_clips(1000, 25.0, [], ClipRules(min_clip_s=2, max_clip_s=8, trim_frames=2))
    lengths = [c.num_frames for c in plan.clips]
    assert len(lengths) == 5 and max(lengths) <= 200 and min(lengths) >= 50
    assert plan.clips[0].start_frame == 0 and plan.clips[-1].end_frame == 999
    assert all(b.start_frame == a.end_frame + 1 for a, b in zip(plan.clips, plan.clips[1:]))


def test_trimming_keeps_clear_of_both_sides_of_a_transition():
    rules = ClipRules(min_clip_s=1, max_clip_s=10, trim_frames=3)
    hard = plan_clips(100, 10.0, [Transition(50, 49, ("content",))], rules)
    assert [(c.start_frame, c.end_frame) for c in hard.clips] == [(0, 46), (53, 99)]
    fade = plan_clips(100, 10.0, [Transition(40, 59, ("fade",))], rules)
    assert [(c.start_frame, c.end_frame) for c in fade.clips] == [(0, 36), (63, 99)]


def test_clip_rules_are_validated():
    with pytest.raises(ValueError):
        ClipRules(min_clip_s=5, max_clip_s=8)
    with pytest.raises(ValueError):
        ClipRules(trim_frames=-1)


def test_cuts_close_together_merge_into_one():
    signals = SceneSignals(num_frames=100, fps=25.0, raw_cuts={"content": [50], "slow": [51], "fade": []})
    import numpy as np

    signals.luma = np.full(100, 100.0, np.float32)
    signals.step = np.full(100, 2.0, np.float32)
    transitions = find_transitions(signals, CutDetection())
    assert len(transitions) == 1 and transitions[0].detectors == ("content", "slow")


# --------------------------------------------------------------------------- missed cuts: the rescan


@pytest.mark.parametrize("detectors", ["cascade", "both"])
def test_an_over_long_scene_with_a_soft_cut_is_split_at_that_cut(tmp_path, detectors):
    spec = samples.soft_cut(tmp_path)  # 144 frames at 24 fps; the cut at frame 60 changes pixels by 16 %
    (cut,) = spec.cuts
    rules = ClipRules(min_clip_s=1, max_clip_s=4, trim_frames=2)  # 6 s is too long for one clip

    def plan(**detection):
        config = CutDetection(detectors=detectors, **detection)
        return detect_clips(
            tmp_path / spec.name, width=spec.width, height=spec.height, fps=spec.fps, detection=config, rules=rules
        )[1]

    found = plan()
    assert [(c.start_frame, c.end_frame) for c in found.clips] == [(0, cut - 3), (cut + 2, spec.num_frames - 1)]
    assert all(s.startswith("rescan: a cut the second pass found at frame 60") for s in found.splits), found.splits
    # Without the second pass the first one sees a single 6 s scene: equal pieces, and the reason says so.
    equal = plan(rescan_factor=0)
    assert [(c.start_frame, c.end_frame) for c in equal.clips] == [(0, 71), (72, 143)]
    assert all(s.startswith("equal: one of 2 pieces of a 6.0s scene") for s in equal.splits), equal.splits


@pytest.mark.parametrize("name", ["pan_60fps", "pan_3px"])
def test_the_rescan_adds_no_cut_to_a_long_pan(videos, name):
    folder, spec = videos[name]
    # Lowered to 16, the hard-cut detector fires on a 3 px/frame pan; the thumbnail check turns those down.
    config = CutDetection(rescan_factor=16 / 27)
    _, plan = detect_clips(
        folder / spec.name,
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        detection=config,
        rules=ClipRules(min_clip_s=0.5, max_clip_s=1),
    )
    assert plan.transitions == [] and len(plan.clips) == -(-spec.num_frames // round(spec.fps)) > 1
    assert all("the rescan found no cut in it" in s for s in plan.splits)


# --------------------------------------------------------------------------- stitching


@pytest.fixture(scope="module")
def clip_model():
    """The offline profile's CLIP (tiny, random weights): adjacent frames of one shot give cosines >= 0.98,
    the generated scenes' palettes 0.55-0.65."""
    from openvid_assets.models.scorers.clip import CLIPEmbedder
    from openvid_assets.models.profiles import get_profile

    return CLIPEmbedder(get_profile("offline").clip, device="cpu")


def _stitched(videos, name, clip_model, **detection):
    folder, spec = videos[name]
    # 16: low enough for a 3 px/frame pan to cross it (PySceneDetect merges runs of cuts at much lower ones).
    config = CutDetection(**{"detectors": "cascade", "content_threshold": 16.0, **detection})
    return spec, detect_clips(
        folder / spec.name, width=spec.width, height=spec.height, fps=spec.fps, detection=config, embedder=clip_model
    )[1]


def test_stitching_merges_the_pieces_of_one_shot_that_a_low_threshold_split(videos, clip_model):
    spec, split = _stitched(videos, "pan_3px", clip_model)
    assert len(split.transitions) >= 3, "a 3 px/frame pan crosses the lowered hard-cut threshold"
    spec, stitched = _stitched(videos, "pan_3px", clip_model, stitch=True)
    assert stitched.transitions == []
    assert [(c.start_frame, c.end_frame) for c in stitched.clips] == [(0, spec.num_frames - 1)]
    assert len(stitched.stitched) == len(split.transitions)
    assert all(s.cosine >= 0.9 and s.detectors == ("content",) for s in stitched.stitched)


def test_stitching_never_merges_two_different_scenes(videos, clip_model):
    for name in ("hard_cuts", "hard_cuts_30fps", "hard_cuts_720p"):
        spec, plan = _stitched(videos, name, clip_model, stitch=True)
        assert [t.cut_frame for t in plan.transitions] == list(spec.cuts) and plan.stitched == []
        assert all(not any(c.start_frame < cut <= c.end_frame for cut in spec.cuts) for c in plan.clips)


@pytest.mark.parametrize("name,detectors", [("dissolve", "cascade"), ("fade_black", "cascade"), ("hard_cuts", "both")])
def test_stitching_never_undoes_a_fade_a_dissolve_or_a_confident_cut(videos, clip_model, name, detectors):
    # A threshold of -1 would undo every cut it is allowed to touch.
    spec, plan = _stitched(
        videos, name, clip_model, stitch=True, stitch_threshold=-1.0, detectors=detectors, content_threshold=27.0
    )
    assert len(plan.transitions) == len(spec.cuts) + len(spec.transitions) and plan.stitched == []


def test_stitching_requires_a_clip_model(videos):
    folder, spec = videos["hard_cuts"]
    with pytest.raises(ValueError, match="CLIP embedder"):
        detect_clips(
            folder / spec.name,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            detection=CutDetection(detectors="cascade", stitch=True),
        )
