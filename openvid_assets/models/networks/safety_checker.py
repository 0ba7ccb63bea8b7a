"""NSFW score: the Stable Diffusion safety checker's concept test, run on the stored CLIP ViT-L/14 embeddings.

The checker (``CompVis/stable-diffusion-safety-checker``; diffusers' ``StableDiffusionSafetyChecker``, as
MiraData used it) is a CLIP ViT-L/14 vision tower, a projection to the 768-d embedding space, and 17
"concept" plus 3 "special care" embeddings with one threshold each. Its tower and projection are OpenAI's
CLIP ViT-L/14, the model whose unit-length embeddings the pipeline already stores, so only the concept
test runs here: no second pass of a 300M-parameter tower over the frames. ``load_safety_concepts`` can
check that premise against the pipeline's open_clip model (projection and class embedding equal).

The test, as diffusers' ``forward`` computes it (``pipelines/stable_diffusion/safety_checker.py``, 0.42.1,
lines 59-88), per image:

- cosines of the embedding to every concept (both sides L2-normalised first);
- special care: ``round(cos_i - w_i + adjustment, 3)``, and once one is > 0 the adjustment becomes 0.01.
  The first special concept to fire did so with adjustment 0, so the adjustment is 0.01 exactly when some
  ``round(cos_i - w_i, 3) > 0``; that is how it is computed here;
- concepts: ``round(cos_j - w_j + adjustment, 3)``; the image is flagged when any is > 0.

``SafetyConcepts`` returns the largest concept score, rounded to 3 decimals (half to even, like NumPy's
``round``) as upstream does, so score > 0 exactly when the checker flags the frame (ties at the rounding
boundary aside). ``decimals=None`` gives the unrounded score that ``forward_onnx`` thresholds (lines
117-125): continuous, but then > 0 flags a little more (scores in (0, 0.0005]).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openvid_assets.models.registry.catalog import SD_SAFETY_CHECKER  # noqa: F401 - re-exported
from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve

EMBED_DIM = 768
N_CONCEPTS, N_SPECIAL = 17, 3
SPECIAL_CARE_ADJUSTMENT = 0.01
DECIMALS = 3

TOWER_PREFIX = "vision_model.vision_model."  # the checker's CLIPVisionModel, in the transformers 4 layout
POSITION_IDS = TOWER_PREFIX + "embeddings.position_ids"
CLASS_EMBEDDING = TOWER_PREFIX + "embeddings.class_embedding"
PROJECTION = "visual_projection.weight"
CONCEPT_SHAPES = {
    "concept_embeds": (N_CONCEPTS, EMBED_DIM),
    "special_care_embeds": (N_SPECIAL, EMBED_DIM),
    "concept_embeds_weights": (N_CONCEPTS,),
    "special_care_embeds_weights": (N_SPECIAL,),
}
# Older transformers saved this buffer (the published file has it); newer ones do not: either file is the checker.
OPTIONAL_KEYS = frozenset({POSITION_IDS})


@dataclass(frozen=True)
class CheckerTower:
    """Sizes of the checker's CLIP vision tower, in ``CLIPVisionConfig`` terms (the key list depends on them)."""

    hidden: int = 1024
    layers: int = 24
    heads: int = 16
    intermediate: int = 4096
    patch: int = 14
    image: int = 224


VIT_L14 = CheckerTower()
# The vision tower of catalog.TINY_CLIP_CONFIG in Hugging Face layout: tests of the loader and the tower check.
TINY_TOWER = CheckerTower(hidden=64, layers=2, heads=2, intermediate=256, patch=16, image=64)


class SafetyConcepts(nn.Module):
    """The checker's concept test on CLIP embeddings; buffers named like the file's keys."""

    def __init__(self, decimals: int | None = DECIMALS):
        super().__init__()
        self.decimals = decimals
        for key, shape in CONCEPT_SHAPES.items():
            self.register_buffer(key, torch.zeros(shape))

    def _rounded(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.decimals is None else torch.round(x, decimals=self.decimals)

    def concept_scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, 768) -> (N, 17): ``cos - threshold + adjustment`` per concept; > 0 is a bad concept."""
        x = F.normalize(embeddings.float(), dim=-1)  # stored fp16: norms are 1 only to ~1e-3
        special = x @ F.normalize(self.special_care_embeds.float(), dim=-1).T - self.special_care_embeds_weights
        adjustment = (self._rounded(special) > 0).any(dim=1, keepdim=True) * SPECIAL_CARE_ADJUSTMENT
        cos = x @ F.normalize(self.concept_embeds.float(), dim=-1).T
        return self._rounded(cos - self.concept_embeds_weights + adjustment)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, 768) -> (N,): the largest concept score; > 0 means the checker flags the frame."""
        return self.concept_scores(embeddings).amax(dim=1)


def random_safety_concepts() -> SafetyConcepts:
    """A stand-in for plumbing only (tests, dry runs): random unit concept vectors, thresholds in [0.45, 0.55].

    Random 768-d unit vectors have cosines of std ~0.036, so random embeddings score about -0.4 and are
    never flagged; the stand-in's scores say nothing about content.
    """
    concepts = SafetyConcepts()
    concepts.concept_embeds.copy_(F.normalize(torch.randn(N_CONCEPTS, EMBED_DIM), dim=-1))
    concepts.special_care_embeds.copy_(F.normalize(torch.randn(N_SPECIAL, EMBED_DIM), dim=-1))
    concepts.concept_embeds_weights.uniform_(0.45, 0.55)
    concepts.special_care_embeds_weights.uniform_(0.45, 0.55)
    return concepts


