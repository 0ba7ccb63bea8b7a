"""Gaussian diffusion as MVDiT is trained and sampled with (IDDPM, Nichol & Dhariwal 2021, the form PixArt-α and
Open-Sora use): 1000 linear-beta steps, ε-prediction with a learned variance interpolation, the hybrid loss
(MSE on ε plus the variational bound, which trains only the variance), respaced ancestral sampling and
classifier-free guidance.

Schedules are kept in float64 and cast per use; a model is any callable ``model(x_t, timesteps) -> output`` whose
output has the noise prediction in its first C channels and the variance interpolation v in [-1, 1] in the next C.
"""

import math
from collections.abc import Callable
from typing import Any

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def linear_betas(steps: int = 1000) -> torch.Tensor:
    """DDPM's linear schedule (1e-4 to 0.02 at 1000 steps), stretched so other step counts cover the same range."""
    scale = 1000 / steps
    return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)


def spaced_steps(num_steps: int, count: int) -> list[int]:
    """``count`` steps spread evenly over ``range(num_steps)``, first and last included (IDDPM's respacing)."""
    if not 1 <= count <= num_steps:
        raise ValueError(f"cannot take {count} of {num_steps} steps")
    if count == 1:
        return [0]
    stride = (num_steps - 1) / (count - 1)
    return [round(i * stride) for i in range(count)]


def per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast against ``like`` ([B, ...])."""
    return values.to(t.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Log-probability of ``x`` (in [-1, 1], 256 bins) under a Gaussian: the bound's decoder term at t = 0."""
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255))
    cdf_minus = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_minus).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, log_delta))


