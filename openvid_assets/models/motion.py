"""Motion backends: UniMatch (the paper's flow network, :mod:`openvid_assets.models.unimatch`) and a weight-free
OpenCV Farneback dense optical flow (as Stable Video Diffusion used).

Scores are mean flow magnitudes in pixels per frame at a fixed working
resolution (portrait videos transposed first), so they compare across input
sizes and orientations. Besides the score, the mean flow vector and the mean
divergence (zoom) are kept for the camera-motion label of the captions step.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from openvid_assets.media.frames import FrameRequest, at_positions
from openvid_assets.models.catalog import UNIMATCH_FLOW
from openvid_assets.models.weights import WeightsFile

if TYPE_CHECKING:  # torch loads only when a UniMatch scorer is built
    import torch

    from openvid_assets.models.unimatch import UniMatchConfig

FARNEBACK_PARAMS = {"pyr_scale": 0.5, "levels": 4, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}


FLOW_COLUMNS = ("flow_dx", "flow_dy", "flow_div", "flow_abs_mean")


def frame_pair_starts(num_frames: int, pairs: int) -> list[int]:
    """First frames of ``pairs`` adjacent-frame pairs spread over the video."""
    if num_frames < 2:
        return []
    return at_positions(num_frames - 1, np.linspace(0.05, 0.95, pairs).tolist())


def pair_indices(num_frames: int, pairs: int) -> list[int]:
    return sorted({i + d for i in frame_pair_starts(num_frames, pairs) for d in (0, 1)})


def flow_summary(flows: list[np.ndarray]) -> dict[str, float]:
    """Mean L2 magnitude (the score), mean vector, mean divergence, and mean absolute component.

    ``flow_abs_mean`` is what the Open-Sora tools (and so OpenVid-1M's published
    "motion score") compute; it is kept so scores compare with theirs.
    """
    stacked = np.stack(flows).astype(np.float32)
    magnitude = np.linalg.norm(stacked, axis=-1)
    div = [np.gradient(f[..., 0], axis=1) + np.gradient(f[..., 1], axis=0) for f in flows]
    return {
        "score": float(magnitude.mean()),
        "flow_dx": float(stacked[..., 0].mean()),
        "flow_dy": float(stacked[..., 1].mean()),
        "flow_div": float(np.mean(div)),
        "flow_abs_mean": float(np.abs(stacked).mean()),
    }


class FarnebackMotion:
    name = "farneback"
    weights_digest = "none"
    extra_columns = FLOW_COLUMNS

    def __init__(self, pairs: int = 8, size: tuple[int, int] = (320, 180)):
        self.params = {"pairs": pairs, "size": list(size), **FARNEBACK_PARAMS}
        self.request = FrameRequest(indices=partial(pair_indices, pairs=pairs), size=size, landscape=True)

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        gray = {i: cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for i, f in zip(indices, frames)}
        flows = [
            cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, **FARNEBACK_PARAMS)
            for i in indices
            if i + 1 in gray
        ]
        if not flows:
            raise ValueError("video too short for motion: needs two consecutive frames")
        return flow_summary(flows)


# --------------------------------------------------------------------------- UniMatch

FRAME_STEP = 15
FRAME_COUNT = 10
WORK_SIZE = (576, 320)  # (width, height) of a landscape frame, the size the checkpoint was trained at


def unimatch_indices(num_frames: int, step: int = FRAME_STEP, count: int = FRAME_COUNT) -> list[int]:
    """Frames 0, step, 2*step, ... (``count`` of them, as OpenVid-1M / Open-Sora sample), kept inside the video.

    A shorter video gets fewer frames at the same spacing, so every pair still spans ``step`` frames and
    scores stay comparable; never a clamped repeat of the last frame (a repeated frame is a zero-flow pair
    that fakes stillness). A video too short for two frames ``step`` apart gets its first and last frame.
    """
    if num_frames <= 0:
        return []
    indices = list(range(0, num_frames, step))[:count]
    if len(indices) < 2 and num_frames >= 2:
        indices = [0, num_frames - 1]
    return indices


class UniMatchMotion:
    """OpenVid-1M's motion score: mean UniMatch flow magnitude (px/frame pair at 320x576) over sampled pairs.

    Frames arrive from the decoder already resized to 576x320 (portrait videos transposed); upstream
    resizes decoded frames with torch bilinear interpolation instead, a small difference in scaler.
    Pairs are consecutive sampled frames, batched ``pair_batch`` at a time; fp16 autocast on CUDA,
    fp32 on CPU. ``config`` is :data:`openvid_assets.models.unimatch.PAPER` unless given.
    """

    name = "unimatch"
    extra_columns = FLOW_COLUMNS

    def __init__(self, config: UniMatchConfig | None = None, weights: WeightsFile | None = UNIMATCH_FLOW,
                 device: str = "auto", seed: int = 0, pair_batch: int = 8):  # fmt: skip
        import torch

        from openvid_assets.models import unimatch
        from openvid_assets.models.runtime import built_or_loaded, pick_device, pick_dtype

        config = config or unimatch.PAPER
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        model, self.weights_digest = built_or_loaded(lambda: unimatch.UniMatchFlow(config),
                                                     lambda w: unimatch.load_unimatch(config, w), weights, seed)  # fmt: skip
        self.model = model.eval().to(self.device)
        self.config = config
        self.pair_batch = max(1, pair_batch)
        self.params = {
            "config": config.to_params(),
            "frame_step": FRAME_STEP,
            "frame_count": FRAME_COUNT,
            "size": list(WORK_SIZE),
            "landscape": True,
            "metric": "mean_l2_magnitude",
            "precision": "fp16-autocast" if self.dtype == torch.float16 else "fp32",
        }
        self.request = FrameRequest(indices=unimatch_indices, size=WORK_SIZE, landscape=True)

    def _autocast(self) -> Any:
        import torch

        if self.device.type == "cuda" and self.dtype == torch.float16:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return nullcontext()

    def _tensor(self, frames: np.ndarray) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        if x.shape[-2] > x.shape[-1]:
            x = x.transpose(-2, -1)
        size = (WORK_SIZE[1], WORK_SIZE[0])
        if tuple(x.shape[-2:]) != size:  # frames not decoded at the working size: resize as upstream does
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return x

    def flows(self, frames: np.ndarray) -> list[np.ndarray]:
        """(H, W, 2) float32 flow of each consecutive pair of ``frames`` (N, H, W, 3) uint8 RGB."""
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            x = self._tensor(frames)
            for start in range(0, x.shape[0] - 1, self.pair_batch):
                stop = min(start + self.pair_batch, x.shape[0] - 1)
                with self._autocast():
                    flow = self.model(x[start:stop], x[start + 1 : stop + 1])
                out.extend(flow.float().permute(0, 2, 3, 1).cpu().numpy())
        return out

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        if len(frames) < 2 or len(set(indices)) < 2:
            raise ValueError("video too short for motion: needs two distinct frames")
        return flow_summary(self.flows(frames))
