"""Black borders and exposure, measured on frames decoded the way the CLIP pass decodes them (short side 224)."""

import numpy as np
import pytest

from openvid_assets import samples
from openvid_assets.media.content import PictureBox, exposure, picture_box
from openvid_assets.media.frames import FrameRequest, evenly_spaced, read_frames


def decoded(folder, spec) -> np.ndarray:
    request = FrameRequest(indices=lambda n: evenly_spaced(n, 6), short_side=224)
    return read_frames(folder / spec.name, request, width=spec.width, height=spec.height).frames


@pytest.mark.parametrize(
    "size, picture",
    [
        ((320, 180), (0, 30, 320, 120)),  # letterbox, decoded larger than the file
        ((640, 360), (0, 46, 640, 268)),  # 2.39:1 letterbox in 16:9
        ((640, 360), (80, 0, 480, 360)),  # 4:3 pillarbox in 16:9
        ((640, 360), (60, 40, 520, 280)),  # windowbox: bars on all four sides
        ((360, 640), (0, 120, 360, 400)),  # portrait with bars
        ((1920, 1080), (0, 140, 1920, 800)),  # 1080p scope: one decoded row is ~5 px, read to a fraction
    ],
)
def test_crop_box_of_bordered_videos_is_within_two_pixels(tmp_path, size, picture):
    width, height = size
    spec = samples.letterboxed(tmp_path, "bars.mp4", width=width, height=height, picture=picture)
    box = picture_box(decoded(tmp_path, spec))
    assert box.bordered
    x, y, w, h = box.pixels(width, height)
    assert all(v % 2 == 0 for v in (x, y, w, h))  # ffmpeg crops 4:2:0 video on even pixels
    assert np.allclose(
        (x, y, x + w, y + h), (picture[0], picture[1], picture[0] + picture[2], picture[1] + picture[3]), atol=2
    ), ((x, y, w, h), picture)


def test_unbordered_dark_and_black_videos_keep_the_whole_frame(tmp_path):
    for spec in (
        samples.smooth_pan(tmp_path, "pan.mp4", width=320, height=180),
        samples.exposed(tmp_path, "dark.mp4", gain=0.15),
        samples.black(tmp_path, "black.mp4"),
    ):
        box = picture_box(decoded(tmp_path, spec))
        assert not box.bordered, spec.name
        assert box.pixels(spec.width, spec.height) == (0, 0, spec.width, spec.height)


def test_a_dark_shot_in_one_frame_is_not_a_bar():
    frames = np.full((3, 90, 160, 3), 120, np.uint8)
    frames[1, :30] = 0  # one frame's top third is black (a dark sky), the others are not
    frames[:, -10:] = 0  # a bar black in every frame
    box = picture_box(frames)
    assert (box.top, box.bottom) == (0.0, 80 / 90)


def test_picture_box_pixels_are_even():
    box = PictureBox(left=0.101, top=0.1249, right=0.899, bottom=0.8751)
    x, y, w, h = box.pixels(100, 100)
    assert (x, y, x + w, y + h) == (10, 12, 90, 88)


def test_exposure_orders_dark_normal_and_overexposed_videos_and_finds_washed_out_ones(tmp_path):
    measures = {}
    for name, levels in {
        "dark": {"gain": 0.15},
        "normal": {},
        "over": {"gain": 3.0, "offset": 160},
        "washed": {"gain": 0.15, "offset": 110},
    }.items():
        spec = samples.exposed(tmp_path, f"{name}.mp4", **levels)
        frames = decoded(tmp_path, spec)
        values = [exposure(frame, picture_box(frames)) for frame in frames]
        measures[name] = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
    dark, normal, over, washed = (measures[k] for k in ("dark", "normal", "over", "washed"))
    assert dark["brightness"] < 30 < normal["brightness"] < 225 < over["brightness"]
    assert dark["dark_share"] > 0.75 > normal["dark_share"]
    assert over["bright_share"] > 0.5 > normal["bright_share"]
    assert washed["contrast"] < 10 < normal["contrast"]
    assert washed["colourfulness"] < normal["colourfulness"]


def test_exposure_is_measured_inside_the_picture_not_the_bars(tmp_path):
    spec = samples.letterboxed(tmp_path, "bars.mp4", width=640, height=360, picture=(0, 90, 640, 180))
    frames = decoded(tmp_path, spec)
    inside = exposure(frames[0], picture_box(frames))
    whole = exposure(frames[0])
    assert inside["dark_share"] < 0.01 and whole["dark_share"] > 0.45
    assert inside["brightness"] > 1.8 * whole["brightness"]
