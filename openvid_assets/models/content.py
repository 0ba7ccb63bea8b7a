"""Content measures of the frames the CLIP pass decoded, and of its embeddings: the content filters' inputs.

``FrameInspector`` runs inside ``models.scoring.embed_shard`` on each video's decoded frames (no second
decode): the picture box and exposure of every frame, and burnt-in text on the aesthetic frames only (a text
detector is the one costly part). ``content_rows`` turns the per-frame measures stored with the embeddings,
plus an NSFW score of the stored embeddings (no second CLIP forward), into one row per video.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from openvid_assets.media.content import EXPOSURE_MEASURES, PictureBox, exposure, picture_box

if TYPE_CHECKING:
    from openvid_assets.models.nsfw import NSFWScorer
    from openvid_assets.models.text import TextDetector

INSPECTION_VERSION = 1  # bump when a measure's definition changes: cached embedding rows are then remade

# Per-frame columns the inspector adds to the embeddings table.
FRAME_MEASURE_SCHEMA = {"picture_box": pl.List(pl.Float32), **{m: pl.Float32 for m in EXPOSURE_MEASURES},
                        "text_area": pl.Float32}  # fmt: skip


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
        return [{"picture_box": edges, **exposure(frame, box), "text_area": areas.get(k)}
                for k, frame in enumerate(frames)]  # fmt: skip


CONTENT_SCHEMA = {"video_id": pl.String, "source_uri": pl.String, "status": pl.String, "error": pl.String,
                  **{m: pl.Float64 for m in EXPOSURE_MEASURES}, "text_area": pl.Float64, "nsfw": pl.Float64,
                  "crop_x": pl.Int32, "crop_y": pl.Int32, "crop_w": pl.Int32, "crop_h": pl.Int32,
                  "bordered": pl.Boolean, "model": pl.String, "weights_digest": pl.String}  # fmt: skip


def content_rows(embeddings: pl.DataFrame, manifest: pl.DataFrame, nsfw: NSFWScorer | None) -> pl.DataFrame:
    """One row per video of an embeddings table: exposure (mean over frames), text area (mean over the frames
    the detector saw), NSFW (max over frames) and the crop box in the video's displayed pixels."""
    from openvid_assets.models.scoring import embedding_matrix, video_groups

    sizes = {r["video_id"]: (r["width"], r["height"]) for r in
             manifest.filter(pl.col("status") == "ok").select("video_id", "width", "height").iter_rows(named=True)}  # fmt: skip
    identity = {"model": nsfw.name if nsfw else "", "weights_digest": nsfw.weights_digest if nsfw else ""}
    rows = []
    for video_id, source_uri, group in video_groups(embeddings):
        base = {"video_id": video_id, "source_uri": source_uri, **identity}
        if group["status"][0] != "ok" or "picture_box" not in group.columns:
            rows.append({**base, "status": "failed", "error": group["error"][0] or "no frame measures"})
            continue
        measures = {m: float(group[m].mean()) for m in EXPOSURE_MEASURES}
        texts = group["text_area"].drop_nulls()
        box = PictureBox(*group["picture_box"][0])
        width, height = sizes.get(video_id, (0, 0))
        x, y, w, h = box.pixels(width, height) if width and height else (0, 0, width, height)
        rows.append({**base, "status": "ok", **measures, "text_area": float(texts.mean()) if texts.len() else None,
                     "nsfw": float(nsfw.score(embedding_matrix(group)).max()) if nsfw else None,
                     "crop_x": x, "crop_y": y, "crop_w": w, "crop_h": h, "bordered": box.bordered})  # fmt: skip
    return pl.DataFrame(rows, schema=CONTENT_SCHEMA)


def picture_boxes(content: pl.DataFrame) -> dict[str, tuple[int, int, int, int]]:
    """(x, y, w, h) by video id, for the videos of a content table that have black bars."""
    rows = content.filter((pl.col("status") == "ok") & pl.col("bordered"))
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows.select("video_id", "crop_x", "crop_y", "crop_w", "crop_h").iter_rows()}
