"""The interface every per-video scorer implements (motion and clarity backends).

A scorer says which frames it needs (a :class:`FrameRequest`), turns those
frames into a score plus optional extra measurements, and identifies itself by
name, weights digest and parameters: the key its cached rows are stored under.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from openvid_assets.media.frames import FrameRequest


class VideoScorer(Protocol):
    name: str
    weights_digest: str
    params: dict[str, Any]
    request: FrameRequest
    extra_columns: tuple[str, ...]  # measurements besides "score", stored as Float64 columns

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        """``{"score": ..., **extras}`` for one video's decoded frames."""
        ...
