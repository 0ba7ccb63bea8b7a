"""Captions of one shard's clips: frames decoded ahead in threads while the captioner
(models.scorers.captions) generates in batches; cached by (clip, model, prompt, generation settings). Clips
whose caption the recipe gives (imported, or captions off) get rows without a model."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from openvid_assets.media.frames import DecodedFrames, FrameRequest
from openvid_assets.media.tasks import ClipTask, OpenVideo
from openvid_assets.models.registry.runtime import in_batches_halving_on_oom
from openvid_assets.models.scorers.captions import (
    CaptionSettings,
    Captioner,
    Generation,
    camera_motion,
    clean_caption,
    frame_indices,
    grid_image,
    parse_structured,
)
from openvid_assets.models.scorers.caption_checks import DEFECT_PROMPT, parse_defects
from openvid_assets.models.shards.running import Progress, decode_ahead, is_infrastructure_error, read_task
from openvid_assets.models.shards.tables import CAPTION_SCHEMA
from openvid_assets.store.rows import RowKey, ShardRows, reusable_rows


DEFECT_MAX_TOKENS = 256  # the defect answer: one JSON object of yes/no flags and a content type (~150 tokens)


def caption_key(captioner: Captioner, settings: CaptionSettings) -> RowKey:
    return RowKey(captioner.name, captioner.weights_digest, settings.params())


def _images(decoded: DecodedFrames, settings: CaptionSettings) -> list[np.ndarray]:
    frames = list(decoded.frames)
    return [grid_image(decoded.frames)] if settings.layout == "grid" else frames


def _caption_row(generation: Generation, settings: CaptionSettings) -> dict[str, Any]:
    caption = clean_caption(generation.text, generation.truncated)
    row: dict[str, Any] = {"caption_raw": generation.text, "truncated": generation.truncated}
    if settings.structured:
        fields = parse_structured(generation.text)
        if fields is not None:
            row["structured"] = json.dumps(fields, ensure_ascii=False)
            caption = clean_caption(fields["dense_summary"] or caption, False)
    if not caption:
        return {**row, "status": "failed", "error": "the model returned an empty caption"}
    return {**row, "status": "ok", "caption": caption}


def defect_row(answer: str) -> dict[str, Any]:
    """The defect columns of one clip from the model's answer: each flag and the content type, or, when the answer
    does not parse strictly, none of them and the status saying so (the raw text is kept either way)."""
    parsed = parse_defects(answer)
    if parsed is None:
        return {"defects_status": "unparsed", "defects_raw": answer}
    return {"defects_status": "ok", "defects_raw": answer, **parsed.columns()}


def _generate_rows(
    captioner: Captioner, items: list[tuple[ClipTask, DecodedFrames]], settings: CaptionSettings
) -> dict[str, dict[str, Any]]:
    """Caption a batch (and, with defect tags, ask the defect question of the same images, the model loaded
    once); if the batch fails, caption one by one so one bad clip fails alone."""
    try:
        images = [_images(d, settings) for _, d in items]
        # A CUDA out-of-memory batch is split in halves and retried (a long prompt or a big grid image).
        generations = in_batches_halving_on_oom(
            images, len(items), lambda batch: captioner.generate(list(batch), settings)
        )
        rows = {t.clip_id: _caption_row(g, settings) for (t, _), g in zip(items, generations)}
        if settings.defect_tags:
            answers = in_batches_halving_on_oom(
                images,
                len(items),
                lambda batch: captioner.generate(list(batch), settings, DEFECT_PROMPT, DEFECT_MAX_TOKENS),
            )
            for (task, _), answer in zip(items, answers):
                rows[task.clip_id].update(defect_row(answer.text))
        return rows
    except Exception as e:
        if is_infrastructure_error(e):
            raise
        if len(items) > 1:
            return {k: v for item in items for k, v in _generate_rows(captioner, [item], settings).items()}
        return {items[0][0].clip_id: {"status": "failed", "error": f"generation failed: {str(e)[:300]}"}}


def caption_shard(
    tasks: list[ClipTask],
    captioner: Captioner,
    settings: CaptionSettings,
    open_video: OpenVideo,
    *,
    camera: dict[str, str | None] | None = None,
    previous: pl.DataFrame | None = None,
    progress: Progress | None = None,
    workers: int = 2,
) -> ShardRows:
    """Caption every clip: frames decode ahead in threads while the model generates in batches."""
    key = caption_key(captioner, settings)
    cached = reusable_rows(previous, key)
    rows: dict[str, dict[str, Any]] = {}
    if cached is not None:
        rows = {r["clip_id"]: r for r in cached.iter_rows(named=True)}
    todo = [t for t in tasks if t.clip_id not in rows]

    def decode(task: ClipTask) -> DecodedFrames:
        video = task.video
        short = settings.frame_short_side if min(video.width, video.height) > settings.frame_short_side else None
        request = FrameRequest(
            indices=lambda _n: frame_indices(task.start_frame, task.end_frame, settings), short_side=short
        )
        return read_task(open_video, video, request)

    batch: list[tuple[ClipTask, DecodedFrames]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if batch:
            for clip, row in _generate_rows(captioner, batch, settings).items():
                rows[clip].update(row)
            done += len(batch)
            batch.clear()
            if progress:
                progress(done, len(todo))

    for task, decoded in decode_ahead(todo, decode, workers):
        if isinstance(decoded, Exception):
            rows[task.clip_id] = {"status": "failed", "error": f"could not read the clip's frames: {decoded}"}
            done += 1
        else:
            rows[task.clip_id] = {"frame_indices": decoded.indices}
            batch.append((task, decoded))
            if len(batch) >= settings.batch_size:
                flush()
    flush()
    camera = camera or {}
    out = []
    for task in tasks:
        row = rows[task.clip_id]
        out.append(
            {
                **row,
                "clip_id": task.clip_id,
                "video_id": task.video.video_id,
                **key.columns(),
                "camera_motion": camera.get(task.video.video_id),
            }
        )
    table = pl.DataFrame(out, schema=CAPTION_SCHEMA) if out else pl.DataFrame(schema=CAPTION_SCHEMA)
    return ShardRows(table, len(todo), len(tasks) - len(todo))


def given_captions(tasks: list[ClipTask], mode: str, imported: pl.DataFrame | None) -> tuple[dict[str, str], str]:
    """Clips whose caption the recipe gives instead of the model (clip_id -> caption), and their origin: with
    ``mode`` 'keep', the source's ``imported`` captions (every clip of a video that has one); 'off', empty ones."""
    if mode == "off":
        return {t.clip_id: "" for t in tasks}, "none (captions off)"
    if mode != "keep" or imported is None or "caption" not in imported.columns:
        return {}, "imported"
    texts = {u: c for u, c in zip(imported["source_uri"], imported["caption"]) if c and c.strip()}
    return {t.clip_id: texts[t.video.source_uri] for t in tasks if t.video.source_uri in texts}, "imported"


