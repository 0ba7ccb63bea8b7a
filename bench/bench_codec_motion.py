"""Benchmark the motion-vector pre-filter (``media.codec_motion``) against decoding and the flow scorers.

What it measures (all numbers come from this one run; nothing is hard-coded):

1. Per video, on generated videos (``openvid_assets.samples``, x264 ultrafast: static, a 2 px/frame pan, a
   handheld jitter, a fast pan with crossing objects, hard cuts between pans; 640x360, 30 fps, ``--seconds``):
   - ``codec_motion(path, fps)``: decode with ``flags2=+export_mvs`` (one thread) plus the vector statistics;
   - PyAV decoding of the same frames, one thread, no ``export_mvs``, nothing converted: the floor;
   - ``read_frames`` of every frame at native size (decord, RGB): what the project's decode costs;
   - ``FarnebackMotion()``: ``read_frames`` of its request (8 pairs at 320x180) plus its ``score``;
   - ``UniMatchMotion(unimatch.PAPER, None, device="cpu")`` (the paper's network, random weights: the real
     cost): ``read_frames`` of its request (the opensora-v1.3 frames at 576x320) plus its ``score``, on the first
     ``--unimatch-videos`` videos, one repeat (seconds per frame pair on a CPU).
   The cheap arms run ``--repeats`` times in a rotating order; medians are printed. Ratios are per video,
   then their median. codec_motion decodes up to ``max_frames`` (900) frames, UniMatch stops at frame 135:
   for long videos multiply codec's ms/frame by up to 900.
2. The quickstart's pool (``write_sample_set`` without its deliberately bad files, which fail at probe before
   any motion step, plus ``write_clean_source``): each video's codec score, how many a codec-static rule
   (score < ``--static``) would keep from the flow network, and the share of the flow step's frame pairs
   (so of its time: the pairs are all 576x320) that saves, in seconds at the per-pair cost measured in part 1.

    .venv/bin/python bench/bench_codec_motion.py            # 5 videos, 4 s; UniMatch on 2 (about 3 min on 2 cores)
    .venv/bin/python bench/bench_codec_motion.py --quick    # 3 videos of 2 s at 320x180, UniMatch on 1

Run from the repository root. On a CPU only the ratios mean something.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from bench._report import machine_facts, markdown, med, spread
from openvid_assets import samples
from openvid_assets.media.codec_motion import CodecMotionSettings, codec_motion
from openvid_assets.media.frames import FrameRequest, read_frames
from openvid_assets.models.networks import unimatch
from openvid_assets.models.scorers.motion import FarnebackMotion, UniMatchMotion, unimatch_indices


def make_videos(root: Path, width: int, height: int, fps: float, frames: int, count: int) -> list[samples.VideoSpec]:
    scale = width // 160  # motion in px/frame scales with the frame, as the samples' detail does
    makers: list[Callable[[], samples.VideoSpec]] = [
        lambda: samples.static(root, width=width, height=height, fps=fps, num_frames=frames),
        lambda: samples.smooth_pan(root, width=width, height=height, fps=fps, num_frames=frames, px_per_frame=scale),
        lambda: samples.shaky(root, width=width, height=height, fps=fps, num_frames=frames, amplitude_px=3 * scale),
        lambda: samples.fast_motion(
            root, width=width, height=height, fps=fps, num_frames=frames, px_per_frame=6 * scale
        ),
        lambda: samples.hard_cuts(root, width=width, height=height, fps=fps, scene_frames=(frames // 3,) * 3),
    ]
    return [make() for make in makers[:count]]


def pyav_decode(path: Path, max_frames: int) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        n = 0
        for _ in container.decode(stream):
            n += 1
            if n >= max_frames:
                break
    return n


def flow_score(scorer: FarnebackMotion | UniMatchMotion, path: Path, spec: samples.VideoSpec) -> dict[str, float]:
    """What the pipeline does per video: decode the scorer's request, score it."""
    decoded = read_frames(path, scorer.request, width=spec.width, height=spec.height)
    return {"pairs": len(decoded.indices) - 1, **scorer.score(decoded.indices, decoded.frames)}


