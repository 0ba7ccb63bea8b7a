"""RAFT optical flow (Teed and Deng, 2020) for the warping error of generated videos: torchvision's architecture,
weights from a file (torchvision's release trained on FlyingChairs, Things, Sintel, KITTI and HD1K).

``RaftFlow`` has the interface of ``video_metrics.farneback_flow``: two uint8 RGB frames in, the dense flow from the
first to the second out, in pixels, (H, W, 2). RAFT needs sides that are multiples of 8 and at least 128 px for its
four-level correlation pyramid at 1/8 scale, so frames are resized up to that and the flow is scaled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve

RAFT_WEIGHTS = WeightsFile(
    "raft/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
    "https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
    "RAFT-large optical flow, torchvision's C+T+S+K+H weights",
)
MIN_SIDE = 128


def working_size(width: int, height: int, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """(width, height) with the short side at least ``min_side``, both rounded up to multiples of 8."""
    scale = max(1.0, min_side / min(width, height))
    return tuple(int(np.ceil(side * scale / 8)) * 8 for side in (width, height))  # type: ignore[return-value]


@dataclass
class RaftFlow:
    model: Any  # torchvision.models.optical_flow.RAFT
    updates: int = 12  # refinement iterations (torchvision's default)

    @torch.inference_mode()
    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        height, width = first.shape[:2]
        size = working_size(width, height)
        param = next(self.model.parameters())

        def tensor(frame: np.ndarray) -> torch.Tensor:
            resized = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            x = torch.from_numpy(resized).permute(2, 0, 1)[None].to(param.device, torch.float32)
            return x / 127.5 - 1  # RAFT's input range, [-1, 1]

        flow = self.model(tensor(first), tensor(second), num_flow_updates=self.updates)[-1][0]
        flow = flow.permute(1, 2, 0).float().cpu().numpy()
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        return flow * np.array([width / size[0], height / size[1]], dtype=np.float32)  # back to the frame's pixels


def load_raft(weights: WeightsFile = RAFT_WEIGHTS, device: str | torch.device = "cpu") -> tuple[RaftFlow, str]:
    """(flow, weights digest): RAFT-large with every key of the weights file, loaded strictly."""
    from torchvision.models.optical_flow import raft_large

    path = resolve(weights)
    model = raft_large(weights=None)
    model.load_state_dict(load_state_dict(path), strict=True)
    return RaftFlow(model.to(device).eval()), file_digest(path)


def tiny_raft(seed: int = 0, device: str | torch.device = "cpu") -> RaftFlow:
    """RAFT-small with random weights: the real interface, offline (its flows mean nothing)."""
    from torchvision.models.optical_flow import raft_small

    from openvid_assets.models.registry.runtime import seeded

    with seeded(seed):
        model = raft_small(weights=None)
    return RaftFlow(model.to(device).eval(), updates=4)
