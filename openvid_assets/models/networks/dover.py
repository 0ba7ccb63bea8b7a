"""DOVER (Wu et al., "Exploring Video Quality Assessment on User Generated Contents from Aesthetic and
Technical Perspectives", ICCV 2023): the technical branch, the measure OpenVid-1M filters on, and the aesthetic
branch, which with it gives the paper's VQA_A and VQA_T of generated videos.

Technical branch: FAST-VQA's design. A Video Swin-T sees "fragments", a 7x7 mosaic of 32x32 patches cut at
native resolution from a grid over the frame (so compression artefacts, noise and blur are seen pixel for
pixel), with the same patch positions for every frame of a 32-frame clip. Attention windows that straddle two
fragments use a separate learned bias table (the "gated relative position bias"); a 1x1x1-conv head maps every
output token to a local quality, and the video's raw score is the mean over tokens and clips. The published
rescale ``sigmoid((raw - 0.1107) / 0.07355)`` maps it to (0, 1).

Aesthetic branch: an inflated ConvNeXt-T (its 2-D convolutions made 3-D: a 2x4x4 stem, 1x2x2 downsampling,
depthwise 7x7 kernels 1, 3, 1 frames deep in turn) sees 32 whole frames, one from each of 32 equal stretches of
the video, resized to 224x224; the same kind of head scores every token, and the raw score (their mean) is
rescaled by ``sigmoid((raw + 0.08285) / 0.03774)``. The published fusion of the two raw scores is
``sigmoid(0.6104 z_T + 0.3896 z_A)`` with z the standardised raws above.

The layer names and shapes follow the public checkpoint ``DOVER.pth`` (``technical_backbone.*``,
``technical_head.*``, ``aesthetic_backbone.*``, ``aesthetic_head.*``: 381 keys): ``DoverTechnical`` loads the
technical keys alone (what clarity scoring needs), ``Dover`` the whole file strictly. The code is written from
the papers and the public description of the model; the key list it must match is
``openvid_assets_tests/data/dover_keys.json``.

Its input (frame sampling, fragments) and the scorer are in :mod:`openvid_assets.models.scorers.clarity`.
This module never imports Dagster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


from openvid_assets.models.registry.catalog import DOVER_WEIGHTS  # noqa: F401 - re-exported
from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve


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
TINY = DoverConfig(
    name="dover-technical-tiny",
    embed_dim=16,
    depths=(1, 1, 2, 2),
    num_heads=(1, 1, 1, 2),
    window_size=(2, 7, 7),
    head_hidden=8,
)


# --------------------------------------------------------------------------- windows


def effective_window(
    size: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
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
def shift_mask(
    size: tuple[int, int, int], window: tuple[int, int, int], shift: tuple[int, int, int], device: torch.device
) -> torch.Tensor:
    """(nW, N, N) additive mask: tokens that come from different bands of the shifted map may not attend."""
    ld, lh, lw = (_shift_labels(n, w, s) for n, w, s in zip(size, window, shift))
    labels = (ld[:, None, None] * 9 + lh[None, :, None] * 3 + lw[None, None, :]).float()
    win = to_windows(labels[None, ..., None], window)[0, ..., 0]  # nW, N
    differ = win[:, None, :] != win[:, :, None]
    return torch.where(differ, MASK_VALUE, 0.0).to(device)


@lru_cache(maxsize=64)
def fragment_gate(
    size: tuple[int, int, int], window: tuple[int, int, int], shift: tuple[int, int, int], device: torch.device
) -> torch.Tensor:
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
    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: tuple[int, int, int],
        shift: tuple[int, int, int],
        mlp_ratio: float,
        frag_bias: bool,
    ):
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

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: tuple[int, int, int],
        mlp_ratio: float,
        frag_bias: bool,
        downsample: bool,
    ):
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
            BasicLayer(
                config.embed_dim * 2**i,
                config.depths[i],
                config.num_heads[i],
                config.window_size,
                config.mlp_ratio,
                config.frag_biases[i],
                downsample=i < stages - 1,
            )
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


def load_dover_technical(
    weights: WeightsFile = DOVER_WEIGHTS, config: DoverConfig = PAPER
) -> tuple[DoverTechnical, str]:
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


# --------------------------------------------------------------------------- aesthetic branch


@dataclass(frozen=True)
class AestheticConfig:
    """Architecture, input and rescale of the aesthetic branch (an inflated ConvNeXt-T)."""

    name: str
    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    inflate: str = "131"  # frames the depthwise kernel spans, block by block in turn within a stage
    head_hidden: int = 64
    size: int = 224  # whole frames resized to size x size
    frames: int = 32  # one frame from each of this many equal stretches of the video
    rescale_shift: float = -0.08285
    rescale_scale: float = 0.03774


AESTHETIC = AestheticConfig(name="dover-aesthetic")
AESTHETIC_TINY = AestheticConfig(name="dover-aesthetic-tiny", depths=(1, 1, 3, 1), dims=(8, 16, 32, 64), head_hidden=8)
FUSION = (0.6104, 0.3896)  # weights of the standardised technical and aesthetic raw scores


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis (1) of a (B, C, T, H, W) tensor."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.movedim(1, -1), self.weight.shape, self.weight, self.bias, self.eps).movedim(-1, 1)


class ConvNeXtBlock3D(nn.Module):
    """Depthwise (frames x 7 x 7) conv, LayerNorm, Linear 4x, GELU, Linear back, layer scale, residual."""

    def __init__(self, dim: int, frames: int):
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, (frames, 7, 7), padding=(frames // 2, 3, 3), groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).movedim(1, -1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.movedim(-1, 1)


class ConvNeXt3D(nn.Module):
    """(B, 3, T, H, W) -> normalised tokens (B, C, T/2, H/32, W/32)."""

    def __init__(self, config: AestheticConfig = AESTHETIC):
        super().__init__()
        dims = config.dims
        stem = nn.Sequential(nn.Conv3d(3, dims[0], (2, 4, 4), stride=(2, 4, 4)), ChannelsFirstLayerNorm(dims[0]))
        self.downsample_layers = nn.ModuleList(
            [stem]
            + [
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i]), nn.Conv3d(dims[i], dims[i + 1], (1, 2, 2), stride=(1, 2, 2))
                )
                for i in range(len(dims) - 1)
            ]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(
                *[ConvNeXtBlock3D(dims[i], int(config.inflate[j % len(config.inflate)])) for j in range(depth)]
            )
            for i, depth in enumerate(config.depths)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class Dover(nn.Module):
    """Both branches, named as the public checkpoint: ``technical(fragment clips)`` and ``aesthetic(resized
    clips)`` each give local scores (B, 1, T', H', W') whose mean is the raw score."""

    def __init__(self, technical: DoverConfig = PAPER, aesthetic: AestheticConfig = AESTHETIC):
        super().__init__()
        self.technical_config, self.aesthetic_config = technical, aesthetic
        self.technical_backbone = SwinTransformer3D(technical)
        self.technical_head = VQAHead(technical.num_features, technical.head_hidden)
        self.aesthetic_backbone = ConvNeXt3D(aesthetic)
        self.aesthetic_head = VQAHead(aesthetic.dims[-1], aesthetic.head_hidden)

    def technical(self, clips: torch.Tensor) -> torch.Tensor:
        return self.technical_head(self.technical_backbone(clips))

    def aesthetic(self, clips: torch.Tensor) -> torch.Tensor:
        return self.aesthetic_head(self.aesthetic_backbone(clips))


def load_dover(
    weights: WeightsFile = DOVER_WEIGHTS, technical: DoverConfig = PAPER, aesthetic: AestheticConfig = AESTHETIC
) -> tuple[Dover, str]:
    """(model, weights digest): every key of a DOVER checkpoint, loaded strictly."""
    path = resolve(weights)
    with torch.device("meta"):
        model = Dover(technical, aesthetic)
    model.load_state_dict(load_state_dict(path), strict=True, assign=True)
    for name, buffer in model.named_buffers():
        if name.endswith("relative_position_index") and not torch.equal(
            buffer, relative_position_index(technical.window_size)
        ):
            raise ValueError(f"{path}: {name} does not match window size {technical.window_size}")
    return model, file_digest(path)


def aesthetic_indices(num_frames: int, config: AestheticConfig = AESTHETIC, seed: int = 0) -> list[int]:
    """Upstream's aesthetic sampler (``UnifiedFrameSampler(1, 32, 2)``): frame ``i`` is ``(n // 32) * i`` plus an
    offset in ``[0, n // 32 - 2)`` when ``n // 32 > 2`` (drawn at random upstream, seeded here by ``seed`` and
    ``n``). So only the first ``32 * (n // 32)`` frames are seen, and a video under 32 frames is its first frame
    32 times, as in the paper's numbers."""
    if num_frames <= 0:
        return []
    stride = num_frames // config.frames
    offsets = (
        np.random.default_rng([seed, num_frames]).integers(0, stride - 2, size=config.frames)
        if stride > 2
        else np.zeros(config.frames, dtype=np.int64)
    )
    return [int(i) for i in (stride * np.arange(config.frames) + offsets) % num_frames]


def aesthetic_clip(
    frames: torch.Tensor, technical: DoverConfig = PAPER, config: AestheticConfig = AESTHETIC
) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> the aesthetic branch's input (1, 3, T, size, size), normalised as the
    technical branch's."""
    x = frames.permute(0, 3, 1, 2).float()
    # Upstream's torchvision Resize on uint8 frames: bilinear, no antialias (torchvision 0.15), rounded to uint8.
    x = F.interpolate(x, size=(config.size, config.size), mode="bilinear", align_corners=False).round().clamp(0, 255)
    mean = torch.tensor(technical.mean).view(1, 3, 1, 1)
    std = torch.tensor(technical.std).view(1, 3, 1, 1)
    return ((x - mean) / std).permute(1, 0, 2, 3)[None]


def rescale_aesthetic(raw: float, config: AestheticConfig = AESTHETIC) -> float:
    return float(1 / (1 + math.exp(-(raw - config.rescale_shift) / config.rescale_scale)))


def fused_quality(
    technical_raw: float, aesthetic_raw: float, technical: DoverConfig = PAPER, aesthetic: AestheticConfig = AESTHETIC
) -> float:
    """DOVER's overall score from the two raw scores (the published fusion)."""
    z = (
        FUSION[0] * (technical_raw - technical.rescale_shift) / technical.rescale_scale
        + FUSION[1] * (aesthetic_raw - aesthetic.rescale_shift) / aesthetic.rescale_scale
    )
    return float(1 / (1 + math.exp(-z)))
