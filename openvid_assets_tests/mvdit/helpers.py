"""Shared pieces of the MVDiT tests: the tiny configuration and seeded random inputs and weights."""

import torch

from openvid_assets.models.registry.runtime import seeded
from openvid_assets.mvdit.model import MVDiT, MVDiTConfig, preset

# 3 latent frames of 8x8 (16 visual tokens per frame), 8 caption tokens of width 32: odd sizes catch transpositions.
TINY = preset("tiny", frames=3, height=8, width=8, vae_downsample=1)


def tiny_model(seed: int = 0, randomized: bool = True, config: MVDiTConfig = TINY) -> MVDiT:
    """A tiny MVDiT; ``randomized`` also gives the zero-initialised parts (gates, MHCA output, final layer) random
    values, so every path through the block has an effect."""
    with seeded(seed):
        model = MVDiT(config).eval()
        if randomized:
            randomize(model)
    return model


@torch.no_grad()
def randomize(module: torch.nn.Module, scale: float = 0.1) -> None:
    for parameter in module.parameters():
        parameter.copy_(torch.randn_like(parameter) * scale)


def inputs(batch: int = 2, config: MVDiTConfig = TINY, seed: int = 0) -> dict[str, torch.Tensor]:
    """Noisy latents, timesteps, caption features and a mask whose second row has padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, config.in_channels, *config.input_size, generator=g)
    y = torch.randn(batch, config.model_max_length, config.caption_channels, generator=g)
    mask = torch.ones(batch, config.model_max_length, dtype=torch.bool)
    mask[1:, 3:] = False
    return {"x": x, "timestep": torch.linspace(3, 900, batch).round(), "y": y, "mask": mask}
