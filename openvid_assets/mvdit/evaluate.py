"""The paper's metrics of generated videos (its Table 3, EvalCrafter's definitions), one row per sampled video:

- ``vqa_a`` / ``vqa_t``: DOVER's aesthetic and technical quality, each rescaled to (0, 1) as published
  (``models.scorers.clarity.DoverAesthetic``; ``DoverClarity``, the pipeline's clarity score);
- ``clip_score``: 100 x the mean cosine of each frame with the prompt, ``clip_temporal``: the mean cosine of
  adjacent frames, both with a CLIP model (the recipe's: ViT-L/14 in the paper profile; EvalCrafter uses
  ViT-B/32);
- ``warping_error``: the mean squared error of each frame and the next one warped back along the optical flow,
  occluded pixels left out (the forward-backward check); the flow is RAFT's (``models/networks/raft.py``: torchvision's
  RAFT-large, weights from a file) in the paper profile, as EvalCrafter measures it, and OpenCV's Farneback (no
  weights) in the offline one;
- ``blip_bleu``: BLIP-2 (EvalCrafter's ``Salesforce/blip2-opt-2.7b``) captions 4 frames spread evenly over the
  video (greedy, at most 30 new tokens); each caption is scored against the prompt by BLEU-1..4 (nltk
  ``sentence_bleu``, cumulative weights, lower-cased whitespace tokens, smoothing ``method1``); ``bleu_1``..``bleu_4``
  are the means over the frames and ``blip_bleu`` the mean of the four, as EvalCrafter reports it.

Definitions and formulas: ``mvdit/metrics/video.py`` and ``mvdit/metrics/blip_bleu.py``. A video that cannot be
decoded is a row with the reason, never a stopped step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from openvid_assets.media.frames import FrameRequest, read_frames
from openvid_assets.media.probe import probe
from openvid_assets.media.sources import VideoInputError
from openvid_assets.mvdit.metrics.blip_bleu import BLIP_FRAMES, bleu_scores, spread
from openvid_assets.mvdit.metrics.video import Flow, clip_score, clip_temporal_score, farneback_flow, warping_error

EVAL_SCHEMA = {
    "video": pl.String,
    "prompt": pl.String,
    "status": pl.String,
    "error": pl.String,
    "vqa_a": pl.Float64,
    "vqa_t": pl.Float64,
    "clip_score": pl.Float64,
    "clip_temporal": pl.Float64,
    "warping_error": pl.Float64,
    "blip_bleu": pl.Float64,
    "bleu_1": pl.Float64,
    "bleu_2": pl.Float64,
    "bleu_3": pl.Float64,
    "bleu_4": pl.Float64,
}
METRICS = ("vqa_a", "vqa_t", "clip_score", "clip_temporal", "warping_error", "blip_bleu")
ALL_FRAMES = FrameRequest(indices=lambda n: list(range(n)))
PROMPT_SCHEMA = {"clip_id": pl.String, "prompt": pl.String, "video_id": pl.String, "held_out": pl.Boolean}


def given_prompts(prompts: Sequence[str]) -> pl.DataFrame:
    """The user's prompts as an evaluation prompt table: no clip, nothing held out."""
    return (
        pl.DataFrame({"prompt": list(prompts)})
        .with_columns(clip_id=pl.lit(None, pl.String), video_id=pl.lit(None, pl.String), held_out=pl.lit(False))
        .select(list(PROMPT_SCHEMA))
    )


