"""Metrics of generated videos, as the OpenVid-1M paper's Table 3 and EvalCrafter compute them.

- ``clip_score``: how well the frames match the prompt, 100 x the mean over frames of the cosine between the
  CLIP image embedding of the frame and the CLIP text embedding of the prompt (negative cosines count as 0, as in
  CLIPScore: Hessel et al. 2021).
- ``clip_temporal_score``: how consistent the frames are, the mean cosine between the CLIP embeddings of
  adjacent frames (1 for a still video).
- ``warping_error``: how well each frame is predicted by warping the next one along the optical flow between
  them (Lai et al. 2018, "Learning Blind Video Temporal Consistency"): the mean squared RGB difference (pixels in
  [0, 1]) over the pixels the flow can explain, i.e. not occluded (the forward flow and the backward flow warped
  to it cancel: |F + B(F)|^2 <= 0.01 (|F|^2 + |B(F)|^2) + 0.5) and not leaving the frame; averaged over the
  pairs. 0 for a still video.

The flow is any function of two uint8 RGB frames returning an (H, W, 2) flow in pixels: ``farneback_flow``
(OpenCV, no weights) here, or the pipeline's UniMatch (``models.scorers.motion.UniMatchMotion.flows``), the documented
alternative to RAFT.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def clip_score(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> float:
    """100 x mean over frames of max(cos(frame, text), 0); inputs need not be unit length."""
    frames = _unit(np.asarray(frame_embeddings, np.float64))
    text = _unit(np.asarray(text_embedding, np.float64).reshape(1, -1))[0]
    return float(100 * np.clip(frames @ text, 0, None).mean())


def clip_temporal_score(frame_embeddings: np.ndarray) -> float:
    """Mean cosine of the CLIP embeddings of adjacent frames."""
    frames = _unit(np.asarray(frame_embeddings, np.float64))
    if len(frames) < 2:
        raise ValueError("the CLIP temporal score needs at least 2 frames")
    return float(np.mean(np.sum(frames[:-1] * frames[1:], axis=1)))


def farneback_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dense flow from ``first`` to ``second`` (uint8 RGB), pixels, (H, W, 2): OpenCV's Farneback."""
    a, b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, second))
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` sampled at each pixel + ``flow`` (bilinear), and where that lands inside the image."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return warped, inside


def warping_error(frames: np.ndarray, flow: Flow = farneback_flow) -> float:
    """Mean over adjacent pairs of the mean squared error between frame t and frame t+1 warped back along the
    flow from t to t+1, on the non-occluded pixels; ``frames`` (N, H, W, 3) uint8."""
    if len(frames) < 2:
        raise ValueError("the warping error needs at least 2 frames")
    errors = []
    for first, second in zip(frames[:-1], frames[1:]):
        forward, backward = flow(first, second), flow(second, first)
        backward_at, inside = warp(backward, forward)
        mismatch = np.sum((forward + backward_at) ** 2, axis=-1)
        bound = 0.01 * (np.sum(forward**2, axis=-1) + np.sum(backward_at**2, axis=-1)) + 0.5
        visible = inside & (mismatch <= bound)
        predicted, _ = warp(second.astype(np.float32) / 255, forward)
        squared = np.sum((first.astype(np.float32) / 255 - predicted) ** 2, axis=-1)
        errors.append(float(squared[visible].sum() / max(int(visible.sum()), 1)))
    return float(np.mean(errors))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
