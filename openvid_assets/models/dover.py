"""DOVER's technical branch (video clarity / technical quality), the measure OpenVid-1M filters on.

DOVER (Wu et al., "Exploring Video Quality Assessment on User Generated Contents
from Aesthetic and Technical Perspectives", ICCV 2023) scores technical quality
with FAST-VQA's design: a Video Swin-T sees "fragments", a 7x7 mosaic of 32x32
patches cut at native resolution from a grid over the frame (so compression
artefacts, noise and blur are seen pixel for pixel), with the same patch
positions for every frame of a 32-frame clip. Attention windows that straddle
two fragments use a separate learned bias table (the "gated relative position
bias"); a 1x1x1-conv head maps every output token to a local quality, and the
video's raw score is the mean over tokens and clips. The published rescale
``sigmoid((raw - 0.1107) / 0.07355)`` maps it to (0, 1).

The layer names and shapes follow the public checkpoint ``DOVER.pth`` (keys
``technical_backbone.*`` and ``technical_head.*``; the aesthetic branch's keys
in the same file are ignored, and that branch is never built). The code is
written from the paper and the public description of the model; the key list it
must match is ``openvid_assets_tests/data/dover_technical_keys.json``.

Deterministic sampling (our choice; upstream draws these at random on every run):

* Frames: ``num_clips`` clips of ``clip_len`` frames ``frame_interval`` apart.
  A video long enough for one clip per third (each third at least a clip's span,
  ``(clip_len - 1) * frame_interval + 1`` frames) gets one clip per third at a
  seeded offset within it, as upstream does. A shorter video that still holds
  one span gets clips spread evenly from the first to the last possible start
  (they overlap). A video shorter than a span but with at least ``clip_len``
  frames gets ``clip_len`` distinct frames spread evenly over the whole video
  (a smaller interval), the same frames for every clip (the clips still differ
  in fragment positions). Only a video with fewer than ``clip_len`` frames
  repeats frames: each one is held for about ``clip_len / num_frames``
  consecutive slots (nearest-frame temporal upsampling, never a jump back to the
  start as upstream's wrap-around does).
* Fragments: a frame whose short side is under ``7 * 32`` px is first upsampled
  (bilinear) so that its short side is exactly that; then the frame is split
  into a 7x7 grid of cells, and each cell gives one 32x32 patch at a seeded
  offset within the cell. Offsets depend only on (seed, clip number, frame
  height, frame width), so they are the same for every frame of a clip, every
  decode chunk and every run.

Because the decoder's per-chunk ``reduce`` sees frames without their positions
in the plan, it cuts every clip's fragment layout from each frame it is given:
reduced frames are ``(n, num_clips, 224, 224, 3)`` uint8 and :meth:`DoverClarity.score`
keeps, for the ``p``-th planned frame, layout ``p // clip_len``. This keeps the
reduce a pure function (safe in the decode threads) at the cost of holding
``num_clips`` small mosaics per frame instead of one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openvid_assets.media.frames import FrameRequest
from openvid_assets.models.runtime import built_or_loaded, pick_device, pick_dtype
from openvid_assets.models.catalog import DOVER_WEIGHTS  # noqa: F401 - re-exported
from openvid_assets.models.weights import WeightsFile, file_digest, load_state_dict, resolve


TECHNICAL_PREFIXES = ("technical_backbone.", "technical_head.")

MASK_VALUE = -100.0  # additive attention mask between tokens that a cyclic shift made neighbours


@dataclass(frozen=True)
class DoverConfig:
    """Architecture and sampling of the technical branch."""

    name: str
    # Video Swin backbone
    patch_size: tuple[int, int, int] = (2, 4, 4)
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: tuple[int, int, int] = (8, 7, 7)
    mlp_ratio: float = 4.0
    frag_biases: tuple[bool, ...] = (True, True, True, False)  # gated fragment bias, per stage
    # regression head (1x1x1 convs on the last stage's tokens)
    head_hidden: int = 64
    # sampling
    fragments: int = 7  # grid cells per side
    fragment_size: int = 32  # patch side, px
    clip_len: int = 32
    frame_interval: int = 2
    num_clips: int = 3
    # input normalisation (0..255 RGB) and the published rescale of the raw technical score
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    rescale_shift: float = 0.1107
    rescale_scale: float = 0.07355

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    @property
    def input_size(self) -> int:
        return self.fragments * self.fragment_size


PAPER = DoverConfig(name="dover-technical")
# Same classes and code paths (fragment bias in the first three stages, shifted windows, patch
# merging, same sampling), a tiny width and depth: for tests and the offline profile.
# Two blocks in the last two (cheap) stages keep the shifted-window paths: with the fragment
# bias (stage 3) and with a window covering the whole 7x7 map (stage 4). Windows are 2 frames
# deep instead of 8 (same 7x7 spatial windows and fragment gating), a quarter of the attention cost.
TINY = DoverConfig(name="dover-technical-tiny", embed_dim=16, depths=(1, 1, 2, 2), num_heads=(1, 1, 1, 2),
                   window_size=(2, 7, 7), head_hidden=8)  # fmt: skip


# --------------------------------------------------------------------------- windows


def effective_window(size: tuple[int, ...], window: tuple[int, ...],
                     shift: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:  # fmt: skip
    """A window no larger than the feature map; no shift along an axis the window covers whole."""
    win, sh = list(window), list(shift)
    for axis, length in enumerate(size):
        if length <= window[axis]:
            win[axis], sh[axis] = length, 0
    return tuple(win), tuple(sh)


def to_windows(x: torch.Tensor, window: tuple[int, int, int]) -> torch.Tensor:
    """(B, D, H, W, C) -> (B, nW, Wd*Wh*Ww, C), windows in (d, h, w) raster order."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.view(b, d // wd, wd, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, -1, wd * wh * ww, c)


