"""Probe one local video file with ffprobe, under a time limit.

Every way a file can fail to be a usable video becomes a :class:`ProbeError`
whose message is the human-readable reason stored in the manifest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from openvid_assets import settings
from openvid_assets.media.sources import VideoInputError

# Demuxers that read still images: a PNG renamed to .mkv "probes" as a 1-frame video.
_IMAGE_DEMUXERS = ("image2", "_pipe")


class ProbeError(VideoInputError):
    """The file exists but is not a decodable video."""


@dataclass(frozen=True)
class ProbeResult:
    container: str
    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    rotation: int  # degrees counter-clockwise from the display matrix; width/height are as displayed


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0/0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(float(stream.get("tags", {}).get("rotate", 0) or 0))


def _container(format_name: str, path: Path) -> str:
    """ffprobe names demuxers by family ('mov,mp4,m4a,...'); prefer the name matching the file."""
    names = format_name.split(",")
    ext = path.suffix.lower().lstrip(".")
    return ext if ext in names else names[0]


_LOG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
# FFmpeg's own size check (av_image_check_size): a header claiming e.g. 16384x16384 leaves the stream sizeless.
_REFUSED_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid")


def _too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"frame too large: {width}x{height} ({width * height / 1e6:.1f} Mpx) is over the "
        f"{max_pixels / 1e6:.1f} Mpx limit (OPENVID_MAX_PIXELS)"
    )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _ffmpeg_reason(stderr: str, path: Path, limit: int = 3) -> str:
    """ffmpeg's distinct error lines, without demuxer tags or the file name (the row has the URI)."""
    lines = []
    for line in stderr.splitlines():
        line = _LOG_PREFIX.sub("", line.strip()).replace(f"file:{path.resolve()}: ", "")
        if line and line not in lines:
            lines.append(line)
    return "; ".join(lines[:limit])


def probe(
    path: str | os.PathLike[str],
    timeout_s: float = 60.0,
    *,
    max_pixels: int | None = None,
    max_duration_s: float | None = None,
) -> ProbeResult:
    """Stream facts of the first video stream; frame count is counted, not trusted from headers.

    Frames over ``max_pixels`` and videos over ``max_duration_s`` (defaults: ``settings``) are
    refused here, so no later step ever decodes them.
    """
    path = Path(path)
    max_pixels = settings.max_pixels() if max_pixels is None else max_pixels
    max_duration_s = settings.max_duration_s() if max_duration_s is None else max_duration_s
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty file (0 bytes)")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-count_packets",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,nb_read_packets,duration"
        ":stream_side_data=rotation:stream_tags=rotate:format=format_name,duration",
        "-of",
        "json",
        "-i",
        f"file:{path.resolve()}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, errors="replace")
    except subprocess.TimeoutExpired:
        raise ProbeError(f"probe timed out after {timeout_s:g}s") from None
    if done.returncode != 0:
        reason = _ffmpeg_reason(done.stderr, path) or f"ffprobe exited with {done.returncode}"
        raise ProbeError(f"not a readable video: {reason}")
    info = json.loads(done.stdout or "{}")
    fmt = info.get("format", {})
    format_name = fmt.get("format_name", "")
    streams = info.get("streams", [])
    if not streams:
        raise ProbeError("no video stream (audio-only or not a video)")
    if any(format_name == d or format_name.endswith(d) for d in _IMAGE_DEMUXERS):
        raise ProbeError(f"a still image ({format_name}), not a video")
    stream = streams[0]
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        refused = _REFUSED_SIZE.search(done.stderr)
        if refused:
            w, h = int(refused[1]), int(refused[2])
            if w * h > max_pixels:
                raise ProbeError(_too_large(w, h, max_pixels) + "; FFmpeg cannot decode it either")
            raise ProbeError(f"frame too large: FFmpeg cannot decode a {w}x{h} frame")
        raise ProbeError("video stream has no frame size")
    if width * height > max_pixels:
        raise ProbeError(_too_large(width, height, max_pixels))
    rotation = _rotation(stream) % 360
    if rotation % 180 == 90:  # phone videos: report the displayed orientation
        width, height = height, width
    counted = int(stream.get("nb_read_packets") or 0)
    if counted < 2:
        raise ProbeError(f"video stream has {counted} frame(s); not a video")
    declared = int(stream.get("nb_frames") or 0)
    if declared and counted < declared * 0.98:
        raise ProbeError(f"truncated: header lists {declared} frames but only {counted} are present")
    if done.stderr.strip():  # demuxer errors while counting packets: a damaged file
        raise ProbeError(f"damaged file: {_ffmpeg_reason(done.stderr, path)}")
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    if fps <= 0:
        raise ProbeError("video stream has no frame rate")
    duration = float(stream.get("duration") or fmt.get("duration") or 0) or counted / fps
    longest = max(duration, counted / fps)  # a header may understate it; the packets do not
    if longest > max_duration_s:
        raise ProbeError(
            f"too long: {_hours(longest)} ({longest:.0f}s) is over the {_hours(max_duration_s)} "
            f"limit (OPENVID_MAX_DURATION_S)"
        )
    return ProbeResult(
        container=_container(format_name, path),
        codec=stream.get("codec_name", "unknown"),
        width=width,
        height=height,
        fps=round(fps, 6),
        num_frames=counted,
        duration_s=round(duration, 6),
        rotation=rotation,
    )
