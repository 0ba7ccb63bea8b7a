"""RAFT optical flow (Teed and Deng, 2020) for the warping error of generated videos, as EvalCrafter runs it:
torchvision's architecture, weights from a file (EvalCrafter's raft-things checkpoint, as torchvision ported it).
``UnitImageRaft`` takes two (H, W, 3) float RGB images in [0, 1] whose sides are multiples of 8 and returns the
dense flow from the first to the second, in pixels, (H, W, 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from openvid_assets.models.registry.catalog import EVALCRAFTER_RAFT_WEIGHTS
from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve

MIN_SIDE = 128  # torchvision's RAFT: 8 x the 16 px its four-level correlation pyramid needs


@dataclass
class UnitImageRaft:
    """RAFT as EvalCrafter's warping error runs it (``metrics/RAFT/optical_flow_scores.py`` l.179-199): on (H, W, 3)
    float RGB images in [0, 1] whose sides are multiples of 8 (halved and padded by the caller), 20 updates, no
    resize. RAFT's own input step is ``2 * (x / 255) - 1``; EvalCrafter gives it [0, 1] images (``pixel_scale`` 1,
    its bug: RAFT sees nearly flat images), corrected they are scaled to [0, 255] first (``pixel_scale`` 255).

    torchvision's RAFT refuses images under 128 px (its correlation pyramid), where EvalCrafter's runs on an
    undersized pyramid: smaller images are padded to 128 by edge replication (bottom and right) and the flow cut back,
    the one departure from EvalCrafter (frames under 256 px before halving)."""

    model: Any  # torchvision.models.optical_flow.RAFT
    updates: int = 20
    pixel_scale: float = 1.0

    @torch.inference_mode()
    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        param = next(self.model.parameters())

        height, width = first.shape[:2]

        def tensor(image: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(param.device, torch.float32)
            x = torch.nn.functional.pad(
                x, [0, max(0, MIN_SIDE - width), 0, max(0, MIN_SIDE - height)], mode="replicate"
            )
            return 2 * (x * self.pixel_scale / 255.0) - 1

        flow = self.model(tensor(first), tensor(second), num_flow_updates=self.updates)[-1][0]
        return flow[:, :height, :width].permute(1, 2, 0).float().cpu().numpy()


def load_raft(
    weights: WeightsFile = EVALCRAFTER_RAFT_WEIGHTS, device: str | torch.device = "cpu", pixel_scale: float = 1.0
) -> tuple[UnitImageRaft, str]:
    """(flow, weights digest): RAFT-large with every key of the weights file, loaded strictly."""
    from torchvision.models.optical_flow import raft_large

    path = resolve(weights)
    model = raft_large(weights=None)
    model.load_state_dict(load_state_dict(path), strict=True)
    return UnitImageRaft(model.to(device).eval(), pixel_scale=pixel_scale), file_digest(path)


def tiny_raft(seed: int = 0, device: str | torch.device = "cpu") -> UnitImageRaft:
    """RAFT-small with random weights: the real interface, offline (its flows mean nothing)."""
    from torchvision.models.optical_flow import raft_small

    from openvid_assets.models.registry.runtime import seeded

    with seeded(seed):
        model = raft_small(weights=None)
    return UnitImageRaft(model.to(device).eval(), updates=4)
