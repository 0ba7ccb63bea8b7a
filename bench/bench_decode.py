"""Decoder backends on the pipeline's own access patterns: frames/s per backend, and the chosen one vs the best.

What it measures (every number from this one run): the one frame-reading function
(``openvid_assets.media.frames.read_frames``) with each decoder backend (``DECODERS``: decord; torchcodec with
exact seeks, which index the file first; torchcodec with approximate seeks, which trust the header), on the
requests the pipeline makes, over 10 s synthetic videos at 720p and 1080p in H.264 (mp4) and VP9 (webm):

* sparse frames scaled while decoding to CLIP's 224 px short side: 3 (the aesthetic frames), 6 (the default
  CLIP pass: aesthetic frames and the adjacent pairs starting there), 9 and 11 (evenly spaced; 11 was the
  earlier CLIP pass);
* the same 3 frames at native size (what decoder-side scaling saves);
* adjacent pairs: Farneback's 8 pairs at 320x180, and UniMatch's 10 frames 15 apart at 576x320;
* the dense scan of cut detection: every frame at a 144 px short side, reduced chunk by chunk.

Then the cost of ``exact_inputs``: decode plus input preparation up to the model's input tensor, per video,
for the CLIP pass (decoder-scaled frames + crop, vs full-size decode + open_clip's PIL bicubic preprocess) and
UniMatch (decoder-scaled 576x320, vs full-size decode + float bilinear resize), with the pipeline's decoder;
the model itself is not run (its cost is the same either way).

One decode thread per video, as the pipeline runs them (decode-ahead threads work on several videos at
once). Each (pattern, backend) decodes all videos; arms alternate in a rotating order and the median of
``--repeats`` is reported. Printed: frames/s per backend per pattern, the pattern's best, and the ratio of the
backend the pipeline uses for that pattern to the best (1.00 = the fastest was chosen). On CPU only the
ratios mean something.

    .venv/bin/python bench/bench_decode.py             # about 5 minutes on 2 idle cores
    .venv/bin/python bench/bench_decode.py --quick     # 2 s videos, 1 repeat: checks it works
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bench._report import machine_facts, markdown
from openvid_assets import samples
from openvid_assets.media.frames import DECODERS, FrameRequest, at_fractions, evenly_spaced, read_frames
from openvid_assets.media.probe import probe
from openvid_assets.media.scenes import CutDetection, analysis_request
from openvid_assets.models.scorers.motion import FarnebackMotion, UniMatchMotion  # noqa: F401
from openvid_assets.models.registry.sampling import CLIPSampling


@dataclass(frozen=True)
class Pattern:
    name: str
    request: Callable[[int, int], FrameRequest]  # (width, height) -> the pipeline's request


def _unimatch_request(width: int, height: int) -> FrameRequest:
    from openvid_assets.models.scorers.motion import WORK_SIZE, unimatch_indices

    return FrameRequest(indices=unimatch_indices, size=WORK_SIZE, landscape=True)


def _scan_request(width: int, height: int) -> FrameRequest:
    return analysis_request(CutDetection(), width, height, lambda chunk: chunk[:, :1, :1, 0])


def patterns() -> list[Pattern]:
    sampling = CLIPSampling()
    clip = 224
    return [
        Pattern(
            "3 frames @224 (aesthetic)", lambda w, h: FrameRequest(indices=sampling.aesthetic_indices, short_side=clip)
        ),
        Pattern(
            "6 frames @224 (CLIP pass, default)", lambda w, h: FrameRequest(indices=sampling.union, short_side=clip)
        ),
        Pattern("9 frames @224", lambda w, h: FrameRequest(indices=partial(evenly_spaced, count=9), short_side=clip)),
        Pattern("11 frames @224", lambda w, h: FrameRequest(indices=partial(evenly_spaced, count=11), short_side=clip)),
        Pattern(
            "3 frames, native size", lambda w, h: FrameRequest(indices=partial(at_fractions, fractions=(0.1, 0.5, 0.9)))
        ),
        Pattern("8 adjacent pairs @320x180 (Farneback)", lambda w, h: FarnebackMotion().request),
        Pattern("10 frames 15 apart @576x320 (UniMatch)", _unimatch_request),
        Pattern("every frame @144 (cut scan)", _scan_request),
    ]


def make_videos(folder: Path, seconds: float) -> list[Path]:
    frames = int(round(30 * seconds))
    out = []
    for width, height in ((1280, 720), (1920, 1080)):
        for ext in ("mp4", "webm"):
            spec = samples.fast_motion(
                folder, f"{height}p.{ext}", width=width, height=height, fps=30.0, num_frames=frames
            )
            out.append(folder / spec.name)
    return out


def time_arm(videos: list[tuple[Path, int, int, int]], pattern: Pattern, decoder: str) -> tuple[float, int]:
    """Seconds to decode the pattern from every video, and the frames decoded."""
    frames = 0
    t0 = time.perf_counter()
    for path, width, height, rotation in videos:
        got = read_frames(
            path, pattern.request(width, height), width=width, height=height, rotation=rotation, decoder=decoder
        )  # type: ignore[arg-type]
        frames += len(got.indices)
    return time.perf_counter() - t0, frames


def exact_inputs_cost(videos: list[tuple[Path, int, int, int]], repeats: int) -> list[list[str]]:
    """(model, fast s/video, exact s/video, exact / fast) for CLIP and UniMatch inputs."""
    from openvid_assets.models.registry.catalog import TINY_CLIP_CONFIG, CLIPSpec
    from openvid_assets.models.scorers.clip import CLIPEmbedder
    from openvid_assets.models.networks.unimatch import TINY

    sampling = CLIPSampling()
    clip = {
        exact: CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device="cpu", exact=exact)
        for exact in (False, True)
    }
    flow = {exact: UniMatchMotion(TINY, None, device="cpu", exact=exact) for exact in (False, True)}

    def clip_inputs(exact: bool) -> None:
        embedder = clip[exact]
        request = FrameRequest(indices=sampling.union, short_side=embedder.decode_short_side)
        for path, width, height, rotation in videos:
            frames = read_frames(path, request, width=width, height=height, rotation=rotation).frames
            embedder._prepare(embedder.square(frames))

    def flow_inputs(exact: bool) -> None:
        scorer = flow[exact]
        for path, width, height, rotation in videos:
            scorer._tensor(read_frames(path, scorer.request, width=width, height=height, rotation=rotation).frames)

    rows = []
    for name, run in (
        ("CLIP (6 frames, 224 px input)", clip_inputs),
        ("UniMatch (10 frames, 576x320 input)", flow_inputs),
    ):
        times: dict[bool, list[float]] = {False: [], True: []}
        for repeat in range(repeats):
            for exact in (False, True) if repeat % 2 == 0 else (True, False):
                t0 = time.perf_counter()
                run(exact)
                times[exact].append((time.perf_counter() - t0) / len(videos))
        fast, exact = statistics.median(times[False]), statistics.median(times[True])
        rows.append([name, f"{fast:.3f}", f"{exact:.3f}", f"{exact / fast:.2f}x"])
        print(f"  exact inputs, {name}: fast {fast:.3f} s/video, exact {exact:.3f} s/video", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each test video")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 s videos, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats = 2.0, 1
    import decord
    import torchcodec

    facts = machine_facts(decord=decord.__version__, torchcodec=torchcodec.__version__)
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        t0 = time.perf_counter()
        paths = make_videos(Path(tmp), args.seconds)
        videos = [(p, *(lambda f: (f.width, f.height, f.rotation))(probe(p))) for p in paths]
        print(
            f"videos: {', '.join(p.name for p in paths)} ({args.seconds:g} s, 30 fps; made in "
            f"{time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        rows, ratios = [], []
        for pattern in patterns():
            times: dict[str, list[float]] = {d: [] for d in DECODERS}
            counts: dict[str, int] = {}
            for repeat in range(args.repeats):
                order = DECODERS[repeat % len(DECODERS) :] + DECODERS[: repeat % len(DECODERS)]
                for decoder in order:
                    seconds, counts[decoder] = time_arm(videos, pattern, decoder)
                    times[decoder].append(seconds)
            rate = {d: counts[d] / statistics.median(times[d]) for d in DECODERS}
            best = max(rate, key=rate.get)
            chosen = pattern.request(1280, 720).decoder
            ratios.append(rate[chosen] / rate[best])
            rows.append(
                [pattern.name, *(f"{rate[d]:.0f}" for d in DECODERS), best, chosen, f"{rate[chosen] / rate[best]:.2f}"]
            )
            print(f"  {pattern.name}: " + ", ".join(f"{d} {rate[d]:.0f}/s" for d in DECODERS), flush=True)
        exact_rows = exact_inputs_cost(videos, args.repeats)
    print()
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print(
        f"- videos: 720p and 1080p, H.264 (x264 ultrafast) and VP9, {args.seconds:g} s at 30 fps; "
        f"median of {args.repeats} repeat(s); one decode thread\n"
    )
    print(markdown(["pattern (frames/s)", *DECODERS, "fastest", "pipeline uses", "used / fastest"], rows))
    print(
        f"\nworst pattern for the pipeline's choice: {min(ratios):.2f} of the fastest "
        f"(geometric mean {float(np.exp(np.mean(np.log(ratios)))):.2f})"
    )
    print("\nexact_inputs: decode + input preparation per video (model not run)\n")
    print(markdown(["model input", "fast s/video", "exact s/video", "exact / fast"], exact_rows))


if __name__ == "__main__":
    main()
