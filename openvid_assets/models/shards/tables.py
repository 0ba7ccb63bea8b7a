"""The schemas of the per-shard tables the model steps write, and readers of the stored CLIP embeddings.

No torch: the Dagster layer, the review page, the curation fits and the tests read these without loading a
model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from openvid_assets.media.content import EXPOSURE_MEASURES
from openvid_assets.models.scorers.caption_checks import CHECKS, DEFECT_TYPES
from openvid_assets.store.rows import KEY_COLUMNS

ROW_COLUMNS = {"video_id": pl.String, "source_uri": pl.String, "status": pl.String, "error": pl.String}
SCORE_SCHEMA = {**ROW_COLUMNS, "score": pl.Float64, "frame_indices": pl.List(pl.Int32), **KEY_COLUMNS}
# codec_motion: a score table (score in picture long sides per second) with these measurements besides.
CODEC_MOTION_MODEL = "codec-motion-vectors"
CODEC_MOTION_COLUMNS = ("patch_min", "vector_frames", "frames_read")
CODEC_MOTION_SCHEMA = {**SCORE_SCHEMA, **{c: pl.Float64 for c in CODEC_MOTION_COLUMNS}}
# Per-frame columns the frame inspector (models.scorers.content) adds to the embeddings table.
FRAME_MEASURE_SCHEMA = {
    "picture_box": pl.List(pl.Float32),
    **{m: pl.Float32 for m in EXPOSURE_MEASURES},
    "text_area": pl.Float32,
}
EMBEDDING_SCHEMA = {
    **ROW_COLUMNS,
    "frame_index": pl.Int32,
    "num_frames": pl.Int32,
    "embedding": pl.Binary,
    **FRAME_MEASURE_SCHEMA,
    **KEY_COLUMNS,
}
CONTENT_SCHEMA = {
    "video_id": pl.String,
    "source_uri": pl.String,
    "status": pl.String,
    "error": pl.String,
    **{m: pl.Float64 for m in EXPOSURE_MEASURES},
    "text_area": pl.Float64,
    "nsfw": pl.Float64,
    "crop_x": pl.Int32,
    "crop_y": pl.Int32,
    "crop_w": pl.Int32,
    "crop_h": pl.Int32,
    "bordered": pl.Boolean,
    "model": pl.String,
    "weights_digest": pl.String,
}
DEFECT_FLAGS = tuple(f"defect_{name}" for name in DEFECT_TYPES)  # the Boolean ones of DEFECT_COLUMNS
CAPTION_SCHEMA: dict[str, Any] = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "status": pl.String,  # ok | failed
    "error": pl.String,
    "caption": pl.String,
    "caption_raw": pl.String,
    "truncated": pl.Boolean,
    "structured": pl.String,  # JSON object of models.scorers.captions.STRUCTURED_FIELDS, when asked for
    "camera_motion": pl.String,
    "frame_indices": pl.List(pl.Int32),
    # Defect tags (captions.defect_tags): 'ok' (parsed), 'unparsed' (the raw answer only) or null (not asked).
    "defects_status": pl.String,
    "defects_raw": pl.String,
    **{column: pl.Boolean for column in DEFECT_FLAGS},
    "content_type": pl.String,
    **KEY_COLUMNS,
}

# caption_checks: per ok caption, each check's reason (null: passed), the agreement measures, the clip's defect
# tags again (the drops' inputs), and ``reason``: what of it the recipe drops the clip for (null: kept).
CAPTION_CHECK_SCHEMA: dict[str, Any] = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "status": pl.String,
    "error": pl.String,  # why agreement could not be measured (the checks on the text still ran)
    "caption_sha": pl.String,
    "image_embedding": pl.Binary,
    "text_embedding": pl.Binary,
    **{check: pl.String for check in CHECKS},
    "agreement_cosine": pl.Float64,
    "agreement_rank": pl.Float64,
    "flags": pl.Int32,
    **{column: pl.Boolean for column in DEFECT_FLAGS},
    "content_type": pl.String,
    "reason": pl.String,
    **KEY_COLUMNS,
}


def embedding_matrix(rows: pl.DataFrame) -> np.ndarray:
    """Stored fp16 embeddings -> (N, D) float32."""
    return np.stack([np.frombuffer(b, dtype=np.float16) for b in rows["embedding"]]).astype(np.float32)


def video_embeddings(embeddings: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """One unit vector per video: the normalised mean of its stored frame embeddings (ok rows only)."""
    ok = embeddings.filter(pl.col("status") == "ok")
    if ok.height == 0:
        return [], np.zeros((0, 0), np.float32)
    ids, vectors = [], []
    for (video_id,), group in ok.group_by("video_id", maintain_order=True):
        mean = embedding_matrix(group).mean(axis=0)
        ids.append(video_id)
        vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return ids, np.stack(vectors)


def video_groups(embeddings: pl.DataFrame) -> Iterator[tuple[str, str, pl.DataFrame]]:
    """(video id, source uri, its rows) in table order. By both: a file with the same content as another has
    the same video id, and its one row (failed, as a duplicate) must not join the original's frames."""
    for (video_id, source_uri), group in embeddings.group_by("video_id", "source_uri", maintain_order=True):
        yield video_id, source_uri, group