def timed(run: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    got = run()
    return time.perf_counter() - started, got


def long_sides_per_second(spec: samples.VideoSpec) -> float:
    return spec.motion_px_per_frame * spec.fps / max(spec.width, spec.height)


def part1(root: Path, specs: list[samples.VideoSpec], repeats: int, unimatch_videos: int) -> float:
    """Per-video arms; returns UniMatch's measured seconds per frame pair (decode included)."""
    settings = CodecMotionSettings()
    farneback = FarnebackMotion()
    every_frame = FrameRequest(indices=lambda n: list(range(n)))
    arms: dict[str, Callable[[samples.VideoSpec], object]] = {
        "codec": lambda s: codec_motion(root / s.name, s.fps, settings),
        "pyav": lambda s: pyav_decode(root / s.name, settings.max_frames),
        "read_frames": lambda s: read_frames(root / s.name, every_frame, width=s.width, height=s.height),
        "farneback": lambda s: flow_score(farneback, root / s.name, s),
    }
    times: dict[tuple[str, str], list[float]] = {}
    results: dict[tuple[str, str], object] = {}
    for spec in specs:  # warm up: first open of each library, page cache
        for name, arm in arms.items():
            results[name, spec.name] = arm(spec)
    for r in range(repeats):
        names = list(arms)[r % len(arms) :] + list(arms)[: r % len(arms)]
        for spec in specs:
            for name in names:
                seconds, results[name, spec.name] = timed(lambda: arms[name](spec))
                times.setdefault((name, spec.name), []).append(seconds)

    network = UniMatchMotion(unimatch.PAPER, None, device="cpu")
    first = specs[0]
    warm = read_frames(
        root / first.name,
        FrameRequest(indices=lambda n: [0, 1], size=(576, 320)),
        width=first.width,
        height=first.height,
    )
    network.score(warm.indices, warm.frames)  # first forward allocates; not timed
    uni: dict[str, tuple[float, int, float]] = {}  # name -> (seconds, pairs, score)
    for spec in specs[:unimatch_videos]:
        seconds, got = timed(lambda: flow_score(network, root / spec.name, spec))
        pairs = int(got["pairs"])
        uni[spec.name] = (seconds, pairs, got["score"])
        print(f"  unimatch {spec.name}: {seconds:.1f} s for {pairs} pairs", flush=True)

    rows, ratios = [], {"decode": [], "read_frames": [], "farneback": [], "unimatch": []}
    for spec in specs:
        t = {name: med(times[name, spec.name]) for name in arms}
        found = results["codec", spec.name]
        ratios["decode"].append(t["codec"] / t["pyav"])
        ratios["read_frames"].append(t["codec"] / t["read_frames"])
        ratios["farneback"].append(t["codec"] / t["farneback"])
        uni_cell, uni_ratio = "", ""
        if spec.name in uni:
            ratios["unimatch"].append(t["codec"] / uni[spec.name][0])
            uni_cell, uni_ratio = f"{uni[spec.name][0]:.1f}", f"{ratios['unimatch'][-1]:.4f}"
        rows.append(
            [
                spec.name,
                str(found.frames),
                f"{found.score:.3f}" if found.score is not None else f"None ({found.reason})",
                f"{long_sides_per_second(spec):.3f}",
                f"{results['farneback', spec.name]['score']:.2f}",
                f"{t['codec'] * 1e3:.1f}{spread([x * 1e3 for x in times['codec', spec.name]], '{:.1f}')}",
                f"{t['codec'] / found.frames * 1e3:.2f}",
                f"{t['pyav'] * 1e3:.1f}",
                f"{t['read_frames'] * 1e3:.1f}",
                f"{t['farneback'] * 1e3:.1f}",
                uni_cell,
                f"{ratios['decode'][-1]:.2f}",
                f"{ratios['farneback'][-1]:.3f}",
                uni_ratio,
            ]
        )
    header = [
        "video",
        "frames",
        "codec score (long sides/s)",
        "spec motion (long sides/s)",
        "farneback (px/frame @320x180)",
        "codec ms",
        "codec ms/frame",
        "pyav decode ms",
        "read_frames all RGB ms",
        "farneback ms",
        "unimatch s",
        "codec / decode",
        "codec / farneback",
        "codec / unimatch",
    ]
    print("\n" + markdown(header, rows))
    print(
        "\nMedian over videos: codec / PyAV decode "
        f"{med(ratios['decode']):.2f}{spread(ratios['decode'])}, codec / read_frames (all frames, RGB) "
        f"{med(ratios['read_frames']):.2f}{spread(ratios['read_frames'])}, codec / Farneback "
        f"{med(ratios['farneback']):.3f}{spread(ratios['farneback'], '{:.3f}')}, codec / UniMatch "
        f"{med(ratios['unimatch']):.4f}{spread(ratios['unimatch'], '{:.4f}')} (expected <= 0.05)"
    )
    total_s, total_pairs = sum(v[0] for v in uni.values()), sum(v[1] for v in uni.values())
    per_pair = total_s / total_pairs
    print(f"UniMatch (paper size, CPU, {torch.get_num_threads()} torch threads): {per_pair:.2f} s per frame pair")
    return per_pair


def part2(pool: Path, static_below: float, per_pair: float) -> None:
    specs = samples.write_sample_set(pool / "sample", include_bad=False)
    clean = samples.write_clean_source(pool / "clean")
    videos = [(pool / "sample" / s.name, s) for s in specs] + [(pool / "clean" / s.name, s) for s in clean]
    rows, skipped_pairs, total_pairs, codec_s, skipped = [], 0, 0, 0.0, []
    farneback, paired = FarnebackMotion(), []  # (codec, flow) of every video with both
    for path, spec in videos:
        seconds, found = timed(lambda: codec_motion(path, spec.fps))
        codec_s += seconds
        if found.score is not None:
            paired.append((found.score, flow_score(farneback, path, spec)["score"]))
        pairs = max(len(unimatch_indices(spec.num_frames)) - 1, 0)
        total_pairs += pairs
        skip = found.score is not None and found.score < static_below
        if skip:
            skipped_pairs += pairs
            skipped.append(spec.name)
        rows.append(
            [
                str(path.relative_to(pool)),
                f"{spec.width}x{spec.height}",
                f"{found.score:.4f}" if found.score is not None else f"None ({found.reason})",
                f"{long_sides_per_second(spec):.3f}",
                str(pairs),
                "skip" if skip else "",
            ]
        )
    print("\n" + markdown(["video", "size", "codec score", "spec motion", "UniMatch pairs", "rule"], rows))
    saved = skipped_pairs * per_pair
    print(
        f"\nCodec-static rule (score < {static_below} long sides/s): skips {len(skipped)} of {len(videos)} videos "
        f"({', '.join(skipped) or 'none'}): {skipped_pairs} of {total_pairs} UniMatch frame pairs = "
        f"{skipped_pairs / total_pairs:.1%} of the flow step, about {saved:.0f} s of its "
        f"{total_pairs * per_pair:.0f} s at this run's {per_pair:.2f} s/pair. The codec pass over all "
        f"{len(videos)} videos took {codec_s:.2f} s."
    )
    band_agreement(paired)


def band_agreement(paired: list[tuple[float, float]], band: tuple[float, float] = (0.10, 0.95)) -> None:
    """How the codec score agrees with the flow score (Farneback: UniMatch on every pool video would take ~15 min
    here) over the same videos: Spearman's rank correlation, and how many of the motion band's decisions (the
    recipe's band:10:95, applied to each score over these videos) would differ."""
    from scipy.stats import spearmanr

    codec, flow = (np.array(v) for v in zip(*paired))

    def inside(x: np.ndarray) -> np.ndarray:
        lo, hi = np.quantile(x, band)
        return (x >= lo) & (x <= hi)

    changed = int((inside(codec) != inside(flow)).sum())
    print(
        f"\nAgreement with Farneback over the {len(paired)} pool videos with vectors: Spearman "
        f"{spearmanr(codec, flow).statistic:.3f}; the band p{band[0] * 100:g}-p{band[1] * 100:g} decides "
        f"{changed} of {len(paired)} videos differently on the codec score than on the flow score."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 videos 320x180 of 2 s, 1 repeat, UniMatch on 1")
    parser.add_argument("--seconds", type=float, help="length of each video (default 4, quick 2)")
    parser.add_argument("--repeats", type=int, help="repeats of the cheap arms (default 3, quick 1)")
    parser.add_argument("--unimatch-videos", type=int, help="videos timed with UniMatch (default 2, quick 1)")
    parser.add_argument("--static", type=float, default=0.005, help="codec-static threshold, long sides/s")
    args = parser.parse_args()
    quick = args.quick
    width, height, fps = (320, 180, 30.0) if quick else (640, 360, 30.0)
    frames = round(fps * (args.seconds or (2 if quick else 4)))
    count = 3 if quick else 5
    repeats = args.repeats or (1 if quick else 3)
    unimatch_videos = args.unimatch_videos or (1 if quick else 2)
    for key, value in machine_facts(av=av.__version__, torch=torch.__version__).items():
        print(f"{key}: {value}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        seconds, specs = timed(lambda: make_videos(root / "videos", width, height, fps, frames, count))
        print(f"generated {count} videos {width}x{height}, {frames} frames @{fps:g} fps in {seconds:.1f} s", flush=True)
        per_pair = part1(root / "videos", specs, repeats, unimatch_videos)
        part2(root / "pool", args.static, per_pair)


if __name__ == "__main__":
    main()
