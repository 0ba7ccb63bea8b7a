"""Burnt-in text: the share of each frame covered by text (subtitles, caption cards, logos, watermarks).

The detector is PP-OCRv4's text detection network (DB: a per-pixel text probability map, binarised and
turned into boxes), the ONNX file shipped inside the ``rapidocr-onnxruntime`` wheel, run by that library's
own detector class (its pre-processing, ONNX Runtime session and DB post-processing); classification and
recognition are never run. It reads the frames the pipeline already decoded for CLIP (short side 224 px).

Input size. A frame is resized so its short side is ``short_side`` px (up or down, so a frame decoded at
any size sees text at the same relative scale), each side rounded to a multiple of 32 as the network
needs, and fed in BGR as rapidocr feeds it. The network finds text whose capitals are about 9 px tall in
its input, so the size sets the smallest text found in a 224-px frame. Measured on generated 398x224
frames (20 outlined subtitles per line height, capitals plus descenders, in the 224-px frame, over
textured backgrounds; 60 textured frames without text but with random flat circles and rectangles), CPU
time per frame with one ONNX Runtime thread on this project's 2-core machine (398x224 and 224x398 alike):

  short side    ms / frame   subtitles found (of 20), by line height   flat-shape frames read as text (of 60)
                             7.5 / 8.7 / 9.3 / 10.6 / 12.4 px
  224 (native)  20            0 /   6 /  10 /   18 /   19             0
  256           28            5 /  10 /  17 /   19 /   20             1
  288           35            8 /  17 /  19 /   19 /   20             2
  320 (chosen)  47           14 /  19 /  20 /   20 /   20             3
  448           120          20 /  20 /  20 /   20 /   20            16
  640           250
  736           350          (rapidocr's default: limit_type 'min', limit_side_len 736)

320 is the cheapest size that finds lines of 9-10 px (the small end of real subtitles at 224 px) on
every background tried; lines of 12-20 px are found from 256 up. Upscaling further costs time and
reads more flat shapes as text. A thin, unoutlined light watermark with ~4 px capitals is found at no
size up to 640.

Known limit: the network learnt text on pages, so one mark alone on a flat background is a character to
it (a ring is an "O"): a lone circle or ring on a plain gradient covers 3-30 % of the frame at every input
size, 224 included. The same solid shapes on textured backgrounds give nothing, so this concerns slides,
animation and graphics rather than camera footage.

The area is the union of the detected line boxes (quadrilaterals, unclipped by DB's ratio, so a little
larger than the glyphs) rasterised at the frame's own size, over the frame's area. Boxes less than twice as
long as tall are left out (``is_line``): on the generated textured pans without any letters, the detector
reads rings, checkers and blobs as text over 1-5 % of the frame, nearly all in such lone boxes.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from openvid_assets.models.registry.weights import file_digest

PACKAGE = "rapidocr_onnxruntime"
DISTRIBUTION = "rapidocr-onnxruntime"


def ppocr_det_model(path: str | Path | None = None) -> Path:
    """``path`` if given (it must exist), else the detection model the installed ``rapidocr-onnxruntime`` wheel
    names in its ``config.yaml``, found without importing the package."""
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"PP-OCR text detection model {path} does not exist")
        return Path(path)
    import yaml

    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        config = Path(folder) / "config.yaml"
        if config.is_file():
            model = Path(folder) / yaml.safe_load(config.read_text())["Det"]["model_path"]
            if model.is_file():
                return model
    raise FileNotFoundError(
        f"the PP-OCR text detection model was not found: install the {DISTRIBUTION} wheel "
        f"(pip install {DISTRIBUTION}), which ships it, or give the file's path"
    )


def input_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) the network sees: the short side scaled to ``short_side``, each side a multiple of 32."""
    scale = short_side / min(height, width)
    return max(32, round(height * scale / 32) * 32), max(32, round(width * scale / 32) * 32)


def text_mask(shape: tuple[int, int], polygons: Iterable[np.ndarray]) -> np.ndarray:
    """(H, W) bool: the union of the polygons (each (K, 2) x, y in pixels). Filled one at a time, because
    ``cv2.fillPoly`` given several polygons fills by parity: where two overlap it would leave a hole."""
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(np.asarray(polygon, np.float64)).astype(np.int32).reshape(-1, 1, 2)], 1)
    return mask.astype(bool)


