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
from typing import Literal, Protocol

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


def part_centres(num_frames: int, count: int) -> list[int]:
    """The middle frame of each of ``count`` equal parts of ``num_frames`` (repeats when ``count`` is larger): no
    boundary frame, so never the frame next to a cut or the black of a fade's end."""
    return [int((k + 0.5) * num_frames / count) for k in range(count)]


def evenly_spaced(num_frames: int, count: int) -> list[int]:
    """``count`` indices evenly spaced from the first to the last frame (fewer if the video is shorter)."""
    return at_positions(num_frames, np.linspace(0.0, 1.0, count).tolist() if count > 1 else [0.5])


def even_size(width: float, height: float) -> tuple[int, int]:
    return max(2, int(round(width / 2)) * 2), max(2, int(round(height / 2)) * 2)


Decoder = Literal["decord", "torchcodec", "torchcodec-approx"]
DECODERS: tuple[Decoder, ...] = ("decord", "torchcodec", "torchcodec-approx")


@dataclass(frozen=True)
class FrameRequest:
    """What a scorer needs decoded from each video.

    ``size`` is (width, height) for a landscape frame; ``short_side`` scales the
    short side to that many pixels keeping the aspect; neither means native size.
    With ``landscape`` set, portrait videos are transposed so every video is
    measured the same way (a vertical pan counts like a horizontal one).
    With ``reduce``, frames are decoded ``chunk`` at a time and each chunk is
    reduced (e.g. to fragments) before the next is decoded, so memory stays
    bounded for long native-resolution requests. ``decoder`` is the backend (docs/BENCHMARKS.md: decoding).
    """

    indices: Callable[[int], list[int]]
    size: tuple[int, int] | None = None
    short_side: int | None = None
    landscape: bool = False
    reduce: Callable[[np.ndarray], np.ndarray] | None = None
    chunk: int = 16
    decoder: Decoder = "decord"


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


class _Reader(Protocol):
    count: int
    fps: float

    def batch(self, indices: list[int]) -> np.ndarray: ...


class _DecordReader:
    """decord: frame-accurate from the container index; scales while decoding (swscale)."""

    def __init__(self, path: str, size: tuple[int, int] | None, threads: int):
        import decord

        kwargs = {"width": size[0], "height": size[1]} if size else {}
        self._reader = decord.VideoReader(path, num_threads=threads, **kwargs)
        self.count, self.fps = len(self._reader), float(self._reader.get_avg_fps())

    def batch(self, indices: list[int]) -> np.ndarray:
        return self._reader.get_batch(indices).asnumpy()


class _TorchCodecReader:
    """torchcodec: batched ``get_frames_at``; ``exact`` seeks scan the file once for an index, ``approximate``
    ones trust the header (frame count, constant rate). Scales while decoding (bilinear, antialiased)."""

    def __init__(self, path: str, size: tuple[int, int] | None, threads: int, exact: bool):
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import Resize

        def open_(mode: str) -> VideoDecoder:
            return VideoDecoder(
                path,
                seek_mode=mode,
                dimension_order="NHWC",
                num_ffmpeg_threads=threads,
                transforms=[Resize((size[1], size[0]))] if size else None,
            )

        self._decoder = open_("exact" if exact else "approximate")
        if self._decoder.metadata.num_frames is None:  # no count in the header: index the file after all
            self._decoder = open_("exact")
        meta = self._decoder.metadata
        self.count, self.fps = int(meta.num_frames or 0), float(meta.average_fps or 0.0)

    def batch(self, indices: list[int]) -> np.ndarray:
        return self._decoder.get_frames_at(indices).data.numpy()


def _open_reader(decoder: Decoder, path: str, size: tuple[int, int] | None, threads: int) -> _Reader:
    if decoder == "decord":
        return _DecordReader(path, size, threads)
    if decoder in ("torchcodec", "torchcodec-approx"):
        return _TorchCodecReader(path, size, threads, exact=decoder == "torchcodec")
    raise ValueError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")


def read_frames(
    path: str | Path,
    request: FrameRequest,
    *,
    width: int,
    height: int,
    rotation: int = 0,
    threads: int = 1,
    decoder: Decoder | None = None,
) -> DecodedFrames:
    """Decode the requested frames of one video; ``width``/``height`` are its displayed size.

    ``decoder`` overrides the request's (benchmarks compare them on the same requests)."""
    target = _target_size(request, width, height)
    sideways = rotation % 180 == 90  # the coded frame is the displayed one turned a quarter
    size = ((target[1], target[0]) if sideways else target) if target is not None else None
    with _decode_errors():
        reader = _open_reader(decoder or request.decoder, str(path), size, threads)
    indices = request.indices(reader.count)
    if not indices:
        raise DecodeError("no frames to decode")
    step = request.chunk if request.reduce else len(indices)
    chunks = [indices[start : start + step] for start in range(0, len(indices), step)]
    parts = []
    # With a reducer, the next chunk decodes on a second thread while this one is reduced
    # (the decoders and the reducers' numpy/OpenCV work release the GIL).
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(_get_batch, reader, chunks[0])
        for k in range(len(chunks)):
            batch = pending.result()
            if k + 1 < len(chunks):
                pending = prefetch.submit(_get_batch, reader, chunks[k + 1])
            part = _orient(batch, rotation, request.landscape)
            # The reducer is our code: its errors are bugs to surface, not a bad video.
            parts.append(request.reduce(part) if request.reduce else part)
    return DecodedFrames(indices, np.ascontiguousarray(np.concatenate(parts)), reader.count, reader.fps)


def _get_batch(reader: _Reader, indices: list[int]) -> np.ndarray:
    with _decode_errors():
        return reader.batch(indices)


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Decoders report every decode problem as a generic error: make it a reason for the video's row."""
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
