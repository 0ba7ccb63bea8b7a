"""EvalCrafter's Table 3 formulas on small fixed inputs. Every expected number is worked by hand from EvalCrafter's
code (github.com/evalcrafter/EvalCrafter at 1275bda; pycocoevalcap 1.2 for BLEU), as each test says; none comes
from running the code under test."""

import math

import numpy as np
import pytest

from openvid_assets.mvdit.metrics import evalcrafter as ec

SIGMOID_1 = 100 / (1 + math.exp(-1))  # 73.1059


def test_vqa_is_a_logistic_of_evalcrafters_rescaled_raw_output():
    # evaluate_a_set_of_videos.py l.36, 40-41: t = (raw_t + 0.0758) / 0.0129, a = (raw_a - 0.1253) / 0.0318, 100 sigmoid.
    assert ec.vqa(-0.0758, ec.VQA_TECHNICAL) == pytest.approx(50.0, rel=1e-4)
    assert ec.vqa(-0.0758 + 0.0129, ec.VQA_TECHNICAL) == pytest.approx(SIGMOID_1, rel=1e-4)
    assert ec.vqa(-0.0758 - 0.0129, ec.VQA_TECHNICAL) == pytest.approx(100 - SIGMOID_1, rel=1e-4)
    assert ec.vqa(0.1253, ec.VQA_AESTHETIC) == pytest.approx(50.0, rel=1e-4)
    assert ec.vqa(0.1253 + 0.0318, ec.VQA_AESTHETIC) == pytest.approx(SIGMOID_1, rel=1e-4)
    assert ec.vqa(0.0, ec.VQA_TECHNICAL) == pytest.approx(100 / (1 + math.exp(-0.0758 / 0.0129)), rel=1e-4)


@pytest.mark.parametrize(
    "frames, expected",
    [(16, [0, 3, 7, 11, 15]), (17, [0, 4, 8, 12, 16]), (33, [0, 8, 16, 24, 32]), (3, [0, 0, 1, 1, 2])],
)
def test_blip_takes_five_frames_from_first_to_last_truncated(frames, expected):
    # torch.linspace(0, N - 1, 5).long(): N = 16 -> 0, 3.75, 7.5, 11.25, 15 -> 0, 3, 7, 11, 15.
    assert ec.blip_frame_indices(frames) == expected


REFERENCE = "A cat is sitting on a wooden table."


def test_bleu_is_pycocoevalcaps_on_case_sensitive_whitespace_tokens():
    # Hypothesis "a cat sitting on a table" (6 tokens) against the 8-token reference: clipped unigram matches
    # a (1 of 2), cat, sitting, on = 4/6 ("table" is not "table.", "a" is not "A"); bigrams "sitting on", "on a" =
    # 2/5; trigram "sitting on a" = 1/4; no 4-gram: (0 + 1e-15) / (3 + 1e-9). Brevity penalty exp(1 - 8/6).
    penalty = math.exp(1 - 8 / 6)
    p = [4 / 6, 2 / 5, 1 / 4, 1e-15 / 3]
    expected = [math.prod(p[:k]) ** (1 / k) * penalty for k in range(1, 5)]
    assert expected[:3] == pytest.approx([0.47769, 0.37002, 0.29054], abs=5e-6)
    assert ec.coco_bleu("a cat sitting on a table", REFERENCE) == pytest.approx(expected, rel=1e-4)
    # A hypothesis whose clipped unigram precision is below its bigram precision: "c b c" vs "b c b b":
    # p1 = 2/3 (c once, b once), p2 = 2/2 ("c b", "b c"), penalty exp(1 - 4/3).
    assert ec.coco_bleu("c b c", "b c b b", n=2) == pytest.approx(
        [2 / 3 * math.exp(-1 / 3), math.sqrt(2 / 3) * math.exp(-1 / 3)], rel=1e-4
    )
    assert ec.coco_bleu("c b c", "b c b b", n=2) == pytest.approx([0.4777, 0.5850], abs=1e-4)


