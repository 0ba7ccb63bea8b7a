"""The OpenVid-1M paper's Table 3 metrics exactly as EvalCrafter's code computes them (github.com/evalcrafter/
EvalCrafter at 1275bda; file and line references below are to that commit), so a number here can stand beside the
paper's. Pure formulas over what the models give (raw DOVER outputs, embeddings, captions, flows); which frames
and inputs the models see is decided by the callers (``mvdit/evaluate.py``).

Where EvalCrafter's code has a bug, the ``evalcrafter`` form reproduces it and a ``corrected`` argument gives the
repaired form (docs/EVALUATION.md lists both and the measured difference):

- BLIP-BLEU takes ``np.max`` over the flattened (caption x order) list for each ``Bleu(n=K)``
  (``metrics/Scores_with_CLIP/Scores_with_CLIP.py`` l.112-120, 160-165), so BLEU-K is the best of BLEU-1..K and
  nearly always BLEU-1; corrected, BLEU-K is the best caption's BLEU-K.
- Warping error: RAFT is fed images already in [0, 1] that it scales as if in [0, 255]
  (``metrics/RAFT/optical_flow_scores.py`` l.179, ``core/raft.py`` l.90); that is the flow's input, applied by the
  caller (``EvalCrafterFlow``), not a formula here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

BLIP_FRAMES = 5  # Scores_with_CLIP.py l.144
# evaluate_a_set_of_videos.py l.36: EvalCrafter's rescale of DOVER's raw outputs (fitted on generated videos), then a
# logistic and x100 (l.40-41, 132-135). DOVER's own published constants are models.scorers.clarity's.
VQA_TECHNICAL = (0.0758, 0.0129)  # 100 * sigmoid((raw + 0.0758) / 0.0129)
VQA_AESTHETIC = (-0.1253, 0.0318)  # 100 * sigmoid((raw - 0.1253) / 0.0318)
# warp_utils.detect_occlusion: forward-backward check and motion boundary (Lai et al. 2018)
OCCLUSION = (0.01, 0.5)
BOUNDARY = (0.01, 0.002)

FlowPair = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (H, W, 3) float RGB in [0, 1] twice -> (H, W, 2) pixels


# -- VQA_A, VQA_T ----------------------------------------------------------------------------------------------------


def vqa(raw: float, constants: tuple[float, float]) -> float:
    """EvalCrafter's 0-100 score from a DOVER branch's raw output (the plain mean of its head's map)."""
    shift, scale = constants
    return float(100 / (1 + math.exp(-(raw + shift) / scale)))


# -- BLIP-BLEU -------------------------------------------------------------------------------------------------------


def blip_frame_indices(frames: int) -> list[int]:
    """``torch.linspace(0, N - 1, 5).long()`` (l.148): both ends, truncated. (N - 1) * i / 4 is exact in float32 for
    any frame count a video has, so integer arithmetic gives the same indices."""
    if frames < 1:
        raise ValueError("BLIP-BLEU needs at least one frame")
    return [(frames - 1) * i // (BLIP_FRAMES - 1) for i in range(BLIP_FRAMES)]


def coco_bleu(hypothesis: str, reference: str, n: int = 4) -> list[float]:
    """BLEU-1..n of one hypothesis against one reference as pycocoevalcap 1.2 computes it (``bleu/bleu_scorer.py``:
    whitespace tokens, case kept, clipped n-gram counts, 1e-15 / 1e-9 guards, brevity penalty from the closest
    reference length). With one segment the corpus score is the sentence score."""
    tiny, small = 1e-15, 1e-9
    hyp, ref = hypothesis.split(), reference.split()

    def grams(words: list[str], k: int) -> Counter:
        return Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1))

    scores, product = [], 1.0
    for k in range(1, n + 1):
        ref_counts = grams(ref, k)
        correct = sum(min(count, ref_counts[g]) for g, count in grams(hyp, k).items())
        guess = max(0, len(hyp) - k + 1)
        product *= (correct + tiny) / (guess + small)
        scores.append(product ** (1 / k))
    ratio = (len(hyp) + tiny) / (len(ref) + small)
    penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    return [s * penalty for s in scores]


def blip_bleu(captions: Sequence[str], prompt: str, corrected: bool = False) -> dict[str, float]:
    """``bleu_1``..``bleu_4`` and their mean ``blip_bleu`` of the frames' captions against the prompt.

    EvalCrafter (l.160-165): BLEU-K is ``np.max`` over every caption's BLEU-1..K, so nearly always the best caption's
    BLEU-1. ``corrected``: BLEU-K is the best caption's BLEU-K."""
    if not captions:
        raise ValueError("BLIP-BLEU needs at least one caption")
    table = np.array([coco_bleu(c, prompt.strip()) for c in captions])  # (captions, 4)
    best = [table[:, k - 1].max() if corrected else table[:, :k].max() for k in range(1, 5)]
    return {**{f"bleu_{k}": float(best[k - 1]) for k in range(1, 5)}, "blip_bleu": float(np.mean(best))}


