"""IDDPM diffusion: schedule and respacing, the learned-variance range, the hybrid loss, sampling with an exact
denoiser, and classifier-free guidance."""

import math

import pytest
import torch

from openvid_assets.mvdit.diffusion import GaussianDiffusion, classifier_free_guidance, spaced_steps
from openvid_assets_tests.mvdit.helpers import inputs, tiny_model

BASE = GaussianDiffusion.linear(1000)


def oracle(x_start: torch.Tensor, v: float = 0.0):
    """The exact ε for data that is always ``x_start``, with a constant variance interpolation v. It reads the
    noise level of the training step the model is told (respaced processes must pass the original timesteps)."""

    def denoiser(x_t: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        alpha_bar = BASE.alphas_cumprod[timesteps].float().view(-1, *[1] * (x_t.dim() - 1))
        eps = (x_t - alpha_bar.sqrt() * x_start) / (1 - alpha_bar).sqrt()
        return torch.cat([eps, torch.full_like(eps, v)], dim=1)

    return denoiser


def test_linear_schedule_and_respacing_keep_the_noise_levels():
    assert BASE.num_timesteps == 1000
    assert math.isclose(BASE.betas[0].item(), 1e-4) and math.isclose(BASE.betas[-1].item(), 0.02)
    for count in (100, 50, 7):
        spaced = BASE.respaced(count)
        kept = spaced_steps(1000, count)
        assert kept[0] == 0 and kept[-1] == 999 and len(set(kept)) == count
        assert spaced.timestep_map.tolist() == kept
        assert torch.allclose(spaced.alphas_cumprod, BASE.alphas_cumprod[kept], rtol=1e-12)


def test_learned_variance_spans_posterior_to_beta():
    spaced = BASE.respaced(100)
    x_t = torch.randn(3, 4, 2, 4, 4)
    t = torch.tensor([0, 40, 99])
    eps = torch.zeros_like(x_t)
    low = spaced.p_mean_variance(torch.cat([eps, -torch.ones_like(x_t)], 1), x_t, t)["log_variance"]
    high = spaced.p_mean_variance(torch.cat([eps, torch.ones_like(x_t)], 1), x_t, t)["log_variance"]
    assert torch.allclose(low[:, 0, 0, 0, 0], spaced.posterior_log_variance_clipped[t].float())
    assert torch.allclose(high[:, 0, 0, 0, 0], spaced.betas[t].log().float())
    assert (high[1:] > low[1:]).all()  # β_t exceeds the posterior variance β̃_t


def test_hybrid_loss_vanishes_for_the_exact_noise_and_trains_the_variance_only_through_vb():
    x_start = torch.rand(4, 4, 2, 4, 4) * 2 - 1
    noise = torch.randn_like(x_start)
    t = torch.tensor([0, 1, 500, 999])
    exact = BASE.training_losses(oracle(x_start), x_start, t, noise)
    assert exact["mse"].abs().max() < 1e-8 and torch.isfinite(exact["vb"]).all()
    assert torch.allclose(exact["loss"], exact["mse"] + exact["vb"])

    wrong_eps = torch.zeros(4, 8, 2, 4, 4, requires_grad=True)
    losses = BASE.training_losses(lambda x, s: wrong_eps, x_start, t, noise)
    assert torch.allclose(losses["mse"], (noise**2).flatten(1).mean(1))
    losses["vb"].sum().backward()  # the bound sees a detached ε: its gradient reaches only the variance channels
    assert wrong_eps.grad[:, :4].abs().max() == 0 and wrong_eps.grad[:, 4:].abs().max() > 0


def test_sampling_with_the_exact_noise_lands_on_the_data():
    x_start = torch.rand(2, 4, 2, 4, 4) * 2 - 1
    for count in (100, 10):
        spaced = BASE.respaced(count)
        out = spaced.p_sample_loop(oracle(x_start), torch.randn_like(x_start), torch.Generator().manual_seed(0))
        assert torch.allclose(out, x_start, atol=1e-4)


def test_classifier_free_guidance_extrapolates_noise_and_keeps_conditional_variance():
    model = tiny_model()
    batch = inputs()
    x, t, y, mask = batch["x"], batch["timestep"], batch["y"], batch["mask"]
    with torch.no_grad():
        conditional = model(x, t, y, mask)
        unconditional = model(x, t, y, mask, drop_captions=torch.ones(2, dtype=torch.bool))
        for scale in (1.0, 7.0):
            guided = classifier_free_guidance(model, y, mask, scale, guided_channels=4)(x, t)
            expected_eps = unconditional[:, :4] + scale * (conditional[:, :4] - unconditional[:, :4])
            assert torch.allclose(guided[:, :4], expected_eps, atol=1e-4)
            assert torch.allclose(guided[:, 4:], conditional[:, 4:], atol=1e-5)
        partial = classifier_free_guidance(model, y, mask, 7.0, guided_channels=3)(x, t)  # the release's 256px setting
        assert torch.allclose(partial[:, 3:], conditional[:, 3:], atol=1e-5)


@pytest.mark.parametrize("count", [0, 1001])
def test_respacing_rejects_impossible_step_counts(count):
    with pytest.raises(ValueError):
        BASE.respaced(count)