def test_blip_bleu_takes_the_max_over_captions_and_orders_and_the_corrected_form_each_orders_best():
    captions = ["a cat sitting on a table", "a cat laying on a wooden table", "a black cat on a table"]
    per_caption = [ec.coco_bleu(c, REFERENCE) for c in captions]
    # "a cat laying on a wooden table": unigrams a, cat, on, wooden = 4/7, bigrams "on a", "a wooden" = 2/6,
    # trigram "on a wooden" = 1/5; penalty exp(1 - 8/7).
    laying = [4 / 7, 2 / 6, 1 / 5]
    assert per_caption[1][:3] == pytest.approx(
        [math.prod(laying[:k]) ** (1 / k) * math.exp(1 - 8 / 7) for k in range(1, 4)], rel=1e-4
    )
    # EvalCrafter (Scores_with_CLIP.py l.112-120, 160-165): np.max over the captions' BLEU-1..K lists: every order
    # is the best BLEU-1 here, 0.49536.
    reproduced = ec.blip_bleu(captions, REFERENCE)
    assert [reproduced[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx([0.49536] * 4, abs=5e-6)
    assert reproduced["blip_bleu"] == pytest.approx(0.49536, abs=5e-6)
    # Corrected: each order's best caption.
    corrected = ec.blip_bleu(captions, REFERENCE, corrected=True)
    best = [max(scores[k] for scores in per_caption) for k in range(4)]
    assert [corrected[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx(best, rel=1e-6)
    assert best[:3] == pytest.approx([0.49536, 0.37834, 0.29169], abs=5e-6)
    assert corrected["blip_bleu"] == pytest.approx(np.mean(best), rel=1e-6)
    # Where a higher order wins, EvalCrafter's BLEU-2 is that order's score, not BLEU-1.
    odd = ec.blip_bleu(["c b c"], "b c b b")
    assert odd["bleu_1"] == pytest.approx(0.4777, abs=1e-4) and odd["bleu_2"] == pytest.approx(0.5850, abs=1e-4)


def test_clip_scores_are_plain_cosines():
    # Scores_with_CLIP.py l.61-65: unit vectors, frame @ text, mean over frames: no x100, no clamp at 0.
    frames = np.array([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
    assert ec.clip_score(frames, np.array([1.0, 1.0])) == pytest.approx((2 / math.sqrt(2) - 1 / math.sqrt(2)) / 3)
    assert ec.clip_score(frames, np.array([1.0, 0.0])) == pytest.approx(0.0)  # 1, 0, -1
    # l.104-108: adjacent frames: cos(f0, f1) = 0, cos(f1, f2) = 0.
    assert ec.clip_temporal(frames) == pytest.approx(0.0)
    assert ec.clip_temporal(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])) == pytest.approx(1 / math.sqrt(2))


def test_frames_are_halved_and_padded_to_a_multiple_of_eight_by_replication():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (20, 36, 3), dtype=np.uint8)
    image = ec.halved(frame)
    # 10 x 18 after halving; InputPadder('sintel'): pad (16 - 10) % 8 = 6 rows, (24 - 18) % 8 = 6 columns, 3 each side.
    assert image.shape == (16, 24, 3)
    blocks = frame.astype(np.float64).reshape(10, 2, 18, 2, 3).mean(axis=(1, 3)) / 255  # bilinear x0.5, even size
    np.testing.assert_allclose(image[3:13, 3:21], blocks, atol=1e-6)
    np.testing.assert_allclose(image[0], image[3], atol=0)  # replicated edges
    np.testing.assert_allclose(image[:, -1], image[:, 20], atol=0)


RAMP = np.broadcast_to((np.arange(8) / 10.0)[None, :, None], (8, 8, 3))  # value x / 10 in column x, every channel


def test_a_constant_difference_with_no_motion_is_three_times_its_square():
    # warp_utils: F = B = 0 -> |F + B|^2 = 0 is not > 0.5, gradients 0 are not > 0.002: every pixel counts;
    # the sum over the 3 channels of 0.1^2 per pixel, over the pixel count: 0.03.
    first = np.full((8, 8, 3), 0.3)
    zero = np.zeros((8, 8, 2))
    assert ec.pair_warping_error(first, first + 0.1, zero, zero) == pytest.approx(0.03, rel=1e-6)


def test_samples_leaving_the_frame_take_the_border_value():
    # F = (1, 0), B = (-1, 0): consistent, no boundary, all 64 pixels count. Column x of the warped second frame is
    # the ramp at min(x + 1, 7) (Resample2d clamps to the border): 3 channels x 8 rows x (1 + 4 + ... + 49 + 49) / 100
    # over 64 pixels = 0.70875.
    forward, backward = np.zeros((8, 8, 2)), np.zeros((8, 8, 2))
    forward[..., 0], backward[..., 0] = 1.0, -1.0
    error = ec.pair_warping_error(np.zeros((8, 8, 3)), RAMP, forward, backward)
    assert error == pytest.approx(3 * 8 * (140 + 49) / 100 / 64, rel=1e-6)


def test_occluded_pixels_and_motion_boundaries_are_left_out():
    # F = 0 in columns 0-3 and (2, 0) in 4-7, B = 0. Columns 4-7: |F + B(x+F)|^2 = 4 > 0.01 * 4 + 0.5: occluded.
    # Column 3: (u(3) - u(4))^2 = 4 > 0.01 * 0 + 0.002: a motion boundary. Columns 0-2 count (F = 0 there): the
    # ramp's 0, 0.1, 0.2 squared, x 3 channels x 8 rows, over 24 pixels = 0.05. Without the boundary mask: 0.105.
    forward = np.zeros((8, 8, 2))
    forward[:, 4:, 0] = 2.0
    mask = ec.occluded(forward, np.zeros((8, 8, 2)))
    assert mask[:, 3:].all() and not mask[:, :3].any()
    error = ec.pair_warping_error(np.zeros((8, 8, 3)), RAMP, forward, np.zeros((8, 8, 2)))
    assert error == pytest.approx(3 * 8 * (0 + 0.01 + 0.04) / 24, rel=1e-6)


def test_the_video_error_is_the_mean_over_adjacent_pairs_of_the_halved_frames():
    frames = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (0, 51, 0)])  # 51 / 255 = 0.2
    calls = []

    def still(a, b):
        calls.append(a.shape)
        return np.zeros(a.shape[:2] + (2,))

    assert ec.warping_error(frames, still) == pytest.approx(3 * 0.2**2, rel=1e-6)
    assert calls == [(8, 8, 3)] * 4  # both ways for each of the two pairs, on the halved frames
    with pytest.raises(ValueError):
        ec.warping_error(frames[:1], still)
