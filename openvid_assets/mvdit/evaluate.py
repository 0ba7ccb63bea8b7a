"""The paper's metrics of generated videos (its Table 3), one row per sampled video, under a named definition
(``METRIC_DEFINITIONS``; the ``mvdit`` resource's ``metrics``, written into every row, so two definitions never mix
in one report):

- ``evalcrafter`` (the default) computes each number as EvalCrafter's code does, the code the paper's table comes
  from, bugs included: ``vqa_a`` / ``vqa_t``: 100 x a logistic of DOVER's raw outputs rescaled by EvalCrafter's
  constants; ``clip_score``: the mean cosine of every frame with the prompt, ``clip_temporal``: of adjacent frames;
  ``warping_error``: RAFT flows both ways on halved frames, occlusions and motion boundaries left out;
  ``blip_bleu``: BLIP-2 captions of 5 frames from first to last, in BGR, pycocoevalcap BLEU against the prompt,
  EvalCrafter's max over captions and orders;
- ``evalcrafter-corrected``: the same with EvalCrafter's bugs repaired: BLIP-2 sees RGB frames, RAFT sees images on
  the scale it expects, BLEU-K is the best caption's BLEU-K.

Formulas, with EvalCrafter's file and line for each: ``mvdit/metrics/evalcrafter.py``; docs/EVALUATION.md compares
the definitions. A video that cannot be decoded is a row with the reason, never a stopped step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import polars as pl
import torch

from openvid_assets.media.frames import FrameRequest, read_frames
from openvid_assets.media.probe import probe
from openvid_assets.media.sources import VideoInputError
from openvid_assets.mvdit.metrics import evalcrafter as ec

METRIC_DEFINITIONS = {"evalcrafter": False, "evalcrafter-corrected": True}  # name -> EvalCrafter's bugs repaired
BLIP_INPUT = (224, 224)  # Scores_with_CLIP.py l.137: each frame squashed to 224 x 224 (cv2, bilinear)

EVAL_SCHEMA = {
    "video": pl.String,
    "definition": pl.String,
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


def corrected_definition(definition: str) -> bool:
    """Whether ``definition`` repairs EvalCrafter's bugs; a clear error for an unknown name."""
    if definition not in METRIC_DEFINITIONS:
        raise ValueError(f"unknown metric definition {definition!r}; choose one of {sorted(METRIC_DEFINITIONS)}")
    return METRIC_DEFINITIONS[definition]