def from_windows(windows: torch.Tensor, window: tuple[int, int, int], d: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`to_windows`."""
    b, c = windows.shape[0], windows.shape[-1]
    wd, wh, ww = window
    x = windows.view(b, d // wd, h // wh, w // ww, wd, wh, ww, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, d, h, w, c)


def relative_position_index(window: tuple[int, int, int]) -> torch.Tensor:
    """(N, N) index into a (2Wd-1)(2Wh-1)(2Ww-1)-row bias table of each token pair's offset in a window."""
    wd, wh, ww = window
    grid = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"))
    flat = grid.flatten(1)  # 3, N
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # N, N, 3: query minus key
    rel = rel + torch.tensor([wd - 1, wh - 1, ww - 1])
    return rel[..., 0] * (2 * wh - 1) * (2 * ww - 1) + rel[..., 1] * (2 * ww - 1) + rel[..., 2]


def _shift_labels(length: int, window: int, shift: int) -> torch.Tensor:
    """Which of the (up to) three bands a cyclic shift by ``shift`` splits an axis into."""
    labels = torch.zeros(length, dtype=torch.long)
    if shift > 0:
        labels[length - window : length - shift] = 1
        labels[length - shift :] = 2
    return labels


@lru_cache(maxsize=64)
def shift_mask(size: tuple[int, int, int], window: tuple[int, int, int], shift: tuple[int, int, int],
               device: torch.device) -> torch.Tensor:  # fmt: skip
    """(nW, N, N) additive mask: tokens that come from different bands of the shifted map may not attend."""
    ld, lh, lw = (_shift_labels(n, w, s) for n, w, s in zip(size, window, shift))
    labels = (ld[:, None, None] * 9 + lh[None, :, None] * 3 + lw[None, None, :]).float()
    win = to_windows(labels[None, ..., None], window)[0, ..., 0]  # nW, N
    differ = win[:, None, :] != win[:, :, None]
    return torch.where(differ, MASK_VALUE, 0.0).to(device)


@lru_cache(maxsize=64)
def fragment_gate(size: tuple[int, int, int], window: tuple[int, int, int], shift: tuple[int, int, int],
                  device: torch.device) -> torch.Tensor:  # fmt: skip
    """(nW, N, N) L1 distance, in fragment-grid cells, between the fragments two tokens of a window belong to.

    The (padded) feature map is split into a (1, Wh, Ww) grid of fragments by nearest-neighbour
    assignment (token ``y`` of ``Hp`` rows is in row ``y * Wh // Hp``; ``Hp`` is a multiple of
    ``Wh``), shifted like the features. How the distance mixes the two bias tables is in
    :meth:`WindowAttention3D.bias`.
    """
    _, hp, wp = size
    _, wh, ww = window
    rows = torch.arange(hp) * wh // hp
    cols = torch.arange(wp) * ww // wp
    coords = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1)  # Hp, Wp, 2
    coords = coords[None].expand(size[0], hp, wp, 2)
    coords = torch.roll(coords, shifts=tuple(-s for s in shift), dims=(0, 1, 2))
    win = to_windows(coords[None].float(), window)[0]  # nW, N, 2
    return (win[:, None, :, :] - win[:, :, None, :]).abs().sum(-1).to(device)


