"""CLIP image embeddings with open_clip (the paper: ViT-L/14 with OpenAI weights).

The model is built from its open_clip config and loaded strictly from a local
file; only the vision tower is kept for inference. By default frames arrive
already decoded at the model's short side (the decoder scales them), so
preprocessing is a centre crop and the OpenAI normalisation. With ``exact``,
frames are decoded at full size and go through open_clip's own eval preprocess
(PIL bicubic resize of the short side, centre crop): the model sees exactly
what upstream feeds it, at the cost of a full-size decode and a PIL resize.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from openvid_assets.models.registry.runtime import in_batches_halving_on_oom, pick_device, pick_dtype
from openvid_assets.models.registry.catalog import CLIP_VIT_L14_OPENAI, TINY_CLIP_CONFIG, CLIPSpec  # noqa: F401 - re-exported

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPEmbedder:
    """L2-normalised CLIP image embeddings for batches of RGB frames."""

    def __init__(self, spec: CLIPSpec, device: str = "auto", batch_size: int = 32, exact: bool = False):
        self.spec, self.exact = spec, exact
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

    @property
    def decode_short_side(self) -> int | None:
        """The short side to ask the decoder for: the model's, or full size for the exact preprocess."""
        return None if self.exact else self.image_size

    @property
    def preprocess(self) -> str:
        return "open_clip (full-size decode, PIL bicubic)" if self.exact else "decoder-scaled"

    def square(self, frames: np.ndarray) -> np.ndarray:
        """Centre crop (N, H, W, 3) frames to the model's square input, resizing if the short side differs.

        Frames should arrive decoded at the short side already; squaring them per video
        lets frames of any aspect ratio share one batch. ``exact``: open_clip's resize and crop.
        """
        if self.exact:
            return np.stack([self._open_clip_square(f) for f in frames])
        h, w = frames.shape[1:3]
        if min(h, w) != self.image_size:
            scale = self.image_size / min(h, w)
            size = (max(self.image_size, round(w * scale)), max(self.image_size, round(h * scale)))
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
            h, w = frames.shape[1:3]
        top, left = (h - self.image_size) // 2, (w - self.image_size) // 2
        return frames[:, top : top + self.image_size, left : left + self.image_size]

    def _open_clip_square(self, frame: np.ndarray) -> np.ndarray:
        """open_clip's eval transform before ToTensor: torchvision Resize(short side, bicubic) on a PIL image,
        then CenterCrop (image_transform, resize_mode 'shortest')."""
        import torchvision.transforms.functional as TF
        from PIL import Image
        from torchvision.transforms import InterpolationMode

        image = TF.resize(Image.fromarray(frame), self.image_size, interpolation=InterpolationMode.BICUBIC)
        return np.asarray(TF.center_crop(image, self.image_size))

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.square(frames)))
        if self.device.type == "cuda":  # page-locked: the copy to the GPU runs asynchronously
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
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

    @torch.inference_mode()
    def embed_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """(N, 3, S, S) float tensors given to the image tower as they are (no resize, no normalisation, as
        EvalCrafter feeds its frames) -> (N, D) float32, unit length."""
        out = []
        for start in range(0, len(pixels), self.batch_size):
            batch = pixels[start : start + self.batch_size].to(self.device, self.dtype)
            out.append(torch.nn.functional.normalize(self.visual(batch).float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32)

    def _shrink(self, size: int) -> None:
        self.batch_size = size


class CLIPTextEncoder:
    """Unit-length CLIP text embeddings from the text tower of the pipeline's CLIP checkpoint (its image tower
    dropped), built once and batched: the caption checks embed every caption of a shard."""

    def __init__(self, spec: CLIPSpec, device: str = "auto", batch_size: int = 64):
        model = spec.build().eval()
        model.visual = None  # only the text tower is used: free the image tower's memory
        self.device = pick_device(device)
        self.model = model.to(self.device, pick_dtype(self.device))
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> np.ndarray:
        """(K, D) unit-length embeddings; texts longer than the context (77 tokens) are cut there, as CLIP's
        tokenizer does."""
        import open_clip

        out = []
        for start in range(0, len(texts), self.batch_size):
            tokens = open_clip.tokenize(texts[start : start + self.batch_size], self.model.context_length)
            features = self.model.encode_text(tokens.to(self.device)).float()
            out.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def text_embeddings(spec: CLIPSpec, prompts: list[str]) -> np.ndarray:
    """(K, D) unit-length CLIP text embeddings of ``prompts``, from the same model and weights as the image
    embeddings, on CPU: a few prompts need no GPU."""
    return CLIPTextEncoder(spec, device="cpu").embed(prompts)


def zero_shot(video_vectors: np.ndarray, text_vectors: np.ndarray) -> np.ndarray:
    """The index of the closest prompt (cosine) for every video vector."""
    if len(video_vectors) == 0:
        return np.zeros(0, np.int64)
    return np.argmax(video_vectors @ text_vectors.T, axis=1)
