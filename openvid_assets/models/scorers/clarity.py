"""Clarity backends: DOVER-Technical (the paper's network, :mod:`openvid_assets.models.networks.dover`) and a
weight-free contrast-normalised variance of the Laplacian on native-resolution crops.

Laplacian:

Fixed-size crops at native resolution measure sharpness per pixel the way a
viewer sees it (no resampling that would add or hide blur). Dividing by the
crop's own variance removes the effect of contrast and texture amount, so a
low-contrast sharp scene is not mistaken for a blurry one; flat crops carry no
evidence and are skipped. The score is the mean of the sharper half of the
crops, so a sharp subject on a soft background still counts as sharp.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from openvid_assets.media.frames import FrameRequest, at_positions
from openvid_assets.models.registry.catalog import DOVER_WEIGHTS
from openvid_assets.models.registry.weights import WeightsFile

if TYPE_CHECKING:  # torch loads only when a DOVER scorer is built
    from openvid_assets.models.networks.dover import DoverConfig

FLAT_VARIANCE = 1e-4  # on 0..1 grey levels: below this a crop is flat


def crop_origins(length: int, crop: int, count: int) -> list[int]:
    return sorted({round(x) for x in np.linspace(0, length - crop, count)})


def crop_sharpness(gray: np.ndarray, crop: int, grid: int) -> list[float]:
    """Laplacian variance over grey variance for a grid of crops of one frame (values in 0..1)."""
    h, w = gray.shape
    size = min(crop, h, w)
    ratios = []
    for y in crop_origins(h, size, grid):
        for x in crop_origins(w, size, grid):
            patch = gray[y : y + size, x : x + size]
            variance = float(patch.var())
            if variance >= FLAT_VARIANCE:
                ratios.append(float(cv2.Laplacian(patch, cv2.CV_32F, ksize=3).var()) / variance)
    return ratios


class LaplacianClarity:
    name = "laplacian-sharpness"
    weights_digest = "none"
    extra_columns: tuple[str, ...] = ()

    def __init__(self, positions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8), crop: int = 128, grid: int = 3):
        self.crop, self.grid = crop, grid
        self.params = {"positions": list(positions), "crop": crop, "grid": grid}
        self.request = FrameRequest(indices=partial(at_positions, positions=positions))

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        ratios = []
        for frame in frames:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            ratios += crop_sharpness(gray, self.crop, self.grid)
        if not ratios:
            return {"score": 0.0}  # only flat frames: nothing is sharp
        ratios.sort(reverse=True)
        return {"score": float(np.mean(ratios[: max(1, len(ratios) // 2)]))}


# --------------------------------------------------------------------------- DOVER-Technical input
# Sampling follows upstream (DOVER's evaluate_one_video.py: UnifiedFrameSampler and get_spatial_fragments), with
# its random draws seeded so a score is the same on every run:
#
# * Frames: ``num_clips`` clips of ``clip_len`` frames ``frame_interval`` apart, clip ``k`` starting at
#   ``k * (n // num_clips)`` plus a seeded offset when the segment is longer than ``clip_len * frame_interval``;
#   indices past the end wrap around (mod n), as upstream's do.
# * Fragments: the frame is split into a 7x7 grid of cells, and each cell gives one 32x32 patch at a seeded
#   offset within the cell. A frame whose short side is under ``7 * 32`` px is upsampled as upstream does (torch
#   bilinear by the scale factor, size floored, values truncated) and, as upstream, the grid stays the one of the
#   frame's own size (see cut_fragments). Offsets depend only on (seed, clip number, frame height, frame width),
#   so they are the same for every frame of a clip, every decode chunk and every run.
#
# Because the decoder's per-chunk ``reduce`` sees frames without their positions
# in the plan, it cuts every clip's fragment layout from each frame it is given:
# reduced frames are ``(n, num_clips, 224, 224, 3)`` uint8 and DoverClarity.score
# keeps, for the ``p``-th planned frame, layout ``p // clip_len``. This keeps the
# reduce a pure function (safe in the decode threads) at the cost of holding
# ``num_clips`` small mosaics per frame instead of one.
#


def dover_frame_indices(
    num_frames: int, clip_len: int = 32, interval: int = 2, num_clips: int = 3, seed: int = 0
) -> list[int]:
    """``num_clips * clip_len`` frame indices, clip after clip, as upstream's ``UnifiedFrameSampler`` plans them.

    Clip ``k`` starts at ``k * (n // num_clips)``, plus an offset in ``[0, n // num_clips - clip_len * interval)``
    when that segment is longer than ``clip_len * interval`` (seeded here, drawn at random upstream); its frames
    are ``interval`` apart and wrap around past the last frame (index mod n).
    """
    if num_frames <= 0:
        return []
    segment = num_frames // num_clips
    reach = clip_len * interval
    offsets = (
        np.random.default_rng([seed, num_frames]).integers(0, segment - reach, size=num_clips)
        if segment > reach
        else np.zeros(num_clips, dtype=np.int64)
    )
    starts = segment * np.arange(num_clips) + offsets
    plan = (starts[:, None] + interval * np.arange(clip_len)[None, :]) % num_frames
    return [int(i) for i in plan.ravel()]


def upsampled(frames: np.ndarray, min_side: int) -> np.ndarray:
    """(n, H, W, 3) frames whose short side is under ``min_side``, scaled up as upstream does: torch bilinear
    by the factor ``min_side / short side`` (so the size is floored: 176x144 becomes 273x223), values truncated
    back to uint8. Larger frames are returned as they are."""
    height, width = frames.shape[1:3]
    ratio = min(height / min_side, width / min_side)
    if ratio >= 1:
        return frames
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    y = F.interpolate(x, scale_factor=1 / ratio, mode="bilinear") * 255.0
    return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def fragment_offsets(
    height: int, width: int, clip: int, seed: int = 0, fragments: int = 7, size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(tops, lefts), each (fragments, fragments): the patch origins for one clip of frames this size.

    Row ``i`` / column ``j`` of the grid starts at ``i * (height // fragments)`` (clamped so
    the patch fits) plus a seeded offset that keeps the patch inside its cell.
    A pure function of its arguments: every chunk and every run of a clip agrees.
    """
    if min(height, width) < size:
        raise ValueError(f"a {width}x{height} frame is smaller than one {size}px fragment")
    rng = np.random.default_rng([seed, clip, height, width])

    def axis(length: int) -> tuple[np.ndarray, np.ndarray]:
        cell = length // fragments
        grid = np.minimum(cell * np.arange(fragments), length - size)
        jitter = (
            rng.integers(0, cell - size, size=(fragments, fragments))
            if cell > size
            else np.zeros((fragments, fragments), dtype=np.int64)
        )
        return grid, jitter

    rows, dy = axis(height)
    cols, dx = axis(width)
    return rows[:, None] + dy, cols[None, :] + dx


def cut_fragments(frames: np.ndarray, clip: int, seed: int = 0, fragments: int = 7, size: int = 32) -> np.ndarray:
    """(n, H, W, 3) uint8 frames of one clip -> (n, fragments*size, fragments*size, 3) mosaics.

    Patches are copied at native resolution. A frame with a short side under ``fragments * size`` is upsampled
    (:func:`upsampled`), and, as upstream's ``get_spatial_fragments`` does (it reads the size before upsampling),
    the grid is still laid on the frame's own size: the patches come from the top-left H x W of the upsampled
    frame (42 % of it for 176x144), overlapping where a cell is under ``size``. The paper's clarity numbers were
    made this way, so it is kept.
    """
    n, height, width, _ = frames.shape
    tops, lefts = fragment_offsets(height, width, clip, seed, fragments, size)
    frames = upsampled(frames, fragments * size)
    out = np.empty((n, fragments * size, fragments * size, 3), dtype=np.uint8)
    for i in range(fragments):
        for j in range(fragments):
            y, x = int(tops[i, j]), int(lefts[i, j])
            out[:, i * size : (i + 1) * size, j * size : (j + 1) * size] = frames[:, y : y + size, x : x + size]
    return out


def cut_all_clips(
    frames: np.ndarray, num_clips: int = 3, seed: int = 0, fragments: int = 7, size: int = 32
) -> np.ndarray:
    """The decoder's per-chunk reduce: (n, H, W, 3) -> (n, num_clips, S, S, 3), one mosaic per clip layout."""
    return np.stack([cut_fragments(frames, k, seed, fragments, size) for k in range(num_clips)], axis=1)


def rescale(raw: float, config: DoverConfig) -> float:
    """The published mapping of the raw technical score to (0, 1): ``sigmoid((raw - 0.1107) / 0.07355)``."""
    z = (raw - config.rescale_shift) / config.rescale_scale
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class DoverClarity:
    """Clarity scorer: DOVER technical quality of 3 clips of 32 fragment frames, rescaled to (0, 1).

    ``config`` is :data:`openvid_assets.models.networks.dover.PAPER` unless given.
    """

    name = "dover-technical"
    extra_columns: tuple[str, ...] = ("dover_raw",)

    def __init__(
        self,
        config: DoverConfig | None = None,
        weights: WeightsFile | None = DOVER_WEIGHTS,
        device: str = "auto",
        seed: int = 0,
        fp32: bool = False,
    ):
        import torch

        from openvid_assets.models.networks import dover
        from openvid_assets.models.registry.runtime import built_or_loaded, pick_device, pick_dtype

        config = config or dover.PAPER
        self.config, self.seed = config, seed
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, fp32)
        model, self.weights_digest = built_or_loaded(
            lambda: dover.DoverTechnical(config), lambda w: dover.load_dover_technical(w, config), weights, seed
        )
        self.model = model.eval().to(self.device, self.dtype)
        self.params: dict[str, Any] = {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
            "seed": seed,
            "dtype": str(self.dtype).removeprefix("torch."),
            "small_frames": "grid of the frame's own size, cut from the upsampled frame (upstream)",
        }
        self.request = FrameRequest(
            indices=partial(
                dover_frame_indices,
                clip_len=config.clip_len,
                interval=config.frame_interval,
                num_clips=config.num_clips,
                seed=seed,
            ),
            reduce=partial(
                cut_all_clips,
                num_clips=config.num_clips,
                seed=seed,
                fragments=config.fragments,
                size=config.fragment_size,
            ),
            chunk=16,
        )
        self._mean = torch.tensor(config.mean, device=self.device).view(1, 3, 1, 1, 1)
        self._std = torch.tensor(config.std, device=self.device).view(1, 3, 1, 1, 1)

    def clips(self, frames: np.ndarray) -> np.ndarray:
        """Reduced frames (num_clips*clip_len, num_clips, S, S, 3) -> each clip's own mosaics.

        Returns (num_clips, clip_len, S, S, 3): planned frame ``p`` with fragment layout ``p // clip_len``.
        """
        c = self.config
        expected = (c.num_clips * c.clip_len, c.num_clips, c.input_size, c.input_size, 3)
        if frames.shape != expected:
            raise ValueError(f"expected reduced frames of shape {expected}, got {frames.shape}")
        picked = frames.reshape(c.num_clips, c.clip_len, *frames.shape[1:])
        return np.stack([picked[k, :, k] for k in range(c.num_clips)])

    def raw_score(self, clips: np.ndarray) -> float:
        """Mean local score over tokens and clips of (num_clips, T, S, S, 3) uint8 mosaics."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(clips)).to(self.device)
            x = x.permute(0, 4, 1, 2, 3).float()  # B, 3, T, S, S
            x = ((x - self._mean) / self._std).to(self.dtype)
            return float(self.model(x).float().mean())

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        raw = self.raw_score(self.clips(frames))
        return {"score": rescale(raw, self.config), "dover_raw": raw}


class DoverAesthetic:
    """VQA_A: DOVER's aesthetic branch on 32 whole frames (upstream's sampler, ``dover.aesthetic_indices``) at
    224 px, rescaled to (0, 1); ``dover_raw`` is the raw output. Loads the whole DOVER checkpoint strictly (both branches: the file is checked as a whole)."""

    name = "dover-aesthetic"
    extra_columns: tuple[str, ...] = ("dover_raw",)

    def __init__(
        self,
        technical: DoverConfig | None = None,
        aesthetic: Any = None,
        weights: WeightsFile | None = DOVER_WEIGHTS,
        device: str = "auto",
        seed: int = 0,
    ):
        import torch

        from openvid_assets.models.networks import dover
        from openvid_assets.models.registry.runtime import built_or_loaded, pick_device

        self.technical, self.aesthetic = technical or dover.PAPER, aesthetic or dover.AESTHETIC
        self.device = pick_device(device)
        model, self.weights_digest = built_or_loaded(
            lambda: dover.Dover(self.technical, self.aesthetic),
            lambda w: dover.load_dover(w, self.technical, self.aesthetic),
            weights,
            seed,
        )
        self.model = model.eval().to(self.device, torch.float32)
        self.params: dict[str, Any] = {
            "config": self.aesthetic.name,
            "frames": self.aesthetic.frames,
            "sampler": "upstream: (n // 32) * i + a seeded offset",
            "size": self.aesthetic.size,
            "resize": "bilinear, rounded to uint8",
            "seed": seed,
        }
        self.request = FrameRequest(
            indices=partial(dover.aesthetic_indices, config=self.aesthetic, seed=seed),
            size=(self.aesthetic.size, self.aesthetic.size),
        )

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        import torch

        from openvid_assets.models.networks import dover

        with torch.inference_mode():
            clip = dover.aesthetic_clip(torch.from_numpy(np.ascontiguousarray(frames)), self.technical, self.aesthetic)
            raw = float(self.model.aesthetic(clip.to(self.device)).float().mean())
        return {"score": dover.rescale_aesthetic(raw, self.aesthetic), "dover_raw": raw}
