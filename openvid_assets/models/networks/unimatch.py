"""UniMatch optical flow (GMFlow-scale2-regrefine6), the motion model OpenVid-1M scores with.

Upstream (github.com/autonomousvision/unimatch) ships research code only, so the
network is written here from the paper ("Unifying Flow, Stereo and Depth
Estimation", Xu et al., TPAMI 2023) and the facts of the upstream model (layer
names, shapes, constants, order of operations), with the module names and tensor
shapes of the public checkpoint
``gmflow-scale2-regrefine6-mixdata-train320x576-4e7b215d.pth`` so it loads with
``strict=True``. The flow path, for two frames:

1. a shared CNN (7x7 stem, three stages of two residual blocks, instance norm
   without affine parameters) gives 1/4-resolution features; one 3x3 convolution
   applied with strides 1 and 2 turns them into a 1/4 and a 1/8 feature map;
2. coarse to fine, at each scale: a sine position code is added inside each
   attention window, six transformer blocks (self-attention, then
   cross-attention with a feed-forward net; Swin-style windows, every second
   block shifted by half a window) update both frames' features, and matching
   turns them into flow: a softmax over *all* positions of the other frame at
   1/8 (global), a softmax over a 9x9 window around the upsampled flow at 1/4
   (the second frame's features are warped by that flow first);
3. the flow is smoothed by attention propagation over the first frame's
   features (global at 1/8, 3x3 window at 1/4);
4. at 1/4, six regression refinement steps: a 9x9 correlation of the unwarped
   features sampled around the current flow feeds a RAFT-style motion encoder
   and separable conv GRU, which predicts a residual flow; the last step's
   hidden state also predicts the convex-combination weights that upsample the
   flow 4x to the input resolution.

Upstream quirks kept because the trained weights depend on them: the global
propagation projects its keys from the *projected* queries; the GRU hidden
state is re-initialised from the features at every refinement step (only the
flow carries over); local propagation lets zero-padded border positions take
part in the softmax. Deliberate numeric difference: under fp16 autocast,
coordinates and flows stay float32 (upstream's code under autocast would hold
softmax-weighted coordinates in fp16, steps of up to 1/8 px at 1/4 resolution);
in fp32 the two agree to float rounding.

Inputs are (B, 3, H, W) RGB in 0..255; like upstream inference, sizes that are
not a multiple of :attr:`UniMatchConfig.padding_factor` (32 for the paper
model) are resized to the next multiple and the flow is resized back and
rescaled. The motion scorer that samples frames and runs it is
:class:`openvid_assets.models.scorers.motion.UniMatchMotion`. This module never imports Dagster.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openvid_assets.models.registry.catalog import UNIMATCH_FLOW  # noqa: F401 - re-exported
from openvid_assets.models.registry.weights import WeightsFile, file_digest, load_state_dict, resolve


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REFINE_RADIUS = 4  # the refinement correlation window is 9x9 whatever the matching radii are
SHIFTED_WINDOW_PENALTY = -100.0  # added to attention scores across regions of a rolled window (Swin)
_DOTS_CHUNK = 1 << 23  # elements gathered at a time by the windowed correlations


@dataclass(frozen=True)
class UniMatchConfig:
    """Architecture and inference settings; list fields have one entry per scale, coarse to fine."""

    feature_channels: int = 128
    num_scales: int = 2
    upsample_factor: int = 4  # finest feature stride
    num_head: int = 1
    ffn_dim_expansion: int = 4
    num_transformer_layers: int = 6
    reg_refine: bool = True
    attn_splits: tuple[int, ...] = (2, 8)  # windows per side for the transformer (1 = full attention)
    corr_radius: tuple[int, ...] = (-1, 4)  # -1 = global matching, else local window radius
    prop_radius: tuple[int, ...] = (-1, 1)  # -1 = global propagation, else local window radius
    num_reg_refine: int = 6
    backbone_channels: tuple[int, int, int] = (64, 96, 128)  # CNN stage widths (upstream constants)

    def __post_init__(self) -> None:
        if self.num_head != 1:
            raise ValueError("only single-head attention exists (upstream drops multi-head for speed)")
        if self.num_scales not in (1, 2, 3, 4):
            raise ValueError("num_scales must be 1 to 4")
        for name in ("attn_splits", "corr_radius", "prop_radius"):
            if len(getattr(self, name)) != self.num_scales:
                raise ValueError(f"{name} needs one entry per scale ({self.num_scales})")
        if self.reg_refine and self.num_reg_refine < 1:
            raise ValueError("reg_refine needs num_reg_refine >= 1")

    def stride(self, scale: int) -> int:
        """Feature stride of a scale (0 = coarsest)."""
        return self.upsample_factor * 2 ** (self.num_scales - 1 - scale)

    @property
    def padding_factor(self) -> int:
        """Input sides must be multiples of this: every scale's feature map splits into whole windows."""
        return math.lcm(*(self.stride(i) * self.attn_splits[i] for i in range(self.num_scales)))

    def to_params(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PAPER = UniMatchConfig()  # the public checkpoint (flags of upstream scripts/gmflow_demo.sh)
# Same code paths (two scales, plain and shifted windows, global and local matching and propagation,
# refinement steps), a fraction of the compute: for tests and the offline profile.
TINY = UniMatchConfig(
    feature_channels=16, ffn_dim_expansion=1, num_transformer_layers=2, num_reg_refine=2, backbone_channels=(8, 12, 16)
)


# --------------------------------------------------------------------------- geometry helpers


def _pixel_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """(2, H, W) float32 pixel coordinates, x first."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack((xs, ys))


def _sample(feature: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample (B, C, H, W) at pixel coordinates (B, 2, h, w); zero outside the map."""
    h, w = feature.shape[-2:]
    coords = coords.float()
    scale = coords.new_tensor([max(w - 1, 1), max(h - 1, 1)]).view(1, 2, 1, 1)
    grid = (2 * coords / scale - 1).permute(0, 2, 3, 1)
    with _full_precision(feature):  # fp16 grid coordinates would be off by up to a tenth of a pixel
        return F.grid_sample(feature.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _full_precision(x: torch.Tensor) -> torch.autocast:
    """Suspend autocast: coordinates and flows stay float32 (fp16 has 1/16 px steps at 100 px)."""
    return torch.autocast(x.device.type, enabled=False)


def _resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow field and rescale its vectors to the new pixel units."""
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=size, mode="bilinear", align_corners=True)
    return out * out.new_tensor([size[1] / w, size[0] / h]).view(1, 2, 1, 1)


def _shifted(x: torch.Tensor, radius: int) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(dy, dx, x displaced so position p holds x[p + (dy, dx)]) over a (2r+1)^2 window, zero padded.

    Row-major over (dy, dx): the window order upstream uses for its correlation channels.
    """
    h, w = x.shape[-2:]
    padded = F.pad(x, (radius, radius, radius, radius))
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yield dy, dx, padded[..., radius + dy : radius + dy + h, radius + dx : radius + dx + w]


@lru_cache(maxsize=32)
def _sine_position_cpu(h: int, w: int, channels: int) -> torch.Tensor:
    """DETR-style normalised sine code (1, C, h, w): C/2 channels for y, then C/2 for x, sin/cos interleaved."""
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32) / (h + eps) * scale
    x = torch.arange(1, w + 1, dtype=torch.float32) / (w + eps) * scale
    freq = 10000.0 ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)

    def code(values: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half)
        angles = values[:, None] / freq
        out = torch.empty_like(angles)
        out[:, 0::2] = angles[:, 0::2].sin()
        out[:, 1::2] = angles[:, 1::2].cos()
        return out

    pos_y = code(y)[:, None, :].expand(h, w, half)
    pos_x = code(x)[None, :, :].expand(h, w, half)
    return torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1).unsqueeze(0).contiguous()


