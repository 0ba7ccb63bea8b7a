"""Benchmark the content filters: their cost per video beside the CLIP pass, and near-duplicate search at scale.

What it measures (all numbers come from this one run; nothing is hard-coded):

Part 1 -- what the filters add to ``frame_embeddings``, per video, on one shard of generated videos.
  Arm A: ``embed_shard(manifest, embedder, CLIPSampling(), open_video)`` with no inspector: the CLIP pass alone.
  Arm B: what the pipeline runs with the filters on, called directly (no Dagster, no table I/O):
    ``embed_shard(..., inspector=FrameInspector(TextDetector()))`` (picture box and exposure of every decoded
    frame, PP-OCR text detection on the 3 aesthetic frames, real weights from the rapidocr-onnxruntime wheel, in
    the decode threads), then ``content_rows(embeddings, manifest, NSFWScorer(None, device="cpu"))`` (the
    random stand-in has the real concept test's shapes, so its cost is the real cost), then
    ``video_embeddings`` and ``add_shards(None, {shard: ...})`` (the near-duplicate index built over the
    shard and searched with it).
  Arm A224 (tiny CLIP only): arm A, but decoding at the inspector's 224 px short side with an inspector that
  measures nothing. ``FrameInspector.short_side`` raises the decode to 224 px when the CLIP input is smaller,
  so for the tiny CLIP (64 px input) arm B decodes 224 px frames where arm A decodes 64 px ones; A224 shows
  that part of the cost apart from the measures. ViT-L/14 decodes at 224 px in every arm.
  Reported: the medians of A and B, the overhead B/A - 1 (target: <= +15 % wall on CPU), and the median per
  video of each part of B: the inspector inside ``embed_shard`` (B's embed_shard minus A, paired by repeat),
  the time the inspector's calls took inside the decode threads (picture box + exposure, and text detection;
  these overlap the CLIP forward, so they cost wall time only where they delay it), ``content_rows``,
  ``video_embeddings`` and ``add_shards``. Process CPU time is reported beside wall time.
  Embedders: CLIP ViT-L/14 (``CLIPSpec("ViT-L-14-quickgelu")``, random init: the paper model's compute),
  the ratio that matters; and the offline profile's tiny CLIP, the worst case (its forward is nearly free).
  A check that arms A and B embed identical frames (ViT-L/14: same decode size), and the content rows by kind
  of video (letterboxes found, text found) as evidence the filters did their work.
  Videos: synthetic (``openvid_assets.samples``, x264 ultrafast, default GOP), a cycle of 8 kinds:
  pans at 1280x720/30 and 1920x1080/24 and /30, a fast pan at 720p, a 2.39:1 letterbox at 720p, a 4:3
  pillarbox at 1080p, burnt-in subtitles at 720p, a logo or a caption card at 1080p; ``--seconds`` long.
  ViT-L/14 costs about a second a frame on a CPU, so its arms run on the first ``--vitl-videos`` videos.

Part 2 -- near-duplicate search (``curation/duplicates.add_shards``, ``DuplicateSearch()`` defaults) over synthetic
  pools of 768-d unit vectors in 1,000-video shards, each size in its own process (so its peak RSS is its own):
  - ``random``: Gaussian directions (unrelated videos nearly orthogonal: the easy case);
  - ``clustered``: normalize(sqrt(0.5) m + sqrt(b) c_k + sqrt(0.5 - b) g), one common direction m (the cone
    real CLIP embeddings crowd in), ``--clusters`` cluster centres c_k with b in [0.1, 0.4] per cluster, and
    noise g: unrelated videos have cosines ~0.5, videos of one cluster 0.6-0.9.
  In both, 1 % of the videos get 1-3 copies each, at cosine 0.985-0.999 to their original; a true pair is any
  two videos of a planted group whose exact cosine on the stored (fp16-rounded) vectors is >= the threshold.
  The vectors are handed to ``add_shards`` as float16 arrays by default: ``add_shards`` rounds them to the same
  fp16 unit vectors as the float32 means the pipeline's ``video_embeddings`` hands it, and the benchmark's own
  input is halved, which keeps 1M videos under a 12 GiB peak (``--input-dtype float32``: the pipeline's dtype,
  ~2 KB more per video at the peak).
  (a) full build: ``add_shards(None, every shard)``: index built over the pool and every video searched.
  Above ``--max-queries`` videos the index is still built in full, but ``confirmed_pairs`` (looked up by
  ``add_shards`` at call time) is wrapped to search only every planted video plus a random sample up to
  ``--max-queries``; the full build's time is then add_shards' time with the search scaled to all N queries
  (search time is linear in the number of queries against a fixed index). Reported as "est.".
  (b) incremental: the pool indexed, one new shard of 1,000 videos (950 new, 50 copies of earlier videos)
  added and searched: the pipeline's steady state. Beside it, what the ``near_duplicates`` asset does around
  ``add_shards`` every run: save and load of the index (``to_bytes`` / ``from_bytes``), a set of the members.
  Reported: which index each size used, time, peak RSS of the build (VmHWM, reset before it) and of the
  incremental step, index bytes, recall of the planted pairs, false pairs (must be 0: pairs are confirmed
  with the exact cosine), faiss distance computations (IVF statistics), and a projection to ``--project``
  videos: t = a N^b fitted over the IVF sizes, and a model from the measured cost per distance
  (N x nprobe x N / nlist(N) distances for a full build), memory from the measured bytes per video.
  ``--exact-check`` also times the exact flat scan at the smallest IVF size (``exact_below`` raised past it).

Run from the repository root. About 30-40 minutes on 2 idle cores (Part 1 ~12, Part 2 ~20; a loaded
machine takes longer); ``--quick`` takes about 3 minutes:

    .venv/bin/python bench/bench_filters.py                       # both parts
    .venv/bin/python bench/bench_filters.py --quick               # small everything: checks it works
    .venv/bin/python bench/bench_filters.py --only filters --repeats 5
    .venv/bin/python bench/bench_filters.py --only duplicates --sizes 100000 300000 1000000 --exact-check

On a shared 2-core CPU only the ratios mean something; absolute times only mean something on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench._report import machine_facts, markdown, med, spread, verdict

# torch, open_clip, decord and onnxruntime are imported inside Part 1 only: Part 2's processes measure their own
# peak memory, which a torch import (~0.4 GiB) would blur.

TARGET = 0.15  # the target: filters add at most 15 % wall to frame_embeddings on CPU
SHARD = "shard-00000"
DECODE_WORKERS = 2  # ModelsResource.decode_workers default
DIM = 768


def log(message: str = "") -> None:
    print(message, flush=True)


def pair_quality(pairs, truth: set, threshold: float) -> tuple[set, dict, dict[str, float]]:
    """(pairs found, their cosines, recall of the planted pairs / pairs under the threshold / true pairs that
    were not planted)."""
    keys = list(zip(pairs["a"].to_list(), pairs["b"].to_list()))
    found, cos = set(keys), dict(zip(keys, pairs["cosine"].to_list()))
    return (
        found,
        cos,
        {
            "recall": len(found & truth) / len(truth) if truth else float("nan"),
            "false_pairs": sum(1 for p in found if cos[p] < threshold),
            "unplanted_true_pairs": sum(1 for p in found - truth if cos[p] >= threshold),
        },
    )


# =========================================================================== Part 1: cost per video


@dataclasses.dataclass(frozen=True)
class Kind:
    label: str
    width: int
    height: int
    fps: float
    bordered: bool = False
    text: str = "scattered letters"  # what text the picture holds: the pans' generated worlds have 1-3 letter marks


# The cycle of generated videos (the first --vitl-videos of it are the ViT-L/14 set: 8 covers every kind).
KINDS = [
    Kind("pan", 1280, 720, 30.0),
    Kind("pan", 1920, 1080, 24.0),
    Kind("letterbox 2.39:1", 1280, 720, 24.0, bordered=True, text="none"),
    Kind("subtitles", 1280, 720, 30.0, text="two subtitle lines"),
    Kind("fast pan", 1280, 720, 30.0),
    Kind("pan", 1920, 1080, 30.0),
    Kind("pillarbox 4:3", 1920, 1080, 24.0, bordered=True, text="none"),
    Kind("logo or card", 1920, 1080, 24.0, text="corner logo / caption card"),
]


def make_video(out_dir: Path, i: int, seconds: float, scale: float) -> tuple[str, Kind]:
    """The i-th video of the cycle, its frame size multiplied by ``scale`` (--quick): (file name, kind)."""
    from openvid_assets import samples

    kind = KINDS[i % len(KINDS)]
    w, h = 2 * round(kind.width * scale / 2), 2 * round(kind.height * scale / 2)
    n = max(8, int(round(seconds * kind.fps)))
    name = f"{i:02d}_{kind.label.split()[0]}_{w}x{h}.mp4"
    common = {"width": w, "height": h, "fps": kind.fps, "num_frames": n, "seed": 100 + i}
    if kind.label.startswith("letterbox"):
        ph = 2 * round(w / 2.39 / 2)
        samples.letterboxed(out_dir, name, picture=(0, (h - ph) // 2, w, ph), **common)
    elif kind.label.startswith("pillarbox"):
        pw = 2 * round(h * 4 / 3 / 2)
        samples.letterboxed(out_dir, name, picture=((w - pw) // 2, 0, pw, h), **common)
    elif kind.label.startswith("subtitles"):
        samples.burnt_in_text(out_dir, name, "subtitles", **common)
    elif kind.label.startswith("logo"):
        samples.burnt_in_text(out_dir, name, "logo" if (i // len(KINDS)) % 2 == 0 else "card", **common)
    elif kind.label.startswith("fast"):
        samples.fast_motion(out_dir, name, px_per_frame=max(2, round(12 * scale)), **common)
    else:
        samples.smooth_pan(out_dir, name, px_per_frame=max(1, round(3 * scale)), **common)
    return name, kind


def subset_dir(paths: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copy2(path, dest / path.name)
    return dest


class Stopwatch:
    """Wall and thread-CPU seconds summed over calls from any thread (the inspector runs in the decode threads).

    Wall includes waiting: for a core, and for TextDetector's lock (one frame at a time across decode threads).
    Thread CPU (``time.thread_time``) is the work itself; ONNX Runtime with one intra-op thread runs the
    network on the calling thread, so the text detector's CPU is counted.
    """

    def __init__(self) -> None:
        self.seconds, self.cpu, self.calls = 0.0, 0.0, 0
        self._lock = threading.Lock()

    def time(self, call: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        out = call()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        with self._lock:
            self.seconds += wall
            self.cpu += cpu
            self.calls += 1
        return out

    def reset(self) -> None:
        with self._lock:
            self.seconds, self.cpu, self.calls = 0.0, 0.0, 0


class TimedText:
    """Delegates to a TextDetector, timing ``text_area`` (everything else, params included, passes through)."""

    def __init__(self, inner: Any, watch: Stopwatch):
        self.inner, self.watch = inner, watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def text_area(self, frames: np.ndarray) -> list[float]:
        return self.watch.time(lambda: self.inner.text_area(frames))


def timed_inspector(text: Any, watch: Stopwatch) -> Any:
    """A FrameInspector whose ``measure`` (picture box, exposure and the text call) is timed."""
    from openvid_assets.models.scorers.content import FrameInspector

    class TimedInspector(FrameInspector):
        def measure(self, frames: np.ndarray, text_frames: list[int]) -> list[dict[str, Any]]:
            return watch.time(lambda: super(TimedInspector, self).measure(frames, text_frames))

    return TimedInspector(text)


def decode_only_inspector() -> Any:
    """An inspector that measures nothing: embed_shard decodes at its short side (224 px) and stores no measures."""
    from openvid_assets.models.scorers.content import FrameInspector

    class DecodeOnly(FrameInspector):
        def params(self) -> dict[str, Any]:
            return {"decode_only": True, "short_side": self.short_side}

        def measure(self, frames: np.ndarray, text_frames: list[int]) -> list[dict[str, Any]]:
            return [{} for _ in range(len(frames))]

    return DecodeOnly(None)


@dataclasses.dataclass
class Regime:
    """One embedder: the per-repeat values of every arm."""

    label: str
    videos: int
    frames: int = 0
    decode: dict[str, int] = dataclasses.field(default_factory=dict)
    runs: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    checks: dict[str, str] = dataclasses.field(default_factory=dict)
    content: pl.DataFrame | None = None

    def add(self, name: str, value: float) -> None:
        self.runs.setdefault(name, []).append(value)

    def m(self, name: str) -> float:
        return med(self.runs[name])

    def paired(self, a: str, b: str, op: Callable[[float, float], float]) -> list[float]:
        return [op(x, y) for x, y in zip(self.runs[a], self.runs[b])]


def run_regime(label: str, embedder: Any, manifest: pl.DataFrame, root: str, repeats: int, with_a224: bool) -> Regime:
    """Arms A, (A224,) B on every video of ``manifest``, interleaved in a rotating order, after an untimed warm-up."""
    from openvid_assets.media.sources import local_file
    from openvid_assets.models.scorers.content import FrameInspector
    from openvid_assets.models.shards.content import content_rows
    from openvid_assets.curation.duplicates import DuplicateSearch, add_shards
    from openvid_assets.models.scorers.nsfw import NSFWScorer
    from openvid_assets.models.shards.scores import CLIPSampling, embed_shard
    from openvid_assets.models.shards.tables import embedding_matrix, video_embeddings
    from openvid_assets.models.scorers.text import TextDetector

    sampling = CLIPSampling()  # the pipeline's defaults
    open_video = lambda task: local_file(task.source_uri, root)  # noqa: E731
    measure_watch, text_watch = Stopwatch(), Stopwatch()
    inspector = timed_inspector(TimedText(TextDetector(), text_watch), measure_watch)
    plain = FrameInspector(TextDetector())
    assert inspector.params() == plain.params(), "the timed inspector must key rows like the pipeline's"
    a224 = decode_only_inspector()
    nsfw = NSFWScorer(None, device="cpu")  # content_scores runs it on CPU (ModelsResource._nsfw)
    search = DuplicateSearch()
    regime = Regime(label, manifest.height)
    regime.decode = {
        "A": embedder.decode_short_side,
        "B": max(embedder.decode_short_side, inspector.short_side),
        "A224": max(embedder.decode_short_side, a224.short_side),
    }

    def arm(name: str, rows: pl.DataFrame) -> dict[str, Any]:
        out: dict[str, Any] = {}
        cpu0, t0 = time.process_time(), time.perf_counter()
        if name == "A":
            out["table"] = embed_shard(rows, embedder, sampling, open_video, workers=DECODE_WORKERS).table
        elif name == "A224":
            out["table"] = embed_shard(
                rows, embedder, sampling, open_video, workers=DECODE_WORKERS, inspector=a224
            ).table
        else:
            measure_watch.reset()
            text_watch.reset()
            table = embed_shard(rows, embedder, sampling, open_video, workers=DECODE_WORKERS, inspector=inspector).table
            t1 = time.perf_counter()
            content = content_rows(table, rows, nsfw)
            t2 = time.perf_counter()
            ids, vectors = video_embeddings(table)
            t3 = time.perf_counter()
            _, pairs, _ = add_shards(None, {SHARD: ("bench", ids, vectors)}, "bench", search)
            t4 = time.perf_counter()
            out.update(
                table=table,
                content=content,
                pairs=pairs,
                embed=t1 - t0,
                content_rows=t2 - t1,
                vectors=t3 - t2,
                add_shards=t4 - t3,
                measure=measure_watch.seconds,
                text=text_watch.seconds,
                measure_cpu=measure_watch.cpu,
                text_cpu=text_watch.cpu,
                text_calls=text_watch.calls,
            )
        out["total"] = time.perf_counter() - t0
        out["cpu"] = time.process_time() - cpu0
        return out

    arms = ["A", "A224", "B"] if with_a224 else ["A", "B"]
    t = time.perf_counter()
    for name in arms:  # warm-up: first forwards, the ONNX session, decord, page cache
        arm(name, manifest.head(1))
    log(f"  [{label}] warm-up {time.perf_counter() - t:.1f} s")
    max_diff = 0.0
    for r in range(repeats):
        order = arms[r % len(arms) :] + arms[: r % len(arms)]
        results = {}
        for name in order:
            out = arm(name, manifest)
            results[name] = out
            regime.add(name, out["total"])
            regime.add(f"{name}_cpu", out["cpu"])
            detail = ""
            if name == "B":
                for key in (
                    "embed",
                    "content_rows",
                    "vectors",
                    "add_shards",
                    "measure",
                    "text",
                    "measure_cpu",
                    "text_cpu",
                ):
                    regime.add(key, out[key])
                regime.frames = out["table"].filter(pl.col("status") == "ok").height
                regime.content = out["content"]
                detail = (
                    f" (embed_shard {out['embed']:.2f}: measures {out['measure']:.2f} s wall / "
                    f"{out['measure_cpu']:.2f} s CPU in decode threads, of which text {out['text']:.2f} / "
                    f"{out['text_cpu']:.2f} s over {out['text_calls']} videos; content_rows "
                    f"{out['content_rows']:.3f}, video_embeddings {out['vectors']:.3f}, add_shards "
                    f"{out['add_shards']:.3f}; {out['pairs'].height} duplicate pair(s))"
                )
            log(
                f"  [{label}] repeat {r + 1}/{repeats} {name:<4s} {out['total']:7.2f} s wall, {out['cpu']:7.2f} s CPU"
                + detail
            )
        if regime.decode["A"] == regime.decode["B"]:  # same decode: the same frames, so the same embeddings
            a, b = (embedding_matrix(results[k]["table"].filter(pl.col("status") == "ok")) for k in ("A", "B"))
            max_diff = max(max_diff, float(np.abs(a - b).max()))
            regime.checks["max |embedding A - B|"] = f"{max_diff:.1e}"
        failed = results["B"]["content"].filter(pl.col("status") != "ok").height
        regime.checks["content rows failed"] = str(failed)
    return regime


def part1(args: argparse.Namespace, facts: dict[str, str]) -> None:
    import torch

    from openvid_assets.media.manifest import build_manifest
    from openvid_assets.media.sources import list_videos, normalize_source
    from openvid_assets.models.scorers.clip import TINY_CLIP_CONFIG, CLIPEmbedder, CLIPSpec

    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    n_videos = args.videos or (4 if args.quick else 16)
    vitl_videos = min(args.vitl_videos or (1 if args.quick else 8), n_videos)
    repeats = args.repeats or (1 if args.quick else 5)
    vitl_repeats = args.vitl_repeats or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 4.0)
    scale = 0.5 if args.quick else 1.0
    facts = {**facts, "torch": torch.__version__, "torch threads": str(torch.get_num_threads())}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-filters-"))
    start = time.perf_counter()
    try:
        shutil.rmtree(work / "videos", ignore_errors=True)
        all_src = work / "videos" / "all"
        all_src.mkdir(parents=True, exist_ok=True)
        kinds: dict[str, Kind] = {}
        t = time.perf_counter()
        for i in range(n_videos):
            name, kind = make_video(all_src, i, seconds, scale)
            kinds[name] = kind
        paths = sorted(all_src / name for name in kinds)
        log(
            f"generated {len(paths)} videos ({seconds:g} s each, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t:.1f} s under {work}"
        )
        vitl_src = subset_dir(paths[:vitl_videos], work / "videos" / f"vitl{vitl_videos}")
        manifests = {}
        for key, src in (("all", all_src), ("vitl", vitl_src)):
            root = normalize_source(str(src))
            manifests[key] = (build_manifest(list_videos(root), root, SHARD), root)
        sizes = {
            r["source_uri"].rsplit("/", 1)[1]: f"{r['width']}x{r['height']}"
            for r in manifests["all"][0].iter_rows(named=True)
        }
        facts["device"] = args.device
        tiny = CLIPEmbedder(CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG), device=args.device)
        log(f"tiny CLIP: {n_videos} videos, {repeats} repeats (arms A, A224, B)")
        tiny_regime = run_regime("tiny-clip", tiny, *manifests["all"], repeats, True)
        vitl_regime = None
        if not args.skip_vitl:
            t = time.perf_counter()
            vitl = CLIPEmbedder(CLIPSpec("ViT-L-14-quickgelu"), device=args.device)
            log(
                f"ViT-L/14 (random init) built in {time.perf_counter() - t:.1f} s; {vitl_videos} videos, "
                f"{vitl_repeats} repeats (arms A, B)"
            )
            vitl_regime = run_regime("ViT-L/14", vitl, *manifests["vitl"], vitl_repeats, False)
        report_part1(
            facts, tiny_regime, vitl_regime, kinds, sizes, seconds, time.perf_counter() - start, str(tiny.device)
        )
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def report_part1(
    facts: dict[str, str],
    tiny: Regime,
    vitl: Regime | None,
    kinds: dict[str, Kind],
    sizes: dict[str, str],
    seconds: float,
    elapsed: float,
    device: str,
) -> None:
    regimes = [r for r in (vitl, tiny) if r is not None]
    log("")
    log(f"## Content filters: cost per video beside frame_embeddings ({device})")
    log("")
    log(
        f"Synthetic videos ({', '.join(sorted(set(sizes.values())))}; {seconds:g} s; the kind cycle in the "
        f"docstring); CLIPSampling() defaults ({tiny.frames // max(tiny.videos, 1)} frames a video); "
        f"{DECODE_WORKERS} decode threads. Median of "
        + ", ".join(f"{len(r.runs['B'])} interleaved repeats ({r.label})" for r in regimes)
        + "; per-repeat range in brackets."
    )
    log("")
    rows = []
    for r in regimes:
        comparisons = [("A", "B", "filters on vs frame_embeddings alone")]
        if "A224" in r.runs:
            comparisons.append(("A224", "B", "filters on vs frame_embeddings decoding at 224 px"))
        for base, new, what in comparisons:
            over = r.m(new) / r.m(base) - 1
            per = r.paired(new, base, lambda x, y: x / y - 1)
            cpu = r.m(f"{new}_cpu") / r.m(f"{base}_cpu") - 1
            is_target = base == "A"
            met = verdict(over, per, lambda x: x <= TARGET, yes="yes", no="no") if is_target else ""
            rows.append(
                [
                    f"{what}, {r.label}",
                    str(r.videos),
                    f"{r.decode[base]} / {r.decode[new]} px",
                    f"{r.m(base):.2f} / {r.m(new):.2f}",
                    f"**{over:+.1%}**{spread(per, '{:+.1%}')}",
                    f"{cpu:+.1%}",
                    f"≤ +{TARGET:.0%}" if is_target else "",
                    met,
                ]
            )
    log(
        markdown(
            [
                "comparison",
                "videos",
                "decode short side (base / new)",
                "median wall s (base / new)",
                "wall overhead",
                "CPU overhead",
                "target",
                "met",
            ],
            rows,
        )
    )
    log("")
    part_rows = []

    def per_video(r: Regime | None, values: list[float] | None) -> str:
        if r is None or values is None:
            return ""
        return f"{1000 * med(values) / r.videos:.1f}{spread([1000 * v / r.videos for v in values], '{:.1f}')}"

    def both(key: str | None = None, diff: tuple[str, str] | None = None) -> list[str]:
        cells = []
        for r in (vitl, tiny):
            if r is None or (key and key not in r.runs) or (diff and not all(k in r.runs for k in diff)):
                cells.append("")
            elif key:
                cells.append(per_video(r, r.runs[key]))
            else:
                cells.append(per_video(r, r.paired(diff[0], diff[1], lambda x, y: x - y)))
        return cells

    part_rows.append(["frame_embeddings alone (arm A)", *both("A"), "decode + CLIP forward"])
    part_rows.append(
        [
            "decode at 224 px instead of the model's size (A224 - A)",
            *both(diff=("A224", "A")),
            "tiny CLIP only: its input is 64 px; the measures read frames of at least 224 px",
        ]
    )
    part_rows.append(
        [
            "inspector inside embed_shard, wall (B's embed_shard - A)",
            *both(diff=("embed", "A")),
            "what the measures add to the pass (for the tiny CLIP, the 224 px decode too)",
        ]
    )
    part_rows.append(
        [
            "  measures in the decode threads: picture box + exposure + text, thread CPU",
            *both("measure_cpu"),
            "the work itself; it overlaps the CLIP forward on the main thread",
        ]
    )
    part_rows.append(
        [
            "  of which text detection on the 3 aesthetic frames, thread CPU",
            *both("text_cpu"),
            "PP-OCR det at 320 px short side, 1 ONNX thread",
        ]
    )
    part_rows.append(
        [
            "  measures in the decode threads, thread wall",
            *both("measure"),
            "includes waiting for a core and for the text detector's lock",
        ]
    )
    part_rows.append(["content_rows (exposure means, crop box, NSFW on stored embeddings)", *both("content_rows"), ""])
    part_rows.append(["video_embeddings (mean vector per video)", *both("vectors"), ""])
    part_rows.append(["add_shards (index the shard, search it)", *both("add_shards"), "exact flat index at 1 shard"])
    part_rows.append(["**filters in all (B - A)**", *both(diff=("B", "A")), ""])
    labels = [r.label if r else "—" for r in (vitl, tiny)]
    log(markdown(["part of arm B", f"{labels[0]} ms/video", f"{labels[1]} ms/video", "note"], part_rows))
    log("")
    content = tiny.content  # the measures do not depend on the CLIP model: the tiny arms saw every video
    if content is not None:
        rows = []
        by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in content.iter_rows(named=True):
            name = row["source_uri"].rsplit("/", 1)[1]
            by_kind.setdefault((kinds[name].label, sizes[name]), []).append(row)
        for (label, size), got in by_kind.items():
            kind = next(k for k in KINDS if k.label == label)
            rows.append(
                [
                    label,
                    size,
                    "yes" if kind.bordered else "no",
                    kind.text,
                    str(len(got)),
                    f"{sum(bool(g['bordered']) for g in got)}",
                    f"{sum((g['text_area'] or 0) > 0.01 for g in got)}",
                    ", ".join(f"{g['text_area'] or 0:.3f}" for g in got),
                    f"{statistics.mean(g['brightness'] for g in got):.0f}",
                    "; ".join(f"{g['crop_w']}x{g['crop_h']}+{g['crop_x']}+{g['crop_y']}" for g in got if g["bordered"]),
                ]
            )
        from openvid_assets.recipe import FilterSettings

        log(
            f"Content rows of arm B ({tiny.label}, every video), by kind of video (evidence the filters ran; "
            "'text area > 0.01' is the content_scores asset's 'with_text' count; the recipe's default text rule is "
            f"text_area {FilterSettings().text_area}):"
        )
        log("")
        log(
            markdown(
                [
                    "kind",
                    "size",
                    "bars drawn",
                    "text drawn",
                    "videos",
                    "bordered",
                    "text area > 0.01",
                    "text area per video",
                    "mean brightness",
                    "crop boxes (w x h + x + y)",
                ],
                rows,
            )
        )
        log("")
    for r in regimes:
        log(f"- checks, {r.label}: " + ", ".join(f"{k} {v}" for k, v in r.checks.items()))
    log(
        "- Arm B times `embed_shard` with `FrameInspector(TextDetector())`, `content_rows` with `NSFWScorer(None)` "
        "(random concepts, the real test's shapes and cost) and `add_shards(None, {shard})`; no table is read or "
        "written in either arm. Thread times are summed over the decode threads, so they can exceed their wall "
        "share."
    )
    log(
        "- "
        + " · ".join(f"{k}: {v}" for k, v in facts.items())
        + f" · load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} · part 1 {elapsed / 60:.1f} min"
    )


# =========================================================================== Part 2: near-duplicates at scale


def nlist_for(n: int) -> int:
    """The IVF bucket count ``VectorIndex.build`` picks for n vectors (curation/duplicates.py), for the projection."""
    return int(min(65536, max(256, 2 ** round(np.log2(np.sqrt(n))))))


def rss_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 2**30
    return float("nan")


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Pool:
    """Draws unit vectors (float32) of one variant; seeded."""

    def __init__(self, variant: str, seed: int, clusters: int):
        self.variant, self.rng = variant, np.random.default_rng(seed)
        if variant == "clustered":
            self.common = self.unit(self.rng.standard_normal((1, DIM), np.float32))[0]
            self.centres = self.unit(self.rng.standard_normal((clusters, DIM), np.float32))
            self.b = self.rng.uniform(0.1, 0.4, clusters).astype(np.float32)

    @staticmethod
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def draw(self, n: int) -> np.ndarray:
        g = self.unit(self.rng.standard_normal((n, DIM), np.float32))
        if self.variant == "random":
            return g
        k = self.rng.integers(0, len(self.centres), n)
        b = self.b[k][:, None]
        return self.unit(np.sqrt(0.5) * self.common + np.sqrt(b) * self.centres[k] + np.sqrt(0.5 - b) * g)

    def copies(self, originals: np.ndarray) -> np.ndarray:
        """One copy of each original at a cosine drawn from [0.985, 0.999]."""
        cos = self.rng.uniform(0.985, 0.999, len(originals)).astype(np.float32)[:, None]
        u = self.rng.standard_normal(originals.shape, np.float32)
        u -= np.sum(u * originals, axis=1, keepdims=True) * originals
        return cos * originals + np.sqrt(1 - cos**2) * self.unit(u)


def true_pairs(
    groups: list[np.ndarray], stored: Callable[[np.ndarray], np.ndarray], threshold: float, name: Callable[[int], str]
) -> set[tuple[str, str]]:
    from openvid_assets.curation.duplicates import exact_cosines

    a_idx, b_idx = [], []
    for g in groups:
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a_idx.append(int(g[i]))
                b_idx.append(int(g[j]))
    if not a_idx:
        return set()
    cos = exact_cosines(stored(np.array(a_idx)), stored(np.array(b_idx)))
    return {(min(name(a), name(b)), max(name(a), name(b))) for a, b, c in zip(a_idx, b_idx, cos) if c >= threshold}


def dedup_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """One pool size in this process: build, incremental shard, save/load; returns the measures."""
    import faiss

    import openvid_assets.curation.duplicates as dup

    n, variant, shard_size = cfg["n"], cfg["variant"], cfg["shard_size"]
    search = dup.DuplicateSearch(**({"exact_below": cfg["exact_below"]} if cfg.get("exact_below") else {}))
    out: dict[str, Any] = {
        "n": n,
        "variant": variant,
        "omp_threads": faiss.omp_get_max_threads(),
        "input_dtype": cfg["input_dtype"],
        "exact_below": search.exact_below,
    }
    pool_gen = Pool(variant, cfg["seed"], cfg["clusters"])
    rng = np.random.default_rng(cfg["seed"] + 1)
    t = time.perf_counter()
    pool = np.empty((n, DIM), np.dtype(cfg["input_dtype"]))
    for s in range(0, n, 100_000):
        pool[s : s + 100_000] = pool_gen.draw(min(100_000, n - s))
    n_orig = max(1, round(cfg["dup_rate"] * n))
    per = rng.integers(1, 4, n_orig)
    slots = rng.permutation(n)[: n_orig + int(per.sum())]
    originals, copy_slots = slots[:n_orig], slots[n_orig:]
    owners = np.repeat(originals, per)
    pool[copy_slots] = pool_gen.copies(pool[owners].astype(np.float32))
    order = np.argsort(owners, kind="stable")  # each original with its copies
    bounds = np.flatnonzero(np.diff(owners[order])) + 1
    groups = [
        np.concatenate([[g_owner[0]], g_copies])
        for g_owner, g_copies in zip(np.split(owners[order], bounds), np.split(copy_slots[order], bounds))
    ]
    name = lambda i: f"v{i:09d}"  # noqa: E731  (lexicographic order = numeric order)
    ids = [name(i) for i in range(n)]
    stored = lambda rows: dup.fp16_unit(pool[rows])  # noqa: E731  the values add_shards will store
    truth = true_pairs(groups, stored, search.threshold, name)
    out["planted_videos"] = int(n_orig + per.sum())
    out["true_pairs"] = len(truth)
    # How crowded the space is: cosines of random pairs and each of 200 random videos' nearest other video.
    probe = rng.choice(n, 400, replace=False)
    pv = stored(probe)
    out["random_pair_cos_median"] = float(np.median(np.sum(pv[:200] * pv[200:], axis=1)))
    planted = np.zeros(n, bool)
    planted[slots] = True
    queried = np.array([i for i in probe if not planted[i]][:200])
    q = stored(queried)
    best = np.full(len(q), -1.0, np.float32)
    for s in range(0, n, 100_000):
        sims = q @ dup.fp16_unit(pool[s : s + 100_000]).T
        inside = (queried >= s) & (queried < s + 100_000)
        sims[np.flatnonzero(inside), queried[inside] - s] = -1  # not itself
        best = np.maximum(best, sims.max(axis=1))
    out["nn_cos_median"], out["nn_cos_max"] = float(np.median(best)), float(best.max())
    out["generate_s"] = time.perf_counter() - t
    shards = {
        f"shard-{k:05d}": ("stamp", ids[s : s + shard_size], pool[s : s + shard_size])
        for k, s in enumerate(range(0, n, shard_size))
    }
    out["input_rss_gib"] = rss_gib("VmRSS")

    # --- (a) full build, confirmed_pairs wrapped (timed; sampled above --max-queries)
    real = dup.confirmed_pairs
    sample: np.ndarray | None = None
    if n > cfg["max_queries"]:
        extra = rng.choice(np.flatnonzero(~planted), max(0, cfg["sample_queries"] - int(planted.sum())), replace=False)
        sample = np.sort(np.concatenate([np.flatnonzero(planted), extra]))
    timing: dict[str, float] = {}

    def wrapped(index: Any, q_ids: np.ndarray, vectors: np.ndarray, members: list[str], s: Any) -> pl.DataFrame:
        if sample is not None and len(q_ids) == n:
            q_ids, vectors = q_ids[sample], vectors[sample]
        faiss.cvar.indexIVF_stats.reset()
        start, cpu = time.perf_counter(), time.process_time()
        pairs = real(index, q_ids, vectors, members, s)
        timing["search_s"] = time.perf_counter() - start
        timing["search_cpu_s"] = time.process_time() - cpu
        timing["queries"] = len(q_ids)
        timing["ndis"] = float(faiss.cvar.indexIVF_stats.ndis)
        return pairs

    dup.confirmed_pairs = wrapped
    identity = "bench"
    reset_peak()
    before = rss_gib("VmRSS")
    cpu0, t = time.process_time(), time.perf_counter()
    state, pairs, complete = dup.add_shards(None, shards, identity, search)
    out["full_s"] = time.perf_counter() - t
    out["full_cpu_s"] = time.process_time() - cpu0
    out["full_peak_gib"] = rss_gib("VmHWM")
    out["full_peak_above_input_gib"] = out["full_peak_gib"] - before
    out.update(
        search_s=timing["search_s"],
        search_cpu_s=timing["search_cpu_s"],
        queries=timing["queries"],
        ndis=timing["ndis"],
        complete=complete,
    )
    out["build_s"] = out["full_s"] - timing["search_s"]
    out["full_est_s"] = out["build_s"] + timing["search_s"] * n / timing["queries"]
    out["sampled"] = sample is not None
    index = state.index
    out["index"] = "flat (exact)" if index.exact else f"IVF{faiss.extract_index_ivf(index.index).nlist},SQfp16"
    out["nlist"] = 0 if index.exact else int(faiss.extract_index_ivf(index.index).nlist)
    # faiss's imbalance factor of the inverted lists (1 = equal sizes; sum of squared sizes x nlist / N^2)
    out["imbalance"] = 1.0 if index.exact else float(faiss.extract_index_ivf(index.index).invlists.imbalance_factor())
    found, cos, quality = pair_quality(pairs, truth, search.threshold)
    out["found_pairs"] = len(found)
    out.update(quality)
    check = [p for p in list(found & truth)[:200]]
    if check:  # the pairs' stored cosine is the exact cosine of the values this benchmark computes
        a = stored(np.array([int(p[0][1:]) for p in check]))
        b = stored(np.array([int(p[1][1:]) for p in check]))
        out["cosine_check"] = float(np.max(np.abs(dup.exact_cosines(a, b) - np.array([cos[p] for p in check]))))
    del pairs, shards
    dup.confirmed_pairs = real

    # --- what the near_duplicates asset does around add_shards each run: save, load, the members set
    t = time.perf_counter()
    data = index.to_bytes()
    out["save_s"] = time.perf_counter() - t
    out["index_bytes"] = len(data)
    t = time.perf_counter()
    loaded = dup.VectorIndex.from_bytes(data, index.trained_on)
    out["load_s"] = time.perf_counter() - t
    assert loaded.size == index.size
    del data, loaded
    t = time.perf_counter()
    members = set(state.members)
    out["members_set_s"] = time.perf_counter() - t
    del members
    t = time.perf_counter()
    state.vectors_of(ids[:: max(1, n // 100)][:100])
    out["vectors_of_100_s"] = time.perf_counter() - t

    # --- (b) incremental: one new shard, 95 % new videos, 5 % copies of earlier singletons
    new_n = cfg["new_shard"]
    n_copies = max(1, new_n // 20)
    singles = rng.choice(np.flatnonzero(~planted), n_copies, replace=False)
    fresh = np.concatenate([pool_gen.draw(new_n - n_copies), pool_gen.copies(pool[singles].astype(np.float32))])
    fresh = fresh.astype(pool.dtype)
    new_ids = [name(n + i) for i in range(new_n)]
    new_stored = dup.fp16_unit(fresh)
    incr_truth = {
        (name(int(s)), new_ids[new_n - n_copies + k])
        for k, s in enumerate(singles)
        if float(dup.exact_cosines(stored(np.array([s])), new_stored[[new_n - n_copies + k]])[0]) >= search.threshold
    }
    faiss.cvar.indexIVF_stats.reset()
    reset_peak()
    before = rss_gib("VmRSS")
    cpu0, t = time.process_time(), time.perf_counter()
    state2, pairs2, complete2 = dup.add_shards(state, {"shard-new": ("stamp", new_ids, fresh)}, identity, search)
    out["incr_s"] = time.perf_counter() - t
    out["incr_cpu_s"] = time.process_time() - cpu0
    out["incr_ndis"] = float(faiss.cvar.indexIVF_stats.ndis)
    out["incr_peak_above_gib"] = rss_gib("VmHWM") - before
    out["incr_complete"] = complete2
    out["incr_true_pairs"] = len(incr_truth)
    out.update({f"incr_{k}": v for k, v in pair_quality(pairs2, incr_truth, search.threshold)[2].items()})
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def run_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """``dedup_child`` in a fresh process (its own peak RSS); its log goes to our stderr."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--dedup-child", json.dumps(cfg)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dedup child {cfg} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit(ns: list[int], ts: list[float]) -> tuple[float, float]:
    """(a, b) of t = a N^b, least squares on logs."""
    b, log_a = np.polyfit(np.log(ns), np.log(ts), 1)
    return float(math.exp(log_a)), float(b)