# --------------------------------------------------------------------------- backbone


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside 3D windows, with relative position bias and optional fragment bias."""

    def __init__(self, dim: int, window: tuple[int, int, int], num_heads: int, frag_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        self.fragment_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads)) if frag_bias else None
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _table_bias(self, table: torch.Tensor, n: int) -> torch.Tensor:
        index = self.relative_position_index[:n, :n].reshape(-1)
        return table[index].view(n, n, -1).permute(2, 0, 1)  # nH, N, N

    def bias(self, n: int, gate: torch.Tensor) -> torch.Tensor:
        """(nW or 1, nH, N, N) additive bias.

        With a fragment table: ``rpb * g + fpb * (1 - g)`` where ``g`` is the fragment
        distance of the pair (0 inside one fragment, 1 or 2 across): pairs within one
        fragment use the fragment table, pairs in side-by-side fragments the position
        table, diagonal ones ``2 * rpb - fpb``: the formula the public weights were
        trained with, kept as is.
        """
        rpb = self._table_bias(self.relative_position_bias_table, n)[None]
        if self.fragment_position_bias_table is None:
            return rpb
        fpb = self._table_bias(self.fragment_position_bias_table, n)[None]
        g = gate[:, None].to(rpb.dtype)
        return rpb * g + fpb * (1 - g)

    def forward(self, x: torch.Tensor, gate: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, nW, N, C); gate, mask: (nW, N, N)."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.num_heads, c // self.num_heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv[0] * (c // self.num_heads) ** -0.5, qkv[1], qkv[2]  # B, nW, nH, N, hd
        attn = q @ k.transpose(-2, -1)
        attn += self.bias(n, gate).to(attn.dtype)
        if mask is not None:
            attn += mask[:, None].to(attn.dtype)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class SwinTransformerBlock3D(nn.Module):
    def __init__(self, dim: int, num_heads: int, window: tuple[int, int, int], shift: tuple[int, int, int],
                 mlp_ratio: float, frag_bias: bool):  # fmt: skip
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, num_heads, frag_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        pads = [(-n) % k for n, k in zip((d, h, w), window)]
        x = F.pad(self.norm1(x), (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        size = (d + pads[0], h + pads[1], w + pads[2])
        shifted = any(shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = fragment_gate(size, window, shift, x.device)
        mask = shift_mask(size, window, shift, x.device) if shifted else None
        x = from_windows(self.attn(to_windows(x, window), gate, mask), window, *size)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._attend(x)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial neighbours concatenated (order: (0,0), (1,0), (0,1), (1,1) in (h, w)), then 4C -> 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w, _ = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        parts = [x[:, :, i::2, j::2] for j in (0, 1) for i in (0, 1)]
        return self.reduction(self.norm(torch.cat(parts, -1)))


class BasicLayer(nn.Module):
    """One stage: blocks alternating plain and half-window-shifted windows, then patch merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: tuple[int, int, int], mlp_ratio: float,
                 frag_bias: bool, downsample: bool):  # fmt: skip
        super().__init__()
        half = tuple(k // 2 for k in window)
        self.blocks = nn.ModuleList(
            SwinTransformerBlock3D(dim, num_heads, window, (0, 0, 0) if i % 2 == 0 else half, mlp_ratio, frag_bias)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size: tuple[int, int, int], embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, D, H', W', C)."""
        t, h, w = x.shape[2:]
        pd, ph, pw = ((-n) % p for n, p in zip((t, h, w), self.patch_size))
        x = self.proj(F.pad(x, (0, pw, 0, ph, 0, pd)))
        return self.norm(x.permute(0, 2, 3, 4, 1))


class SwinTransformer3D(nn.Module):
    """Video Swin backbone with FAST-VQA's gated fragment bias; (B, 3, T, H, W) -> (B, C, T/2, H/32, W/32)."""

    def __init__(self, config: DoverConfig = PAPER):
        super().__init__()
        self.patch_embed = PatchEmbed3D(config.patch_size, config.embed_dim)
        stages = len(config.depths)
        self.layers = nn.ModuleList(
            BasicLayer(config.embed_dim * 2**i, config.depths[i], config.num_heads[i], config.window_size,
                       config.mlp_ratio, config.frag_biases[i], downsample=i < stages - 1)  # fmt: skip
            for i in range(stages)
        )
        self.norm = nn.LayerNorm(config.num_features)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, WindowAttention3D):
                nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)
                if module.fragment_position_bias_table is not None:
                    nn.init.trunc_normal_(module.fragment_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).permute(0, 4, 1, 2, 3)