def _window_position(h: int, w: int, channels: int, splits: int, device: torch.device) -> torch.Tensor:
    """The position code of one attention window, tiled over the whole (h, w) map."""
    code = _sine_position_cpu(h // splits, w // splits, channels).to(device)
    return code.repeat(1, 1, splits, splits)


@lru_cache(maxsize=32)
def _shift_mask_cpu(h: int, w: int, splits: int) -> torch.Tensor:
    """(K*K, n, n) additive mask for shifted windows: -100 between tokens from different regions."""
    wh, ww = h // splits, w // splits
    sh, sw = wh // 2, ww // 2
    rows = torch.zeros(h, dtype=torch.long)
    rows[h - wh : h - sh] = 1
    rows[h - sh :] = 2
    cols = torch.zeros(w, dtype=torch.long)
    cols[w - ww : w - sw] = 1
    cols[w - sw :] = 2
    labels = (rows[:, None] * 3 + cols[None, :]).view(1, h, w, 1)
    windows = _to_windows(labels, splits).squeeze(-1)  # (K*K, n)
    different = windows[:, :, None] != windows[:, None, :]
    return different.float() * SHIFTED_WINDOW_PENALTY


def _to_windows(x: torch.Tensor, splits: int) -> torch.Tensor:
    """(B, H, W, C) -> (B*K*K, H/K * W/K, C), windows row-major within each batch item."""
    b, h, w, c = x.shape
    x = x.view(b, splits, h // splits, splits, w // splits, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b * splits * splits, (h // splits) * (w // splits), c)


@lru_cache(maxsize=64)
def _window_order_cpu(h: int, w: int, splits: int, shifted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    positions = torch.arange(h * w).view(1, h, w, 1)
    if shifted:  # Swin: roll the map up-left by half a window, so new windows straddle the old borders
        positions = torch.roll(positions, shifts=(-((h // splits) // 2), -((w // splits) // 2)), dims=(1, 2))
    order = _to_windows(positions, splits).reshape(-1)
    return order, torch.argsort(order)


def _window_order(
    h: int, w: int, splits: int, shifted: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token indices that lay a (B, H*W, C) map out window by window (rolled first if ``shifted``), and back."""
    order, inverse = _window_order_cpu(h, w, splits, shifted)
    return order.to(device), inverse.to(device)


# --------------------------------------------------------------------------- CNN backbone


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm; a strided or widening block projects its shortcut with a 1x1 conv."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.norm2 = nn.InstanceNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride), nn.InstanceNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


class MultiStrideConv(nn.Module):
    """One 3x3 kernel (no bias) applied at several strides: a feature pyramid sharing its weights."""

    def __init__(self, channels: int, strides: tuple[int, ...]):
        super().__init__()
        self.strides = strides
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [F.conv2d(x, self.weight, None, stride=s, padding=1) for s in self.strides]


class FeatureEncoder(nn.Module):
    """Shared CNN: features at stride ``upsample_factor * 2**k`` for each scale, returned coarse to fine."""

    def __init__(self, config: UniMatchConfig):
        super().__init__()
        c1, c2, c3 = config.backbone_channels
        self.conv1 = nn.Conv2d(3, c1, 7, stride=2, padding=3, bias=False)  # 1/2
        self.norm1 = nn.InstanceNorm2d(c1)
        self.layer1 = nn.Sequential(ResidualBlock(c1, c1), ResidualBlock(c1, c1))  # 1/2
        self.layer2 = nn.Sequential(ResidualBlock(c1, c2, stride=2), ResidualBlock(c2, c2))  # 1/4
        last_stride = 2 if config.num_scales == 1 else 1  # one scale: 1/8; pyramid: start at 1/4
        self.layer3 = nn.Sequential(ResidualBlock(c2, c3, stride=last_stride), ResidualBlock(c3, c3))
        self.conv2 = nn.Conv2d(c3, config.feature_channels, 1)
        self.trident_conv = None
        if config.num_scales > 1:
            self.trident_conv = MultiStrideConv(config.feature_channels, tuple(2**i for i in range(config.num_scales)))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.norm1(self.conv1(x)))
        x = self.conv2(self.layer3(self.layer2(self.layer1(x))))
        pyramid = self.trident_conv(x) if self.trident_conv is not None else [x]  # fine to coarse
        return pyramid[::-1]


# --------------------------------------------------------------------------- transformer


class AttentionLayer(nn.Module):
    """Single-head (windowed) attention, output projection and norm, then optionally an FFN on [x, message]."""

    def __init__(self, channels: int, ffn_expansion: int, with_ffn: bool):
        super().__init__()
        self.q_proj = nn.Linear(channels, channels, bias=False)
        self.k_proj = nn.Linear(channels, channels, bias=False)
        self.v_proj = nn.Linear(channels, channels, bias=False)
        self.merge = nn.Linear(channels, channels, bias=False)
        self.norm1 = nn.LayerNorm(channels)
        self.mlp = None
        if with_ffn:
            hidden = 2 * channels * ffn_expansion
            self.mlp = nn.Sequential(
                nn.Linear(2 * channels, hidden, bias=False), nn.GELU(), nn.Linear(hidden, channels, bias=False)
            )
            self.norm2 = nn.LayerNorm(channels)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, h: int, w: int, splits: int, shift_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """x, context: (B, H*W, C). ``shift_mask`` given = windows shifted by half a window (rolled map)."""
        if splits > 1:
            message = self._windowed(x, context, h, w, splits, shift_mask)
        else:
            q, k, v = self.q_proj(x), self.k_proj(context), self.v_proj(context)
            scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(1, 2)
            message = torch.softmax(scores, dim=-1) @ v
        message = self.norm1(self.merge(message))
        if self.mlp is not None:
            message = self.norm2(self.mlp(torch.cat((x, message), dim=-1)))
        return x + message

    def _windowed(
        self, x: torch.Tensor, context: torch.Tensor, h: int, w: int, splits: int, shift_mask: torch.Tensor | None
    ) -> torch.Tensor:
        b, _, c = x.shape
        order, inverse = _window_order(h, w, splits, shift_mask is not None, x.device)
        q = self.q_proj(x.index_select(1, order))  # projections are per token: gather first, project after
        ctx = context.index_select(1, order)
        k, v = self.k_proj(ctx), self.v_proj(ctx)
        n = (h // splits) * (w // splits)
        q, k, v = (t.reshape(-1, n, c) for t in (q, k, v))  # (B*K*K, n, C)
        scores = (q / math.sqrt(c)) @ k.transpose(1, 2)  # scaling the queries is cheaper than the scores
        if shift_mask is not None:
            scores = (scores.view(b, splits * splits, n, n) + shift_mask.to(scores.dtype)).view(-1, n, n)
        out = (torch.softmax(scores, dim=-1) @ v).reshape(b, h * w, c)
        return out.index_select(1, inverse)


class TransformerBlock(nn.Module):
    def __init__(self, channels: int, ffn_expansion: int):
        super().__init__()
        self.self_attn = AttentionLayer(channels, ffn_expansion, with_ffn=False)
        self.cross_attn_ffn = AttentionLayer(channels, ffn_expansion, with_ffn=True)

    def forward(
        self, x: torch.Tensor, other: torch.Tensor, h: int, w: int, splits: int, shift_mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = self.self_attn(x, x, h, w, splits, shift_mask)
        return self.cross_attn_ffn(x, other, h, w, splits, shift_mask)


class FeatureTransformer(nn.Module):
    """Both frames' features attend to themselves and to each other, as one batch of 2B."""

    def __init__(self, config: UniMatchConfig):
        super().__init__()
        c = config.feature_channels
        self.layers = nn.ModuleList(
            TransformerBlock(c, config.ffn_dim_expansion) for _ in range(config.num_transformer_layers)
        )
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, splits: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = f0.shape
        mask = _shift_mask_cpu(h, w, splits).to(f0.device) if splits > 1 else None
        tokens = torch.cat((f0, f1)).flatten(2).transpose(1, 2).contiguous()  # (2B, HW, C): frame 0, frame 1
        for i, layer in enumerate(self.layers):
            swapped = torch.cat(tokens.chunk(2)[::-1])  # each frame's cross-attention context is the other
            tokens = layer(tokens, swapped, h, w, splits, mask if i % 2 == 1 else None)
        out = tokens.transpose(1, 2).reshape(2 * b, c, h, w)
        return out[:b], out[b:]


# --------------------------------------------------------------------------- matching and propagation


def global_matching(f0: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
    """Flow from a softmax over every position of the other frame: expected match minus own position."""
    b, c, h, w = f0.shape
    corr = (f0 / math.sqrt(c)).flatten(2).transpose(1, 2) @ f1.flatten(2)  # (B, HW, HW)
    prob = torch.softmax(corr.float(), dim=-1)
    grid = _pixel_grid(h, w, f0.device).view(2, h * w)
    with _full_precision(f0):
        target = (prob @ grid.t()).transpose(1, 2).reshape(b, 2, h, w)
    return target - grid.view(1, 2, h, w)


def _window_dots(f0: torch.Tensor, f1: torch.Tensor, index: torch.Tensor, pad: int) -> torch.Tensor:
    """``out[b, k, p] = f0[b, :, p] . f1_padded[b, :, index[b, k, p]]``, float32 (B, K, H*W).

    ``f1_padded`` is f1 with a zero border of ``pad`` pixels, flattened; ``index`` (B, K, H*W) points
    into it. Whole channel vectors are gathered as rows and reduced with a batched matmul, a few
    thousand pixels at a time, so memory stays bounded.
    """
    b, c, h, w = f0.shape
    k = index.shape[1]
    rows = F.pad(f1, (pad, pad, pad, pad)).flatten(2).transpose(1, 2).reshape(-1, c)  # (B*M, C)
    m = (h + 2 * pad) * (w + 2 * pad)
    index = (index + (torch.arange(b, device=index.device) * m).view(b, 1, 1)).transpose(1, 2)  # (B, HW, K)
    queries = f0.flatten(2).transpose(1, 2).unsqueeze(-1)  # (B, HW, C, 1)
    out = torch.empty(b, h * w, k, device=f0.device, dtype=torch.float32)
    step = max(1, _DOTS_CHUNK // (b * k * c))
    for s in range(0, h * w, step):
        idx = index[:, s : s + step]
        picked = rows.index_select(0, idx.reshape(-1)).view(*idx.shape, c)  # (B, n, K, C)
        out[:, s : s + step] = (picked @ queries[:, s : s + step].to(picked.dtype)).squeeze(-1)
    return out.transpose(1, 2)


def _window_offsets(radius: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(dy, dx) of a (2r+1)^2 window, each (K,), row-major: the window order of upstream's correlation channels."""
    span = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(span, span, indexing="ij")
    return dy.reshape(-1), dx.reshape(-1)


def local_matching(f0: torch.Tensor, f1: torch.Tensor, radius: int) -> torch.Tensor:
    """Flow from a softmax over a (2r+1)^2 window of integer displacements; positions off the map excluded."""
    b, c, h, w = f0.shape
    dy, dx = _window_offsets(radius, f0.device)
    ys = torch.arange(h, device=f0.device).view(1, h, 1)
    xs = torch.arange(w, device=f0.device).view(1, 1, w)
    ty, tx = ys + dy.view(-1, 1, 1), xs + dx.view(-1, 1, 1)  # (K, H, W)
    valid = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
    index = ((ty + radius) * (w + 2 * radius) + tx + radius).view(1, -1, h * w).expand(b, -1, -1)
    corr = _window_dots(f0, f1, index, radius).view(b, -1, h, w) / math.sqrt(c)
    prob = torch.softmax(corr.masked_fill(~valid, -1e9), dim=1)
    offsets = torch.stack((dx, dy), dim=1).float()  # (K, 2) as (x, y)
    with _full_precision(f0):
        return torch.einsum("bkhw,kd->bdhw", prob.float(), offsets)


def correlation_at_flow(f0: torch.Tensor, f1: torch.Tensor, flow: torch.Tensor, radius: int) -> torch.Tensor:
    """Correlation of f0 with f1 bilinearly sampled at p + flow(p) + each offset of a (2r+1)^2 window.

    (B, (2r+1)^2, H, W), channels row-major over (dy, dx); f1 reads zero off the map. Integer offsets
    share the sub-pixel weights of p + flow(p), so dot products with the (2r+2)^2 integer neighbours
    are combined bilinearly instead of sampling every window position separately.
    """
    b, c, h, w = f0.shape
    target = _pixel_grid(h, w, f0.device).unsqueeze(0) + flow.float()
    x = target[:, 0].clamp(-radius - 2, w + radius + 1)  # beyond these every tap reads zero anyway
    y = target[:, 1].clamp(-radius - 2, h + radius + 1)
    x0, y0 = x.floor(), y.floor()
    fx, fy = (x - x0).view(b, 1, 1, h, w), (y - y0).view(b, 1, 1, h, w)
    span = torch.arange(-radius, radius + 2, device=f0.device)  # the integer neighbours of all taps
    ny, nx = torch.meshgrid(span, span, indexing="ij")
    ny, nx = ny.reshape(1, -1, 1), nx.reshape(1, -1, 1)
    ty = (y0.long().view(b, 1, -1) + ny).clamp(-1, h) + 1  # -1 and H / W land in the zero border
    tx = (x0.long().view(b, 1, -1) + nx).clamp(-1, w) + 1
    n = 2 * radius + 2
    d = _window_dots(f0, f1, ty * (w + 2) + tx, 1).view(b, n, n, h, w)
    top = d[:, :-1, :-1] * (1 - fx) + d[:, :-1, 1:] * fx
    bottom = d[:, 1:, :-1] * (1 - fx) + d[:, 1:, 1:] * fx
    corr = top * (1 - fy) + bottom * fy
    return corr.reshape(b, (n - 1) ** 2, h, w) / math.sqrt(c)


class FlowPropagation(nn.Module):
    """Smooth flow by self-attention over the first frame's features (values are the flow)."""

    def __init__(self, channels: int):
        super().__init__()
        self.q_proj = nn.Linear(channels, channels)
        self.k_proj = nn.Linear(channels, channels)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, feature: torch.Tensor, flow: torch.Tensor, radius: int) -> torch.Tensor:
        b, c, h, w = feature.shape
        tokens = feature.flatten(2).transpose(1, 2)
        if radius > 0:
            q = self.q_proj(tokens).transpose(1, 2).reshape(b, c, h, w)
            k = self.k_proj(tokens).transpose(1, 2).reshape(b, c, h, w)
            scores, values = [], []
            for (_, _, k_shifted), (_, _, flow_shifted) in zip(_shifted(k, radius), _shifted(flow, radius)):
                scores.append((q * k_shifted).sum(1, dtype=torch.float32))
                values.append(flow_shifted)
            prob = torch.softmax(torch.stack(scores, dim=1) / math.sqrt(c), dim=1)  # (B, K, H, W)
            return (prob.unsqueeze(2) * torch.stack(values, dim=1).float()).sum(1)
        q = self.q_proj(tokens)
        k = self.k_proj(q)  # upstream projects keys from the projected queries; the weights expect it
        prob = torch.softmax(((q / math.sqrt(c)) @ k.transpose(1, 2)).float(), dim=-1)
        with _full_precision(flow):
            out = prob @ flow.float().flatten(2).transpose(1, 2)
        return out.transpose(1, 2).reshape(b, flow.shape[1], h, w)


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Each output pixel is a softmax-weighted mix of the 3x3 coarse neighbours (RAFT); flow scaled to new pixels."""
    b, ch, h, w = flow.shape
    weights = torch.softmax(mask.float().view(b, 1, 9, factor, factor, h, w), dim=2)
    neighbours = F.unfold(factor * flow.float(), 3, padding=1).view(b, ch, 9, 1, 1, h, w)
    up = (weights * neighbours).sum(2)  # (B, ch, K, K, H, W)
    return up.permute(0, 1, 4, 2, 5, 3).reshape(b, ch, factor * h, factor * w)


# --------------------------------------------------------------------------- regression refinement


class MotionEncoder(nn.Module):
    def __init__(self, corr_channels: int, hidden: int):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 2 * hidden, 1)
        self.convc2 = nn.Conv2d(2 * hidden, 3 * hidden // 2, 3, padding=1)
        self.convf1 = nn.Conv2d(2, hidden, 7, padding=3)
        self.convf2 = nn.Conv2d(hidden, hidden // 2, 3, padding=1)
        self.conv = nn.Conv2d(3 * hidden // 2 + hidden // 2, hidden - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.convc2(F.relu(self.convc1(corr))))
        f = F.relu(self.convf2(F.relu(self.convf1(flow))))
        out = F.relu(self.conv(torch.cat((c, f), dim=1)))
        return torch.cat((out, flow.to(out.dtype)), dim=1)


class SepConvGRU(nn.Module):
    """A convolutional GRU applied twice: 1x5 kernels, then 5x1."""

    def __init__(self, hidden: int, inputs: int):
        super().__init__()
        both = hidden + inputs
        self.convz1 = nn.Conv2d(both, hidden, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(both, hidden, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(both, hidden, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(both, hidden, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(both, hidden, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(both, hidden, (5, 1), padding=(2, 0))

    @staticmethod
    def _update(h: torch.Tensor, x: torch.Tensor, convz: nn.Conv2d, convr: nn.Conv2d, convq: nn.Conv2d) -> torch.Tensor:
        hx = torch.cat((h, x), dim=1)
        z = torch.sigmoid(convz(hx))
        r = torch.sigmoid(convr(hx))
        q = torch.tanh(convq(torch.cat((r * h, x), dim=1)))
        return (1 - z) * h + z * q

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self._update(h, x, self.convz1, self.convr1, self.convq1)
        return self._update(h, x, self.convz2, self.convr2, self.convq2)


class FlowHead(nn.Module):
    def __init__(self, hidden: int, mid: int):
        super().__init__()
        self.conv1 = nn.Conv2d(hidden, mid, 3, padding=1)
        self.conv2 = nn.Conv2d(mid, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class RefineBlock(nn.Module):
    """One regression step: motion features + GRU -> residual flow; ``mask`` -> convex upsampling weights."""

    def __init__(self, hidden: int, upsample_factor: int):
        super().__init__()
        self.encoder = MotionEncoder((2 * REFINE_RADIUS + 1) ** 2, hidden)
        self.gru = SepConvGRU(hidden, 2 * hidden)
        self.flow_head = FlowHead(hidden, 2 * hidden)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden, 2 * hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * hidden, upsample_factor**2 * 9, 1),
        )

    def forward(
        self, net: torch.Tensor, inp: torch.Tensor, corr: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        motion = self.encoder(flow, corr)
        net = self.gru(net, torch.cat((inp, motion), dim=1))
        return net, self.flow_head(net)


# --------------------------------------------------------------------------- the network


class UniMatchFlow(nn.Module):
    """UniMatch for the flow task; ``state_dict()`` of :data:`PAPER` matches the public checkpoint."""

    def __init__(self, config: UniMatchConfig = PAPER):
        super().__init__()
        self.config = config
        c = config.feature_channels
        self.backbone = FeatureEncoder(config)
        self.transformer = FeatureTransformer(config)
        self.feature_flow_attn = FlowPropagation(c)
        if config.reg_refine:
            self.refine_proj = nn.Conv2d(c, 2 * c, 1)  # GRU hidden state and context, c channels each
            self.refine = RefineBlock(c, config.upsample_factor)
        else:
            self.upsampler = nn.Sequential(
                nn.Conv2d(2 + c, 2 * c, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(2 * c, config.upsample_factor**2 * 9, 1),
            )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """Flow from img0 to img1, (B, 2, H, W) in input pixels (x, y); images (B, 3, H, W) RGB 0..255."""
        h, w = img0.shape[-2:]
        m = self.config.padding_factor
        size = (math.ceil(h / m) * m, math.ceil(w / m) * m)
        if size != (h, w):  # as upstream inference: resize to the nearest valid size, resize the flow back
            img0, img1 = (F.interpolate(x, size=size, mode="bilinear", align_corners=True) for x in (img0, img1))
        flow = self._flow(img0.float(), img1.float())
        return _resize_flow(flow, (h, w)) if size != (h, w) else flow

    def _flow(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        b = img0.shape[0]
        images = (torch.cat((img0, img1)) - self.mean) / self.std
        pyramid = self.backbone(images)  # coarse to fine, both frames stacked
        flow = None
        for scale, features in enumerate(pyramid):
            f0_raw, f1_raw = features[:b], features[b:]
            f1 = f1_raw
            if flow is not None:
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2
                grid = _pixel_grid(*f1.shape[-2:], f1.device).unsqueeze(0)
                f1 = _sample(f1, grid + flow)  # look where the coarse flow points: match residual motion
            splits = cfg.attn_splits[scale]
            position = _window_position(*f0_raw.shape[-2:], cfg.feature_channels, splits, f0_raw.device)
            f0, f1 = self.transformer(f0_raw + position.to(f0_raw.dtype), f1 + position.to(f1.dtype), splits)
            radius = cfg.corr_radius[scale]
            step = global_matching(f0, f1) if radius < 0 else local_matching(f0, f1, radius)
            flow = step if flow is None else flow + step
            flow = self.feature_flow_attn(f0, flow, cfg.prop_radius[scale])
        assert flow is not None
        if not cfg.reg_refine:
            return convex_upsample(flow, self.upsampler(torch.cat((flow.to(f0.dtype), f0), dim=1)), cfg.upsample_factor)
        net0, context = self.refine_proj(f0).chunk(2, dim=1)
        net0, context = torch.tanh(net0), F.relu(context)
        net = net0
        for _ in range(cfg.num_reg_refine):
            corr = correlation_at_flow(f0_raw, f1_raw, flow, REFINE_RADIUS)
            # upstream re-derives the hidden state from the features at every step: only the flow carries over
            net, delta = self.refine(net0, context, corr.to(net0.dtype), flow.to(net0.dtype))
            flow = flow + delta.float()
        return convex_upsample(flow, self.refine.mask(net), cfg.upsample_factor)


def load_unimatch(config: UniMatchConfig = PAPER, weights: WeightsFile = UNIMATCH_FLOW) -> tuple[UniMatchFlow, str]:
    """The network with the checkpoint loaded strictly, and the checkpoint's digest."""
    path = resolve(weights)
    model = UniMatchFlow(config)
    model.load_state_dict(load_state_dict(path), strict=True)
    return model, file_digest(path)
