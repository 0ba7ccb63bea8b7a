"""Content measures of the frames the CLIP pass decoded: the content filters' per-frame inputs.

``FrameInspector`` runs inside ``models.shards.scores.embed_shard`` on each video's decoded frames (no second
decode): the picture box and exposure of every frame, and burnt-in text on the aesthetic frames only (a text
detector is the one costly part). ``models.shards.content.content_rows`` turns the stored measures into one
row per video.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from openvid_assets.media.content import exposure, picture_box

if TYPE_CHECKING:
    from openvid_assets.models.scorers.text import TextDetector

INSPECTION_VERSION = 1  # bump when a measure's definition changes: cached embedding rows are then remade


class FrameInspector:
    """Measures each decoded frame; ``text`` (a detector) runs on the frames the caller names."""

    short_side = 224  # the smallest frames the measures read: a smaller CLIP input (the tiny stand-in) decodes this

    def __init__(self, text: TextDetector | None = None):
        self.text = text

    def params(self) -> dict[str, Any]:
        """Part of the embedding rows' key: a change of measure or detector remakes them."""
        text = {"name": self.text.name, "digest": self.text.weights_digest, **self.text.params()} if self.text else None
        return {"inspection": INSPECTION_VERSION, "short_side": self.short_side, "text": text}

    def measure(self, frames: np.ndarray, text_frames: list[int]) -> list[dict[str, Any]]:
        """One dict per frame of ``frames`` (one video): the video's stable picture box, each frame's exposure
        inside it, and the text area of the frames at positions ``text_frames`` (None elsewhere)."""
        box = picture_box(frames)
        areas = dict(zip(text_frames, self.text.text_area(frames[text_frames]))) if self.text and text_frames else {}
        edges = [box.left, box.top, box.right, box.bottom]
        return [
            {"picture_box": edges, **exposure(frame, box), "text_area": areas.get(k)} for k, frame in enumerate(frames)
        ]
