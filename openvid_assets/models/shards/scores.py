"""Score one shard's videos.

Shared rules for every score table:
- a row per manifest video, in manifest order; videos that failed the manifest
  pass through as ``failed`` with the manifest's reason;
- a video that fails to decode or score becomes a ``failed`` row with the error,
  and the shard goes on; only infrastructure errors (memory, S3, disk) propagate;
- rows are keyed by (video_id, model, weights digest, params): rows of a previous
  table with the same key are reused, never recomputed;
- decoding runs ahead in threads while the main thread computes, and CLIP work
  is batched across videos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from openvid_assets.media.codec_motion import CodecMotion, CodecMotionSettings, codec_motion
from openvid_assets.media.frames import DecodedFrames, FrameRequest
from openvid_assets.media.tasks import OpenVideo, VideoTask, video_tasks
from openvid_assets.models.registry.sampling import CLIPSampling
from openvid_assets.models.scorers.aesthetic import AestheticScorer
from openvid_assets.models.scorers.base import VideoScorer
from openvid_assets.models.scorers.clip import CLIPEmbedder
from openvid_assets.models.scorers.content import FrameInspector
from openvid_assets.models.shards.running import Progress, decode_ahead, decoder, failure, is_infrastructure_error
from openvid_assets.models.shards.tables import (
    CODEC_MOTION_MODEL,
    CODEC_MOTION_SCHEMA,
    EMBEDDING_SCHEMA,
    SCORE_SCHEMA,
    embedding_matrix,
    video_groups,
)
from openvid_assets.store.rows import KEY_COLUMNS, RowKey, ShardRows, reusable_rows

Inspected = tuple[DecodedFrames, list[dict[str, Any]]]  # a video's frames and their content measures


def _assemble(
    manifest: pl.DataFrame, computed: dict[str, dict[str, Any]], key_columns: dict[str, str], schema: dict[str, Any]
) -> pl.DataFrame:
    """One row per manifest video, in manifest order: computed rows, or the manifest's failure."""
    rows = []
    for r in manifest.select("video_id", "source_uri", "status", "error").iter_rows(named=True):
        if r["status"] != "ok":
            rows.append({**r, "error": f"manifest: {r['error']}", **key_columns})
        else:
            rows.append(
                {"video_id": r["video_id"], "source_uri": r["source_uri"], **key_columns, **computed[r["video_id"]]}
            )
    return pl.DataFrame(rows, schema=schema)


def _measure_shard(
    manifest: pl.DataFrame,
    key: RowKey,
    schema: dict[str, Any],
    read: Callable[[VideoTask], Any],
    measure: Callable[[Any], dict[str, Any]],
    *,
    previous: pl.DataFrame | None,
    progress: Progress | None,
    workers: int,
    reuse: tuple[str, ...] = ("ok",),
    skip: dict[str, str] | None = None,
) -> ShardRows:
    """One row per manifest video: ``read`` each readable video in the decode threads, ``measure`` what it read
    in this thread (a row's values; ``status`` 'ok' unless it says otherwise). Rows of ``previous`` made with
    ``key`` whose status is in ``reuse`` are kept; a video's own error fails its row, never the shard. A video in
    ``skip`` (video id -> reason) is not read: its row is ``skipped`` with the reason, whatever was cached."""
    computed: dict[str, dict[str, Any]] = {}
    cached = reusable_rows(previous, key, reuse)
    if cached is not None:
        wanted = [c for c in schema if c in cached.columns and c not in ("source_uri", *KEY_COLUMNS)]
        computed = {r["video_id"]: r for r in cached.select(wanted).iter_rows(named=True)}
    skipped = {v: {"status": SKIPPED, "error": reason} for v, reason in (skip or {}).items()}
    computed = {v: row for v, row in computed.items() if v not in skipped}
    tasks = [t for t in video_tasks(manifest) if t.video_id not in computed and t.video_id not in skipped]
    for done, (task, got) in enumerate(decode_ahead(tasks, read, workers), 1):
        if isinstance(got, Exception):
            computed[task.video_id] = {"status": "failed", "error": failure(got)}
        else:
            try:
                computed[task.video_id] = {"status": "ok", **measure(got)}
            except Exception as e:
                if is_infrastructure_error(e):
                    raise
                computed[task.video_id] = {"status": "failed", "error": failure(e)}
        if progress:
            progress(done, len(tasks))
    reused = len(computed) - len(tasks)
    return ShardRows(_assemble(manifest, {**computed, **skipped}, key.columns(), schema), len(tasks), reused)


