"""MVDiT training data from curated clips: cached VAE latents and T5 caption features per clip.

Encoding a clip's frames and caption every epoch would cost more than the
training step, so each captioned clip is encoded once: ``frames`` frames taken
every ``interval`` frames from the middle of the clip, resized so the short side
is ``resolution`` px, through the VAE frame by frame, and its caption through T5.
At training time :class:`LatentClips` crops a random ``resolution``-square
window of the latent and flips it horizontally half of the time (the latent
grid is spatially aligned with the image, so this is the paper's random crop
and flip at the VAE's 8-pixel granularity).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from openvid_assets.media.tasks import ClipTask, OpenVideo, clip_tasks
from openvid_assets.media.frames import FrameRequest, read_frames
from openvid_assets.models.shards.running import is_infrastructure_error
from openvid_assets.store.rows import KEY_COLUMNS, RowKey, ShardRows, reusable_rows
from openvid_assets.models.registry.weights import folder_digest, resolve_model_folder
from openvid_assets.mvdit.encoders import FrameVAE, TextEncoder, load_t5, load_vae, tiny_t5, tiny_vae

PAPER_VAE = "stabilityai/sd-vae-ft-ema"
PAPER_T5 = "DeepFloyd/t5-v1_1-xxl"
TINY = "tiny"


def vae_downsample(vae: str) -> int:
    """Image pixels per latent pixel: 8 for sd-vae-ft-ema (and kin), 2 for the tiny offline VAE."""
    return 2 if vae == TINY else 8


@dataclass(frozen=True)
class LatentSettings:
    frames: int = 16
    interval: int = 3
    resolution: int = 256

    def params(self) -> dict[str, int]:
        return asdict(self)


def clip_frame_indices(num_frames: int, settings: LatentSettings) -> list[int] | None:
    """``frames`` indices ``interval`` apart, centred in the clip; a shorter clip gets the widest
    interval that fits, and a clip with fewer than ``frames`` frames gets None."""
    if num_frames < settings.frames:
        return None
    if settings.frames == 1:
        return [num_frames // 2]
    step = min(settings.interval, (num_frames - 1) // (settings.frames - 1))
    start = (num_frames - 1 - step * (settings.frames - 1)) // 2
    return [start + k * step for k in range(settings.frames)]


def training_size(width: int, height: int, resolution: int, multiple: int = 8) -> tuple[int, int]:
    """(width, height) with the short side at ``resolution``, both multiples of the VAE's downsampling."""
    scale = resolution / min(width, height)
    return (
        max(resolution, int(round(width * scale / multiple)) * multiple),
        max(resolution, int(round(height * scale / multiple)) * multiple),
    )


@dataclass
class Encoders:
    vae: FrameVAE
    text: TextEncoder
    name: str  # "<vae>+<t5>"
    digest: str


def load_encoders(vae: str, t5: str, device: str | torch.device = "cpu") -> Encoders:
    """The VAE and T5 encoder by Hugging Face repo id (under the weights dir) or folder; ``tiny`` builds random ones."""
    from openvid_assets.models.registry.runtime import pick_device, pick_dtype

    device = pick_device(str(device))
    dtype = pick_dtype(device)
    vae_folder = None if vae == TINY else resolve_model_folder(vae)
    t5_folder = None if t5 == TINY else resolve_model_folder(t5)
    frame_vae = tiny_vae() if vae_folder is None else load_vae(vae_folder, device, dtype)
    text = tiny_t5(max_length=8, dim=32) if t5_folder is None else load_t5(t5_folder, device=device, dtype=dtype)
    digests = [("random" if f is None else folder_digest(f)) for f in (vae_folder, t5_folder)]
    frame_vae.vae.to(device)
    text.model.to(device)
    return Encoders(frame_vae, text, f"{vae}+{t5}", "+".join(digests))


# --------------------------------------------------------------------------- the cache


LATENT_SCHEMA: dict[str, Any] = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "status": pl.String,
    "error": pl.String,
    "latent_path": pl.String,  # relative to the data root
    "latent_shape": pl.List(pl.Int32),
    **KEY_COLUMNS,
}


@dataclass(frozen=True)
class LatentTask:
    clip: ClipTask
    caption: str


def encode_clip(task: LatentTask, path: Path, encoders: Encoders, settings: LatentSettings) -> dict[str, torch.Tensor]:
    clip = task.clip
    indices = clip_frame_indices(clip.num_frames, settings)
    if indices is None:
        raise ValueError(f"clip has {clip.num_frames} frames, fewer than the {settings.frames} a sample needs")
    video = clip.video
    size = training_size(video.width, video.height, settings.resolution)
    request = FrameRequest(indices=lambda _n: [clip.start_frame + i for i in indices], size=size)
    frames = read_frames(path, request, width=video.width, height=video.height, rotation=video.rotation).frames
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    with torch.no_grad():
        latent = encoders.vae.encode(video, sample=False)[0]
        caption, mask = encoders.text.encode([task.caption])
    return {"latent": latent.half().cpu(), "caption": caption[0].half().cpu(), "mask": mask[0].bool().cpu()}


