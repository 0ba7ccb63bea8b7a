"""The caption checks of one shard's clips: text checks on every caption, and caption-clip agreement (each
caption's CLIP text embedding against the CLIP image embedding of the frames the captioner saw, compared with
the shard's other clips), then the recipe's drops (``filters.caption_checks``, ``filters.defects``,
``filters.content_types``) as one ``reason`` per clip.

The embeddings are the only costly part: they are cached per clip by (CLIP, the caption's text, the frames);
the checks and the drops are recomputed on every run, so a rule change costs no decode and no network pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from openvid_assets.media.frames import FrameRequest
from openvid_assets.media.tasks import ClipTask, OpenVideo
from openvid_assets.models.scorers.caption_checks import (
    CaptionCheckSettings,
    agreement,
    agreement_reason,
    mutual_swaps,
    text_checks,
)
from openvid_assets.models.scorers.clip import CLIPEmbedder, CLIPTextEncoder
from openvid_assets.models.shards.running import Progress, decode_ahead, read_task
from openvid_assets.models.scorers.caption_checks import DEFECT_COLUMNS
from openvid_assets.models.shards.tables import CAPTION_CHECK_SCHEMA
from openvid_assets.store.rows import RowKey, ShardRows, reusable_rows


@dataclass(frozen=True)
class CaptionDrops:
    """Which findings drop a clip: check names, defect names and content types (all empty: nothing is dropped,
    every finding is still measured and shown)."""

    checks: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()


def check_key(embedder: CLIPEmbedder) -> RowKey:
    return RowKey(f"caption-clip-agreement({embedder.name})", embedder.weights_digest, {"frames": "captioned"})


def _caption_sha(caption: str, frames: list[int] | None) -> str:
    return hashlib.sha256(f"{caption}\x00{frames}".encode()).hexdigest()[:16]


def _defect_reasons(row: dict[str, Any], drops: CaptionDrops) -> list[str]:
    found = [f"defect: {name}" for name in drops.defects if row.get(f"defect_{name}")]
    if row.get("content_type") in drops.content_types:
        found.append(f"content type: {row['content_type']}")
    return found


def check_shard(
    captions: pl.DataFrame,
    tasks: dict[str, ClipTask],
    embedder: CLIPEmbedder,
    text_encoder: CLIPTextEncoder,
    settings: CaptionCheckSettings,
    drops: CaptionDrops,
    open_video: OpenVideo,
    *,
    previous: pl.DataFrame | None = None,
    progress: Progress | None = None,
    workers: int = 2,
) -> ShardRows:
    """One row per ok caption of the shard (``tasks``: clip id -> the clip, for its frames)."""
    key = check_key(embedder)
    ok = captions.filter((pl.col("status") == "ok") & pl.col("caption").is_not_null()).unique(
        "clip_id", keep="first", maintain_order=True
    )
    rows = {
        r["clip_id"]: {**r, "sha": _caption_sha(r["caption"], r["frame_indices"])} for r in ok.iter_rows(named=True)
    }
    vectors: dict[str, tuple[bytes | None, bytes | None, str | None]] = {}  # clip id -> (image, text, error)
    cached = reusable_rows(previous, key)
    if cached is not None:
        for r in cached.iter_rows(named=True):
            if r["clip_id"] in rows and r["caption_sha"] == rows[r["clip_id"]]["sha"] and r["image_embedding"]:
                vectors[r["clip_id"]] = (r["image_embedding"], r["text_embedding"], None)
    todo = [c for c in rows if c not in vectors]
    embed_todo = [c for c in todo if c in tasks and rows[c]["frame_indices"]]
    for clip in todo:
        if clip not in embed_todo:
            vectors[clip] = (None, None, "the clip's frames are unknown (an imported or given caption)")

    def decode(clip: str) -> np.ndarray:
        frames = list(rows[clip]["frame_indices"])
        request = FrameRequest(indices=lambda _n: frames, short_side=embedder.decode_short_side)
        return read_task(open_video, tasks[clip].video, request).frames

    texts = dict(zip(embed_todo, text_encoder.embed([rows[c]["caption"] for c in embed_todo]))) if embed_todo else {}
    for done, (clip, frames) in enumerate(decode_ahead(embed_todo, decode, workers), 1):
        if isinstance(frames, Exception):
            vectors[clip] = (None, None, f"could not read the clip's frames: {frames}")
        else:
            image = embedder.embed(embedder.square(frames)).mean(axis=0)
            image /= max(float(np.linalg.norm(image)), 1e-12)
            text = texts[clip]
            vectors[clip] = (image.astype(np.float16).tobytes(), text.astype(np.float16).tobytes(), None)
        if progress:
            progress(done, len(embed_todo))

    # Agreement over every clip of the shard with both embeddings: is a caption its own clip's?
    scored = [c for c in rows if vectors[c][0] is not None]
    own = share = swaps = np.zeros(0)
    if scored:
        unit = lambda b: np.frombuffer(b, np.float16).astype(np.float32)  # noqa: E731
        text_m = np.stack([unit(vectors[c][1]) for c in scored])
        image_m = np.stack([unit(vectors[c][0]) for c in scored])
        (own, share), swaps = agreement(text_m, image_m), mutual_swaps(text_m, image_m)
    measured = {c: (float(o), float(s)) for c, o, s in zip(scored, own, share)}
    swapped = {c: scored[k] for c, k in zip(scored, swaps) if k >= 0}

    out = []
    for clip, row in rows.items():
        found = text_checks(row["caption"], row.get("caption_raw"), row.get("truncated"), settings)
        own_cos, rank_share = measured.get(clip, (None, None))
        found["agreement"] = None
        if own_cos is not None:
            n = len(scored)
            found["agreement"] = agreement_reason(
                own_cos, rank_share, n, settings.max_rank_share, settings.min_agreement_clips
            )
        if found["agreement"] is None and clip in swapped:
            found["agreement"] = f"agreement: the caption fits clip {swapped[clip]} best, whose best caption it is"
        dropped = [found[name] for name in drops.checks if found.get(name)] + _defect_reasons(row, drops)
        image, text, error = vectors[clip]
        out.append(
            {
                "clip_id": clip,
                "video_id": row["video_id"],
                "status": "ok",
                "error": error,
                "caption_sha": row["sha"],
                "image_embedding": image,
                "text_embedding": text,
                **found,
                "agreement_cosine": own_cos,
                "agreement_rank": rank_share,
                "flags": sum(1 for v in found.values() if v),
                **{c: row.get(c) for c in DEFECT_COLUMNS},
                "reason": "; ".join(dropped) or None,
                **key.columns(),
            }
        )
    table = pl.DataFrame(out, schema=CAPTION_CHECK_SCHEMA) if out else pl.DataFrame(schema=CAPTION_CHECK_SCHEMA)
    return ShardRows(table, len(embed_todo), len(rows) - len(todo))
