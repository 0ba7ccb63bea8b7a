"""Aesthetic score of stored CLIP embeddings: the LAION head (networks/laion_aesthetic.py) on one device."""

from __future__ import annotations

import numpy as np
import torch

from openvid_assets.models.networks.laion_aesthetic import AestheticHead, load_aesthetic_head
from openvid_assets.models.registry.runtime import built_or_loaded, pick_device
from openvid_assets.models.registry.weights import WeightsFile


class AestheticScorer:
    """Scores unit-length embeddings; a video's score is the mean over its frames."""

    def __init__(self, weights: WeightsFile | None, device: str = "auto", seed: int = 0):
        self.device = pick_device(device)
        head, self.weights_digest = built_or_loaded(AestheticHead, load_aesthetic_head, weights, seed)
        self.head = head.eval().to(self.device)
        self.name = "laion-aesthetic-v2"

    @torch.inference_mode()
    def score(self, embeddings: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(embeddings, np.float32)).to(self.device)
        return self.head(x).float().cpu().numpy()