def given_caption_rows(
    tasks: list[ClipTask], texts: dict[str, str], origin: str, camera: dict[str, str | None] | None = None
) -> ShardRows:
    """Caption rows for clips whose caption is given, not generated (``texts``: clip_id -> caption): imported
    with the source's metadata (``origin`` 'imported'), or empty where the source skips captions ('none');
    every one counts as reused."""
    key = RowKey(origin, "", {})
    camera = camera or {}
    rows = [
        {
            "clip_id": t.clip_id,
            "video_id": t.video.video_id,
            "status": "ok",
            "caption": texts[t.clip_id],
            "caption_raw": texts[t.clip_id],
            "truncated": False,
            "camera_motion": camera.get(t.video.video_id),
            **key.columns(),
        }
        for t in tasks
        if t.clip_id in texts
    ]
    return ShardRows(pl.DataFrame(rows, schema=CAPTION_SCHEMA), 0, len(rows))


def camera_labels(motion: pl.DataFrame | None, manifest: pl.DataFrame) -> dict[str, str | None]:
    """video_id -> camera motion label, from the motion step's mean flow and divergence.

    Motion is measured on portrait videos turned landscape (transposed), so
    their horizontal and vertical flow are swapped back here.
    """
    if motion is None or not {"flow_dx", "flow_dy", "flow_div"} <= set(motion.columns):
        return {}
    portrait = {r["video_id"] for r in manifest.filter(pl.col("height") > pl.col("width")).iter_rows(named=True)}
    labels = {}
    for r in motion.filter(pl.col("status") == "ok").iter_rows(named=True):
        dx, dy = (r["flow_dy"], r["flow_dx"]) if r["video_id"] in portrait else (r["flow_dx"], r["flow_dy"])
        labels[r["video_id"]] = camera_motion(dx, dy, r["flow_div"])
    return labels
