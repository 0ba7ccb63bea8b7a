"""Clarity backends. Weight-free: contrast-normalised variance of the Laplacian on native-resolution crops.

Fixed-size crops at native resolution measure sharpness per pixel the way a
viewer sees it (no resampling that would add or hide blur). Dividing by the
crop's own variance removes the effect of contrast and texture amount, so a
low-contrast sharp scene is not mistaken for a blurry one; flat crops carry no
evidence and are skipped. The score is the mean of the sharper half of the
crops, so a sharp subject on a soft background still counts as sharp.
"""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from openvid_assets.media.frames import FrameRequest, at_positions

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
