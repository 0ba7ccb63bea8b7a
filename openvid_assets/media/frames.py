"""Decode only the frames a score needs, at the size it needs (decord resizes while decoding).

Frame positions are planned from the decoder's own frame count, and planned
indices are de-duplicated, so a short video yields fewer distinct frames rather
than repeated ones (a repeated frame would fake a perfectly still video).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openvid_assets.media.sources import VideoInputError


class DecodeError(VideoInputError):
    """The container opened (or not) but the frames could not be decoded."""


def at_positions(num_frames: int, positions: Sequence[float]) -> list[int]:
    """Frame indices at fractions of the video (0.5 = middle), sorted and unique."""
    last = max(num_frames - 1, 0)
    return sorted({min(last, max(0, round(p * last))) for p in positions})


def at_fractions(num_frames: int, fractions: Sequence[float]) -> list[int]:
    """Frame ``int(f * num_frames)`` for each fraction, sorted and unique: how Open-Sora's aesthetic scorer (and so
    OpenVid-1M) picks frames; one frame later than :func:`at_positions` near the end of a video."""
    last = max(num_frames - 1, 0)
    return sorted({min(last, max(0, int(f * num_frames))) for f in fractions})


def evenly_spaced(num_frames: int, count: int) -> list[int]:
    """``count`` indices evenly spaced from the first to the last frame (fewer if the video is shorter)."""
    return at_positions(num_frames, np.linspace(0.0, 1.0, count).tolist() if count > 1 else [0.5])


def even_size(width: float, height: float) -> tuple[int, int]:
    return max(2, int(round(width / 2)) * 2), max(2, int(round(height / 2)) * 2)


@dataclass(frozen=True)
class FrameRequest:
    """What a scorer needs decoded from each video.

    ``size`` is (width, height) for a landscape frame; ``short_side`` scales the
    short side to that many pixels keeping the aspect; neither means native size.
    With ``landscape`` set, portrait videos are transposed so every video is
    measured the same way (a vertical pan counts like a horizontal one).
    With ``reduce``, frames are decoded ``chunk`` at a time and each chunk is
    reduced (e.g. to fragments) before the next is decoded, so memory stays
    bounded for long native-resolution requests.
    """

    indices: Callable[[int], list[int]]
    size: tuple[int, int] | None = None
    short_side: int | None = None
    landscape: bool = False
    reduce: Callable[[np.ndarray], np.ndarray] | None = None
    chunk: int = 16


@dataclass(frozen=True)
class DecodedFrames:
    indices: list[int]
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, display orientation (transposed if landscape), or reduced
    num_frames: int  # the decoder's frame count, which planned the indices
    fps: float


def _target_size(request: FrameRequest, width: int, height: int) -> tuple[int, int] | None:
    """(width, height) to produce in display orientation, or None for native."""
    portrait = height > width
    if request.size is not None:
        w, h = request.size
        return (h, w) if (portrait and request.landscape) else (w, h)
    if request.short_side is not None:
        scale = request.short_side / min(width, height)
        return even_size(width * scale, height * scale)
    return None


def read_frames(path: str | Path, request: FrameRequest, *, width: int, height: int, rotation: int = 0,
                threads: int = 1) -> DecodedFrames:  # fmt: skip
    """Decode the requested frames of one video; ``width``/``height`` are its displayed size."""
    import decord

    target = _target_size(request, width, height)
    sideways = rotation % 180 == 90  # the coded frame is the displayed one turned a quarter
    kwargs = {}
    if target is not None:
        w, h = (target[1], target[0]) if sideways else target
        kwargs = {"width": w, "height": h}
    with _decode_errors():
        reader = decord.VideoReader(str(path), num_threads=threads, **kwargs)
        count = len(reader)
        fps = float(reader.get_avg_fps())
    indices = request.indices(count)
    if not indices:
        raise DecodeError("no frames to decode")
    step = request.chunk if request.reduce else len(indices)
    chunks = [indices[start : start + step] for start in range(0, len(indices), step)]
    parts = []
    # With a reducer, the next chunk decodes on a second thread while this one is reduced
    # (decord and the reducers' numpy/OpenCV work release the GIL).
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(_get_batch, reader, chunks[0])
        for k in range(len(chunks)):
            batch = pending.result()
            if k + 1 < len(chunks):
                pending = prefetch.submit(_get_batch, reader, chunks[k + 1])
            part = _orient(batch, rotation, request.landscape)
            # The reducer is our code: its errors are bugs to surface, not a bad video.
            parts.append(request.reduce(part) if request.reduce else part)
    return DecodedFrames(indices, np.ascontiguousarray(np.concatenate(parts)), count, fps)


def _get_batch(reader, indices: list[int]) -> np.ndarray:
    with _decode_errors():
        return reader.get_batch(indices).asnumpy()


@contextmanager
def _decode_errors() -> Iterator[None]:
    """decord reports every decode problem as a generic error: make it a reason for the video's row."""
    try:
        yield
    except Exception as e:
        raise DecodeError(f"decode failed: {str(e).splitlines()[0][:300]}") from None


def _orient(frames: np.ndarray, rotation: int, landscape: bool) -> np.ndarray:
    """Coded frames to display orientation (and landscape, if asked)."""
    if rotation % 360:
        frames = np.rot90(frames, k=(rotation // 90) % 4, axes=(1, 2))
    if landscape and frames.shape[1] > frames.shape[2]:
        frames = frames.transpose(0, 2, 1, 3)
    return frames
