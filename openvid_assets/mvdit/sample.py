"""Text-to-video sampling with MVDiT: captions through T5, respaced IDDPM sampling (100 steps) with classifier-free
guidance (scale 7.0), latents decoded frame by frame by the VAE, H.264 MP4s written through ffmpeg.

    paths = sample_to_files("ckpt/step-00072000.pt", ["a red fox runs through snow"], "out/",
                            preset("XL/2"), load_t5(t5_dir), load_vae(vae_dir))
"""

import re
import subprocess
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from openvid_assets.models.registry.runtime import pick_device
from openvid_assets.mvdit.diffusion import GaussianDiffusion, classifier_free_guidance
from openvid_assets.mvdit.encoders import FrameVAE, TextEncoder
from openvid_assets.mvdit.model import AttentionCache, MVDiT, MVDiTConfig, load_weights
from openvid_assets.store.files import atomic_path

SAMPLING_STEPS = 100
CFG_SCALE = 7.0
FPS = 8  # the release samples 16 frames taken every 3rd frame of 24 fps video


@torch.no_grad()
def generate(
    model: MVDiT,
    text_encoder: TextEncoder,
    vae: FrameVAE,
    prompts: Sequence[str],
    latent_size: tuple[int, int, int] | None = None,
    steps: int = SAMPLING_STEPS,
    cfg_scale: float = CFG_SCALE,
    seed: int = 0,
    guided_channels: int | None = None,
    cache_interval: int = 1,
) -> np.ndarray:
    """Videos for ``prompts`` as uint8 [B, T, H, W, 3]. ``latent_size`` (T, h, w) defaults to the model's
    configured size; ``guided_channels`` to all noise channels (the release's 256px config guides only 3);
    ``cache_interval``: attention and feed-forward outputs computed every that many steps and reused between
    (1: off; 2: the paper's)."""
    device = next(model.parameters()).device
    model.eval()
    captions, mask = text_encoder.encode(prompts)
    captions, mask = captions.to(device), mask.to(device)
    size = latent_size or model.config.input_size
    generator = torch.Generator(device).manual_seed(seed)
    noise = torch.randn((len(prompts), model.config.in_channels, *size), generator=generator, device=device)
    cache = AttentionCache(cache_interval) if cache_interval > 1 else None
    denoiser = classifier_free_guidance(
        partial(model, cache=cache), captions, mask, cfg_scale, guided_channels or model.config.in_channels
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast:
            return denoiser(x, t)

    diffusion = GaussianDiffusion.linear(learn_sigma=model.config.learn_sigma).respaced(steps)
    latents = diffusion.p_sample_loop(guided, noise, generator=generator)
    frames = vae.decode(latents)  # [B, 3, T, H, W] in about [-1, 1]
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def write_mp4(frames: np.ndarray, path: str | Path, fps: float = FPS) -> Path:
    """uint8 [T, H, W, 3] RGB frames -> H.264/yuv420p MP4 at ``path``, written to a temporary file and renamed."""
    path = Path(path)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    count, height, width, channels = frames.shape
    if channels != 3 or count == 0:
        raise ValueError(f"expected [T, H, W, 3] frames, got {frames.shape}")
    command = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-an",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # yuv420p needs even sides
        "-f",
        "mp4",
    ]
    with atomic_path(path) as temporary:
        done = subprocess.run([*command, str(temporary)], input=frames.tobytes(), capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    return path


def slug(text: str, limit: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "video"


def sample_to_files(
    checkpoint: str | Path | dict,
    prompts: Sequence[str],
    out_dir: str | Path,
    config: MVDiTConfig,
    text_encoder: TextEncoder,
    vae: FrameVAE,
    steps: int = SAMPLING_STEPS,
    cfg_scale: float = CFG_SCALE,
    seed: int = 0,
    fps: float = FPS,
    device: str = "auto",
    cache_interval: int = 1,
) -> list[Path]:
    """Load MVDiT weights (a release checkpoint, or EMA weights of a training checkpoint), sample one video per
    prompt and write ``<index>-<prompt slug>.mp4`` files into ``out_dir``."""
    device = pick_device(device)
    model = MVDiT(config)
    load_weights(model, checkpoint)
    videos = generate(
        model.to(device),
        text_encoder,
        vae,
        prompts,
        steps=steps,
        cfg_scale=cfg_scale,
        seed=seed,
        cache_interval=cache_interval,
    )
    return [
        write_mp4(video, Path(out_dir) / f"{i:03d}-{slug(prompt)}.mp4", fps)
        for i, (video, prompt) in enumerate(zip(videos, prompts))
    ]
