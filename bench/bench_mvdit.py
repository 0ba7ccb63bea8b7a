"""MVDiT training-step time, throughput and peak memory.

Every case runs the real training loop (``openvid_assets.mvdit.train.train``: hybrid loss, backward, gradient
clipping, Adam, EMA update, data collation) on random latents and caption features, in a fresh subprocess so
that its peak memory is its own (peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU).

CPU: the ``tiny`` preset at the test size (3 x 8 x 8 latents) and at the paper's latent grid (16 x 32 x 32, what
16 frames of 256px become), with 1 and 2 intra-op threads. GPU (when CUDA is available): ``XL/2`` at 16x256x256
with T5-sized captions (120 x 4096) in bf16 autocast with gradient checkpointing; MFU counts model FLOPs
(3x the forward matmul FLOPs per sample, recomputation not credited) against the GPU's dense bf16 peak.

Sampling with the attention cache (``--sampling``): the same random-weight model samples the same latents from
the same noise and seed with ``cache_interval`` 1 (off) and 2 (the paper's: attention and feed-forward outputs
computed every other step), through the real loop (respaced IDDPM, classifier-free guidance at 7.0, batch of 2
doubled by guidance); reported: the median time of each over repeats (interleaved), the speed-up, the PSNR
of the cached latents against the uncached ones (peak = their range) and of the decoded frames (the latents
through the offline VAE to uint8, as the sample's mp4 holds them; peak 255). CPU: the tiny preset at the test grid and
at 16 x 32 x 32; GPU: XL/2 at 16 x 32 x 32 (16 frames of 256 px) with T5-sized captions, in bf16 autocast.

    python bench/bench_mvdit.py [--steps 10] [--warmup 3] [--threads 1 2] [--xl2-batch 4] [--peak-tflops 989]
    python bench/bench_mvdit.py --sampling [--sample-steps 20] [--repeats 3]
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial

import torch

from openvid_assets.mvdit.diffusion import GaussianDiffusion, classifier_free_guidance
from openvid_assets.mvdit.model import AttentionCache, MVDiT, forward_flops, preset
from openvid_assets.mvdit.train import TrainConfig, train

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, by device-name fragment; first match wins.
PEAK_BF16_TFLOPS = [
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("A10", 125.0),
    ("L4", 121.0),
]


def cases(args: argparse.Namespace) -> list[dict]:
    # Presets take pixel sizes; vae_downsample=1 hands the latent grid over unchanged.
    out = []
    for threads in args.threads:
        out.append(
            dict(
                name="tiny, test size",
                preset="tiny",
                latent=(3, 8, 8),
                batch=4,
                threads=threads,
                device="cpu",
                checkpointing=False,
            )
        )
        out.append(
            dict(
                name="tiny, 16x256x256 grid",
                preset="tiny",
                latent=(16, 32, 32),
                batch=1,
                threads=threads,
                device="cpu",
                checkpointing=False,
            )
        )
    if torch.cuda.is_available() and not args.cpu_only:
        out.append(
            dict(
                name="XL/2, 16x256x256",
                preset="XL/2",
                latent=(16, 32, 32),
                batch=args.xl2_batch,
                threads=torch.get_num_threads(),
                device="cuda",
                checkpointing=True,
                space_scale=0.5,
            )
        )
    return out


def process_memory(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process in bytes, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def run_case(case: dict, steps: int, warmup: int) -> dict:
    """Train ``warmup + steps`` steps on one repeated random batch; time the last ``steps``."""
    torch.set_num_threads(case["threads"])
    frames, height, width = case["latent"]
    overrides = {"space_scale": case["space_scale"]} if "space_scale" in case else {}
    config = preset(case["preset"], frames=frames, height=height, width=width, vae_downsample=1, **overrides)
    model = MVDiT(config)
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(config.in_channels, frames, height, width, generator=g).clamp(-1, 1)
    caption = torch.randn(config.model_max_length, config.caption_channels, generator=g)
    mask = torch.ones(config.model_max_length, dtype=torch.bool)
    mask[config.model_max_length // 2 :] = False  # half-length captions, as typical prompts pad
    data = [(latent, caption, mask)] * case["batch"]
    if case["device"] == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = 0 if case["device"] == "cuda" else process_memory("VmRSS")
    training = TrainConfig(
        steps=warmup + steps,
        batch_size=case["batch"],
        log_every=0,
        device=case["device"],
        grad_checkpointing=case["checkpointing"],
    )
    result = train(model, data, training)
    times = result.step_times[warmup:]  # first-touch costs (kernel choice, allocator growth) stay out of the time
    if case["device"] == "cuda":
        peak_bytes, device_name = torch.cuda.max_memory_allocated(), torch.cuda.get_device_name()
    else:
        peak_bytes, device_name = process_memory("VmHWM"), platform.processor()
    pt, ph, pw = config.patch_size
    return {
        **case,
        "step_s": statistics.median(times),
        "step_s_min": min(times),
        "steps": len(times),
        "visual_tokens": (frames // pt) * (height // ph) * (width // pw),
        "text_tokens": (frames // pt) * config.model_max_length,
        "flops_per_step": 3 * forward_flops(config, frames, height, width) * case["batch"],
        "params": sum(p.numel() for p in model.parameters()),
        "peak_bytes": peak_bytes,
        "training_bytes": peak_bytes - before,
        "device_name": device_name or platform.machine(),
        "loss": result.losses[-1],
    }


def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((peak for fragment, peak in PEAK_BF16_TFLOPS if fragment in device_name), None)


def table(results: list[dict], peak_override: float | None) -> str:
    header = [
        "case",
        "dev",
        "thr",
        "batch",
        "params",
        "tokens/sample (vis+txt)",
        "step (median)",
        "samples/s",
        "vis tokens/s",
        "GFLOP/step",
        "TFLOP/s",
        "MFU",
        "peak mem (+training)",
    ]
    rows = []
    for r in results:
        achieved = r["flops_per_step"] / r["step_s"]
        peak = peak_tflops(r["device_name"], peak_override) if r["device"] == "cuda" else None
        rows.append(
            [
                r["name"],
                r["device"],
                str(r["threads"]),
                str(r["batch"]),
                f"{r['params'] / 1e6:.2f}M",
                f"{r['visual_tokens']}+{r['text_tokens']}",
                f"{r['step_s'] * 1e3:.1f} ms",
                f"{r['batch'] / r['step_s']:.2f}",
                f"{r['batch'] * r['visual_tokens'] / r['step_s']:,.0f}",
                f"{r['flops_per_step'] / 1e9:,.1f}",
                f"{achieved / 1e12:.3f}",
                f"{achieved / (peak * 1e12):.1%}" if peak else "-",
                f"{r['peak_bytes'] / 2**20:,.0f} MiB (+{r['training_bytes'] / 2**20:,.0f})",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]
    return "\n".join([lines[0], "-+-".join("-" * w for w in widths), *lines[1:]])


@torch.no_grad()
def sample_latents(
    model: MVDiT, noise: torch.Tensor, captions: torch.Tensor, steps: int, interval: int
) -> tuple[torch.Tensor, float]:
    """The sampling loop on latents (no VAE, no T5): seconds and the final latents."""
    mask = torch.ones(captions.shape[:2], dtype=torch.bool, device=captions.device)
    cache = AttentionCache(interval) if interval > 1 else None
    denoiser = classifier_free_guidance(partial(model, cache=cache), captions, mask, 7.0, model.config.in_channels)
    diffusion = GaussianDiffusion.linear(learn_sigma=model.config.learn_sigma).respaced(steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=noise.device.type == "cuda")
    if noise.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with autocast:
        latents = diffusion.p_sample_loop(denoiser, noise, generator=torch.Generator(noise.device).manual_seed(1))
    if noise.device.type == "cuda":
        torch.cuda.synchronize()
    return latents.float(), time.perf_counter() - start


def sampling_cases(cpu_only: bool) -> list[dict]:
    out = [
        dict(name="tiny, test grid", preset="tiny", latent=(3, 8, 8), text=(8, 32), device="cpu"),
        dict(name="tiny, 16x256x256 grid", preset="tiny", latent=(16, 32, 32), text=(8, 32), device="cpu"),
    ]
    if torch.cuda.is_available() and not cpu_only:
        out.append(dict(name="XL/2, 16x256x256", preset="XL/2", latent=(16, 32, 32), text=(120, 4096), device="cuda"))
    return out


def sampling_cache(case: dict, steps: int, repeats: int) -> dict:
    frames, height, width = case["latent"]
    config = preset(
        case["preset"],
        frames=frames,
        height=height,
        width=width,
        vae_downsample=1,
        model_max_length=case["text"][0],
        caption_channels=case["text"][1],
    )
    torch.manual_seed(0)
    model = MVDiT(config).eval().to(case["device"])
    with torch.no_grad():  # random weights everywhere (the zero-initialised gates too): every branch matters
        for parameter in model.parameters():
            parameter.normal_(0, 0.02)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(2, config.in_channels, *config.input_size, generator=g).to(case["device"])
    captions = torch.randn(2, *case["text"], generator=g).to(case["device"])
    sample_latents(model, noise, captions, min(steps, 3), 1)  # warm-up
    times: dict[int, list[float]] = {1: [], 2: []}
    latents = {}
    for _ in range(repeats):
        for interval in (1, 2):
            latents[interval], seconds = sample_latents(model, noise, captions, steps, interval)
            times[interval].append(seconds)
    reference, cached = latents[1], latents[2]
    frames = {k: decoded_frames(v) for k, v in latents.items()}
    return {
        "case": case["name"],
        "device": case["device"],
        "steps": steps,
        "uncached_s": statistics.median(times[1]),
        "cached_s": statistics.median(times[2]),
        "speedup": statistics.median(times[1]) / statistics.median(times[2]),
        "psnr_db": psnr(cached, reference, float(reference.max() - reference.min())),
        "frames_psnr_db": psnr(frames[2], frames[1], 255.0),
    }


def psnr(x: torch.Tensor, reference: torch.Tensor, peak: float) -> float:
    mse = float(((x.float() - reference.float()) ** 2).mean())
    return 10 * math.log10(peak**2 / mse) if mse > 0 else float("inf")


def decoded_frames(latents: torch.Tensor) -> torch.Tensor:
    """The frames a sample's mp4 holds: latents through the (tiny, random) VAE, to uint8 as mvdit.sample does."""
    from openvid_assets.mvdit.encoders import tiny_vae

    with torch.no_grad():
        frames = tiny_vae().decode(latents.cpu())
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU intra-op threads to try")
    parser.add_argument("--xl2-batch", type=int, default=4, help="per-GPU batch for XL/2")
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU dense bf16 peak, if not in the table")
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--sampling", action="store_true", help="sampling with cache_interval 1 vs 2 instead")
    parser.add_argument("--sample-steps", type=int, default=20, help="sampling steps (the pipeline's default: 100)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved sampling repeats")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one case, run in this process
    args = parser.parse_args()
    if args.sampling:
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}"
        )
        rows = [sampling_cache(case, args.sample_steps, args.repeats) for case in sampling_cases(args.cpu_only)]
        print(
            "| case | device | steps | interval 1 (s) | interval 2 (s) | speed-up | PSNR latents (dB) "
            "| PSNR decoded frames (dB) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | {r['device']} | {r['steps']} | {r['uncached_s']:.3f} | {r['cached_s']:.3f} | "
                f"{r['speedup']:.2f}x | {r['psnr_db']:.1f} | {r['frames_psnr_db']:.1f} |"
            )
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        return
    if args.child:
        print("RESULT " + json.dumps(run_case(json.loads(args.child), args.steps, args.warmup)))
        return

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}"
    )
    results = []
    for case in cases(args):
        command = [
            sys.executable,
            __file__,
            "--child",
            json.dumps(case),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{case['name']} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.split("RESULT ", 1)[1]))
        print(f"  done: {case['name']} ({case['device']}, {case['threads']} threads)", flush=True)
    print(table(results, args.peak_tflops))
    print(
        "step: median of the timed steps (data collation, loss, backward, clip, Adam, EMA); FLOPs: 3x forward "
        "matmul FLOPs per sample (mvdit.model.forward_flops); peak mem: CPU the process's peak RSS "
        "(torch and the model included), +training its growth once the loop starts (lazy library loading "
        "included); GPU peak allocated (weights, gradients, Adam, EMA, activations)."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