def unit_farneback(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """OpenCV's Farneback flow between two (H, W, 3) RGB images in [0, 1]: the offline profile's stand-in for RAFT."""
    a, b = (cv2.cvtColor(np.round(f * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in (first, second))
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def clip_score_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """CLIP score's input as EvalCrafter makes it (Scores_with_CLIP.py l.33-38): each frame squashed to size x size
    (cv2, bilinear), as floats 0-255: not scaled, not normalised."""
    squashed = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames])
    return torch.from_numpy(squashed).permute(0, 3, 1, 2).float()


def clip_temporal_pixels(frames: np.ndarray, size: int) -> torch.Tensor:
    """CLIP temporal's input as EvalCrafter makes it (l.76-85): torchvision's Resize on float frames (bilinear, no
    antialias in its torchvision 0.15, not rounded), 0-255, not normalised."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def blip_inputs(frames: np.ndarray, definition: str) -> list[np.ndarray]:
    """The frames BLIP-2 captions: 5 from first to last, squashed to 224 x 224; EvalCrafter never converts its
    OpenCV frames to RGB for BLIP-2 (l.134-139), so under its definition they are BGR."""
    picked = [
        cv2.resize(frames[i], BLIP_INPUT, interpolation=cv2.INTER_LINEAR) for i in ec.blip_frame_indices(len(frames))
    ]
    return picked if corrected_definition(definition) else [np.ascontiguousarray(f[..., ::-1]) for f in picked]


@dataclass
class SampleEvaluator:
    """The models the metrics need: a CLIP image embedder and its text tower (``text``: prompts -> unit
    vectors), DOVER's technical (``technical``) and aesthetic (``aesthetic``) scorers (their raw outputs are
    used), a BLIP-2 frame captioner (``captioner``: frames -> captions, ``mvdit.metrics.blip_bleu.FrameCaptioner``)
    and a flow between two halved [0, 1] images (``flow``: ``UnitImageRaft``, or ``unit_farneback``)."""

    embedder: Any
    text: Any
    technical: Any
    aesthetic: Any
    captioner: Any
    flow: ec.FlowPair = unit_farneback
    definition: str = "evalcrafter"
    _prompts: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        corrected_definition(self.definition)

    def _decoded(self, path: Path, request: FrameRequest, facts: Any = None) -> tuple[list[int], np.ndarray]:
        facts = facts or probe(path)
        decoded = read_frames(path, request, width=facts.width, height=facts.height, rotation=facts.rotation)
        return decoded.indices, decoded.frames

    def evaluate(self, path: Path, prompt: str) -> dict[str, float]:
        prompt = prompt.strip()  # EvalCrafter reads each prompt with .strip()
        if prompt not in self._prompts:
            self._prompts[prompt] = self.text([prompt])[0]
        facts = probe(path)  # once: each metric decodes its own frames at its own size
        _, frames = self._decoded(path, ALL_FRAMES, facts)
        corrected = corrected_definition(self.definition)
        if corrected:  # CLIP's own preprocessing: short side, centre crop, normalised
            for_score = for_temporal = self.embedder.embed(frames)
        else:  # EvalCrafter's: squashed, raw 0-255, a different resize for each score
            size = self.embedder.image_size
            for_score = self.embedder.embed_pixels(clip_score_pixels(frames, size))
            for_temporal = self.embedder.embed_pixels(clip_temporal_pixels(frames, size))
        row = {
            "clip_score": ec.clip_score(for_score, self._prompts[prompt]),
            "clip_temporal": ec.clip_temporal(for_temporal),
            "warping_error": ec.warping_error(frames, self.flow),
        }
        for name, scorer, constants in (
            ("vqa_t", self.technical, ec.VQA_TECHNICAL),
            ("vqa_a", self.aesthetic, ec.VQA_AESTHETIC),
        ):
            row[name] = ec.vqa(scorer.score(*self._decoded(path, scorer.request, facts))["dover_raw"], constants)
        # BLIP-BLEU captions frames already decoded: no second decode.
        captions = self.captioner.captions(blip_inputs(frames, self.definition))
        row.update(ec.blip_bleu(captions, prompt, corrected=corrected))
        return row


def evaluate_samples(samples: Sequence[tuple[Path, str]], evaluator: SampleEvaluator) -> pl.DataFrame:
    """One row per (video file, prompt); a video that fails is a failed row with its reason."""
    rows = []
    for path, prompt in samples:
        base = {"video": Path(path).name, "definition": evaluator.definition, "prompt": prompt}
        try:
            rows.append({**base, "status": "ok", **evaluator.evaluate(Path(path), prompt)})
        except (VideoInputError, ValueError) as e:  # unreadable, or too short to measure: a row, not a stop
            rows.append({**base, "status": "failed", "error": f"{type(e).__name__}: {e}"})
    return pl.DataFrame(rows, schema=EVAL_SCHEMA)


def evaluator_for(profile: Any, device: str = "auto", definition: str = "evalcrafter") -> SampleEvaluator:
    """The metrics' models for a model profile: EvalCrafter's checkpoints for the paper profile (CLIP ViT-B/32, image
    and text towers of one checkpoint; DOVER; BLIP-2; RAFT), the profile's tiny CLIP, tiny random stand-ins and
    Farneback for the offline one."""
    from openvid_assets.models.networks import dover
    from openvid_assets.models.networks.raft import load_raft
    from openvid_assets.models.registry.catalog import EVALCRAFTER_CLIP
    from openvid_assets.models.registry.runtime import pick_device
    from openvid_assets.models.scorers.clarity import DoverAesthetic, DoverClarity
    from openvid_assets.models.scorers.clip import CLIPEmbedder, text_embeddings
    from openvid_assets.mvdit.metrics.blip_bleu import PAPER_BLIP2, TINY_BLIP2, FrameCaptioner

    offline = profile.name == "offline"
    technical, aesthetic = (dover.TINY, dover.AESTHETIC_TINY) if offline else (dover.PAPER, dover.AESTHETIC)
    weights = None if offline else dover.DOVER_WEIGHTS
    corrected = corrected_definition(definition)
    pixel_scale = 255.0 if corrected else 1.0
    flow = unit_farneback if offline else load_raft(device=pick_device(device), pixel_scale=pixel_scale)[0]
    clip = profile.clip if offline else EVALCRAFTER_CLIP
    return SampleEvaluator(
        CLIPEmbedder(clip, device=device),
        lambda prompts: text_embeddings(clip, prompts),
        DoverClarity(technical, weights, device=device),
        DoverAesthetic(technical, aesthetic, weights, device=device),
        FrameCaptioner(TINY_BLIP2 if offline else PAPER_BLIP2, device=device),
        flow,
        definition,
    )