def expected_checker_keys(tower: CheckerTower = VIT_L14) -> dict[str, tuple[int, ...]]:
    """Every key of the published checker file and its shape: the tower's from transformers' own
    ``CLIPVisionModel`` (built on the meta device: no memory, no download), the rest spelled out."""
    return dict(_expected_checker_keys(tower))


@lru_cache
def _expected_checker_keys(tower: CheckerTower) -> tuple[tuple[str, tuple[int, ...]], ...]:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(
        hidden_size=tower.hidden,
        num_hidden_layers=tower.layers,
        num_attention_heads=tower.heads,
        intermediate_size=tower.intermediate,
        patch_size=tower.patch,
        image_size=tower.image,
        projection_dim=EMBED_DIM,
    )
    with torch.device("meta"):
        model = CLIPVisionModel(config)
    keys: dict[str, tuple[int, ...]] = {}
    # transformers 4 nests the tower as CLIPVisionModel.vision_model, as the file does; 5 flattens it and
    # renames on load. Either way the file's key is the tower-relative name under TOWER_PREFIX.
    position_ids = [(n, b) for n, b in model.named_buffers() if n.endswith("embeddings.position_ids")]
    for name, tensor in [*model.state_dict().items(), *position_ids]:  # position_ids: not persistent any more
        keys[TOWER_PREFIX + name.removeprefix("vision_model.")] = tuple(tensor.shape)
    keys[PROJECTION] = (EMBED_DIM, tower.hidden)
    keys.update(CONCEPT_SHAPES)
    return tuple(keys.items())


def check_checker_layout(
    shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source: str = "the file"
) -> None:
    """Raise a ValueError naming every missing, unexpected and mis-shaped key (``OPTIONAL_KEYS`` may be absent)."""
    missing = sorted(set(expected) - set(shapes) - OPTIONAL_KEYS)
    unexpected = sorted(set(shapes) - set(expected))
    misshaped = sorted(k for k in set(shapes) & set(expected) if tuple(shapes[k]) != tuple(expected[k]))
    if not (missing or unexpected or misshaped):
        return

    def listed(keys: list[str]) -> str:
        return ", ".join(keys[:10]) + (f" (+{len(keys) - 10} more)" if len(keys) > 10 else "")

    problems = [
        f"missing keys: {listed(missing)}" if missing else "",
        f"unexpected keys: {listed(unexpected)}" if unexpected else "",
        "mis-shaped keys: " + listed([f"{k} {tuple(shapes[k])} (expected {tuple(expected[k])})" for k in misshaped])
        if misshaped
        else "",
    ]
    raise ValueError(
        f"{source} is not the Stable Diffusion safety checker's layout; " + "; ".join(p for p in problems if p)
    )


def check_same_tower(state: Mapping[str, torch.Tensor], clip_visual: Any, source: str = "the file") -> None:
    """Raise unless the checker's tower is ``clip_visual`` (an open_clip VisionTransformer): projection and class
    embedding equal within fp16 rounding. Otherwise its concepts sit in another space than the stored embeddings."""
    proj = getattr(clip_visual, "proj", None)
    pairs = [
        ("visual_projection.weight vs proj.T", state[PROJECTION], None if proj is None else proj.T),
        ("class_embedding", state[CLASS_EMBEDDING], getattr(clip_visual, "class_embedding", None)),
    ]
    for what, ours, theirs in pairs:
        if theirs is None or tuple(ours.shape) != tuple(theirs.shape):
            detail = f"{what}: shape {tuple(ours.shape)} vs {None if theirs is None else tuple(theirs.shape)}"
        else:
            a, b = ours.detach().float().cpu(), theirs.detach().float().cpu()
            if torch.allclose(a, b, rtol=1e-3, atol=1e-3):
                continue
            detail = f"{what}: largest difference {(a - b).abs().max().item():.3g}"
        raise ValueError(
            f"the safety checker's vision tower is not the pipeline's CLIP ({source}; {detail}): "
            "its concept embeddings live in another embedding space, so their cosines to the "
            "stored embeddings would mean nothing"
        )


def load_safety_concepts(
    weights: WeightsFile, clip_visual: Any = None, *, tower: CheckerTower = VIT_L14, decimals: int | None = DECIMALS
) -> tuple[SafetyConcepts, str]:
    """(concept test, weights digest): the whole checker file checked strictly against its published layout,
    its tower optionally checked to be ``clip_visual``, and only the four concept tensors kept."""
    path = resolve(weights)
    state = load_state_dict(path)
    check_checker_layout({k: tuple(v.shape) for k, v in state.items()}, expected_checker_keys(tower), str(path))
    if clip_visual is not None:
        check_same_tower(state, clip_visual, str(path))
    concepts = SafetyConcepts(decimals)
    concepts.load_state_dict({k: state[k] for k in CONCEPT_SHAPES}, strict=True)
    return concepts, file_digest(path)
