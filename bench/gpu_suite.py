"""The prepared GPU suite: the model passes of the pipeline on one GPU, in one run, as JSON and a markdown table.

Cases (random weights of the real architectures; what they measure is compute, not scores):

- CLIP ViT-L/14 (open_clip, the aesthetic/temporal pass): bare batched forward of 224 px frames, fp16 and bf16,
  channels-last, inference mode: frames/s.
- UniMatch (the paper network, GMFlow scale-2 + 6 refinements) at 320x576: one video = 10 frames, 9 pairs
  (Open-Sora v1.3's schedule), fp16 autocast: videos/s and pairs/s.
- DOVER-Technical (Swin-3D on 7x7 fragment mosaics): one video = 3 clips x 32 frames of 224 px, fp16: videos/s.
- MVDiT XL/2 training step at 16x256x256 (bench/bench_mvdit.py's GPU case, bf16 autocast, gradient
  checkpointing): tokens/s, MFU, peak memory.
- The CLIP pass as the pipeline runs it (``embed_shard``: decode-ahead threads, batches across videos) over
  synthetic 720p videos: videos/s and frames/s including decode, against a bare forward of the same frames.
- The cut scan (every frame at 144 px through the three detectors and two signals): frames/s of the host CPU,
  alone and with TransNetV2 on the GPU (the default detector set).
- Half precision: UniMatch and DOVER scores of the same videos under the default precision (fp16 on CUDA) and
  fp32, as upstream runs them: the largest relative difference.

Sampling with the attention cache is not here yet: the cache does not exist (issue 19).

    python bench/gpu_suite.py --out results/           # on a GPU machine (about 4-5 minutes on one H200)
    python bench/gpu_suite.py --dry-run --out /tmp/g   # tiny configs on the CPU: the suite cannot rot
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return times


def clip_case(device: torch.device, dry: bool, dtype: torch.dtype, batch: int, repeats: int, sync) -> dict:
    from openvid_assets.models.registry.catalog import TINY_CLIP_CONFIG, CLIPSpec

    spec = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG) if dry else CLIPSpec("ViT-L-14-quickgelu")
    visual = spec.build().visual.eval().to(device, dtype).to(memory_format=torch.channels_last)
    size = visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size
    x = torch.randn(batch, 3, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        visual(x)

    times = timed(step, repeats, 2, sync)
    return {
        "case": f"CLIP {'tiny' if dry else 'ViT-L/14'} forward {str(dtype).removeprefix('torch.')}",
        "batch": batch,
        "median_s": statistics.median(times),
        "frames_per_s": batch / statistics.median(times),
    }


def unimatch_case(device: str, dry: bool, repeats: int, sync) -> dict:
    from openvid_assets.models.networks import unimatch
    from openvid_assets.models.scorers.motion import WORK_SIZE, UniMatchMotion

    scorer = UniMatchMotion(unimatch.TINY if dry else unimatch.PAPER, None, device=device)
    w, h = WORK_SIZE
    frames = np.random.default_rng(0).integers(0, 256, (10, h, w, 3), dtype=np.uint8)
    times = timed(lambda: scorer.flows(frames), repeats, 1, sync)
    median = statistics.median(times)
    return {
        "case": f"UniMatch {'tiny' if dry else 'paper'} {h}x{w}, 10 frames ({scorer.params['precision']})",
        "median_s": median,
        "videos_per_s": 1 / median,
        "pairs_per_s": 9 / median,
    }


def dover_case(device: str, dry: bool, repeats: int, sync) -> dict:
    from openvid_assets.models.networks import dover
    from openvid_assets.models.scorers.clarity import DoverClarity

    config = dover.TINY if dry else dover.PAPER
    scorer = DoverClarity(config, None, device=device)
    s = config.input_size
    clips = np.random.default_rng(0).integers(0, 256, (config.num_clips, config.clip_len, s, s, 3), dtype=np.uint8)
    times = timed(lambda: scorer.raw_score(clips), repeats, 1, sync)
    median = statistics.median(times)
    return {
        "case": f"DOVER-Technical {'tiny' if dry else 'paper'} {config.num_clips}x{config.clip_len}x{s}px "
        f"({scorer.params['dtype']})",
        "median_s": median,
        "videos_per_s": 1 / median,
    }


def _videos(folder: Path, dry: bool) -> list[Path]:
    from openvid_assets import samples

    folder.mkdir(parents=True, exist_ok=True)
    size, count, frames = ((160, 90), 2, 24) if dry else ((1280, 720), 8, 150)
    return [
        folder
        / samples.fast_motion(
            folder, f"v{i}.mp4", width=size[0], height=size[1], fps=30.0, num_frames=frames, seed=i
        ).name
        for i in range(count)
    ]


def clip_pass_case(device: str, dry: bool, videos: list[Path], sync) -> dict:
    """embed_shard over the videos (decode included) vs a bare forward of the frames it embedded."""
    from openvid_assets.media.manifest import build_manifest
    from openvid_assets.media.sources import local_file
    from openvid_assets.models.registry.catalog import TINY_CLIP_CONFIG, CLIPSpec
    from openvid_assets.models.scorers.clip import CLIPEmbedder
    from openvid_assets.models.registry.sampling import CLIPSampling
    from openvid_assets.models.shards.scores import embed_shard

    spec = CLIPSpec("tiny-clip", config=TINY_CLIP_CONFIG) if dry else CLIPSpec("ViT-L-14-quickgelu")
    embedder = CLIPEmbedder(spec, device=device, batch_size=8 if dry else 64)
    root = str(videos[0].parent)
    manifest = build_manifest([str(v) for v in videos], root, "shard-00000")
    workers = 2 if dry else min(8, len(videos))
    embed_shard(manifest.head(1), embedder, CLIPSampling(), lambda t: local_file(t.source_uri, root))  # warm-up
    sync()
    started = time.perf_counter()
    result = embed_shard(manifest, embedder, CLIPSampling(), lambda t: local_file(t.source_uri, root), workers=workers)
    sync()
    elapsed = time.perf_counter() - started
    frames = result.table.height
    batch = np.zeros((frames, embedder.image_size, embedder.image_size, 3), np.uint8)
    bare = statistics.median(timed(lambda: embedder.embed(batch), 3, 1, sync))
    return {
        "case": f"CLIP pass {'tiny' if dry else 'ViT-L/14'} over {len(videos)} videos, decode included "
        f"({str(embedder.dtype).removeprefix('torch.')}, {workers} decode threads)",
        "median_s": elapsed,
        "videos_per_s": len(videos) / elapsed,
        "frames_per_s": frames / elapsed,
        "pass_over_bare_forward": elapsed / bare,
    }


def cut_scan_case(videos: list[Path], detectors: str) -> dict:
    from openvid_assets.media.probe import probe
    from openvid_assets.media.scenes import CutDetection
    from openvid_assets.models.scorers.shots import scan_video

    config = CutDetection(detectors=detectors)
    started, frames, seconds = time.perf_counter(), 0, 0.0
    for path in videos:
        facts = probe(path)
        frames += scan_video(path, width=facts.width, height=facts.height, fps=facts.fps, config=config).num_frames
        seconds += facts.duration_s or 0.0
    elapsed = time.perf_counter() - started
    where = "host CPU" if detectors == "cascade" else "TransNetV2 on the GPU"
    return {
        "case": f"cut scan ({detectors}), every frame at 144 px, {len(videos)} videos ({where})",
        "median_s": elapsed,
        "videos_per_s": len(videos) / elapsed,
        "frames_per_s": frames / elapsed,
        "x_real_time": seconds / elapsed,
    }


def half_precision_case(device: str, dry: bool, videos: list[Path]) -> dict:
    """Relative score differences, default precision vs fp32, UniMatch and DOVER on the same videos."""
    from openvid_assets.media.manifest import build_manifest
    from openvid_assets.media.sources import local_file
    from openvid_assets.models.networks import dover, unimatch
    from openvid_assets.models.scorers.clarity import DoverClarity
    from openvid_assets.models.scorers.motion import UniMatchMotion
    from openvid_assets.models.shards.scores import score_shard

    root = str(videos[0].parent)
    manifest = build_manifest([str(v) for v in videos], root, "shard-00000")
    started, out = time.perf_counter(), {}
    for name, build in (
        (
            "unimatch",
            lambda fp32: UniMatchMotion(unimatch.TINY if dry else unimatch.PAPER, None, device=device, fp32=fp32),
        ),
        ("dover", lambda fp32: DoverClarity(dover.TINY if dry else dover.PAPER, None, device=device, fp32=fp32)),
    ):
        scores = [
            score_shard(manifest, build(fp32), lambda t: local_file(t.source_uri, root)).table["score"]
            for fp32 in (False, True)
        ]
        out[f"{name}_max_rel_diff"] = float(((scores[0] - scores[1]).abs() / scores[1].abs().clip(1e-9)).max())
    return {
        "case": f"half precision vs fp32 scores, UniMatch and DOVER, {len(videos)} videos",
        "median_s": time.perf_counter() - started,
        **out,
    }


def mvdit_case(out: Path, dry: bool) -> list[dict]:
    args = [
        sys.executable,
        str(REPO / "bench" / "bench_mvdit.py"),
        "--steps",
        "2" if dry else "6",
        "--warmup",
        "1" if dry else "2",
        "--threads",
        str(torch.get_num_threads()),
        "--json",
        str(out / "mvdit.json"),
    ]
    if dry:
        args.append("--cpu-only")
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_mvdit failed:\n{done.stderr[-3000:]}")
    print(done.stdout, flush=True)
    rows = json.loads((out / "mvdit.json").read_text())
    return [
        {
            "case": f"MVDiT {r['name']} training step ({r['device']})",
            "median_s": r["step_s"],
            "samples_per_s": r["batch"] / r["step_s"],
            "visual_tokens_per_s": r["batch"] * r["visual_tokens"] / r["step_s"],
            "tflops": r["flops_per_step"] / r["step_s"] / 1e12,
            "peak_mib": r["peak_bytes"] / 2**20,
        }
        for r in rows
        if dry or r["device"] == "cuda"
    ]


def markdown(results: list[dict], device_name: str) -> str:
    keys = [
        "median_s",
        "frames_per_s",
        "videos_per_s",
        "pairs_per_s",
        "samples_per_s",
        "visual_tokens_per_s",
        "tflops",
        "peak_mib",
        "pass_over_bare_forward",
        "unimatch_max_rel_diff",
        "dover_max_rel_diff",
    ]
    lines = [f"GPU suite on {device_name}", "", "| case | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for r in results:
        cells = [
            f"{r[k]:,.3g}" if k.endswith(("_s", "_forward", "_diff")) and k in r else f"{r[k]:,.1f}" if k in r else ""
            for k in keys
        ]
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for gpu_suite.json, gpu_suite.md, mvdit.json")
    parser.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU (for the test suite)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    repeats = 2 if args.dry_run else args.repeats
    name = torch.cuda.get_device_name() if cuda else f"CPU ({platform.machine()}), dry run"
    results = []
    dtypes = [torch.float16, torch.bfloat16] if cuda else [torch.float32]
    for dtype in dtypes:
        results.append(clip_case(device, args.dry_run, dtype, 4 if args.dry_run else 256, repeats, sync))
        print(results[-1], flush=True)
    for case in (unimatch_case, dover_case):
        results.append(case(str(device), args.dry_run, repeats, sync))
        print(results[-1], flush=True)
    videos = _videos(out / "videos", args.dry_run)
    for result in (
        lambda: clip_pass_case(str(device), args.dry_run, videos, sync),
        lambda: cut_scan_case(videos, "cascade"),
        lambda: cut_scan_case(videos, "both"),
        lambda: half_precision_case(str(device), args.dry_run, videos),
    ):
        results.append(result())
        print(results[-1], flush=True)
    results += mvdit_case(out, args.dry_run)
    report = {"device": name, "torch": torch.__version__, "results": results}
    (out / "gpu_suite.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_suite.md").write_text(markdown(results, name) + "\n")
    print(markdown(results, name))


if __name__ == "__main__":
    main()
