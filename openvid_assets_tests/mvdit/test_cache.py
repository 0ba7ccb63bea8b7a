"""The attention cache of sampling (the paper's appendix): interval 1 is the uncached model exactly; interval 2
computes each block's attention and feed-forward outputs on every other forward and reuses them between."""

import numpy as np
import pytest
import torch

from openvid_assets.mvdit.encoders import tiny_t5, tiny_vae
from openvid_assets.mvdit.model import AttentionCache, preset
from openvid_assets.mvdit.sample import generate
from openvid_assets_tests.mvdit.helpers import inputs, tiny_model

BRANCHES = ("attn", "attn_temp", "cross_attn", "mlp", "mlp_y")


def calls_per_branch(model) -> dict[str, int]:
    """Count the forwards of every block's attention and feed-forward modules."""
    counts = dict.fromkeys(BRANCHES, 0)
    for block in model.blocks:
        for name in BRANCHES:
            getattr(block, name).register_forward_hook(lambda *_, n=name: counts.__setitem__(n, counts[n] + 1))
    return counts


@torch.no_grad()
def test_interval_one_is_the_uncached_model_exactly():
    model, x = tiny_model(), inputs()
    cache = AttentionCache(interval=1)
    for step in (900, 600, 300):
        t = torch.full((2,), step)
        plain = model(x["x"], t, x["y"], x["mask"])
        assert torch.equal(model(x["x"], t, x["y"], x["mask"], cache=cache), plain)
        x["x"] = x["x"] * 0.9 + 0.1 * plain[:, : x["x"].shape[1]]


@torch.no_grad()
def test_interval_two_computes_every_other_forward_and_reuses_between():
    model, x = tiny_model(), inputs()
    counts = calls_per_branch(model)
    cache, t = AttentionCache(interval=2), torch.full((2,), 500)
    first = model(x["x"], t, x["y"], x["mask"], cache=cache)
    assert all(counts[n] == len(model.blocks) for n in BRANCHES), counts
    # Reused at the same input and step: exactly what computing would give, with no branch run.
    assert torch.equal(model(x["x"], t, x["y"], x["mask"], cache=cache), first)
    assert all(counts[n] == len(model.blocks) for n in BRANCHES), counts
    model(x["x"], t, x["y"], x["mask"], cache=cache)  # the third forward computes again
    assert all(counts[n] == 2 * len(model.blocks) for n in BRANCHES), counts
    # At another step the reused outputs meet the new modulation: close to, not equal to, a full forward.
    later = torch.full((2,), 480)
    cached = model(x["x"], later, x["y"], x["mask"], cache=cache)
    full = model(x["x"], later, x["y"], x["mask"])
    assert not torch.equal(cached, full)
    assert (cached - full).norm() < 0.5 * (full - first).norm() + 1e-6 or (cached - full).norm() < 0.05 * full.norm()
    with pytest.raises(ValueError, match="at least 1"):
        AttentionCache(interval=0)


def test_cached_sampling_stays_close_to_uncached():
    config = preset("tiny", frames=4, height=16, width=16, vae_downsample=2)
    vae, t5 = tiny_vae(), tiny_t5(max_length=config.model_max_length, dim=config.caption_channels)
    model = tiny_model(config=config)
    prompts = ["a cat", "a dog"]
    uncached = generate(model, t5, vae, prompts, steps=10, seed=3)
    assert np.array_equal(generate(model, t5, vae, prompts, steps=10, seed=3, cache_interval=1), uncached)
    cached = generate(model, t5, vae, prompts, steps=10, seed=3, cache_interval=2)
    other_seed = generate(model, t5, vae, prompts, steps=10, seed=4)
    error = np.abs(cached.astype(float) - uncached).mean()
    assert 0 < error < 0.5 * np.abs(other_seed.astype(float) - uncached).mean()  # a cache, not another sample