class VQAHead(nn.Module):
    """Per-token quality: 1x1x1 conv C -> hidden, GELU, 1x1x1 conv hidden -> 1 (dropout only in training)."""

    def __init__(self, in_channels: int = 768, hidden_channels: int = 64):
        super().__init__()
        self.fc_hid = nn.Conv3d(in_channels, hidden_channels, (1, 1, 1))
        self.fc_last = nn.Conv3d(hidden_channels, 1, (1, 1, 1))
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_last(self.gelu(self.fc_hid(x)))


class DoverTechnical(nn.Module):
    """The technical branch: normalised fragment clips (B, 3, T, 224, 224) -> local scores (B, 1, T/2, 7, 7)."""

    def __init__(self, config: DoverConfig = PAPER):
        super().__init__()
        self.config = config
        self.technical_backbone = SwinTransformer3D(config)
        self.technical_head = VQAHead(config.num_features, config.head_hidden)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.technical_head(self.technical_backbone(clips))


def technical_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The technical branch's entries of a full DOVER state dict (aesthetic and other keys dropped)."""
    return {k: v for k, v in state.items() if k.startswith(TECHNICAL_PREFIXES)}


def load_dover_technical(weights: WeightsFile = DOVER_WEIGHTS,
                         config: DoverConfig = PAPER) -> tuple[DoverTechnical, str]:  # fmt: skip
    """(model, weights digest): the technical keys of a DOVER checkpoint, loaded strictly."""
    path = resolve(weights)
    state = technical_state(load_state_dict(path))
    with torch.device("meta"):  # no random init to overwrite: the checkpoint's tensors become the parameters
        model = DoverTechnical(config)
    model.load_state_dict(state, strict=True, assign=True)
    for name, buffer in model.named_buffers():  # fixed by the window size: a mismatch means another layout
        if name.endswith("relative_position_index"):
            expected = relative_position_index(config.window_size)
            if not torch.equal(buffer, expected):
                raise ValueError(f"{path}: {name} does not match window size {config.window_size}")
    return model, file_digest(path)


# --------------------------------------------------------------------------- sampling


def clip_frame_indices(num_frames: int, clip_len: int = 32, interval: int = 2, num_clips: int = 3,
                       seed: int = 0) -> list[int]:  # fmt: skip
    """``num_clips * clip_len`` frame indices, clip after clip (rules in the module docstring)."""
    if num_frames <= 0:
        return []
    span = (clip_len - 1) * interval + 1
    steps = np.arange(clip_len) * interval
    segment = num_frames // num_clips
    if segment >= span:  # one clip per segment, at a seeded offset inside it
        rng = np.random.default_rng([seed, num_frames])
        offsets = rng.integers(0, segment - span + 1, size=num_clips)
        starts = np.arange(num_clips) * segment + offsets
        clips = [start + steps for start in starts]
    elif num_frames >= span:  # overlapping clips, spread from the first to the last possible start
        starts = np.rint(np.linspace(0, num_frames - span, num_clips)).astype(int)
        clips = [start + steps for start in starts]
    else:  # distinct frames spread over the video; repeats (held frames) only below clip_len frames
        spread = np.rint(np.linspace(0, num_frames - 1, clip_len)).astype(int)
        clips = [spread] * num_clips
    return [int(i) for clip in clips for i in clip]


def upsampled_size(height: int, width: int, min_side: int) -> tuple[int, int]:
    """(height, width) scaled up so the short side is ``min_side``; unchanged if already that large."""
    short = min(height, width)
    if short >= min_side:
        return height, width
    scale = min_side / short
    return max(min_side, round(height * scale)), max(min_side, round(width * scale))


