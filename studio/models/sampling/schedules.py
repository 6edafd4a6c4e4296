"""Noise schedules: the model's 1000 training sigmas, and the few sigmas a sampler visits.

The sigma lists follow ComfyUI 0.3.x exactly (same scheduler names, same numbers), so a workflow
that names ``karras`` or ``normal`` gives the same steps here as there.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta", "linear_quadratic",
              "kl_optimal")


def sd_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000,
                      schedule: str = "scaled_linear") -> Tensor:
    """Cumulative signal fractions of the training noise schedule (float64, length ``steps``).

    SD 1.x/2.x/XL all train on "scaled_linear" (linear in sqrt(beta)); "linear" is kept for
    older DDPM-style checkpoints.
    """
    if schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    elif schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    else:
        raise ValueError(f"unknown beta schedule {schedule!r}; choose 'scaled_linear' or 'linear'")
    return torch.cumprod(1.0 - betas, dim=0)


class ModelSigmas:
    """The model's discrete noise levels, and the map between sigma and the timestep the UNet sees.

    Samplers think in sigma (noise std of ``x = x0 + sigma * eps``); the UNet was trained on
    integer timesteps. Interpolating log-sigma between them (as k-diffusion does) lets a
    scheduler place a step at any sigma.
    """

    def __init__(self, alphas_cumprod: Tensor | None = None) -> None:
        if alphas_cumprod is None:
            alphas_cumprod = sd_alphas_cumprod()
        alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        sigmas = ((1.0 - alphas_cumprod) / alphas_cumprod) ** 0.5
        # float32 like ComfyUI, so derived schedules match its numbers bit for bit where possible
        self.sigmas: Tensor = sigmas.float()
        self.log_sigmas: Tensor = self.sigmas.log()

    def __len__(self) -> int:
        return len(self.sigmas)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def timestep(self, sigma: Tensor | float, quantize: bool = False) -> Tensor:
        """Continuous timestep for ``sigma`` (k-diffusion's ``sigma_to_t``); ``quantize`` rounds
        to the nearest training step as ComfyUI does."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        log_sigma = sigma.float().cpu().log().reshape(-1)
        if quantize:
            t = (log_sigma[None, :] - self.log_sigmas[:, None]).abs().argmin(dim=0).float()
        else:
            last = len(self.log_sigmas) - 1
            low = (torch.searchsorted(self.log_sigmas, log_sigma, right=True) - 1).clamp(0, last - 1)
            lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
            w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
            t = low.float() + w
        return t.reshape(sigma.shape).to(sigma.device)

    def sigma(self, t: Tensor | float) -> Tensor:
        """Sigma at a (possibly fractional) timestep; inverse of :meth:`timestep`."""
        t = torch.as_tensor(t, dtype=torch.float32)
        tc = t.float().cpu().clamp(0, len(self.sigmas) - 1)
        low, high = tc.floor().long(), tc.ceil().long()
        w = tc.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(t.device)


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022): uniform in sigma^(1/rho), spending more steps at low noise."""
    ramp = torch.linspace(0, 1, steps)
    min_inv, max_inv = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((max_inv + ramp * (min_inv - max_inv)) ** rho)


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Uniform in log-sigma."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def kl_optimal_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """"Align Your Steps"-style KL-optimal schedule (A1111 PR 15608, ComfyUI's ``kl_optimal``):
    uniform in arctan(sigma). Computed in float32 like ComfyUI; one step is just ``[sigma_max, 0]``
    (ComfyUI divides 0 by 0 there)."""
    ramp = torch.arange(steps, dtype=torch.float32) / max(steps - 1, 1)
    sigmas = torch.zeros(steps + 1, dtype=torch.float32)
    sigmas[:-1] = (ramp * math.atan(sigma_min) + (1 - ramp) * math.atan(sigma_max)).tan()
    return sigmas


def linear_quadratic_sigmas(steps: int, sigma_max: float | Tensor, threshold_noise: float = 0.025,
                            linear_steps: int | None = None) -> Tensor:
    """Mochi's schedule (ComfyUI's ``linear_quadratic``): the noise fraction falls linearly to
    ``threshold_noise`` over the first half of the steps, then quadratically to 0; scaled by sigma_max."""
    if steps == 1:
        fractions = [1.0, 0.0]
    else:
        if linear_steps is None:
            linear_steps = steps // 2
        linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        step_diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
        linear_coef = threshold_noise / linear_steps - 2 * step_diff / quadratic_steps**2
        const = quadratic_coef * linear_steps**2
        quadratic = [quadratic_coef * i**2 + linear_coef * i + const for i in range(linear_steps, steps)]
        fractions = [1.0 - f for f in [*linear, *quadratic, 1.0]]
    return torch.tensor(fractions, dtype=torch.float32) * torch.as_tensor(sigma_max, dtype=torch.float32)


def _append_zero(sigmas: Tensor) -> Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _normal(ms: ModelSigmas, steps: int, sgm: bool) -> Tensor:
    start, end = float(ms.timestep(ms.sigma_max)), float(ms.timestep(ms.sigma_min))
    append_zero = True
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(ms.sigma(end)), 0, abs_tol=1e-5):  # zero-terminal-SNR models end at 0 already
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigmas = [float(ms.sigma(t)) for t in timesteps]
    if append_zero:
        sigmas.append(0.0)
    return torch.tensor(sigmas, dtype=torch.float32)


def _simple(ms: ModelSigmas, steps: int) -> Tensor:
    stride = len(ms.sigmas) / steps
    sigmas = [float(ms.sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


def _ddim_uniform(ms: ModelSigmas, steps: int) -> Tensor:
    # As ComfyUI: every (1000 // steps)-th training sigma from index 1, so for step counts that do
    # not divide 1000 the list is one or more entries longer than steps + 1.
    index = 1
    if math.isclose(float(ms.sigmas[index]), 0, abs_tol=1e-5):
        steps += 1
        sigmas: list[float] = []
    else:
        sigmas = [0.0]
    stride = max(len(ms.sigmas) // steps, 1)
    while index < len(ms.sigmas):
        sigmas.append(float(ms.sigmas[index]))
        index += stride
    return torch.tensor(sigmas[::-1], dtype=torch.float32)


def beta_cdf(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Regularised incomplete beta I_x(a, b) by Gauss-Legendre quadrature (scipy is not a dependency).

    Substituting t = u^(1/a) removes the endpoint singularity at 0; the upper half uses the
    symmetry I_x(a, b) = 1 - I_(1-x)(b, a), so the integrand is always smooth.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    nodes, weights = np.polynomial.legendre.leggauss(64)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def lower(xs: np.ndarray, p: float, q: float) -> np.ndarray:
        upper = xs**p  # integrate over u in [0, x^p]
        u = (nodes[None, :] + 1) / 2 * upper[:, None]
        integrand = (1 - u ** (1 / p)) ** (q - 1) / p
        return (integrand * weights[None, :]).sum(axis=1) * upper / 2 / math.exp(log_beta)

    flat = x.reshape(-1)
    out = np.empty_like(flat)
    left = flat <= 0.5
    out[left] = lower(flat[left], a, b)
    out[~left] = 1 - lower(1 - flat[~left], b, a)
    return out.reshape(x.shape)


def _beta(ms: ModelSigmas, steps: int, alpha: float = 0.6, beta: float = 0.6) -> Tensor:
    # ComfyUI: t_k = rint(ppf(1 - k/steps) * 999), repeated t dropped. rint(ppf(p) * T) is the number
    # of half-way points (j + 0.5) / T whose CDF lies at or below p, which needs only the CDF.
    total = len(ms.sigmas) - 1
    probs = 1 - np.linspace(0, 1, steps, endpoint=False)
    edges = beta_cdf((np.arange(total) + 0.5) / total, alpha, beta)
    ts = np.searchsorted(edges, probs, side="right")
    sigmas: list[float] = []
    last = -1
    for t in ts:
        if t != last:
            sigmas.append(float(ms.sigmas[int(t)]))
        last = t
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


def get_sigmas(scheduler: str, steps: int, model_sigmas: ModelSigmas, *, discard_penultimate: bool = False) -> Tensor:
    """The sigmas a sampler visits: ``steps + 1`` values, descending, ending in 0.

    Exceptions kept from ComfyUI: ``ddim_uniform`` can be longer when 1000 is not a multiple of
    ``steps``, and ``beta`` drops repeated timesteps. ``discard_penultimate`` (for samplers in
    ``DISCARD_PENULTIMATE_SIGMA_SAMPLERS``) computes one step more and drops the last non-zero
    sigma, as ComfyUI does for dpm_2 and uni_pc whose final step jumps straight to 0.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if discard_penultimate:
        sigmas = get_sigmas(scheduler, steps + 1, model_sigmas)
        return torch.cat([sigmas[:-2], sigmas[-1:]])
    ms = model_sigmas
    if scheduler == "normal":
        return _normal(ms, steps, sgm=False)
    if scheduler == "karras":
        return karras_sigmas(steps, ms.sigma_min, ms.sigma_max)
    if scheduler == "exponential":
        return exponential_sigmas(steps, ms.sigma_min, ms.sigma_max)
    if scheduler == "sgm_uniform":
        return _normal(ms, steps, sgm=True)
    if scheduler == "simple":
        return _simple(ms, steps)
    if scheduler == "ddim_uniform":
        return _ddim_uniform(ms, steps)
    if scheduler == "beta":
        return _beta(ms, steps)
    if scheduler == "linear_quadratic":
        return linear_quadratic_sigmas(steps, ms.sigmas[-1])
    if scheduler == "kl_optimal":
        return kl_optimal_sigmas(steps, ms.sigma_min, ms.sigma_max)
    raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")


def denoise_sigmas(scheduler: str, steps: int, denoise: float, model_sigmas: ModelSigmas, *,
                   discard_penultimate: bool = False) -> Tensor:
    """Sigmas for img2img: ``steps`` steps over the last ``denoise`` fraction of a longer schedule.

    ComfyUI's rule, so a denoise of 0.5 with 20 steps starts where step 20 of a 40-step schedule
    would; ``denoise <= 0`` gives an empty schedule (nothing to do).
    """
    if denoise > 0.9999:
        return get_sigmas(scheduler, steps, model_sigmas, discard_penultimate=discard_penultimate)
    if denoise <= 0.0:
        return torch.zeros(0, dtype=torch.float32)
    total = int(steps / denoise)
    sigmas = get_sigmas(scheduler, total, model_sigmas, discard_penultimate=discard_penultimate)
    return sigmas[-(steps + 1):]