# -- CLIP score, CLIP temporal consistency ----------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clip_score(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> float:
    """The mean over every frame of the cosine of its embedding with the prompt's: no x100, no clamp (l.61-65)."""
    frames = _unit(np.asarray(frame_embeddings, np.float64))
    text = _unit(np.asarray(text_embedding, np.float64).reshape(-1))
    return float(np.mean(frames @ text))


def clip_temporal(frame_embeddings: np.ndarray) -> float:
    """The mean cosine of adjacent frames' embeddings (l.101-108)."""
    frames = _unit(np.asarray(frame_embeddings, np.float64))
    if len(frames) < 2:
        raise ValueError("the CLIP temporal score needs at least 2 frames")
    return float(np.mean(np.sum(frames[:-1] * frames[1:], axis=1)))


# -- warping error ---------------------------------------------------------------------------------------------------


def halved(frame: np.ndarray) -> np.ndarray:
    """A uint8 RGB frame as EvalCrafter gives it to RAFT: / 255, halved (bilinear, ``align_corners=False``, l.179-186),
    then padded to a multiple of 8 by edge replication (RAFT's ``InputPadder``, 'sintel' mode, l.188); (H, W, 3)
    float32."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    pad_h, pad_w = (((h // 8) + 1) * 8 - h) % 8, (((w // 8) + 1) * 8 - w) % 8
    x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], mode="replicate")
    return x[0].permute(1, 2, 0).numpy()


def resample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) sampled at each pixel + ``flow`` (H, W, 2), bilinear, each corner clamped to the frame
    (``Resample2d``'s kernel: out-of-frame samples take the border's values, they are not dropped)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    x0, y0 = np.floor(x), np.floor(y)
    a, b = (x - x0)[..., None], (y - y0)[..., None]
    left, right = np.clip(x0, 0, w - 1).astype(int), np.clip(x0 + 1, 0, w - 1).astype(int)
    top, bottom = np.clip(y0, 0, h - 1).astype(int), np.clip(y0 + 1, 0, h - 1).astype(int)
    img = np.asarray(image, np.float64)
    return (
        (1 - a) * (1 - b) * img[top, left]
        + a * (1 - b) * img[top, right]
        + (1 - a) * b * img[bottom, left]
        + a * b * img[bottom, right]
    )


def occluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels the forward flow cannot explain (``warp_utils.detect_occlusion``): the backward flow warped along the
    forward one does not cancel it, |F + B(x + F)|^2 > 0.01 (|F|^2 + |B(x + F)|^2) + 0.5, or a motion boundary,
    the squared forward differences of F (0 at the last row and column) > 0.01 |F|^2 + 0.002."""
    back = resample(backward, forward)
    square = lambda f: f[..., 0] ** 2 + f[..., 1] ** 2  # noqa: E731
    mismatch = square(forward + back) > OCCLUSION[0] * (square(back) + square(forward)) + OCCLUSION[1]
    gradient = np.zeros(forward.shape[:2])
    for c in range(2):
        component = forward[..., c].astype(np.float64)
        gradient[:, :-1] += (component[:, :-1] - component[:, 1:]) ** 2
        gradient[:-1, :] += (component[:-1, :] - component[1:, :]) ** 2
    boundary = gradient > BOUNDARY[0] * square(forward) + BOUNDARY[1]
    return mismatch | boundary


def pair_warping_error(first: np.ndarray, second: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> float:
    """One pair's error (l.204-225): the squared difference of ``first`` and ``second`` warped back along ``forward``,
    summed over channels, over the pixels not occluded, divided by their number (every value's count if none)."""
    visible = ~occluded(forward, backward)
    squared = (resample(second, forward) - np.asarray(first, np.float64)) ** 2 * visible[..., None]
    count = int(visible.sum()) or squared.size
    return float(squared.sum() / count)


def warping_error(frames: np.ndarray, flow: FlowPair) -> float:
    """The mean over every adjacent pair of ``frames`` (N, H, W, 3) uint8 RGB of the pair's error, on the halved,
    padded [0, 1] frames, with ``flow`` run both ways on them (l.174-227)."""
    if len(frames) < 2:
        raise ValueError("the warping error needs at least 2 frames")
    images = [halved(f) for f in frames]
    errors = [pair_warping_error(a, b, flow(a, b), flow(b, a)) for a, b in zip(images[:-1], images[1:])]
    return float(np.mean(errors))
