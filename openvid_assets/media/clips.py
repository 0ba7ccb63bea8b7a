"""Single-scene clips: plan them with the cut cascade, then cut them out with ffmpeg.

Planning one video: the one-pass scan (``media/scenes.py``) gives its transitions; a scene
too long for one clip is re-scanned for missed cuts; with stitching on, hard cuts whose two
sides CLIP finds continuous are undone; the scenes left are trimmed, filtered by length and
split into equal pieces when still too long. Every clip row says how its range came about
(``split``), and every video's rows list the cuts that were undone (``stitched``).

One row per clip (``status='ok'``), or one row for a video that yields none
(``no_clips``, with the reason) or could not be read (``failed``). Rows are
keyed by the clip settings: a re-run reuses every row (and file) made with the
same settings and only works on what is new or changed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from openvid_assets.media.frames import even_size
from openvid_assets.media.scenes import (
    CutDetection,
    FrameEmbedder,
    SceneSignals,
    ShotDetector,
    Stitch,
    Transition,
    find_transitions,
    rescan_scene,
    scan_video,
    stitch_cuts,
)
from openvid_assets.media.sources import VideoInputError
from openvid_assets.media.tasks import OpenVideo, VideoTask
from openvid_assets.store.files import FileSystem, atomic_path
from openvid_assets.store.rows import RowKey, ShardRows, reusable_rows


# --------------------------------------------------------------------------- planning: scenes -> clip spans


@dataclass(frozen=True)
class ClipRules:
    min_clip_s: float = 1.0
    max_clip_s: float = 20.0  # longer scenes are split into equal pieces no longer than this
    trim_frames: int = 2  # dropped on each side of every transition, so encoder blur at a cut stays out

    def __post_init__(self) -> None:
        if self.min_clip_s <= 0 or self.max_clip_s < 2 * self.min_clip_s or self.trim_frames < 0:
            raise ValueError(
                f"clip rules need 0 < min_clip_s, max_clip_s >= 2 * min_clip_s and trim_frames >= 0; got {self}"
            )

    def params(self) -> dict[str, float]:
        return asdict(self)

    def frame_limits(self, fps: float) -> tuple[int, int]:
        """(shortest, longest) clip in frames at ``fps``."""
        min_frames = max(1, int(np.ceil(self.min_clip_s * fps - 1e-9)))
        return min_frames, max(min_frames, int(np.floor(self.max_clip_s * fps + 1e-9)))


@dataclass(frozen=True)
class ClipSpan:
    start_frame: int
    end_frame: int  # inclusive

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1


@dataclass(frozen=True)
class ClipPlan:
    clips: list[ClipSpan]
    transitions: list[Transition]
    reason: str | None  # why there is no clip, when there is none
    splits: list[str] = field(default_factory=list)  # per clip: how its range came about
    stitched: list[Stitch] = field(default_factory=list)  # cuts undone because their two sides are continuous


@dataclass(frozen=True)
class Scene:
    """Frames ``first..last`` (inclusive, trimmed) between two transitions (None at the video's ends)."""

    first: int
    last: int
    before: Transition | None
    after: Transition | None

    @property
    def num_frames(self) -> int:
        return self.last - self.first + 1


def scenes_between(num_frames: int, transitions: list[Transition], trim_frames: int) -> list[Scene]:
    """The non-empty scenes between transitions, ``trim_frames`` dropped beside each one."""
    scenes, start, before = [], 0, None
    for t in transitions:
        scenes.append(Scene(start, t.first - 1 - (trim_frames if t.first > 0 else 0), before, t))
        start, before = t.last + 1 + trim_frames, t
    scenes.append(Scene(start, num_frames - 1, before, None))
    return [s for s in scenes if s.last >= s.first]


def plan_clips(
    num_frames: int,
    fps: float,
    transitions: list[Transition],
    rules: ClipRules = ClipRules(),
    *,
    rescanned: bool = False,
    stitched: list[Stitch] | None = None,
) -> ClipPlan:
    """Scenes between transitions, trimmed, filtered by length and split when too long.

    ``rescanned``: too-long scenes were re-scanned for missed cuts (the split reasons say so)."""
    min_frames, max_frames = rules.frame_limits(fps)
    scenes = scenes_between(num_frames, transitions, rules.trim_frames)
    clips, splits = [], []
    for scene in scenes:
        if scene.num_frames < min_frames:
            continue
        pieces = _split(scene.first, scene.last, max_frames)
        clips += pieces
        splits += [_split_reason(scene, len(pieces), fps, rules, rescanned)] * len(pieces)
    reason = None
    if not clips:
        in_transition = sum(max(0, min(t.last, num_frames - 1) - max(t.first, 0) + 1) for t in transitions)
        if num_frames and in_transition >= num_frames:
            reason = "the whole video is a transition (fade or dissolve): no scene to clip"
        else:
            longest = max((s.num_frames for s in scenes), default=0)
            reason = (
                f"no scene of at least {rules.min_clip_s:g}s: the longest is {longest / fps:.2f}s "
                f"after trimming transitions"
            )
    return ClipPlan(clips, transitions, reason, splits, list(stitched or []))


def _split_reason(scene: Scene, pieces: int, fps: float, rules: ClipRules, rescanned: bool) -> str:
    if pieces > 1:
        return (
            f"equal: one of {pieces} pieces of a {scene.num_frames / fps:.1f}s scene longer than max_clip_s "
            f"{rules.max_clip_s:g}s{'; the rescan found no cut in it' if rescanned else ''}"
        )
    found = [t.cut_frame for t in (scene.before, scene.after) if t is not None and "rescan" in t.detectors]
    if found:
        return f"rescan: a cut the second pass found at frame {', '.join(map(str, found))}"
    return "scene"


def _split(first: int, last: int, max_frames: int) -> list[ClipSpan]:
    length = last - first + 1
    pieces = -(-length // max_frames)
    bounds = np.linspace(first, last + 1, pieces + 1).round().astype(int)
    return [ClipSpan(int(a), int(b) - 1) for a, b in zip(bounds[:-1], bounds[1:])]


def detect_clips(
    path: str | Path,
    *,
    width: int,
    height: int,
    fps: float,
    rotation: int = 0,
    detection: CutDetection = CutDetection(),
    rules: ClipRules = ClipRules(),
    embedder: FrameEmbedder | None = None,
    threads: int = 1,
    shots: ShotDetector | None = None,
) -> tuple[SceneSignals, ClipPlan]:
    """Scan a video once, re-scan its too-long scenes, stitch (with ``detection.stitch``) and plan its clips
    (``shots``: the learned shot detector, when ``detection`` runs TransNetV2)."""
    geometry = {"width": width, "height": height, "rotation": rotation, "threads": threads}
    signals = scan_video(path, fps=fps, config=detection, shots=shots, **geometry)
    n = signals.num_frames
    transitions = find_transitions(signals, detection)
    long = [s for s in scenes_between(n, transitions, rules.trim_frames) if s.num_frames > rules.frame_limits(fps)[1]]
    rescanned = detection.rescan_factor > 0 and bool(long)
    if rescanned:
        found = [t for s in long for t in rescan_scene(path, s.first, s.last, fps=fps, config=detection, **geometry)]
        transitions = sorted(transitions + found, key=lambda t: (t.first, t.last))
    stitched: list[Stitch] = []
    if detection.stitch:
        if embedder is None:
            raise ValueError("stitching needs a CLIP embedder")
        transitions, stitched = stitch_cuts(
            path, transitions, n, embedder, threshold=detection.stitch_threshold, **geometry
        )
    return signals, plan_clips(n, fps, transitions, rules, rescanned=rescanned, stitched=stitched)


ClipMode = Literal["reencode", "copy", "none"]
CLIP_TOOL = "cut-cascade+ffmpeg"
CLIP_MODES = ("reencode", "copy", "none")

TRANSITION_TYPE = pl.Struct({"first": pl.Int32, "last": pl.Int32, "cut_frame": pl.Int32, "detectors": pl.String})
STITCH_TYPE = pl.Struct({"cut_frame": pl.Int32, "detectors": pl.String, "cosine": pl.Float64})
CLIP_SCHEMA: dict[str, Any] = {
    "clip_id": pl.String,
    "video_id": pl.String,
    "source_uri": pl.String,
    "status": pl.String,  # ok | no_clips | failed
    "error": pl.String,
    "clip_index": pl.Int32,
    "start_frame": pl.Int32,
    "end_frame": pl.Int32,  # inclusive
    "num_frames": pl.Int32,
    "start_s": pl.Float64,
    "end_s": pl.Float64,  # exclusive: the time the frame after the clip starts
    "fps": pl.Float64,
    "width": pl.Int32,
    "height": pl.Int32,
    "clip_uri": pl.String,  # null when only time ranges are kept (mode 'none')
    "crop": pl.String,  # ffmpeg crop=w:h:x:y cut the black bars off the clip (null: none, or not re-encoded)
    "video_frames": pl.Int32,
    "transitions": pl.List(TRANSITION_TYPE),
    "split": pl.String,  # scene | rescan: ... | equal: ... (how the clip's range came about)
    "stitched": pl.List(STITCH_TYPE),  # the video's cuts undone by stitching, with the CLIP cosine
    "params_hash": pl.String,
    "params": pl.String,
}


@dataclass(frozen=True)
class ClipSettings:
    detection: CutDetection = field(default_factory=CutDetection)
    rules: ClipRules = field(default_factory=ClipRules)
    mode: ClipMode = "reencode"  # frame-accurate; 'copy' snaps to keyframes; 'none' keeps only time ranges
    crf: int = 18
    preset: str = "veryfast"
    stitch_model: str = ""  # the CLIP that stitches (name:weights digest), when stitching: part of the row key
    whole_videos: bool = False  # clips not applied (a source's recipe): each video is one clip, its own file

    def __post_init__(self) -> None:
        if self.mode not in CLIP_MODES:
            raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {self.mode!r}")

    def params(self) -> dict[str, Any]:
        return asdict(self)

    def stitching_with(self, embedder: Any) -> ClipSettings:
        """These settings with the identity of the CLIP ``embedder`` that will stitch."""
        return replace(self, stitch_model=f"{embedder.name}:{embedder.weights_digest}")

    def key(self) -> RowKey:
        """What a cached clip row must match: these settings (one tool, no weights)."""
        return RowKey(CLIP_TOOL, "", self.params())

    def key_columns(self) -> dict[str, str]:
        """The key columns a clip row carries: the params and their hash (the tool is fixed, without weights)."""
        key = self.key()
        return {"params_hash": key.params_hash, "params": key.params_json}


def clip_id(video_id: str, span: ClipSpan, crop: str | None = None) -> str:
    """Deterministic: the same video, frame range and crop always give the same id (and file name)."""
    cropped = f"-c{crop.replace(':', '_')}" if crop else ""
    return f"{video_id}-{span.start_frame:07d}-{span.end_frame:07d}{cropped}"


def crop_filter(task: VideoTask, settings: ClipSettings) -> str | None:
    """``w:h:x:y`` of ffmpeg's crop filter for a video with black bars, when its clips are re-encoded."""
    if task.crop is None or settings.mode != "reencode" or settings.whole_videos:
        return None
    x, y, w, h = task.crop
    return f"{w}:{h}:{x}:{y}"


# --------------------------------------------------------------------------- ffmpeg


def cut_clip(
    source: str | Path,
    dest: str | Path,
    span: ClipSpan,
    fps: float,
    *,
    mode: ClipMode = "reencode",
    crf: int = 18,
    preset: str = "veryfast",
    crop: str | None = None,
    timeout_s: float = 600.0,
) -> None:
    """Write frames ``span`` of ``source`` to ``dest`` (mp4, video only), atomically.

    Re-encoding seeks to half a frame before the first wanted frame (ffmpeg then
    decodes from the keyframe before and drops everything earlier) and stops
    after exactly ``num_frames`` frames, so boundaries are frame-accurate.
    ``copy`` is a keyframe-snapped stream copy: fast, but the clip may start early (and cannot crop).
    ``crop`` (``w:h:x:y``, displayed pixels: ffmpeg rotates before filtering) cuts black bars off.
    """
    start = max(0.0, (span.start_frame - 0.5) / fps) if span.start_frame else 0.0
    args = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-ss",
        f"{start:.6f}",
        "-i",
        str(Path(source).absolute()),
    ]
    if mode == "copy":
        args += ["-t", f"{span.num_frames / fps:.6f}", "-map", "0:v:0", "-c", "copy"]
    else:
        args += [
            "-frames:v",
            str(span.num_frames),
            "-map",
            "0:v:0",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            str(crf),
            "-pix_fmt",
            "yuv420p",
            "-vf",
            (f"crop={crop}," if crop else "") + "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        ]
    with atomic_path(dest) as tmp:
        try:
            done = subprocess.run(
                [*args, "-movflags", "+faststart", "-f", "mp4", str(tmp.absolute())],
                capture_output=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise VideoInputError(f"ffmpeg took longer than {timeout_s:.0f}s cutting the clip") from None
        if done.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            message = done.stderr.decode(errors="replace").strip().splitlines()
            raise VideoInputError(f"ffmpeg could not cut the clip: {(message or ['no output'])[-1][:300]}")


# --------------------------------------------------------------------------- one shard


class ClipStore:
    """Clip files under ``<data root>/clips/<shard>/<clip_id>.mp4``, local or on S3."""

    def __init__(self, files: FileSystem, shard: str):
        self.files, self.folder = files, f"clips/{shard}"

    def _rel(self, cid: str) -> str:
        return f"{self.folder}/{cid}.mp4"

    def exists(self, cid: str) -> bool:
        return self.files.exists(self._rel(cid))

    def uri(self, cid: str) -> str:
        return self.files.uri(self._rel(cid))

    def local_dest(self, cid: str) -> str | None:
        return self.files.local_path(self._rel(cid))

    def upload(self, local_file: str, cid: str) -> None:
        self.files.put(self._rel(cid), Path(local_file).read_bytes())


def _rows_for(
    task: VideoTask, plan: ClipPlan, frames: int, uris: dict[str, str | None], settings: ClipSettings
) -> list[dict[str, Any]]:
    crop = crop_filter(task, settings)
    width, height = (task.crop[2], task.crop[3]) if crop else even_size(task.width, task.height)
    transitions = [
        {"first": t.first, "last": t.last, "cut_frame": t.cut_frame, "detectors": "+".join(t.detectors)}
        for t in plan.transitions
    ]
    stitched = [
        {"cut_frame": s.cut_frame, "detectors": "+".join(s.detectors), "cosine": s.cosine} for s in plan.stitched
    ]
    common = {
        "video_id": task.video_id,
        "source_uri": task.source_uri,
        "fps": task.fps,
        "video_frames": frames,
        "transitions": transitions,
        "stitched": stitched,
        "crop": crop,
        **settings.key_columns(),
    }
    if not plan.clips:
        return [{**common, "status": "no_clips", "error": plan.reason}]
    rows = []
    for index, (span, split) in enumerate(zip(plan.clips, plan.splits)):
        cid = clip_id(task.video_id, span, crop)
        rows.append(
            {
                **common,
                "clip_id": cid,
                "status": "ok",
                "clip_index": index,
                "split": split,
                "start_frame": span.start_frame,
                "end_frame": span.end_frame,
                "num_frames": span.num_frames,
                "start_s": span.start_frame / task.fps,
                "end_s": (span.end_frame + 1) / task.fps,
                "width": width,
                "height": height,
                "clip_uri": uris.get(cid),
            }
        )
    return rows


def clip_video(
    task: VideoTask,
    open_video: OpenVideo,
    store: ClipStore | None,
    settings: ClipSettings,
    embedder: FrameEmbedder | None = None,
    shots: ShotDetector | None = None,
) -> list[dict[str, Any]]:
    """Detect, plan and (unless mode is 'none') write one video's clips; a bad video is one failed row."""
    if settings.whole_videos:
        return whole_video_rows(task, settings)
    try:
        with open_video(task) as path:
            signals, plan = detect_clips(
                path,
                width=task.width,
                height=task.height,
                fps=task.fps,
                rotation=task.rotation,
                detection=settings.detection,
                rules=settings.rules,
                embedder=embedder,
                shots=shots,
            )
            uris: dict[str, str | None] = {}
            crop = crop_filter(task, settings)
            if settings.mode != "none" and store is not None:
                for span in plan.clips:
                    cid = clip_id(task.video_id, span, crop)
                    uris[cid] = _write(path, cid, span, task.fps, store, settings, crop)
    except VideoInputError as e:
        return [
            {
                "video_id": task.video_id,
                "source_uri": task.source_uri,
                "status": "failed",
                "error": str(e),
                **settings.key_columns(),
            }
        ]
    return _rows_for(task, plan, signals.num_frames, uris, settings)


WHOLE_VIDEO = "whole video (clips not applied)"


def whole_video_rows(task: VideoTask, settings: ClipSettings) -> list[dict[str, Any]]:
    """A video whose source skips clip extraction: one clip, all of it, read from the source file itself."""
    if task.num_frames <= 0:
        return [
            {
                "video_id": task.video_id,
                "source_uri": task.source_uri,
                "status": "failed",
                "error": "the probe found no frame count, so the whole-video clip has no range",
                **settings.key_columns(),
            }
        ]
    span = ClipSpan(0, task.num_frames - 1)
    plan = ClipPlan([span], [], None, [WHOLE_VIDEO])
    return _rows_for(task, plan, task.num_frames, {clip_id(task.video_id, span): task.source_uri}, settings)


def _write(
    source: Path, cid: str, span: ClipSpan, fps: float, store: ClipStore, settings: ClipSettings, crop: str | None
) -> str:
    if store.exists(cid):
        return store.uri(cid)  # written by an earlier, interrupted run with the same settings (and crop: in the id)
    kwargs = {"mode": settings.mode, "crf": settings.crf, "preset": settings.preset, "crop": crop}
    local = store.local_dest(cid)
    if local is not None:
        cut_clip(source, local, span, fps, **kwargs)
    else:
        with tempfile.TemporaryDirectory(prefix="openvid-clip-") as tmp:
            staged = os.path.join(tmp, f"{cid}.mp4")
            cut_clip(source, staged, span, fps, **kwargs)
            store.upload(staged, cid)
    return store.uri(cid)


def reusable_clip_rows(previous: pl.DataFrame | None, settings: ClipSettings) -> dict[str, list[dict[str, Any]]]:
    """Rows of an earlier table made with the same settings, by video (failed videos are retried)."""
    same = reusable_rows(previous, settings.key(), statuses=("ok", "no_clips"))
    if same is None:
        return {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in same.iter_rows(named=True):
        rows.setdefault(row["video_id"], []).append(row)
    return rows


def clip_shard(
    tasks: list[VideoTask],
    open_video: OpenVideo,
    store: ClipStore | None,
    settings: ClipSettings,
    *,
    previous: pl.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
    embedder: FrameEmbedder | None = None,
    shots: ShotDetector | None = None,
) -> ShardRows:
    """Clip every video of a shard, ``workers`` videos at a time, in task order (``embedder``: the CLIP that
    stitches, with ``settings.detection.stitch``; ``shots``: the learned shot detector, when the detection
    runs TransNetV2)."""
    cached = reusable_clip_rows(previous, settings)
    unique = list({t.video_id: t for t in tasks}.values())
    todo = [
        t
        for t in unique
        if t.video_id not in cached
        or not _files_present(cached[t.video_id], store, settings)
        or cached[t.video_id][0].get("crop") != crop_filter(t, settings)
    ]  # a new crop box: cut again
    todo_ids = {t.video_id for t in todo}
    done_rows = {t.video_id: cached[t.video_id] for t in unique if t.video_id not in todo_ids}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {t.video_id: pool.submit(clip_video, t, open_video, store, settings, embedder, shots) for t in todo}
        for count, (video_id, future) in enumerate(futures.items(), 1):
            done_rows[video_id] = future.result()
            if progress:
                progress(count, len(todo))
    rows = [row for t in unique for row in done_rows[t.video_id]]
    table = pl.DataFrame(rows, schema=CLIP_SCHEMA) if rows else pl.DataFrame(schema=CLIP_SCHEMA)
    return ShardRows(table, len(todo), len(unique) - len(todo))


def _files_present(rows: list[dict[str, Any]], store: ClipStore | None, settings: ClipSettings) -> bool:
    if settings.mode == "none" or store is None or settings.whole_videos:
        return True
    return all(store.exists(r["clip_id"]) for r in rows if r["status"] == "ok")