class GaussianDiffusion:
    def __init__(self, betas: torch.Tensor, timestep_map: torch.Tensor | None = None, learn_sigma: bool = True):
        """``timestep_map[i]`` is the training timestep the model sees at step i (differs after respacing)."""
        self.betas = betas.double()
        self.num_timesteps = len(betas)
        self.timestep_map = torch.arange(self.num_timesteps) if timestep_map is None else timestep_map
        self.learn_sigma = learn_sigma
        alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(alphas, dim=0)
        previous = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = self.alphas_cumprod.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - self.alphas_cumprod).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / self.alphas_cumprod).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / self.alphas_cumprod - 1).sqrt()
        # q(x_{t-1} | x_t, x_0)
        self.posterior_variance = self.betas * (1.0 - previous) / (1.0 - self.alphas_cumprod)
        # The variance is 0 at t = 0; its log is clipped to the next value (the learned range's lower end).
        clipped = torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
        self.posterior_log_variance_clipped = torch.log(clipped)
        self.posterior_mean_coef1 = self.betas * previous.sqrt() / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - previous) * alphas.sqrt() / (1.0 - self.alphas_cumprod)

    @classmethod
    def linear(cls, steps: int = 1000, learn_sigma: bool = True) -> "GaussianDiffusion":
        return cls(linear_betas(steps), learn_sigma=learn_sigma)

    def respaced(self, count: int) -> "GaussianDiffusion":
        """The same process on ``count`` of its steps: betas recomputed so the kept steps' ᾱ are unchanged."""
        keep = spaced_steps(self.num_timesteps, count)
        kept_alphas = self.alphas_cumprod[keep]
        previous = torch.cat([torch.ones(1, dtype=torch.float64), kept_alphas[:-1]])
        return GaussianDiffusion(1.0 - kept_alphas / previous, self.timestep_map[keep], self.learn_sigma)

    # -- forward process ----------------------------------------------------------------------------------------

    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (
            per_sample(self.sqrt_alphas_cumprod, t, x_start) * x_start
            + per_sample(self.sqrt_one_minus_alphas_cumprod, t, x_start) * noise
        )

    def q_posterior(
        self, x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = (
            per_sample(self.posterior_mean_coef1, t, x_t) * x_start
            + per_sample(self.posterior_mean_coef2, t, x_t) * x_t
        )
        return mean, per_sample(self.posterior_log_variance_clipped, t, x_t)

    # -- reverse process ----------------------------------------------------------------------------------------

    def p_mean_variance(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean, log-variance and predicted x_0 of p(x_{t-1} | x_t) from a model output."""
        channels = x_t.shape[1]
        eps = output[:, :channels]
        if self.learn_sigma:
            # v in [-1, 1] interpolates the log-variance between the posterior's (β̃_t) and β_t.
            fraction = (output[:, channels:] + 1) / 2
            lower = per_sample(self.posterior_log_variance_clipped, t, x_t)
            upper = per_sample(torch.log(self.betas), t, x_t)
            log_variance = fraction * upper + (1 - fraction) * lower
        else:  # fixed "large" variance
            large = torch.log(torch.cat([self.posterior_variance[1:2], self.betas[1:]]))
            log_variance = per_sample(large, t, x_t).expand_as(x_t)
        pred_xstart = (
            per_sample(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - per_sample(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )
        mean, _ = self.q_posterior(pred_xstart, x_t, t)
        return {"mean": mean, "log_variance": log_variance, "pred_xstart": pred_xstart}

    def training_losses(
        self, model: Denoiser, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-sample hybrid loss: ``mse`` on ε plus ``vb``, the bound's term for step t in bits per dimension.
        The bound sees a detached ε so it trains only the variance (IDDPM's L_hybrid with λ = 1, as the release)."""
        noise = torch.randn_like(x_start) if noise is None else noise
        x_t = self.q_sample(x_start, t, noise)
        output = model(x_t, self.timestep_map.to(t.device)[t])
        channels = x_start.shape[1]
        terms = {"mse": mean_flat((noise - output[:, :channels]) ** 2)}
        if self.learn_sigma:
            frozen = torch.cat([output[:, :channels].detach(), output[:, channels:]], dim=1)
            predicted = self.p_mean_variance(frozen, x_t, t)
            true_mean, true_log_variance = self.q_posterior(x_start, x_t, t)
            kl = mean_flat(normal_kl(true_mean, true_log_variance, predicted["mean"], predicted["log_variance"]))
            decoder_nll = -mean_flat(
                discretized_gaussian_log_likelihood(x_start, predicted["mean"], 0.5 * predicted["log_variance"])
            )
            terms["vb"] = torch.where(t == 0, decoder_nll, kl) / math.log(2.0)
            terms["loss"] = terms["mse"] + terms["vb"]
        else:
            terms["loss"] = terms["mse"]
        return terms

    @torch.no_grad()
    def p_sample_loop(
        self,
        model: Denoiser,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling from ``noise`` (x_T) down to x_0; ``generator`` drives the per-step noise."""
        x = noise
        for step in reversed(range(self.num_timesteps)):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            predicted = self.p_mean_variance(model(x, self.timestep_map.to(x.device)[t]), x, t)
            x = predicted["mean"]
            if step > 0:
                fresh = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + torch.exp(0.5 * predicted["log_variance"]) * fresh
            if progress is not None:
                progress(step)
        return x


def classifier_free_guidance(
    model: Callable[..., torch.Tensor], captions: torch.Tensor, mask: torch.Tensor, scale: float, guided_channels: int
) -> Denoiser:
    """A denoiser that runs ``model`` on each input twice in one batch, with the captions and with the model's own
    null caption (``drop_captions``), and moves the first ``guided_channels`` (ε) from the unconditional towards
    the conditional prediction by ``scale``; the variance comes from the conditional half."""
    batch = captions.shape[0]
    both_captions, both_masks = torch.cat([captions, captions]), torch.cat([mask, mask])
    drop = torch.arange(2 * batch, device=captions.device) >= batch

    def guided(x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        output = model(
            torch.cat([x, x]), torch.cat([timesteps, timesteps]), both_captions, both_masks, drop_captions=drop
        )
        conditional, unconditional = output.chunk(2)
        eps_c, eps_u = conditional[:, :guided_channels], unconditional[:, :guided_channels]
        return torch.cat([eps_u + scale * (eps_c - eps_u), conditional[:, guided_channels:]], dim=1)

    return guided
