"""Burnt-in text with the real PP-OCR detection model of the rapidocr-onnxruntime wheel, on generated frames
whose text is known (subtitles, a corner logo, a caption card, clean textures and shapes), drawn at 1280x720
and shrunk to 398x224 as the decoder shrinks them for CLIP, or encoded and decoded as a real video."""

import json
import subprocess

import cv2
import numpy as np
import pytest

from openvid_assets.media.frames import FrameRequest, read_frames
from openvid_assets.models.scorers import text
from openvid_assets.models.scorers.text import TextDetector, input_size, is_line, ppocr_det_model, text_mask
from openvid_assets.models.registry.weights import file_digest

W, H = 1280, 720
SIMPLEX, DUPLEX = cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    return TextDetector()


def background(seed: int, width: int = W, height: int = H, shapes: bool = False) -> np.ndarray:
    """A textured RGB frame with no text: a colour gradient, coarse and fine blurred noise, soft blobs (drawn at
    a quarter of the size: it is smooth) and, with ``shapes``, hard-edged circles and rectangles."""
    rng = np.random.default_rng(seed)
    h, w = height // 4, width // 4
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = xx / w * np.cos(angle) + yy / h * np.sin(angle)
    t = ((t - t.min()) / (t.max() - t.min()))[..., None]
    img = rng.uniform(30, 220, 3) * (1 - t) + rng.uniform(30, 220, 3) * t
    coarse = rng.normal(0, 1, (h // 6 + 2, w // 6 + 2, 3)).astype(np.float32)
    img += 18 * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img += 60 * cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 1.5)
    for _ in range(6):
        blob = np.zeros((h, w), np.float32)
        cv2.circle(blob, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.uniform(10, 40)), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 6)[..., None]
        img = img * (1 - blob) + rng.uniform(0, 255, 3) * blob
    img = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(5 if shapes else 0):
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.uniform(30, 120)), colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.uniform(60, 300)), y + int(rng.uniform(60, 200))), colour, -1)
    return img


def outlined(
    img: np.ndarray,
    words: str,
    origin: tuple[int, int],
    font: int,
    scale: float,
    thickness: int = 2,
    outline: int = 4,
    colour: tuple[int, int, int] = (255, 255, 255),
) -> None:
    """White (or ``colour``) text with a dark outline, as subtitles are drawn."""
    cv2.putText(img, words, origin, font, scale, (0, 0, 0), thickness + outline, cv2.LINE_AA)
    cv2.putText(img, words, origin, font, scale, colour, thickness, cv2.LINE_AA)


