"""Motion backends: UniMatch (the paper's flow network, :mod:`openvid_assets.models.networks.unimatch`) and a
weight-free OpenCV Farneback dense optical flow (as Stable Video Diffusion used).

Scores are mean flow magnitudes in pixels per frame at a fixed working
resolution (portrait videos transposed first), so they compare across input
sizes and orientations. Besides the score, the mean flow vector and the mean
divergence (zoom) are kept for the camera-motion label of the captions step.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np

from openvid_assets.media.frames import FrameRequest, at_positions
from openvid_assets.models.registry.catalog import UNIMATCH_FLOW
from openvid_assets.models.registry.weights import WeightsFile

if TYPE_CHECKING:  # torch loads only when a UniMatch scorer is built
    import torch

    from openvid_assets.models.networks.unimatch import UniMatchConfig

FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 4,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


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

WORK_SIZE = (576, 320)  # (width, height) of a landscape frame, the size the checkpoint was trained at


@dataclass(frozen=True)
class MotionDefinition:
    """A published UniMatch motion score: which frames (clamped to the last frame, as upstream does) and which
    statistic of the flow of each consecutive pair is averaged."""

    frames: tuple[int, ...]
    statistic: Literal["l2", "abs"]  # mean L2 flow magnitude, or mean absolute flow component
    source: str


MOTION_DEFINITIONS = {
    # Open-Sora v1.3 tools/scoring/optical_flow/inference.py: frames 15 * i (i < 10), flow_maps.norm(dim=-1).mean()
    "opensora-v1.3": MotionDefinition(tuple(range(0, 150, 15)), "l2", "Open-Sora v1.3"),
    # Open-Sora v1.2 tools/scoring/optical_flow/inference.py: frames 0, 10, 20, 30, flow_maps.abs().mean()
    "opensora-v1.2": MotionDefinition((0, 10, 20, 30), "abs", "Open-Sora v1.2"),
}


def unimatch_indices(num_frames: int, definition: str = "opensora-v1.3", exact: bool = False) -> list[int]:
    """The definition's frames, each clamped to the last frame as upstream does (132 frames: 0, 15, ..., 120, 131).

    ``exact`` keeps upstream's list verbatim: a short video repeats its last frame, and each repeat is a zero-flow
    pair that pulls the score towards "static". Otherwise repeats are dropped, so a short video gets fewer pairs
    at the definition's spacing.
    """
    if num_frames <= 0:
        return []
    clamped = [min(i, num_frames - 1) for i in MOTION_DEFINITIONS[definition].frames]
    return clamped if exact else list(dict.fromkeys(clamped))


class UniMatchMotion:
    """OpenVid-1M's motion score: mean UniMatch flow magnitude (px/frame pair at 320x576) over sampled pairs.

    ``definition`` names the published score (``MOTION_DEFINITIONS``). By default frames arrive from the decoder
    already resized to 576x320 (portrait videos transposed); with ``exact`` they are decoded at full size and
    resized in float (bilinear, ``align_corners=True``) as upstream does, and upstream's frame list is used
    verbatim (:func:`unimatch_indices`). Pairs are consecutive sampled frames, batched ``pair_batch`` at a
    time; fp16 autocast on CUDA unless ``fp32``, fp32 on CPU. ``config`` is
    :data:`openvid_assets.models.networks.unimatch.PAPER` unless given.
    """

    name = "unimatch"
    extra_columns = FLOW_COLUMNS

    def __init__(
        self,
        config: UniMatchConfig | None = None,
        weights: WeightsFile | None = UNIMATCH_FLOW,
        device: str = "auto",
        seed: int = 0,
        pair_batch: int = 8,
        definition: str = "opensora-v1.3",
        exact: bool = False,
        fp32: bool = False,
    ):
        import torch

        from openvid_assets.models.networks import unimatch
        from openvid_assets.models.registry.runtime import built_or_loaded, pick_device, pick_dtype

        if definition not in MOTION_DEFINITIONS:
            raise ValueError(f"unknown motion definition {definition!r}; choose one of {sorted(MOTION_DEFINITIONS)}")
        config = config or unimatch.PAPER
        self.definition = MOTION_DEFINITIONS[definition]
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, fp32)
        model, self.weights_digest = built_or_loaded(
            lambda: unimatch.UniMatchFlow(config), lambda w: unimatch.load_unimatch(config, w), weights, seed
        )
        self.model = model.eval().to(self.device)
        self.config = config
        self.pair_batch = max(1, pair_batch)
        self.params = {
            "config": config.to_params(),
            "definition": definition,
            "frames": list(self.definition.frames),
            "metric": {"l2": "mean_l2_magnitude", "abs": "mean_abs_component"}[self.definition.statistic],
            "size": list(WORK_SIZE),
            "landscape": True,
            "inputs": "full-size decode, float bilinear resize" if exact else "decoder-scaled",
            "precision": "fp16-autocast" if self.dtype == torch.float16 else "fp32",
        }
        self.request = FrameRequest(
            indices=partial(unimatch_indices, definition=definition, exact=exact),
            size=None if exact else WORK_SIZE,
            landscape=True,
        )

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
        summary = flow_summary(self.flows(frames))
        if self.definition.statistic == "abs":
            summary["score"] = summary["flow_abs_mean"]
        return summary
