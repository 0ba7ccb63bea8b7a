"""MVDiT, the Multi-modal Video Diffusion Transformer of OpenVid-1M (Nan et al. 2024, the MVDiT section, eqs. 1-6).

Each block lets the caption take part in the video's self-attention instead of only conditioning it:

* MMSA: every frame's visual tokens are concatenated with that frame's copy of the text tokens and attend
  together (spatial attention, frames never mix); both streams are modulated by adaptive layer norm from the
  timestep and added back through learned gates α.
* MMTA: the same concatenation attends along time (one sequence per token position), with its own modulation
  and gates.
* MHCA: visual tokens (queries) cross-attend to their frame's text tokens; the output projection starts at zero.
* separate, gated feed-forward layers for the visual and the text stream.

The final layer predicts noise and the variance interpolation (learned sigma: 2x latent channels).

``AttentionCache`` (the paper's appendix on faster sampling): consecutive denoising steps change the attention
and feed-forward outputs little, so they are computed on every ``interval``-th step and reused on the steps
between, with each step's own modulation, gates and residual stream.

Module names and parameter shapes follow the public release (github.com/NJU-PCALab/OpenVid-1M,
openvid/models/mvdit/mvdit.py), so ``MVDiT(preset("XL/2"))`` loads its MVDiT-XL/2 checkpoints strictly; the
computation follows the release where it differs from the paper's prose (which tokens are masked, where the
temporal position embedding enters). Shapes below: B batch, T latent frames, S visual tokens per frame, L text
tokens, C hidden size.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

TIMESTEP_FREQUENCIES = 256  # width of the sinusoidal timestep features fed to t_embedder


@dataclass(frozen=True)
class MVDiTConfig:
    input_size: tuple[int, int, int] = (16, 32, 32)  # latent (T, H, W) the stored position tables are built for
    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    caption_channels: int = 4096  # T5-v1.1-XXL hidden size
    model_max_length: int = 120  # text tokens; also the length of the learned null caption
    caption_dropout: float = 0.1  # training-time probability of replacing a caption by the null caption (CFG)
    learn_sigma: bool = True
    space_scale: float = 1.0  # spatial positions are divided by this (the release uses 0.5 at 256px, 1.0 at 512px)
    time_scale: float = 1.0
    # Ablation switches (the paper ablates MHCA and the α gates): each removes its parameters, not only its effect.
    cross_attention: bool = True  # MHCA
    gating: bool = True  # α gates on every modulated branch; off: branches are added unscaled
    temporal_attention: bool = True  # MMTA
    grad_checkpointing: bool = False  # recompute each block in backward to save activation memory

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.learn_sigma else self.in_channels

    @property
    def rows_per_branch(self) -> int:
        return 3 if self.gating else 2  # shift, scale (, gate) for each modulated branch


_PRESETS = {
    "XL/2": dict(hidden_size=1152, depth=28, num_heads=16, patch_size=(1, 2, 2)),
    "tiny": dict(hidden_size=64, depth=2, num_heads=4, patch_size=(1, 2, 2), caption_channels=32, model_max_length=8),
}


def preset(
    name: str, frames: int = 16, height: int = 256, width: int = 256, vae_downsample: int = 8, **overrides
) -> MVDiTConfig:
    """A named size for ``frames`` x ``height`` x ``width`` pixel videos (latents ``vae_downsample`` x smaller).

    ``XL/2`` is the paper's model; its spatial positions are scaled like the release's configs
    (``space_scale`` = height / 512: 0.5 at 256px, 1.0 at 512px). ``tiny`` is for CPU tests.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown MVDiT preset {name!r}; known: {sorted(_PRESETS)}")
    settings = dict(_PRESETS[name], input_size=(frames, height // vae_downsample, width // vae_downsample))
    if name == "XL/2":
        settings["space_scale"] = height / 512
    return MVDiTConfig(**{**settings, **overrides})


# ---------------------------------------------------------------------------------------------------------------
# Fixed embeddings


def sincos_embedding(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[M] positions -> [M, dim]: sines in the first half, cosines in the second (the release's order)."""
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2))
    angles = positions.double()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def spatial_position_embedding(dim: int, height: int, width: int, scale: float = 1.0) -> torch.Tensor:
    """[1, height*width, dim] in row-major token order; first half encodes the column, second half the row."""
    rows, cols = torch.meshgrid(torch.arange(height) / scale, torch.arange(width) / scale, indexing="ij")
    table = torch.cat([sincos_embedding(dim // 2, cols.flatten()), sincos_embedding(dim // 2, rows.flatten())], 1)
    return table.float()[None]


def temporal_position_embedding(dim: int, frames: int, scale: float = 1.0) -> torch.Tensor:
    return sincos_embedding(dim, torch.arange(frames) / scale).float()[None]  # [1, T, dim]


def timestep_features(timesteps: torch.Tensor, dim: int = TIMESTEP_FREQUENCIES) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps: [B] -> [B, dim], cosines first (GLIDE/DiT order)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Layers


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    n, length, c = x.shape
    return x.view(n, length, num_heads, c // num_heads).transpose(1, 2)  # [N, heads, length, head_dim]


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    n, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * head_dim)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, n, C]; key_mask [N, n] bool, False for keys nobody may attend to (caption padding)."""
        q, k, v = (split_heads(part, self.num_heads) for part in self.qkv(x).chunk(3, dim=-1))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x [N, S, C] queries; context [N, L, C]; key_mask [N, L] bool."""
        q = split_heads(self.q_linear(x), self.num_heads)
        k, v = (split_heads(part, self.num_heads) for part in self.kv_linear(context).chunk(2, dim=-1))
        # An all-padding caption would leave the queries no key (NaN). The release's -1e9 bias makes such rows
        # attend uniformly to the padding; zero queries over all keys do the same.
        has_key = key_mask.any(dim=-1)
        q = q * has_key[:, None, None, None].to(q.dtype)
        key_mask = key_mask | ~has_key[:, None]
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def adaptive_projection(dim: int, rows: int) -> nn.Sequential:
    """Timestep embedding -> ``rows`` modulation vectors, shared by all blocks (PixArt's adaLN-single)."""
    return nn.Sequential(nn.SiLU(), nn.Linear(dim, rows * dim))


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)  # no affine: the modulation provides scale and shift


class Modulation(NamedTuple):
    """Adaptive layer norm for one branch, and its gate α (None when gating is ablated)."""

    shift: torch.Tensor
    scale: torch.Tensor
    gate: torch.Tensor | None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x) * (1 + self.scale) + self.shift

    def residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return x + branch if self.gate is None else x + self.gate * branch


def modulations(table: torch.Tensor, shared: torch.Tensor, rows_per_branch: int) -> list[Modulation]:
    """A block's learned table plus the shared timestep projection [B, rows*C] -> one Modulation per branch,
    each vector shaped [B, 1, 1, C] to broadcast over frames and tokens."""
    rows = (table[None] + shared.view(shared.shape[0], *table.shape))[:, :, None, None, :]
    vectors = rows.unbind(dim=1)
    branches = [vectors[i : i + rows_per_branch] for i in range(0, len(vectors), rows_per_branch)]
    return [Modulation(b[0], b[1], b[2] if rows_per_branch == 3 else None) for b in branches]


@dataclass
class AttentionCache:
    """Each block's self-, temporal-, cross-attention and feed-forward outputs, computed on every ``interval``-th
    forward (1: every forward, no reuse) and reused on the forwards between. One cache serves one sampling loop."""

    interval: int = 2
    forwards: int = 0
    blocks: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise ValueError(f"cache interval must be at least 1, got {self.interval}")

    def reusing(self) -> bool:
        """Whether the current forward reuses (a forward before any computed one cannot)."""
        return self.forwards % self.interval != 0 and bool(self.blocks)


def _branch(
    store: dict[str, torch.Tensor] | None, reuse: bool, name: str, compute: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """A block's branch output: the cached one when reusing, else computed (and stored when caching)."""
    if reuse and store is not None:
        return store[name]
    out = compute()
    if store is not None and not reuse:
        store[name] = out
    return out


class MVDiTBlock(nn.Module):
    def __init__(self, config: MVDiTConfig):
        super().__init__()
        c, heads, rows = config.hidden_size, config.num_heads, config.rows_per_branch
        self.rows_per_branch = rows
        # Visual and text streams have their own modulation: rows for (MMSA, FFN) and for MMTA.
        self.scale_shift_table = nn.Parameter(torch.randn(2 * rows, c) / c**0.5)
        self.scale_shift_table_y = nn.Parameter(torch.randn(2 * rows, c) / c**0.5)
        self.attn = SelfAttention(c, heads)
        if config.temporal_attention:
            self.scale_shift_table_temp = nn.Parameter(torch.randn(rows, c) / c**0.5)
            self.scale_shift_table_y_temp = nn.Parameter(torch.randn(rows, c) / c**0.5)
            self.attn_temp = SelfAttention(c, heads)
        if config.cross_attention:
            self.cross_attn = CrossAttention(c, heads)
        hidden = int(c * config.mlp_ratio)
        self.mlp = FeedForward(c, hidden)
        self.mlp_y = FeedForward(c, hidden)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        t_visual: torch.Tensor,
        t_text: torch.Tensor,
        t_visual_temporal: torch.Tensor | None,
        t_text_temporal: torch.Tensor | None,
        temporal_pos: torch.Tensor | None = None,
        cache: dict[str, torch.Tensor] | None = None,
        reuse: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, S, C] visual tokens; y [B, T, L, C] each frame's text tokens; mask [B, L] bool (real tokens);
        t_* the shared timestep projections; temporal_pos [1, T, C] (first block only); ``cache``: this block's
        branch outputs, stored (``reuse`` False) or reused (True)."""
        b, frames, s, c = x.shape
        length = y.shape[2]
        attend, feed = modulations(self.scale_shift_table, t_visual, self.rows_per_branch)
        attend_y, feed_y = modulations(self.scale_shift_table_y, t_text, self.rows_per_branch)

        # MMSA: per frame, visual and text tokens in one sequence; caption padding is never a key.
        def spatial() -> torch.Tensor:
            joint = torch.cat([attend.apply(x), attend_y.apply(y)], dim=2).reshape(b * frames, s + length, c)
            key_mask = torch.cat([mask.new_ones(b, s), mask], dim=1).repeat_interleave(frames, dim=0)
            return self.attn(joint, key_mask).view(b, frames, s + length, c)

        out = _branch(cache, reuse, "attn", spatial)
        x, y = attend.residual(x, out[:, :, :s]), attend_y.residual(y, out[:, :, s:])

        # MMTA: the same concatenation, one sequence along time per token position.
        if hasattr(self, "attn_temp"):
            (temporal,) = modulations(self.scale_shift_table_temp, t_visual_temporal, self.rows_per_branch)
            (temporal_y,) = modulations(self.scale_shift_table_y_temp, t_text_temporal, self.rows_per_branch)

            def along_time() -> torch.Tensor:
                joint = torch.cat([temporal.apply(x), temporal_y.apply(y)], dim=2)
                joint = joint.transpose(1, 2).reshape(b * (s + length), frames, c)
                if temporal_pos is not None:  # the release adds it to the modulated tokens of the first block only
                    joint = joint + temporal_pos
                return self.attn_temp(joint).view(b, s + length, frames, c).transpose(1, 2)

            out = _branch(cache, reuse, "attn_temp", along_time)
            x, y = temporal.residual(x, out[:, :, :s]), temporal_y.residual(y, out[:, :, s:])

        # MHCA: visual queries, the frame's text tokens as keys and values; ungated, unnormalised.
        if hasattr(self, "cross_attn"):
            attended = _branch(
                cache,
                reuse,
                "cross_attn",
                lambda: self.cross_attn(
                    x.reshape(b * frames, s, c), y.reshape(b * frames, length, c), mask.repeat_interleave(frames, dim=0)
                ),
            )
            x = x + attended.view(b, frames, s, c)

        # Feed-forward, one per stream.
        x = feed.residual(x, _branch(cache, reuse, "mlp", lambda: self.mlp(feed.apply(x))))
        y = feed_y.residual(y, _branch(cache, reuse, "mlp_y", lambda: self.mlp_y(feed_y.apply(y))))
        return x, y


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, T, H, W] -> [B, T', H', W', C]."""
        if any(size % patch for size, patch in zip(x.shape[2:], self.patch_size)):
            raise ValueError(f"latent size {tuple(x.shape[2:])} is not a multiple of the patch size {self.patch_size}")
        return self.proj(x).permute(0, 2, 3, 4, 1)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(TIMESTEP_FREQUENCIES, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        features = timestep_features(timesteps)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class CaptionEmbedder(nn.Module):
    """Projects T5 features to the hidden size; holds the learned null caption used for classifier-free guidance.

    ``y_embedding`` is a parameter here. The release registers it as a buffer (same key and shape, so checkpoints
    load either way), which keeps it out of the optimizer: there the null caption stays at its random init."""

    def __init__(self, caption_channels: int, dim: int, max_length: int):
        super().__init__()
        self.y_proj = FeedForward(caption_channels, dim, dim)
        self.y_embedding = nn.Parameter(torch.randn(max_length, caption_channels) / caption_channels**0.5)

    def forward(self, captions: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """captions [B, L, D]; drop [B] bool: captions to replace by the null caption."""
        if drop is not None:
            if captions.shape[1:] != self.y_embedding.shape:
                raise ValueError(
                    f"captions {tuple(captions.shape[1:])} must be padded to the null caption's "
                    f"{tuple(self.y_embedding.shape)} to be dropped"
                )
            # torch.where keeps y_embedding in the graph even when nothing is dropped (DDP needs every parameter).
            captions = torch.where(drop[:, None, None], self.y_embedding.to(captions.dtype), captions)
        return self.y_proj(captions)


class FinalLayer(nn.Module):
    def __init__(self, dim: int, patch_volume: int, out_channels: int):
        super().__init__()
        self.linear = nn.Linear(dim, patch_volume * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.scale_shift_table[None] + t[:, None]).chunk(2, dim=1)
        return self.linear(layer_norm(x) * (1 + scale) + shift)


# ---------------------------------------------------------------------------------------------------------------
# Model


class MVDiT(nn.Module):
    def __init__(self, config: MVDiTConfig):
        super().__init__()
        self.config = config
        self.grad_checkpointing = config.grad_checkpointing  # a switch the trainer may flip after construction
        c, rows = config.hidden_size, config.rows_per_branch
        if c % config.num_heads or c % 4:
            raise ValueError("hidden_size must be divisible by num_heads and by 4 (two sin-cos halves)")
        frames, height, width = (size // patch for size, patch in zip(config.input_size, config.patch_size))
        # Fixed sin-cos tables; stored (not learned) because the release's checkpoints carry them.
        self.register_buffer("pos_embed", spatial_position_embedding(c, height, width, config.space_scale))
        if config.temporal_attention:  # only MMTA reads it
            self.register_buffer("pos_embed_temporal", temporal_position_embedding(c, frames, config.time_scale))

        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, c)
        self.t_embedder = TimestepEmbedder(c)
        self.t_block = adaptive_projection(c, 2 * rows)
        self.t_block_y = adaptive_projection(c, 2 * rows)
        if config.temporal_attention:
            self.t_block_temp = adaptive_projection(c, rows)
            self.t_block_y_temp = adaptive_projection(c, rows)
        self.y_embedder = CaptionEmbedder(config.caption_channels, c, config.model_max_length)
        self.blocks = nn.ModuleList(MVDiTBlock(config) for _ in range(config.depth))
        self.final_layer = FinalLayer(c, math.prod(config.patch_size), config.out_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT/PixArt-style init with every gate α at zero, so each fresh block is the identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        patch = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(patch.view(patch.shape[0], -1))  # like a linear layer over the flattened patch
        nn.init.zeros_(self.x_embedder.proj.bias)
        for linear in (
            self.t_embedder.mlp[0],
            self.t_embedder.mlp[2],
            self.y_embedder.y_proj.fc1,
            self.y_embedder.y_proj.fc2,
            *(p[1] for p in self.adaptive_projections()),
        ):
            nn.init.normal_(linear.weight, std=0.02)
        for block in self.blocks:
            if hasattr(block, "cross_attn"):
                nn.init.zeros_(block.cross_attn.proj.weight)  # ungated, so it starts silent by itself
                nn.init.zeros_(block.cross_attn.proj.bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)
        if self.config.gating:
            self.zero_gates()

    def adaptive_projections(self) -> list[nn.Sequential]:
        names = ("t_block", "t_block_y", "t_block_temp", "t_block_y_temp")
        return [getattr(self, name) for name in names if hasattr(self, name)]

    @torch.no_grad()
    def zero_gates(self) -> None:
        """α = table row + shared projection: zero both parts of every gate."""
        c, rows = self.config.hidden_size, self.config.rows_per_branch
        for projection in self.adaptive_projections():
            projection[1].weight.view(-1, rows, c, c)[:, rows - 1] = 0
            projection[1].bias.view(-1, rows, c)[:, rows - 1] = 0
        for block in self.blocks:
            for name, table in block.named_parameters(recurse=False):
                if name.startswith("scale_shift_table"):
                    table.view(-1, rows, c)[:, rows - 1] = 0

    def timestep_conditioning(self, timestep: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Timestep embedding [B, C] (for the final layer) and the four shared modulation inputs every block takes
        (visual, text, visual temporal, text temporal; the temporal ones None without MMTA)."""
        t = self.t_embedder(timestep)
        shared = [projection(t) for projection in self.adaptive_projections()]
        return t, shared + [None] * (4 - len(shared))

    def position_embeddings(self, frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stored tables for the configured grid; other grids get freshly computed ones."""
        c = self.config.hidden_size
        spatial = self.pos_embed
        if spatial.shape[1] != height * width or self.config.input_size[1] // self.config.patch_size[1] != height:
            spatial = spatial_position_embedding(c, height, width, self.config.space_scale).to(spatial.device)
        temporal = getattr(self, "pos_embed_temporal", None)
        if temporal is not None and temporal.shape[1] != frames:
            temporal = temporal_position_embedding(c, frames, self.config.time_scale).to(temporal.device)
        return spatial, temporal

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        drop_captions: torch.Tensor | None = None,
        cache: AttentionCache | None = None,
    ) -> torch.Tensor:
        """Predict noise and variance for noisy latents.

        x [B, C_in, T, H, W]; timestep [B]; y [B, L, D] caption features (the release's [B, 1, L, D] is accepted);
        mask [B, L], nonzero for real tokens (default: all); drop_captions [B] bool, captions to replace by the null
        caption (default: drawn with probability ``caption_dropout`` in training mode, none in eval mode); cache:
        one sampling loop's ``AttentionCache`` (inference only).
        Returns [B, C_out, T, H, W] in float32: ε in the first C_in channels, the variance interpolation after.
        """
        b = x.shape[0]
        if y.dim() == 4:
            y = y.squeeze(1)
        mask = torch.ones(y.shape[:2], dtype=torch.bool, device=y.device) if mask is None else mask.bool()
        if drop_captions is None and self.training:
            drop_captions = torch.rand(b, device=x.device) < self.config.caption_dropout

        tokens = self.x_embedder(x)
        _, frames, height, width, c = tokens.shape
        spatial_pos, temporal_pos = self.position_embeddings(frames, height, width)
        x = tokens.reshape(b, frames, height * width, c) + spatial_pos[:, None].to(tokens.dtype)

        t, shared = self.timestep_conditioning(timestep)
        # Every frame starts from the same caption; the copies diverge after the first MMSA.
        y = self.y_embedder(y, drop_captions)[:, None].expand(b, frames, -1, -1)
        reuse = cache is not None and cache.reusing()
        for index, block in enumerate(self.blocks):
            args = (x, y, mask, *shared, temporal_pos if index == 0 else None)
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x, y = checkpoint(block, *args, use_reentrant=False)
            elif cache is not None:
                x, y = block(*args, cache=cache.blocks.setdefault(index, {}), reuse=reuse)
            else:
                x, y = block(*args)
        if cache is not None:
            cache.forwards += 1
        out = self.final_layer(x.reshape(b, frames * height * width, c), t)
        return self.unpatchify(out, frames, height, width).float()

    def unpatchify(self, x: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """[B, T'H'W', pt*ph*pw*C_out] -> [B, C_out, T, H, W] (channels vary fastest within a patch)."""
        pt, ph, pw = self.config.patch_size
        c_out = self.config.out_channels
        x = x.view(x.shape[0], frames, height, width, pt, ph, pw, c_out)
        return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(x.shape[0], c_out, frames * pt, height * ph, width * pw)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


POSITION_BUFFERS = ("pos_embed", "pos_embed_temporal")


def released_state_dict(checkpoint_or_path: str | Path | dict) -> dict[str, torch.Tensor]:
    """The model weights inside a release checkpoint (a bare state dict, or one under "state_dict"/"ema"/"model")
    or inside this package's training checkpoints (EMA weights preferred)."""
    payload = checkpoint_or_path
    if not isinstance(payload, dict):
        path = Path(payload)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        payload = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("ema", "state_dict", "model"):
        if isinstance(payload.get(key), dict):
            return payload[key]
    return payload


def load_weights(model: MVDiT, checkpoint_or_path: str | Path | dict) -> None:
    """Strictly load MVDiT weights. The fixed position tables are recomputed for this model's size rather than
    taken from the file, so a checkpoint trained at one resolution (or saved without them) still loads."""
    state = dict(released_state_dict(checkpoint_or_path))
    own = model.state_dict()
    for name in POSITION_BUFFERS:
        state.pop(name, None)
        if name in own:
            state[name] = own[name]
    model.load_state_dict(state, strict=True)


def pixart_alpha_to_mvdit(pixart_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename/reshape PixArt-α (XL/2, 256 or 512) weights into MVDiT's spatial parts.

    PixArt's image blocks become the visual stream's MMSA, MHCA and feed-forward; its 2D patch embedding becomes a
    3D one with temporal extent 1; its timestep, caption and final layers carry over. The fixed position table is
    dropped (MVDiT recomputes its own). The text stream (``*_y``) and the temporal parts (``*temp*``) have no PixArt
    counterpart and keep their initialisation; load the result with ``strict=False`` or through ``init_from_pixart``.
    """
    state = dict(pixart_state.get("state_dict", pixart_state))
    mapped = {}
    for key, value in state.items():
        if key in POSITION_BUFFERS:
            continue
        if key == "x_embedder.proj.weight" and value.dim() == 4:
            value = value.unsqueeze(2)  # [C, C_in, ph, pw] -> [C, C_in, 1, ph, pw]
        mapped[key] = value
    return mapped


def init_from_pixart(model: MVDiT, pixart_state: dict[str, torch.Tensor]) -> list[str]:
    """Initialise the spatial parts of ``model`` from PixArt-α; returns the MVDiT keys left at their init.
    Every PixArt key must land on an MVDiT key of the same shape (a mismatch is an error, not a silent skip)."""
    mapped = pixart_alpha_to_mvdit(pixart_state)
    own = model.state_dict()
    unknown = sorted(set(mapped) - set(own))
    wrong = sorted(k for k in set(mapped) & set(own) if tuple(mapped[k].shape) != tuple(own[k].shape))
    if unknown or wrong:
        raise ValueError(
            f"PixArt-α weights do not fit this MVDiT: unknown keys {unknown[:5]}, shape mismatches "
            f"{[(k, tuple(mapped[k].shape), tuple(own[k].shape)) for k in wrong[:5]]}"
        )
    model.load_state_dict(mapped, strict=False)
    return sorted(set(own) - set(mapped) - set(POSITION_BUFFERS))


# ---------------------------------------------------------------------------------------------------------------
# Cost


def forward_flops(config: MVDiTConfig, frames: int, height: int, width: int, text_tokens: int | None = None) -> int:
    """Matmul FLOPs (2 per multiply-add) of one sample's forward pass at latent size frames x height x width.
    Elementwise work (norms, modulation, softmax) is left out, as usual for MFU."""
    c, length = config.hidden_size, text_tokens or config.model_max_length
    pt, ph, pw = config.patch_size
    t, s = frames // pt, (height // ph) * (width // pw)
    n = s + length  # tokens per frame in the joint sequences
    hidden = int(c * config.mlp_ratio)

    def linear(tokens: int, fan_in: int, fan_out: int) -> int:
        return 2 * tokens * fan_in * fan_out

    def attention(sequences: int, queries: int, keys: int) -> int:
        return 2 * 2 * sequences * queries * keys * c  # scores and weighted values

    block = linear(t * n, c, 3 * c) + attention(t, n, n) + linear(t * n, c, c)  # MMSA
    if config.temporal_attention:
        block += linear(t * n, c, 3 * c) + attention(n, t, t) + linear(t * n, c, c)
    if config.cross_attention:
        block += linear(t * s, c, c) + linear(t * length, c, 2 * c) + attention(t, s, length) + linear(t * s, c, c)
    block += linear(t * n, c, hidden) + linear(t * n, hidden, c)  # visual and text feed-forwards together
    embed = linear(t * s, config.in_channels * pt * ph * pw, c) + linear(length, config.caption_channels, c)
    embed += linear(length, c, c) + linear(t * s, c, pt * ph * pw * config.out_channels)
    modulation_rows = config.rows_per_branch * (6 if config.temporal_attention else 4)
    timestep = linear(1, TIMESTEP_FREQUENCIES, c) + linear(1, c, c) + linear(1, c, modulation_rows * c)
    return config.depth * block + embed + timestep
