"""NSFW score of stored CLIP embeddings: the Stable Diffusion safety checker's concept test
(networks/safety_checker.py) on one device, no second CLIP pass over the frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from openvid_assets.models.networks.safety_checker import load_safety_concepts, random_safety_concepts
from openvid_assets.models.registry.runtime import built_or_loaded, pick_device
from openvid_assets.models.registry.weights import WeightsFile


class NSFWScorer:
    """Per-frame safety-checker scores of stored unit-length CLIP embeddings (> 0: the checker flags the
    frame); a video's score is its worst frame's."""

    def __init__(self, weights: WeightsFile | None, device: str = "auto", seed: int = 0, clip_visual: Any = None):
        self.device = pick_device(device)
        concepts, self.weights_digest = built_or_loaded(
            random_safety_concepts, lambda w: load_safety_concepts(w, clip_visual), weights, seed
        )
        self.concepts = concepts.eval().to(self.device)
        self.name = "sd-safety-checker"

    @torch.inference_mode()
    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 768) -> (N,) float32."""
        x = torch.from_numpy(np.asarray(embeddings, np.float32)).to(self.device)
        return self.concepts(x).float().cpu().numpy()

    @staticmethod
    def video_score(per_frame: np.ndarray) -> float:
        return float(np.max(per_frame))