def checked_frames(frames: Any) -> np.ndarray:
    """``frames`` if it is a non-empty (N, H, W, 3) uint8 RGB array; else a ValueError saying what is wrong."""
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array (N, H, W, 3) of uint8 RGB, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB (N, H, W, 3), got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {frames.shape}")
    if 0 in frames.shape:
        raise ValueError(f"no frames to read text from: shape {frames.shape}")
    return frames


class TextDetector:
    """Text polygons and the share of each frame they cover, with PP-OCR's detection network on CPU.

    ``threads`` is ONNX Runtime's intra-op thread count: 1 by default because the pipeline decodes on other
    threads of a small machine (rapidocr ignores a count above the CPU count and then uses them all).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        short_side: int = 320,
        threads: int = 1,
        thresh: float = 0.3,
        box_thresh: float = 0.5,
        unclip_ratio: float = 1.6,
        max_candidates: int = 1000,
    ):
        if short_side < 32 or short_side % 32:
            raise ValueError(f"short_side must be a positive multiple of 32 (the network's stride), got {short_side}")
        self.model_path = ppocr_det_model(model_path)
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector as RapidTextDetector

        self.short_side = short_side
        # rapidocr's config.yaml defaults, except the size: the frame arrives already resized, so 'min' with
        # the same side leaves it as it is.
        self.config: dict[str, Any] = {
            "limit_type": "min",
            "limit_side_len": short_side,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "thresh": thresh,
            "box_thresh": box_thresh,
            "unclip_ratio": unclip_ratio,
            "max_candidates": max_candidates,
            "use_dilation": True,
            "score_mode": "fast",
        }
        self._detector = RapidTextDetector(
            {
                **self.config,
                "model_path": str(self.model_path),
                "intra_op_num_threads": threads,
                "inter_op_num_threads": 1,
            }
        )
        self._lock = threading.Lock()
        self.name = f"ppocr-det(rapidocr-onnxruntime):{self.model_path.name}"
        self.weights_digest = file_digest(self.model_path)

    def params(self) -> dict[str, Any]:
        """What the rows depend on besides the weights (the thread count does not change them)."""
        try:
            library = version(DISTRIBUTION)
        except PackageNotFoundError:  # importable, but installed without package metadata
            library = "unknown"
        return {
            "input": "short side scaled to short_side, sides rounded to multiples of 32, BGR",
            "short_side": self.short_side,
            "postprocess": f"{DISTRIBUTION} {library}",
            "area": "union of the boxes over the frame's area",
            **{k: v for k, v in self.config.items() if k not in ("limit_type", "limit_side_len")},
        }

    def polygons(self, frame: np.ndarray) -> list[np.ndarray]:
        """One (H, W, 3) uint8 RGB frame -> its text boxes, each (4, 2) float32 x, y in the frame's pixels."""
        height, width = checked_frames(frame[None] if isinstance(frame, np.ndarray) else frame).shape[1:3]
        size_h, size_w = input_size(height, width, self.short_side)
        shrink = size_h * size_w < height * width
        resized = cv2.resize(frame, (size_w, size_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        with self._lock:  # rapidocr's detector keeps per-call state (its preprocessing): one frame at a time
            boxes, _ = self._detector(cv2.cvtColor(resized, cv2.COLOR_RGB2BGR))
        if boxes is None or len(boxes) == 0:
            return []
        scale = np.array([width / size_w, height / size_h], np.float32)
        return [np.asarray(box, np.float32).reshape(-1, 2) * scale for box in boxes]

    def text_area(self, frames: np.ndarray) -> list[float]:
        """(N, H, W, 3) uint8 RGB frames (any size) -> per frame, the fraction (0..1) covered by text lines."""
        frames = checked_frames(frames)
        shape = frames.shape[1:3]
        return [float(text_mask(shape, [p for p in self.polygons(frame) if is_line(p)]).mean()) for frame in frames]


MIN_LINE_ASPECT = 2.0


def is_line(polygon: np.ndarray) -> bool:
    """A box at least twice as long as it is tall: burnt-in text comes in words and lines, while a lone box
    (one glyph, a ring read as an "O", a checker) is what the detector mistakes for text in textured footage."""
    (_, _), (w, h), _ = cv2.minAreaRect(np.asarray(polygon, np.float32))
    return max(w, h) >= MIN_LINE_ASPECT * max(min(w, h), 1e-6)