def gib(x: float) -> str:
    return f"{x:.2f}"


def human_s(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def part2(args: argparse.Namespace, facts: dict[str, str]) -> None:
    sizes = sorted(args.sizes or ([5_000, 20_000, 40_000] if args.quick else [100_000, 300_000, 1_000_000, 3_000_000]))
    variants = args.variants
    exact_below = args.exact_below or (10_000 if args.quick else None)
    max_queries = args.max_queries or (10_000 if args.quick else 50_000)
    sample_queries = args.sample_queries or (5_000 if args.quick else 20_000)
    base = {
        "seed": 0,
        "clusters": args.clusters,
        "dup_rate": 0.01,
        "shard_size": 1000,
        "new_shard": 200 if args.quick else 1000,
        "max_queries": max_queries,
        "sample_queries": sample_queries,
        "exact_below": exact_below,
        "input_dtype": args.input_dtype,
    }
    start = time.perf_counter()
    log(
        f"near-duplicates: sizes {sizes}, variants {variants}; memory available at start {mem_available():.1f} GiB; "
        f"RSS limit {args.max_rss_gib:g} GiB"
    )
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    for variant in variants:
        peak_per_video = 0.0  # bytes, from the largest size run so far
        for n in sizes:
            predicted = peak_per_video * n / 2**30
            limit = min(args.max_rss_gib, 0.8 * mem_available())
            if predicted > limit:
                skipped.append(
                    f"{variant} {n:,}: predicted peak {predicted:.1f} GiB (the measured "
                    f"{peak_per_video:,.0f} B/video x N) > limit {limit:.1f} GiB (--max-rss-gib "
                    f"{args.max_rss_gib:g}, 80 % of available memory)"
                )
                log(f"  skipped {skipped[-1]}")
                continue
            t = time.perf_counter()
            r = run_child({**base, "n": n, "variant": variant})
            results.append(r)
            peak_per_video = r["full_peak_gib"] * 2**30 / n
            log(
                f"  [{variant} {n:,}] {r['index']}: full {'est. ' if r['sampled'] else ''}{r['full_est_s']:.1f} s "
                f"(build {r['build_s']:.1f} s, search {r['search_s']:.1f} s for {r['queries']:,} queries), incremental "
                f"{r['incr_s']:.2f} s, peak {r['full_peak_gib']:.2f} GiB, recall {r['recall']:.4f} / "
                f"{r['incr_recall']:.4f}, false {r['false_pairs']}/{r['incr_false_pairs']}; "
                f"process {time.perf_counter() - t:.0f} s"
            )
    exact_rows = []
    if args.exact_check:
        ivf_sizes = [n for n in sizes if n >= (exact_below or 100_000)]
        n = min(ivf_sizes) if ivf_sizes else min(sizes)
        # exact_below past the pool and the new shard: the +1 shard step must not rebuild it as IVF
        r = run_child({**base, "n": n, "variant": variants[0], "exact_below": 2 * n, "max_queries": n})
        exact_rows.append(r)
        log(f"  [{variants[0]} {n:,} exact] {r['index']}: full {r['full_s']:.1f} s, incremental {r['incr_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "exact": exact_rows, "skipped": skipped}, indent=1))
    report_part2(facts, results, exact_rows, skipped, args.project, time.perf_counter() - start)


def mem_available() -> float:
    """GiB the kernel says can be allocated without swapping (MemAvailable)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def report_part2(
    facts: dict[str, str],
    results: list[dict[str, Any]],
    exact_rows: list[dict[str, Any]],
    skipped: list[str],
    project: int,
    elapsed: float,
) -> None:
    log("")
    log("## Near-duplicate search at scale (`add_shards`, `DuplicateSearch()` defaults)")
    log("")
    r0 = results[0]
    log(
        f"Threshold 0.98, 16 neighbours, nprobe 16, exact below {r0['exact_below']:,}; 1,000-video shards; 1 % of "
        f"videos planted with 1-3 copies at cosine 0.985-0.999; faiss OpenMP threads: {r0['omp_threads']}. "
        "Each row is one process."
    )
    log("")
    rows = []
    for r in [*results, *exact_rows]:
        full = f"{'est. ' if r['sampled'] else ''}{human_s(r['full_est_s'])}"
        rows.append(
            [
                r["variant"],
                f"{r['n']:,}",
                r["index"],
                f"{r['random_pair_cos_median']:.2f} / {r['nn_cos_median']:.2f} / {r['nn_cos_max']:.3f}",
                full,
                f"{r['build_s']:.1f} + {r['search_s']:.1f}" + (f" ({r['queries']:,} q)" if r["sampled"] else ""),
                f"{r['ndis'] / r['queries']:,.0f}" if r["ndis"] else "all",
                f"{r['incr_s']:.2f}" + (" (rebuilt)" if r["incr_complete"] else ""),
                gib(r["full_peak_gib"]),
                gib(r["input_rss_gib"]),
                f"{r['index_bytes'] / 2**30:.2f}",
                f"{r['save_s']:.2f} / {r['load_s']:.2f}",
                f"{r['recall']:.4f} ({r['true_pairs']:,})",
                f"{r['incr_recall']:.3f} ({r['incr_true_pairs']})",
                f"{r['false_pairs']} / {r['incr_false_pairs']}",
            ]
        )
    log(
        markdown(
            [
                "variant",
                "videos",
                "index",
                "cos: random pair / nearest other (median, max)",
                "(a) full build",
                "build + search s",
                "distances / query",
                "(b) +1 shard s",
                "peak RSS GiB",
                "input RSS GiB",
                "index GiB",
                "save / load s",
                "recall (true pairs)",
                "recall, new shard",
                "false pairs",
            ],
            rows,
        )
    )
    log("")
    rows = []
    for r in [*results, *exact_rows]:
        scanned = (
            f"{r['ndis'] / r['queries'] / (16 * r['n'] / r['nlist']):.2f} / {r['imbalance']:.2f}" if r["nlist"] else ""
        )
        rows.append(
            [
                r["variant"],
                f"{r['n']:,}",
                r["index"],
                scanned,
                f"{r['full_cpu_s'] / max(r['full_s'], 1e-9):.2f}",
                f"{r['incr_cpu_s'] / max(r['incr_s'], 1e-9):.2f}",
                f"{r['incr_ndis']:,.0f}",
                f"{r['members_set_s']:.3f}",
                f"{r['vectors_of_100_s']:.3f}",
                f"{r['full_peak_above_input_gib']:.2f}",
                f"{r['incr_peak_above_gib']:.2f}",
                f"{r['index_bytes'] / r['n']:.0f}",
                f"{r['unplanted_true_pairs']} / {r['incr_unplanted_true_pairs']}",
                f"{r.get('cosine_check', float('nan')):.1e}",
            ]
        )
    log(
        markdown(
            [
                "variant",
                "videos",
                "index",
                "distances / (nprobe·N/nlist); faiss list imbalance",
                "cores busy, build",
                "cores busy, +1 shard",
                "distances, +1 shard",
                "set(members) s",
                "vectors_of(100) s",
                "build peak above input GiB",
                "+1 shard peak above GiB",
                "index bytes/video",
                "unplanted pairs found (true)",
                "max |cosine - exact|",
            ],
            rows,
        )
    )
    log("")

    # Projection from the IVF sizes.
    for variant in sorted({r["variant"] for r in results}):
        ivf = [r for r in results if r["variant"] == variant and r["nlist"]]
        if len(ivf) < 2:
            log(f"- projection ({variant}): needs two IVF sizes")
            continue
        ns = [r["n"] for r in ivf]
        a_full, b_full = fit(ns, [r["full_est_s"] for r in ivf])
        a_incr, b_incr = fit(ns, [r["incr_s"] for r in ivf])
        big = ivf[-1]
        per_dist = big["search_s"] / big["ndis"]  # wall seconds per distance, with the search's Python around it
        cpu_per_dist = big["search_cpu_s"] / big["ndis"]  # CPU seconds (all threads) per distance
        balance = (big["ndis"] / big["queries"]) / (16 * big["n"] / big["nlist"])
        nl = nlist_for(project)
        dist_full = project * 16 * project / nl * balance
        build_a, build_b = fit(ns, [r["build_s"] for r in ivf])
        model_full = dist_full * per_dist + build_a * project**build_b
        build_cpu_a, build_cpu_b = fit(ns, [max(r["full_cpu_s"] - r["search_cpu_s"], 1e-3) for r in ivf])
        core_h = (dist_full * cpu_per_dist + build_cpu_a * project**build_cpu_b) / 3600
        incr_dist = 1000 * 16 * project / nl * balance
        bytes_per = big["index_bytes"] / big["n"]
        peak_per = big["full_peak_gib"] * 2**30 / big["n"]
        scan_per = (big["save_s"] + big["load_s"]) / big["index_bytes"]
        cores = int(big["omp_threads"])
        log(f"Projection to {project:,} videos ({variant}; IVF sizes {', '.join(f'{n:,}' for n in ns)}):")
        log("")
        log(
            markdown(
                ["quantity", "formula (N videos)", f"at {project:,}", "basis"],
                [
                    [
                        "(a) full build, fitted",
                        f"{a_full:.3g} · N^{b_full:.2f} s",
                        human_s(a_full * project**b_full),
                        f"on {cores} cores",
                    ],
                    [
                        "(a) full build, distance model",
                        f"N·nprobe·N/nlist(N)·{balance:.2f} distances × "
                        f"{per_dist * 1e9:.0f} ns + build {build_a:.3g}·N^{build_b:.2f} s",
                        human_s(model_full),
                        f"nlist({project:,}) = {nl}; {dist_full:.2e} distances; {cores} cores",
                    ],
                    [
                        "(a) same in CPU time",
                        f"distances × {cpu_per_dist * 1e9:.0f} ns CPU + build CPU "
                        f"{build_cpu_a:.3g}·N^{build_cpu_b:.2f} s",
                        f"{core_h:,.0f} core-h",
                        f"≈ {human_s(core_h * 3600 / 64)} on 64 idle cores if OpenMP scales",
                    ],
                    ["(b) +1 shard, fitted", f"{a_incr:.3g} · N^{b_incr:.2f} s", human_s(a_incr * project**b_incr), ""],
                    [
                        "(b) +1 shard, search distances",
                        "1000·nprobe·N/nlist(N)",
                        f"{incr_dist:.2e} → {human_s(incr_dist * per_dist)}",
                        "plus O(N) bookkeeping (members set, list copy)",
                    ],
                    [
                        "index size",
                        f"{bytes_per:.0f} B × N",
                        f"{bytes_per * project / 2**30:,.0f} GiB",
                        "SQfp16: 2 B × 768",
                    ],
                    [
                        "save + load of the index per run",
                        f"{scan_per * 1e9:.2f} s/GB × index",
                        human_s(scan_per * bytes_per * project),
                        "in memory only; plus the object store's transfer of the file",
                    ],
                    [
                        "(a) peak RSS of a full build",
                        f"{peak_per:.0f} B × N",
                        f"{peak_per * project / 2**30:,.0f} GiB",
                        f"measured at {big['n']:,} ({big.get('input_dtype', '?')} input)",
                    ],
                    *[
                        [
                            "exact flat scan instead (BLAS), full build",
                            f"N² distances × {e['search_s'] / e['n'] ** 2 * 1e9:.1f} ns",
                            human_s(project**2 * e["search_s"] / e["n"] ** 2),
                            f"measured at {e['n']:,} ({e['variant']}); {e['index_bytes'] / e['n']:.0f} B/video",
                        ]
                        for e in exact_rows
                    ],
                ],
            )
        )
        log("")
    for line in skipped:
        log(f"- not run: {line}")
    log(
        "- Full build = `add_shards(None, every shard)`: stack and round the vectors, build (train on 64 x nlist "
        "sampled vectors, add all), then `confirmed_pairs` over every video. 'est.': the search ran on a sample of "
        "queries (every planted video + random ones) and is scaled to all N; the build is measured in full."
    )
    log(
        "- +1 shard = `add_shards(state, {new shard})` on the built index: 950 new videos and 50 copies of earlier "
        "videos; the index is not rebuilt (it is only past 4x the size it was trained on)."
    )
    log(
        "- Recall: found / true planted pairs (pairs of a planted group with exact cosine >= 0.98 on the stored "
        "vectors). False pairs: found with exact cosine < 0.98 (the exact confirmation makes this 0 by design)."
    )
    log(
        "- "
        + " · ".join(f"{k}: {v}" for k, v in facts.items())
        + f" · load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} · part 2 {elapsed / 60:.1f} min"
    )


# =========================================================================== main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4 half-size 2 s videos, 1 repeat, ViT-L/14 on 1 video; "
        "pools of 5k, 20k and 40k vectors (IVF from 10k): checks it works",
    )
    parser.add_argument("--only", choices=["filters", "duplicates"], help="run one part only")
    parser.add_argument("--videos", type=int, help="videos for the tiny-CLIP arms (default 16, quick 4)")
    parser.add_argument("--vitl-videos", type=int, help="videos for the ViT-L/14 arms (default 8, quick 1)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats, tiny CLIP (default 5, quick 1)")
    parser.add_argument("--vitl-repeats", type=int, help="interleaved repeats, ViT-L/14 (default 3, quick 1)")
    parser.add_argument("--skip-vitl", action="store_true", help="Part 1 with the tiny CLIP only")
    parser.add_argument("--seconds", type=float, help="video length (default 4, quick 2)")
    parser.add_argument("--device", default="cpu", help="CLIP device (default cpu: the issue's target is on CPU)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and OpenCV threads; 0 (default): the "
        "libraries' default, as ModelsResource.threads=0 (a one-worker run on this machine)",
    )
    parser.add_argument("--workdir", help="generate the videos here and keep them (its videos/ folder is remade)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="pool sizes (default 100000 300000 1000000 3000000; a size past the memory limit is skipped)",
    )
    parser.add_argument("--variants", nargs="+", default=["random", "clustered"], choices=["random", "clustered"])
    parser.add_argument("--clusters", type=int, default=2000, help="clusters of the clustered variant (default 2000)")
    parser.add_argument(
        "--max-queries",
        type=int,
        help="above this many videos the full build's search runs on a "
        "sample of queries, scaled to all (default 50000, quick 10000)",
    )
    parser.add_argument(
        "--sample-queries",
        type=int,
        help="queries of such a sampled search, every planted video included (default 20000, quick 5000)",
    )
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        default=12.0,
        help="skip a size whose peak, predicted from "
        "the previous size's bytes per video, exceeds this or 80 %% of available memory (default 12)",
    )
    parser.add_argument(
        "--exact-below", type=int, help="DuplicateSearch.exact_below (default: its own, 100000; quick 10000)"
    )
    parser.add_argument(
        "--input-dtype",
        default="float16",
        choices=["float32", "float16"],
        help="dtype of the vectors handed to add_shards (default float16; the pipeline's is float32)",
    )
    parser.add_argument("--json", help="also write Part 2's measures (one object per process) to this file")
    parser.add_argument("--exact-check", action="store_true", help="also the exact flat scan at the smallest IVF size")
    parser.add_argument("--project", type=int, default=50_000_000, help="projection size (default 50,000,000)")
    parser.add_argument("--dedup-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.dedup_child:
        print(json.dumps(dedup_child(json.loads(args.dedup_child))), flush=True)
        return 0
    facts = machine_facts()
    log(f"# bench_filters{' --quick' if args.quick else ''}")
    for key, value in facts.items():
        log(f"  {key}: {value}")
    if args.only != "duplicates":
        part1(args, facts)
    if args.only != "filters":
        import faiss

        part2(args, {**facts, "faiss": faiss.__version__})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