def fragment_offsets(height: int, width: int, clip: int, seed: int = 0, fragments: int = 7,
                     size: int = 32) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(tops, lefts), each (fragments, fragments): the patch origins for one clip of frames this size.

    Row ``i`` / column ``j`` of the grid starts at ``i * (height // fragments)`` (clamped so
    the patch fits) plus a seeded offset that keeps the patch inside its cell.
    A pure function of its arguments: every chunk and every run of a clip agrees.
    """
    if min(height, width) < size:
        raise ValueError(f"a {width}x{height} frame is smaller than one {size}px fragment")
    rng = np.random.default_rng([seed, clip, height, width])

    def axis(length: int) -> tuple[np.ndarray, np.ndarray]:
        cell = length // fragments
        grid = np.minimum(cell * np.arange(fragments), length - size)
        jitter = rng.integers(0, cell - size, size=(fragments, fragments)) if cell > size else np.zeros(
            (fragments, fragments), dtype=np.int64)  # fmt: skip
        return grid, jitter

    rows, dy = axis(height)
    cols, dx = axis(width)
    return rows[:, None] + dy, cols[None, :] + dx


def cut_fragments(frames: np.ndarray, clip: int, seed: int = 0, fragments: int = 7, size: int = 32) -> np.ndarray:
    """(n, H, W, 3) uint8 frames of one clip -> (n, fragments*size, fragments*size, 3) mosaics.

    Frames with a short side under ``fragments * size`` are upsampled first (bilinear);
    otherwise patches are copied at native resolution.
    """
    n, h, w, _ = frames.shape
    th, tw = upsampled_size(h, w, fragments * size)
    if (th, tw) != (h, w):
        frames = np.stack([cv2.resize(f, (tw, th), interpolation=cv2.INTER_LINEAR) for f in frames])
    tops, lefts = fragment_offsets(th, tw, clip, seed, fragments, size)
    out = np.empty((n, fragments * size, fragments * size, 3), dtype=np.uint8)
    for i in range(fragments):
        for j in range(fragments):
            y, x = int(tops[i, j]), int(lefts[i, j])
            out[:, i * size : (i + 1) * size, j * size : (j + 1) * size] = frames[:, y : y + size, x : x + size]
    return out


def cut_all_clips(frames: np.ndarray, num_clips: int = 3, seed: int = 0, fragments: int = 7,
                  size: int = 32) -> np.ndarray:  # fmt: skip
    """The decoder's per-chunk reduce: (n, H, W, 3) -> (n, num_clips, S, S, 3), one mosaic per clip layout."""
    return np.stack([cut_fragments(frames, k, seed, fragments, size) for k in range(num_clips)], axis=1)


# --------------------------------------------------------------------------- scorer


def rescale(raw: float, config: DoverConfig = PAPER) -> float:
    """The published mapping of the raw technical score to (0, 1): ``sigmoid((raw - 0.1107) / 0.07355)``."""
    z = (raw - config.rescale_shift) / config.rescale_scale
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class DoverClarity:
    """Clarity scorer: DOVER technical quality of 3 clips of 32 fragment frames, rescaled to (0, 1)."""

    name = "dover-technical"
    extra_columns: tuple[str, ...] = ("dover_raw",)

    def __init__(self, config: DoverConfig = PAPER, weights: WeightsFile | None = DOVER_WEIGHTS,
                 device: str = "auto", seed: int = 0):  # fmt: skip
        self.config, self.seed = config, seed
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        model, self.weights_digest = built_or_loaded(lambda: DoverTechnical(config),
                                                     lambda w: load_dover_technical(w, config), weights, seed)  # fmt: skip
        self.model = model.eval().to(self.device, self.dtype)
        self.params: dict[str, Any] = {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
            "seed": seed,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        self.request = FrameRequest(
            indices=partial(clip_frame_indices, clip_len=config.clip_len, interval=config.frame_interval,
                            num_clips=config.num_clips, seed=seed),  # fmt: skip
            reduce=partial(cut_all_clips, num_clips=config.num_clips, seed=seed, fragments=config.fragments,
                           size=config.fragment_size),  # fmt: skip
            chunk=16,
        )
        self._mean = torch.tensor(config.mean, device=self.device).view(1, 3, 1, 1, 1)
        self._std = torch.tensor(config.std, device=self.device).view(1, 3, 1, 1, 1)

    def clips(self, frames: np.ndarray) -> np.ndarray:
        """Reduced frames (num_clips*clip_len, num_clips, S, S, 3) -> each clip's own mosaics.

        Returns (num_clips, clip_len, S, S, 3): planned frame ``p`` with fragment layout ``p // clip_len``.
        """
        c = self.config
        expected = (c.num_clips * c.clip_len, c.num_clips, c.input_size, c.input_size, 3)
        if frames.shape != expected:
            raise ValueError(f"expected reduced frames of shape {expected}, got {frames.shape}")
        picked = frames.reshape(c.num_clips, c.clip_len, *frames.shape[1:])
        return np.stack([picked[k, :, k] for k in range(c.num_clips)])

    @torch.inference_mode()
    def raw_score(self, clips: np.ndarray) -> float:
        """Mean local score over tokens and clips of (num_clips, T, S, S, 3) uint8 mosaics."""
        x = torch.from_numpy(np.ascontiguousarray(clips)).to(self.device)
        x = x.permute(0, 4, 1, 2, 3).float()  # B, 3, T, S, S
        x = ((x - self._mean) / self._std).to(self.dtype)
        return float(self.model(x).float().mean())

    def score(self, indices: list[int], frames: np.ndarray) -> dict[str, float]:
        raw = self.raw_score(self.clips(frames))
        return {"score": rescale(raw, self.config), "dover_raw": raw}
