"""The LAION "improved aesthetic predictor": an MLP on L2-normalised CLIP ViT-L/14 embeddings.

Layer layout follows the public checkpoint ``sac+logos+ava1-l14-linearMSE.pth``
(keys ``layers.{0,2,4,6,7}.{weight,bias}``): 768→1024→128→64→16→1 with dropouts
0.2/0.2/0.1 in between and no activations.
"""

from __future__ import annotations

import torch
from torch import nn

from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve


class AestheticHead(nn.Module):
    def __init__(self, input_size: int = 768):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(embeddings).squeeze(-1)


def load_aesthetic_head(weights: WeightsFile) -> tuple[AestheticHead, str]:
    """(head, weights digest): the public file loaded strictly."""
    path = resolve(weights)
    head = AestheticHead()
    head.load_state_dict(load_state_dict(path), strict=True)
    return head, file_digest(path)