def score_shard(
    manifest: pl.DataFrame,
    scorer: VideoScorer,
    open_video: OpenVideo,
    *,
    previous: pl.DataFrame | None = None,
    progress: Progress | None = None,
    workers: int = 2,
    skip: dict[str, str] | None = None,
) -> ShardRows:
    """Score every video of a shard with a per-video scorer (motion, clarity), but those in ``skip`` (video id ->
    why the recipe keeps them from the scorer)."""

    def measure(decoded: DecodedFrames) -> dict[str, Any]:
        return {"frame_indices": decoded.indices, **scorer.score(decoded.indices, decoded.frames)}

    return _measure_shard(
        manifest,
        RowKey(scorer.name, scorer.weights_digest, scorer.params),
        {**SCORE_SCHEMA, **{c: pl.Float64 for c in scorer.extra_columns}},
        decoder(open_video, scorer.request),
        measure,
        previous=previous,
        progress=progress,
        workers=workers,
        skip=skip,
    )


SKIPPED = "skipped"  # a score row the recipe kept from its scorer (codec motion before the flow network)
NO_VECTORS = "no_vectors"  # a codec_motion row of a stream without motion vectors: the flow network decides


def codec_motion_shard(
    manifest: pl.DataFrame,
    open_video: OpenVideo,
    settings: CodecMotionSettings,
    *,
    previous: pl.DataFrame | None = None,
    progress: Progress | None = None,
    workers: int = 2,
) -> ShardRows:
    """Motion-vector statistics of every video of a shard, from the compressed stream (no frame is converted,
    no network runs): ``score`` and ``patch_min`` in picture long sides per second."""

    def read(task: VideoTask) -> CodecMotion:
        with open_video(task) as path:
            return codec_motion(path, task.fps, settings)

    def measure(found: CodecMotion) -> dict[str, Any]:
        return {
            "status": "ok" if found.score is not None else NO_VECTORS,
            "error": found.reason or found.decode_error,
            "score": found.score,
            "patch_min": found.patch_min,
            "vector_frames": float(found.vector_frames),
            "frames_read": float(found.frames),
        }

    return _measure_shard(
        manifest,
        RowKey(CODEC_MOTION_MODEL, "none", settings.params()),
        CODEC_MOTION_SCHEMA,
        read,
        measure,
        previous=previous,
        progress=progress,
        workers=workers,
        reuse=("ok", NO_VECTORS),
    )


# --- CLIP: one decode and one embedding pass serve aesthetics, temporal consistency and the content measures


def embedding_key(embedder: CLIPEmbedder, sampling: CLIPSampling, inspector: FrameInspector | None = None) -> RowKey:
    measures = inspector.params() if inspector else None
    return RowKey(
        embedder.name,
        embedder.weights_digest,
        {
            "image_size": embedder.image_size,
            "preprocess": embedder.preprocess,
            **sampling.params(),
            **({"measures": measures} if measures else {}),
        },
    )


def embed_shard(
    manifest: pl.DataFrame,
    embedder: CLIPEmbedder,
    sampling: CLIPSampling,
    open_video: OpenVideo,
    *,
    previous: pl.DataFrame | None = None,
    progress: Progress | None = None,
    workers: int = 2,
    inspector: FrameInspector | None = None,
) -> ShardRows:
    """CLIP embeddings (fp16) of every sampled frame of every video, one row per frame; with ``inspector``,
    each row also carries the frame's content measures (picture box, exposure; text on the aesthetic frames)."""
    key = embedding_key(embedder, sampling, inspector)
    computed: dict[str, list[dict[str, Any]]] = {}
    cached = reusable_rows(previous, key)
    if cached is not None:
        for r in cached.drop("source_uri", *KEY_COLUMNS).iter_rows(named=True):
            computed.setdefault(r["video_id"], []).append(r)
    tasks = [t for t in video_tasks(manifest) if t.video_id not in computed]
    short_side = embedder.decode_short_side
    if inspector is not None and short_side is not None:  # CLIP's square() scales a larger frame down
        short_side = max(short_side, inspector.short_side)
    decode = decoder(open_video, FrameRequest(indices=sampling.union, short_side=short_side))

    def decode_and_measure(task: VideoTask) -> Inspected:
        # The content measures run in the decode threads, beside the main thread's CLIP forwards.
        decoded = decode(task)
        return decoded, _measures(inspector, decoded, sampling)

    batch: list[tuple[VideoTask, Inspected]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if not batch:
            return
        vectors = embedder.embed(np.concatenate([embedder.square(d.frames) for _, (d, _) in batch]))
        offset = 0
        for task, (decoded, measures) in batch:
            rows = []
            for index, measured in zip(decoded.indices, measures):
                rows.append(
                    {
                        "video_id": task.video_id,
                        "status": "ok",
                        "frame_index": index,
                        "num_frames": decoded.num_frames,
                        **measured,
                        "embedding": vectors[offset].astype(np.float16).tobytes(),
                    }
                )
                offset += 1
            computed[task.video_id] = rows
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, len(tasks))

    for task, inspected in decode_ahead(tasks, decode_and_measure, workers):
        if isinstance(inspected, Exception):
            computed[task.video_id] = [{"video_id": task.video_id, "status": "failed", "error": failure(inspected)}]
            done += 1
            continue
        batch.append((task, inspected))
        if sum(len(d.indices) for _, (d, _) in batch) >= embedder.batch_size:
            flush()
    flush()

    rows = []
    columns = key.columns()
    for r in manifest.select("video_id", "source_uri", "status", "error").iter_rows(named=True):
        if r["status"] != "ok":
            rows.append({**r, "error": f"manifest: {r['error']}", **columns})
        else:
            rows += [{**row, "source_uri": r["source_uri"], **columns} for row in computed[r["video_id"]]]
    reused = len(computed) - len(tasks)
    return ShardRows(pl.DataFrame(rows, schema=EMBEDDING_SCHEMA), len(tasks), reused)