def centred(img: np.ndarray, words: str, baseline: int, font: int, scale: float, thickness: int = 2) -> None:
    (width, _), _ = cv2.getTextSize(words, font, scale, thickness)
    outlined(img, words, ((img.shape[1] - width) // 2, baseline), font, scale, thickness)


def subtitled(img: np.ndarray, lines: list[str], font: int, scale: float) -> np.ndarray:
    """``img`` with subtitle lines stacked up from 40 px above the bottom edge."""
    img = img.copy()
    step = int(cv2.getTextSize("Wg", font, scale, 2)[0][1] * 1.6)
    for k, line in enumerate(reversed(lines)):
        centred(img, line, img.shape[0] - 40 - k * step, font, scale)
    return img


def decoded(img: np.ndarray, short_side: int = 224) -> np.ndarray:
    """The frame as the pipeline decodes it for CLIP: short side 224 (1280x720 -> 398x224), area filter."""
    h, w = img.shape[:2]
    scale = short_side / min(h, w)
    return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def line_height(font: int, scale: float, thickness: int = 2) -> float:
    """Height of a line of text (capitals and descenders) in the 224-px frame."""
    (_, cap), descent = cv2.getTextSize("Wg", font, scale, thickness)
    return (cap + descent) * 224 / H


def caption_card(img: np.ndarray) -> np.ndarray:
    """``img`` under four lines of large centred text: a title card."""
    img = img.copy()
    for k, line in enumerate(["CHAPTER ONE", "The long road", "home again", "2024"]):
        centred(img, line, 180 + 140 * k, DUPLEX, 3.0, thickness=5)
    return img


def gradient(seed: int, width: int = W, height: int = H) -> np.ndarray:
    """A plain two-colour linear gradient."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    row = rng.uniform(20, 235, 3) * (1 - t) + rng.uniform(20, 235, 3) * t
    return np.repeat(row, height, 0).astype(np.uint8)


def area_and_mask(detector: TextDetector, frame: np.ndarray) -> tuple[float, np.ndarray]:
    mask = text_mask(frame.shape[:2], detector.polygons(frame))
    return float(mask.mean()), mask


# --------------------------------------------------------------------------- subtitles, logos, cards, clean frames


@pytest.mark.parametrize(
    ("seed", "font", "scale", "lines"),
    [
        (1, DUPLEX, 1.3, ["Where are you going tonight?"]),  # one line 13.7 px tall at 224 px
        (2, SIMPLEX, 1.8, ["I told you, we leave at dawn."]),  # 19 px
        (3, SIMPLEX, 1.1, ["Nobody knows what happened here,", "and nobody ever will."]),  # two lines of 11.6 px
        (4, DUPLEX, 1.0, ["Look at the sky over there"]),  # 10.6 px: the small end, why the input is 320 px
    ],
)
def test_subtitles_are_found_at_the_bottom_of_the_frame(detector, seed, font, scale, lines):
    frame = decoded(subtitled(background(seed), lines, font, scale))
    assert frame.shape == (224, 398, 3)
    area, mask = area_and_mask(detector, frame)
    assert area == pytest.approx(detector.text_area(frame[None])[0])
    assert area > 0.01
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.min() >= 0.7 * frame.shape[0]  # every detected pixel in the bottom 30 %
    columns = np.nonzero(mask.any(axis=0))[0]
    assert columns.min() < frame.shape[1] / 2 < columns.max()  # the centred line, not a fragment of it


def test_a_corner_logo_is_found_with_a_small_area_and_a_tiny_watermark_is_not(detector):
    logo = background(6)
    outlined(logo, "NEWS24", (W - 230, 70), SIMPLEX, 1.3, thickness=2, outline=3)  # capitals ~9 px at 224 px
    area, mask = area_and_mask(detector, decoded(logo))
    assert 0.001 < area < 0.02
    rows, columns = np.nonzero(mask)
    assert rows.max() < 224 / 3 and columns.min() > 398 / 2  # top right

    # Thin light-grey text with capitals of ~4 px at 224 px, no outline: below what the network sees at a 320-px
    # input (or 448 or 640), so such a watermark adds nothing to the area. Documented, not wanted.
    watermark = background(6)
    cv2.putText(watermark, "@studio.tv", (W - 230, H - 30), SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA)
    assert detector.text_area(decoded(watermark)[None]) == [0.0]


def test_a_caption_card_covers_a_large_area(detector):
    areas = detector.text_area(np.stack([decoded(caption_card(gradient(7))), decoded(caption_card(background(7)))]))
    assert min(areas) > 0.1


def shapes_on(img: np.ndarray) -> np.ndarray:
    """``img`` with a few flat circles and rectangles, dark and light, apart from each other."""
    img = img.copy()
    cv2.circle(img, (300, 300), 150, (200, 40, 40), -1, cv2.LINE_AA)
    cv2.rectangle(img, (700, 100), (1000, 400), (40, 40, 200), -1)
    cv2.circle(img, (1000, 550), 80, (250, 250, 250), -1, cv2.LINE_AA)
    cv2.rectangle(img, (120, 560), (520, 660), (240, 230, 120), -1)
    return img


def test_frames_without_text_have_no_text_area(detector):
    frames = [gradient(9), gradient(10), shapes_on(background(8)), *(background(seed) for seed in range(10, 16))]
    areas = detector.text_area(np.stack([decoded(f) for f in frames]))
    assert max(areas) < 0.005
    portrait = decoded(shapes_on(background(16, width=H, height=W)))
    assert portrait.shape == (398, 224, 3)
    assert detector.text_area(portrait[None])[0] < 0.005


def test_a_lone_shape_read_as_a_glyph_is_not_counted_as_text(detector):
    # The network learnt text on pages: one mark on an empty background is a character to it (a ring is an
    # "O"). Measured on a plain gradient, one shape 80-250 px across at 720p: rings 3-28 % of the frame, solid
    # circles 3-25 %, rectangles 0-15 %, at every input size (224 px too). Such a box is as tall as it is wide,
    # and the area counts only boxes at least twice as long as tall (words and lines).
    ring = gradient(8)
    cv2.circle(ring, (640, 360), 150, (200, 40, 40), 8, cv2.LINE_AA)
    frame = decoded(ring)
    boxes = detector.polygons(frame)
    assert boxes and not any(is_line(b) for b in boxes)  # found, and seen for the lone box it is
    assert detector.text_area(frame[None])[0] == 0.0


def test_textures_with_hard_edged_shapes_are_rarely_read_as_text(detector):
    # Flat-coloured shapes stacked on each other can look like a glyph block to the network: measured on 60
    # such frames, 3 at this input size (0 at 224 px, 16 at 448 px), each covering 2-12 % of the frame.
    areas = np.array(detector.text_area(np.stack([decoded(background(seed, shapes=True)) for seed in range(20, 32)])))
    assert (areas > 0.005).sum() <= 2
    assert np.median(areas) == 0.0


def test_card_then_subtitles_then_clean(detector):
    for seed in (17, 18):
        world = background(seed)
        card, subtitles, clean = detector.text_area(
            np.stack(
                [
                    decoded(caption_card(world)),
                    decoded(subtitled(world, ["Where are you going tonight?"], DUPLEX, 1.3)),
                    decoded(world),
                ]
            )
        )
        assert card > subtitles > clean
        assert card > 3 * subtitles and subtitles > 0.01 and clean < 0.005


def test_any_frame_size_sees_text_at_the_same_relative_scale(detector):
    full = subtitled(background(19), ["Where are you going tonight?"], SIMPLEX, 1.3)
    small, native = detector.text_area(decoded(full)[None])[0], detector.text_area(full[None])[0]
    assert native > 0.01 and abs(native - small) < 0.3 * small

    portrait = decoded(subtitled(background(19, width=H, height=W), ["Where are you", "going tonight?"], DUPLEX, 1.6))
    area, mask = area_and_mask(detector, portrait)
    assert portrait.shape == (398, 224, 3) and area > 0.01
    assert np.nonzero(mask.any(axis=1))[0].min() >= 0.7 * portrait.shape[0]


def test_subtitles_appearing_mid_video_after_encoding_and_decoding(detector, tmp_path):
    # A panning textured world, a subtitle from frame 6 on, x264 at 1280x720; decoded as CLIP decodes.
    world = background(21, width=W + 24)
    frames = [world[:, 2 * t : 2 * t + W] for t in range(12)]
    frames = [
        subtitled(f, ["Where are you going tonight?"], DUPLEX, 1.3) if t >= 6 else f for t, f in enumerate(frames)
    ]
    path = tmp_path / "subtitled.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{W}x{H}",
            "-r",
            "24",
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "28",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        input=np.stack(frames).tobytes(),
        check=True,
    )
    decoded_frames = read_frames(path, FrameRequest(indices=lambda n: [2, 8, 11], short_side=224), width=W, height=H)
    assert decoded_frames.frames.shape == (3, 224, 398, 3)
    before, after, later = detector.text_area(decoded_frames.frames)
    assert before < 0.005 and after > 0.01 and later > 0.01


# --------------------------------------------------------------------------- the mask, identity, inputs


def test_the_mask_is_the_union_of_the_polygons():
    square = np.array([[2, 2], [10, 2], [10, 10], [2, 10]], np.float32)
    one = text_mask((20, 20), [square])
    assert one.sum() == 81
    assert (text_mask((20, 20), [square, square]) == one).all()  # the same box twice counts once
    assert text_mask((20, 20), [square, square + 3]).sum() == 81 + 81 - 36  # overlap counted once
    parity = np.zeros((20, 20), np.uint8)
    cv2.fillPoly(parity, [square.astype(np.int32)] * 2, 1)
    assert parity.sum() < 81  # why the polygons are filled one at a time
    assert text_mask((20, 20), []).sum() == 0


def test_input_size_scales_the_short_side_and_rounds_to_32():
    assert input_size(224, 398, 320) == (320, 576)
    assert input_size(398, 224, 320) == (576, 320)
    assert input_size(720, 1280, 320) == (320, 576)
    assert input_size(224, 224, 224) == (224, 224)


def test_identity_is_stable_and_names_the_wheels_model(detector):
    other = TextDetector(threads=2)
    assert (other.name, other.weights_digest, other.params()) == (
        detector.name,
        detector.weights_digest,
        detector.params(),
    )
    model = ppocr_det_model()
    assert model.suffix == ".onnx" and model.name in detector.name and "det" in model.name
    assert detector.name.startswith("ppocr-det(rapidocr-onnxruntime)")
    assert detector.weights_digest == file_digest(model) and len(detector.weights_digest) == 16
    params = detector.params()
    assert json.loads(json.dumps(params)) == params
    assert params["short_side"] == 320 and params["thresh"] == 0.3 and params["box_thresh"] == 0.5
    assert params["unclip_ratio"] == 1.6 and "rapidocr-onnxruntime" in params["postprocess"]
    assert TextDetector(short_side=224).params() != params


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((0, 224, 398, 3), np.uint8),
        np.array([], np.uint8),
        np.zeros((224, 398), np.uint8),
        np.zeros((2, 224, 398), np.uint8),
        np.zeros((1, 224, 398, 4), np.uint8),
        np.zeros((1, 224, 398, 3), np.float32),
        np.zeros((1, 0, 398, 3), np.uint8),
        [[0]],
    ],
)
def test_bad_frames_are_refused_with_a_clear_error(detector, frames):
    with pytest.raises(ValueError, match="frames"):
        detector.text_area(frames)


def test_a_missing_model_names_what_to_install(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextDetector(tmp_path / "missing.onnx")
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install rapidocr-onnxruntime"):
        TextDetector()
    with pytest.raises(ValueError, match="multiple of 32"):
        TextDetector(short_side=300)
