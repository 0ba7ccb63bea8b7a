"""CLIP image embeddings with open_clip (the paper: ViT-L/14 with OpenAI weights).

The model is built from its open_clip config and loaded strictly from a local
file; only the vision tower is kept for inference. Frames arrive already
decoded at the model's short side, so preprocessing is a centre crop and the
OpenAI normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import open_clip
import torch

from openvid_assets.models.runtime import in_batches_halving_on_oom, pick_device, pick_dtype, seeded
from openvid_assets.models.weights import WeightsFile, file_digest, load_state_dict, resolve

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

CLIP_VIT_L14_OPENAI = WeightsFile(
    filename="vit_large_patch14_clip_224.openai/open_clip_model.safetensors",
    url="https://huggingface.co/timm/vit_large_patch14_clip_224.openai/resolve/main/open_clip_model.safetensors",
    description="CLIP ViT-L/14, OpenAI weights, open_clip format",
)

# Same class as ViT-L/14 and the same 768-d embedding (so the real aesthetic head fits), tiny everywhere else.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 768,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@dataclass(frozen=True)
class ClipSpec:
    """An open_clip model: a named config or an explicit one, with weights or a seeded random init."""

    name: str
    weights: WeightsFile | None = None
    config: dict[str, Any] | None = field(default=None, hash=False)
    seed: int = 0

    def model_config(self) -> dict[str, Any]:
        config = self.config or open_clip.get_model_config(self.name)
        if config is None:
            raise ValueError(f"open_clip has no model config named {self.name!r}")
        return config

    def build(self) -> open_clip.CLIP:
        config = self.model_config()
        if self.weights is None:
            with seeded(self.seed):
                return open_clip.CLIP(**config)
        model = open_clip.CLIP(**config)
        model.load_state_dict(load_state_dict(resolve(self.weights)), strict=True)
        return model

    def digest(self) -> str:
        if self.weights is None:
            return f"random-seed{self.seed}"
        return file_digest(resolve(self.weights))


class ClipEmbedder:
    """L2-normalised CLIP image embeddings for batches of RGB frames."""

    def __init__(self, spec: ClipSpec, device: str = "auto", batch_size: int = 32):
        self.spec = spec
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        self.batch_size = batch_size
        self.visual = spec.build().visual.eval().to(self.device, self.dtype)
        size = self.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.weights_digest = spec.digest()
        self._mean = torch.tensor(OPENAI_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(OPENAI_STD, device=self.device).view(1, 3, 1, 1) * 255

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def embed_dim(self) -> int:
        return int(self.visual.output_dim)

    def square(self, frames: np.ndarray) -> np.ndarray:
        """Centre crop (N, H, W, 3) frames to the model's square input, resizing if the short side differs.

        Frames should arrive decoded at the short side already; squaring them per video
        lets frames of any aspect ratio share one batch.
        """
        h, w = frames.shape[1:3]
        if min(h, w) != self.image_size:
            scale = self.image_size / min(h, w)
            size = (max(self.image_size, round(w * scale)), max(self.image_size, round(h * scale)))
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
            h, w = frames.shape[1:3]
        top, left = (h - self.image_size) // 2, (w - self.image_size) // 2
        return frames[:, top : top + self.image_size, left : left + self.image_size]

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.square(frames))).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        return ((x - self._mean) / self._std).to(self.dtype)

    @torch.inference_mode()
    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) float32, unit length."""
        def run(batch: np.ndarray) -> list[np.ndarray]:
            features = self.visual(self._prepare(batch)).float()
            return list(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())

        # An out-of-memory batch is halved and retried; the smaller size is kept for later calls.
        out = in_batches_halving_on_oom(frames, self.batch_size, run, on_halve=self._shrink)
        return np.stack(out) if out else np.zeros((0, self.embed_dim), np.float32)

    def _shrink(self, size: int) -> None:
        self.batch_size = size