def _measures(inspector: FrameInspector | None, decoded: DecodedFrames, sampling: CLIPSampling) -> list[dict[str, Any]]:
    """The inspector's per-frame measures (text on the aesthetic frames), or empty dicts without one."""
    if inspector is None:
        return [{} for _ in decoded.indices]
    text_at = set(sampling.aesthetic_indices(decoded.num_frames))
    return inspector.measure(decoded.frames, [k for k, i in enumerate(decoded.indices) if i in text_at])


def _per_video(
    embeddings: pl.DataFrame, compute: Callable[[int, pl.DataFrame], tuple[float, list[int]]], key: RowKey
) -> pl.DataFrame:
    """Apply ``compute`` to each video's ok embedding rows; failures pass through."""
    rows = []
    key_columns = key.columns()
    for video_id, source_uri, group in video_groups(embeddings):
        base = {"video_id": video_id, "source_uri": source_uri, **key_columns}
        if group["status"][0] != "ok":
            rows.append({**base, "status": "failed", "error": group["error"][0]})
            continue
        try:
            score, used = compute(int(group["num_frames"][0]), group.sort("frame_index"))
            rows.append({**base, "status": "ok", "score": score, "frame_indices": used})
        except ValueError as e:
            rows.append({**base, "status": "failed", "error": str(e)})
    return pl.DataFrame(rows, schema=SCORE_SCHEMA)


def _embedder_identity(embeddings: pl.DataFrame) -> tuple[str, str]:
    """(model, weights digest) of the CLIP pass the embeddings came from: part of a derived score's key."""
    first = embeddings.filter(pl.col("status") == "ok").select("model", "weights_digest").head(1)
    return first.row(0) if first.height else ("", "")


def _at(group: pl.DataFrame, indices: list[int]) -> pl.DataFrame:
    picked = group.filter(pl.col("frame_index").is_in(indices))
    if picked.height != len(indices):
        raise ValueError(f"embeddings missing for frames {sorted(set(indices) - set(picked['frame_index']))}")
    return picked


def aesthetic_scores(embeddings: pl.DataFrame, scorer: AestheticScorer, sampling: CLIPSampling) -> pl.DataFrame:
    """Mean LAION aesthetic score over each video's aesthetic frames."""
    clip_model, clip_digest = _embedder_identity(embeddings)
    key = RowKey(
        f"{scorer.name}({clip_model})",
        f"{clip_digest}+{scorer.weights_digest}",
        {"positions": list(sampling.aesthetic_positions), "frames": "int(p*n)"},
    )

    def compute(num_frames: int, group: pl.DataFrame) -> tuple[float, list[int]]:
        indices = sampling.aesthetic_indices(num_frames)
        return float(scorer.score(embedding_matrix(_at(group, indices))).mean()), indices

    return _per_video(embeddings, compute, key)


def temporal_scores(embeddings: pl.DataFrame, sampling: CLIPSampling) -> pl.DataFrame:
    """Mean cosine similarity of the CLIP embeddings of each sampled frame pair; ``frame_indices`` holds the
    pairs flattened (first, second, first, second, ...)."""
    clip_model, clip_digest = _embedder_identity(embeddings)
    key = RowKey(f"clip-adjacent-cosine({clip_model})", clip_digest, sampling.temporal_params())

    def compute(num_frames: int, group: pl.DataFrame) -> tuple[float, list[int]]:
        pairs = sampling.temporal_pairs(num_frames)
        if not pairs:
            raise ValueError("temporal consistency needs at least 2 distinct frames")
        indices = sampling.temporal_indices(num_frames)
        vectors = embedding_matrix(_at(group, indices))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # fp16 storage rounds the norm
        row = {index: k for k, index in enumerate(indices)}
        cosines = [float(vectors[row[a]] @ vectors[row[b]]) for a, b in pairs]
        return float(np.mean(cosines)), [i for pair in pairs for i in pair]

    return _per_video(embeddings, compute, key)
