"""What a video's frames show beyond quality: black borders and exposure, measured on frames already decoded.

The CLIP pass decodes a few frames of every video (models/shards/scores.embed_shard); these functions read the
same arrays, so the content filters cost no second decode.

- **Borders.** A row (column) is black when its mean luma is at most ``BLACK_LEVEL`` (24 of 255, ffmpeg
  ``cropdetect``'s default limit). A bar is the run of black rows from an edge, and it must be black in
  *every* sampled frame (a dark sky in one shot is not a letterbox). The frames are small (short side 224), so
  the row where bar meets picture is read to a fraction of a pixel from its level: a 1080p box comes out
  within ~2 px of the truth instead of one decoded row (~5 px). Frames that are black nearly everywhere
  have no picture to find: exposure judges them, and the box stays the whole frame.
- **Exposure** is measured inside the picture box, so letterbox bars do not make a video "dark":
  mean luma (BT.601), the share of near-black (luma <= 20) and near-white (>= 240) pixels, contrast (the
  standard deviation of luma) and colourfulness (Hasler & Süsstrunk 2003: sqrt(σ_rg² + σ_yb²) +
  0.3·sqrt(μ_rg² + μ_yb²), with rg = R - G and yb = (R + G)/2 - B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BLACK_LEVEL = 24.0
NEAR_BLACK, NEAR_WHITE = 20.0, 240.0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
EXPOSURE_MEASURES = ("brightness", "dark_share", "bright_share", "contrast", "colourfulness")


def luma(frames: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) float32 luma, 0..255."""
    return frames.astype(np.float32) @ _LUMA


def _dark_run(means: np.ndarray) -> int:
    """How many leading entries are black."""
    light = np.flatnonzero(means > BLACK_LEVEL)
    return int(light[0]) if light.size else len(means)


def _bar(means: np.ndarray) -> float:
    """The bar's thickness from the leading edge of one frame, in pixels with a fraction: the first row that is
    not black is often part bar, part picture (the decoder scaled the frame down), so its share of bar is read
    from its level between the bar's and the next row's."""
    run = _dark_run(means)
    if run == 0 or run + 1 >= len(means):
        return float(run)
    bar, inside = float(means[:run].mean()), float(means[run + 1])
    if inside - bar < 8:  # no clear step to read a fraction from
        return float(run)
    picture_share = min(1.0, max(0.0, (float(means[run]) - bar) / (inside - bar)))
    return run + 1.0 - picture_share


@dataclass(frozen=True)
class PictureBox:
    """The picture inside black bars, as fractions of the frame (left, top, right, bottom edges)."""

    left: float = 0.0
    top: float = 0.0
    right: float = 1.0
    bottom: float = 1.0

    @property
    def bordered(self) -> bool:
        return (self.left, self.top, self.right, self.bottom) != (0.0, 0.0, 1.0, 1.0)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) in a ``width`` x ``height`` frame, each edge on the nearest even pixel (ffmpeg ``crop``
        on 4:2:0 video)."""
        x0, y0 = 2 * round(self.left * width / 2), 2 * round(self.top * height / 2)
        x1, y1 = 2 * round(self.right * width / 2), 2 * round(self.bottom * height / 2)
        return x0, y0, max(2, x1 - x0), max(2, y1 - y0)

    def slices(self, height: int, width: int) -> tuple[slice, slice]:
        return (
            slice(round(self.top * height), round(self.bottom * height)),
            slice(round(self.left * width), round(self.right * width)),
        )


def picture_box(frames: np.ndarray) -> PictureBox:
    """The stable picture area of (N, H, W, 3) frames: bars black in every frame are cut off."""
    y = luma(frames)  # (N, H, W)
    n, h, w = y.shape
    rows, cols = y.mean(axis=2), y.mean(axis=1)  # (N, H), (N, W)
    top = min(_bar(r) for r in rows)
    bottom = min(_bar(r[::-1]) for r in rows)
    left = min(_bar(c) for c in cols)
    right = min(_bar(c[::-1]) for c in cols)
    if top + bottom >= 0.9 * h or left + right >= 0.9 * w:
        return PictureBox()  # black (nearly) everywhere: no picture to frame
    return PictureBox(left / w, top / h, (w - right) / w, (h - bottom) / h)


def exposure(frame: np.ndarray, box: PictureBox = PictureBox()) -> dict[str, float]:
    """Exposure measures of one (H, W, 3) uint8 frame inside ``box``."""
    picture = frame[box.slices(*frame.shape[:2])].astype(np.float32)
    y = picture @ _LUMA
    r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
    rg, yb = r - g, (r + g) / 2 - b
    colourfulness = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
    return {
        "brightness": float(y.mean()),
        "dark_share": float((y <= NEAR_BLACK).mean()),
        "bright_share": float((y >= NEAR_WHITE).mean()),
        "contrast": float(y.std()),
        "colourfulness": colourfulness,
    }