def latent_key(encoders: Encoders, settings: LatentSettings) -> RowKey:
    return RowKey(encoders.name, encoders.digest, settings.params())


def encode_shard(
    tasks: list[LatentTask],
    encoders: Encoders,
    settings: LatentSettings,
    open_video: OpenVideo,
    put: Callable[[str, bytes], str],
    exists: Callable[[str], bool],
    *,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ShardRows:
    """Encode every clip not already cached (same encoders and settings, file present).

    ``put(clip_id, bytes) -> path`` stores one clip's tensors; returns the table with the counts of clips encoded now and reused.
    """
    key = latent_key(encoders, settings)
    cached = reusable_rows(previous, key)
    rows = {r["clip_id"]: r for r in cached.iter_rows(named=True)} if cached is not None else {}
    rows = {c: r for c, r in rows.items() if exists(r["latent_path"])}
    todo = [t for t in tasks if t.clip.clip_id not in rows]
    for done, task in enumerate(todo, 1):
        row: dict[str, Any] = {"status": "ok"}
        try:
            with open_video(task.clip.video) as path:
                tensors = encode_clip(task, path, encoders, settings)
            buffer = io.BytesIO()
            torch.save(tensors, buffer)
            row.update(
                latent_path=put(task.clip.clip_id, buffer.getvalue()), latent_shape=list(tensors["latent"].shape)
            )
        except Exception as e:
            if is_infrastructure_error(e):
                raise
            row = {"status": "failed", "error": str(e)[:300] or type(e).__name__}
        rows[task.clip.clip_id] = row
        if progress:
            progress(done, len(todo))
    out = [
        {**rows[t.clip.clip_id], "clip_id": t.clip.clip_id, "video_id": t.clip.video.video_id, **key.columns()}
        for t in tasks
    ]
    table = pl.DataFrame(out, schema=LATENT_SCHEMA) if out else pl.DataFrame(schema=LATENT_SCHEMA)
    return ShardRows(table, len(todo), len(tasks) - len(todo))


def latent_tasks(clips: pl.DataFrame, captions: pl.DataFrame, manifest: pl.DataFrame) -> list[LatentTask]:
    """Every captioned clip, with its caption."""
    text = dict(captions.filter(pl.col("status") == "ok").select("clip_id", "caption").iter_rows())
    return [LatentTask(clip, text[clip.clip_id]) for clip in clip_tasks(clips, manifest) if clip.clip_id in text]


# --------------------------------------------------------------------------- training items


class LatentClips(torch.utils.data.Dataset):
    """Map-style dataset over cached clips: random square crop of ``crop`` latent pixels and random flip.

    Randomness comes from torch's global generator, which the training loop seeds and checkpoints,
    so a resumed run draws the same crops.
    """

    def __init__(self, uris: list[str], read: Callable[[str], bytes], crop: int, flip: bool = True):
        if not uris:
            raise ValueError("no encoded clips to train on: materialize mvdit_latents (and the dataset) first")
        self.uris, self.read, self.crop, self.flip = uris, read, crop, flip

    def __len__(self) -> int:
        return len(self.uris)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = torch.load(io.BytesIO(self.read(self.uris[index])), map_location="cpu", weights_only=True)
        latent = item["latent"].float()
        height, width = latent.shape[-2:]
        if min(height, width) < self.crop:
            raise ValueError(f"latent {tuple(latent.shape)} is smaller than the {self.crop}-pixel crop")
        top = int(torch.randint(0, height - self.crop + 1, ()))
        left = int(torch.randint(0, width - self.crop + 1, ()))
        latent = latent[..., top : top + self.crop, left : left + self.crop]
        if self.flip and bool(torch.rand(()) < 0.5):
            latent = latent.flip(-1)
        return latent, item["caption"].float(), item["mask"]


# --------------------------------------------------------------------------- sizes by profile

# What a training run uses unless configured: the paper's model and data shape, or a CPU-sized one.
RUN_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {
        "preset": "XL/2",
        "resolution": 256,
        "frames": 16,
        "steps": 50_000,
        "batch_size": 4,
        "lr": 2e-5,
        "checkpoint_every": 2500,
        "vae": PAPER_VAE,
        "text_encoder": PAPER_T5,
    },
    "offline": {
        "preset": "tiny",
        "resolution": 32,
        "frames": 4,
        "steps": 40,
        "batch_size": 2,
        "lr": 1e-3,
        "checkpoint_every": 20,
        "vae": TINY,
        "text_encoder": TINY,
    },
}
