"""Throughput of the paper's motion and clarity networks (UniMatch flow, DOVER-Technical).

Times each backend through the same per-shard scoring path the pipeline uses
(``models.shards.scores.score_shard``: decode-ahead threads overlapping model compute)
on realistic generated videos (1280x720, 30 fps, 10 s by default), with the
paper-size networks and random weights (timing does not depend on weight values).
Also times the weight-free backends and the tiny configs for comparison.
Reports videos/s and the ratios between backends measured in this one run; on a
GPU the networks run in half precision.

    python bench/bench_networks.py [--videos N] [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from openvid_assets import samples
from openvid_assets.media.manifest import build_manifest
from openvid_assets.media.sources import list_videos, local_file
from openvid_assets.models.networks import dover, unimatch
from openvid_assets.models.scorers.clarity import DoverClarity, LaplacianClarity
from openvid_assets.models.scorers.motion import FarnebackMotion, UniMatchMotion
from openvid_assets.models.registry.runtime import pick_device
from openvid_assets.models.shards.scores import score_shard


def make_videos(root: Path, count: int, width: int, height: int, seconds: float) -> None:
    for i in range(count):
        samples.smooth_pan(
            root,
            f"v{i}.mp4",
            width=width,
            height=height,
            fps=30.0,
            num_frames=int(30 * seconds),
            px_per_frame=2 + i,
            seed=i,
        )


def time_backend(manifest, scorer, root: str) -> tuple[float, int]:
    started = time.perf_counter()
    result = score_shard(manifest, scorer, lambda t: local_file(t.source_uri, root))
    elapsed = time.perf_counter() - started
    failed = result.table.filter(result.table["status"] != "ok").height
    if failed:
        raise RuntimeError(f"{scorer.name}: {failed} videos failed: {result.table['error'].to_list()}")
    return elapsed, result.table.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="2 short 640x360 videos")
    args = parser.parse_args()
    width, height, count, seconds = (640, 360, 2, 5.0) if args.quick else (1280, 720, args.videos, args.seconds)
    device = pick_device("auto")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        make_videos(root, count, width, height, seconds)
        print(f"generated {count} videos {width}x{height}, {seconds:g}s @30fps in {time.perf_counter() - started:.1f}s")
        manifest = build_manifest(list_videos(str(root)), str(root), "bench")
        backends = {
            "unimatch (paper size, random weights)": UniMatchMotion(unimatch.PAPER, None, device=str(device)),
            "unimatch-tiny": UniMatchMotion(unimatch.TINY, None, device=str(device)),
            "farneback": FarnebackMotion(),
            "dover-technical (paper size, random weights)": DoverClarity(dover.PAPER, None, device=str(device)),
            "dover-tiny": DoverClarity(dover.TINY, None, device=str(device)),
            "laplacian": LaplacianClarity(),
        }
        rows = []
        for name, scorer in backends.items():
            seconds_taken, n = time_backend(manifest, scorer, str(root))
            rows.append((name, n / seconds_taken, seconds_taken / n))
            print(f"  {name}: {n / seconds_taken:.3f} videos/s ({seconds_taken / n:.2f} s/video)", flush=True)
    unimatch_rate, dover_rate = rows[0][1], rows[3][1]
    print("\n| backend | videos/s | s/video | vs. paper network |\n|---|---|---|---|")
    for name, rate, per in rows:
        base = unimatch_rate if name.startswith(("unimatch", "farneback")) else dover_rate
        print(f"| {name} | {rate:.3f} | {per:.2f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()
