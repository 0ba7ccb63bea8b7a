"""The per-video content table of a shard, from the frame measures stored with its CLIP embeddings.

``content_rows`` turns the per-frame measures (``models.scorers.content.FrameInspector``'s), plus an NSFW score
of the stored embeddings (no second CLIP forward), into one row per video: the content filters' inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from openvid_assets.media.content import EXPOSURE_MEASURES, PictureBox
from openvid_assets.models.shards.tables import CONTENT_SCHEMA, embedding_matrix, video_groups

if TYPE_CHECKING:
    from openvid_assets.models.scorers.nsfw import NSFWScorer


def content_rows(embeddings: pl.DataFrame, manifest: pl.DataFrame, nsfw: NSFWScorer | None) -> pl.DataFrame:
    """One row per video of an embeddings table: exposure (mean over frames), text area (mean over the frames
    the detector saw), NSFW (max over frames) and the crop box in the video's displayed pixels."""
    sizes = {
        r["video_id"]: (r["width"], r["height"])
        for r in manifest.filter(pl.col("status") == "ok").select("video_id", "width", "height").iter_rows(named=True)
    }
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
        rows.append(
            {
                **base,
                "status": "ok",
                **measures,
                "text_area": float(texts.mean()) if texts.len() else None,
                "nsfw": float(nsfw.score(embedding_matrix(group)).max()) if nsfw else None,
                "crop_x": x,
                "crop_y": y,
                "crop_w": w,
                "crop_h": h,
                "bordered": box.bordered,
            }
        )
    return pl.DataFrame(rows, schema=CONTENT_SCHEMA)


def picture_boxes(content: pl.DataFrame) -> dict[str, tuple[int, int, int, int]]:
    """(x, y, w, h) by video id, for the videos of a content table that have black bars."""
    rows = content.filter((pl.col("status") == "ok") & pl.col("bordered"))
    return {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in rows.select("video_id", "crop_x", "crop_y", "crop_w", "crop_h").iter_rows()
    }