def held_out_prompts(dataset: pl.DataFrame, wanted: int) -> pl.DataFrame:
    """The captions of ``wanted`` clips of the dataset (sql/held_out_prompts.sql), held out of training; at most
    half the clips, so the rest train. A dataset too small to spare one gives training captions, ``held_out``
    false."""
    from openvid_assets.store import run_sql

    count = min(wanted, dataset["clip_id"].n_unique() // 2)
    return run_sql("held_out_prompts", {"dataset": dataset}, {"count": count or wanted, "hold": bool(count)})


@dataclass
class SampleEvaluator:
    """The models the metrics need: a CLIP image embedder and its text tower (``text``: prompts -> unit
    vectors), DOVER's technical (``technical``) and aesthetic (``aesthetic``) scorers, and a BLIP-2 frame
    captioner (``captioner``: RGB frames -> captions, ``mvdit.metrics.blip_bleu.FrameCaptioner``)."""

    embedder: Any
    text: Any
    technical: Any
    aesthetic: Any
    captioner: Any
    flow: Flow = farneback_flow  # (frame, next frame) -> dense flow in pixels: RaftFlow, or Farneback
    _prompts: dict[str, np.ndarray] = field(default_factory=dict)

    def _decoded(self, path: Path, request: FrameRequest, facts: Any = None) -> tuple[list[int], np.ndarray]:
        facts = facts or probe(path)
        decoded = read_frames(path, request, width=facts.width, height=facts.height, rotation=facts.rotation)
        return decoded.indices, decoded.frames

    def evaluate(self, path: Path, prompt: str) -> dict[str, float]:
        if prompt not in self._prompts:
            self._prompts[prompt] = self.text([prompt])[0]
        facts = probe(path)  # once: each metric decodes its own frames at its own size
        _, frames = self._decoded(path, ALL_FRAMES, facts)
        vectors = self.embedder.embed(frames)
        row = {
            "clip_score": clip_score(vectors, self._prompts[prompt]),
            "clip_temporal": clip_temporal_score(vectors),
            "warping_error": warping_error(frames, self.flow),
        }
        for name, scorer in (("vqa_t", self.technical), ("vqa_a", self.aesthetic)):
            row[name] = scorer.score(*self._decoded(path, scorer.request, facts))["score"]
        # BLIP-BLEU captions a few of the frames already decoded: no second decode.
        captions = self.captioner.captions([frames[i] for i in spread(len(frames), BLIP_FRAMES)])
        row.update(bleu_scores(captions, prompt))
        return row


def evaluate_samples(samples: Sequence[tuple[Path, str]], evaluator: SampleEvaluator) -> pl.DataFrame:
    """One row per (video file, prompt); a video that fails is a failed row with its reason."""
    rows = []
    for path, prompt in samples:
        base = {"video": Path(path).name, "prompt": prompt}
        try:
            rows.append({**base, "status": "ok", **evaluator.evaluate(Path(path), prompt)})
        except (VideoInputError, ValueError) as e:  # unreadable, or too short to measure: a row, not a stop
            rows.append({**base, "status": "failed", "error": f"{type(e).__name__}: {e}"})
    return pl.DataFrame(rows, schema=EVAL_SCHEMA)


def evaluator_for(profile: Any, device: str = "auto") -> SampleEvaluator:
    """The metrics' models for a model profile: the profile's CLIP (image and text towers of the same
    checkpoint), DOVER and BLIP-2 (the weights file and EvalCrafter's checkpoint for the paper profile, tiny random
    stand-ins for the offline one)."""
    from openvid_assets.models.networks import dover
    from openvid_assets.mvdit.metrics.blip_bleu import PAPER_BLIP2, TINY_BLIP2, FrameCaptioner
    from openvid_assets.models.scorers.clarity import DoverAesthetic, DoverClarity
    from openvid_assets.models.scorers.clip import CLIPEmbedder, text_embeddings

    from openvid_assets.models.networks.raft import load_raft
    from openvid_assets.models.registry.runtime import pick_device

    offline = profile.name == "offline"
    technical, aesthetic = (dover.TINY, dover.AESTHETIC_TINY) if offline else (dover.PAPER, dover.AESTHETIC)
    weights = None if offline else dover.DOVER_WEIGHTS
    return SampleEvaluator(
        CLIPEmbedder(profile.clip, device=device),
        lambda prompts: text_embeddings(profile.clip, prompts),
        DoverClarity(technical, weights, device=device),
        DoverAesthetic(technical, aesthetic, weights, device=device),
        FrameCaptioner(TINY_BLIP2 if offline else PAPER_BLIP2, device=device),
        farneback_flow if offline else load_raft(device=pick_device(device))[0],
    )
