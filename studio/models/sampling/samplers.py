"""Samplers in sigma space (the k-diffusion formulation), with ComfyUI's names and step rules.

Every sampler integrates from ``sigmas[0]`` to ``sigmas[-1]`` given a denoiser
``D(x, sigma) -> x0``; ``x`` arrives already scaled (``noise * sigmas[0]``, plus the latent for
img2img). Sigma arithmetic runs on Python floats: no device syncs, and float64 precision for free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor], Tensor]
NoiseSampler = Callable[[float, float], Tensor]
StepCallback = Callable[[int, int, Tensor, Tensor], None]
CancelCheck = Callable[[], None]

SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim",
            "uni_pc", "uni_pc_bh2", "lcm")
#: Samplers that want ``get_sigmas(..., discard_penultimate=True)``, as in ComfyUI.
DISCARD_PENULTIMATE_SIGMA_SAMPLERS = ("dpm_2", "uni_pc", "uni_pc_bh2")
#: Samplers that draw fresh noise through ``noise_sampler`` (the rest are deterministic ODE solvers).
STOCHASTIC_SAMPLERS = ("euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde", "lcm")
#: ComfyUI re-noises the kept (unmasked) area of an inpaint with a second noise for these.
RANDOM_INPAINT_NOISE_SAMPLERS = ("ddim",)


class SeededNoise:
    """Reproducible noise, one CPU generator per batch item.

    Drawn on the CPU in float32 and then moved, so a seed gives the same picture on CUDA, MPS
    and CPU and in any dtype; one generator per item, so an image can be re-made alone from its
    own seed, whatever batch it was born in. ``initial`` restarts every generator; later calls
    (ancestral and SDE noise) continue the same streams.
    """

    def __init__(self, seeds: Sequence[int]) -> None:
        if len(seeds) == 0:
            raise ValueError("SeededNoise needs at least one seed")
        self.seeds = [int(seed) % (1 << 64) for seed in seeds]
        self._generators = [torch.Generator(device="cpu") for _ in self.seeds]
        self._item_shape: tuple[int, ...] | None = None
        self._device: torch.device = torch.device("cpu")
        self._dtype: torch.dtype = torch.float32

    @classmethod
    def consecutive(cls, seed: int, batch_size: int) -> SeededNoise:
        """Seeds ``seed, seed + 1, …``: item i of a batch can be re-made alone with ``seed + i``."""
        return cls([seed + i for i in range(batch_size)])

    def initial(self, shape: Sequence[int], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        """The starting noise for a ``[B, …]`` batch (unit variance; the caller scales by sigma)."""
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != len(self.seeds):
            raise ValueError(f"noise shape {shape} does not match the {len(self.seeds)} seed(s) given")
        for generator, seed in zip(self._generators, self.seeds):
            generator.manual_seed(seed)
        self._item_shape, self._device, self._dtype = shape[1:], torch.device(device), dtype
        return self._draw()

    def __call__(self, sigma: float | None = None, sigma_next: float | None = None) -> Tensor:
        """Fresh noise for an ancestral/SDE step, same shape, device and dtype as ``initial``."""
        if self._item_shape is None:
            raise RuntimeError("SeededNoise.initial(shape, device, dtype) must be called before step noise is drawn")
        return self._draw()

    def _draw(self) -> Tensor:
        assert self._item_shape is not None
        items = [torch.randn(self._item_shape, generator=g, dtype=torch.float32, device="cpu") for g in self._generators]
        return torch.stack(items).to(device=self._device, dtype=self._dtype)


# -- plumbing shared by every sampler ---------------------------------------------------------------

class _Steps:
    """Wraps the denoiser with the cancellation check and the per-step callback bookkeeping."""

    def __init__(self, denoiser: Denoiser, x: Tensor, sigmas: Tensor, callback: StepCallback | None,
                 cancel: CancelCheck | None) -> None:
        self.denoiser, self.callback, self.cancel = denoiser, callback, cancel
        self.sigmas = [float(s) for s in sigmas.reshape(-1)]
        self.total = max(len(self.sigmas) - 1, 0)
        self.batch = x.shape[0]

    def model(self, x: Tensor, sigma: float) -> Tensor:
        if self.cancel is not None:
            self.cancel()
        return self.denoiser(x, x.new_full((self.batch,), sigma))

    def done(self, i: int, x: Tensor, denoised: Tensor) -> None:
        if self.callback is not None:
            self.callback(i, self.total, x, denoised)


def _need_noise(noise_sampler: NoiseSampler | None, name: str) -> NoiseSampler:
    if noise_sampler is None:
        raise ValueError(f"sampler {name!r} draws fresh noise each step; pass noise_sampler (e.g. a SeededNoise)")
    return noise_sampler


def _ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step into a deterministic part down to ``sigma_down`` and fresh noise ``sigma_up``."""
    if not eta or sigma_next == 0:
        return sigma_next, 0.0
    sigma_up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


# -- first order ----------------------------------------------------------------------------------

def sample_euler(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                 callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Euler on the probability-flow ODE; in sigma space this is exactly DDIM with eta = 0."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        x = x + (x - denoised) / s[i] * (s[i + 1] - s[i])
        run.done(i, x, denoised)
    return x


def sample_euler_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                           callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Euler down to sigma_down, then fresh noise up to sigma_next: forgets its past, so varied."""
    noise = _need_noise(noise_sampler, "euler_ancestral")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        sigma_down, sigma_up = _ancestral_step(s[i], s[i + 1])
        x = x + (x - denoised) / s[i] * (sigma_down - s[i])
        if s[i + 1] > 0:
            x = x + noise(s[i], s[i + 1]) * sigma_up
        run.done(i, x, denoised)
    return x


def sample_lcm(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
               callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Latent-consistency sampling: jump to the prediction, re-noise to the next level."""
    noise = _need_noise(noise_sampler, "lcm")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        x = denoised
        if s[i + 1] > 0:
            x = x + noise(s[i], s[i + 1]) * s[i + 1]
        run.done(i, x, denoised)
    return x


# -- second order, single step --------------------------------------------------------------------

def sample_heun(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Heun's method (Karras et al. Algorithm 1): two model calls per step, Euler on the last."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            denoised_2 = run.model(x_2, s[i + 1])
            d_2 = (x_2 - denoised_2) / s[i + 1]
            x = x + (d + d_2) / 2 * dt
        run.done(i, x, denoised)
    return x


def sample_dpm_2(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                 callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """DPM-Solver-2 (midpoint in log sigma), as k-diffusion's ``sample_dpm_2``."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        if s[i + 1] == 0:
            x = x + d * (s[i + 1] - s[i])
        else:
            sigma_mid = math.exp((math.log(s[i]) + math.log(s[i + 1])) / 2)
            x_2 = x + d * (sigma_mid - s[i])
            denoised_2 = run.model(x_2, sigma_mid)
            d_2 = (x_2 - denoised_2) / sigma_mid
            x = x + d_2 * (s[i + 1] - s[i])
        run.done(i, x, denoised)
    return x


def sample_dpmpp_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                     callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                     eta: float = 1.0, r: float = 0.5) -> Tensor:
    """DPM-Solver++ (stochastic, two model calls per step), as k-diffusion's ``sample_dpmpp_sde``."""
    noise = _need_noise(noise_sampler, "dpmpp_sde")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        if s[i + 1] == 0:
            x = x + (x - denoised) / s[i] * (s[i + 1] - s[i])
        else:
            t, t_next = -math.log(s[i]), -math.log(s[i + 1])
            h = t_next - t
            sigma_s = math.exp(-(t + h * r))
            fac = 1 / (2 * r)
            # step 1: to the intermediate level sigma_s
            sd, su = _ancestral_step(s[i], sigma_s, eta)
            x_2 = (sd / s[i]) * x - math.expm1(t + math.log(sd)) * denoised
            x_2 = x_2 + noise(s[i], sigma_s) * su
            denoised_2 = run.model(x_2, sigma_s)
            # step 2: to sigma_next with the blended prediction
            sd, su = _ancestral_step(s[i], s[i + 1], eta)
            denoised_d = (1 - fac) * denoised + fac * denoised_2
            x = (sd / s[i]) * x - math.expm1(t + math.log(sd)) * denoised_d
            x = x + noise(s[i], s[i + 1]) * su
        run.done(i, x, denoised)
    return x


# -- multistep ------------------------------------------------------------------------------------

def lms_coefficients(sigmas: Sequence[float], i: int, order: int) -> list[float]:
    """Adams-Bashforth weights for the step sigmas[i] -> sigmas[i+1] from the last ``order`` slopes.

    Each weight integrates a Lagrange basis polynomial of degree order - 1 over the step;
    Gauss-Legendre with ``order`` nodes is exact for that degree, so no scipy is needed.
    """
    nodes, weights = np.polynomial.legendre.leggauss(max(order, 1))
    a, b = sigmas[i], sigmas[i + 1]
    taus = (b - a) / 2 * nodes + (a + b) / 2
    coeffs = []
    for j in range(order):
        basis = np.ones_like(taus)
        for k in range(order):
            if k != j:
                basis *= (taus - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k])
        coeffs.append(float((b - a) / 2 * np.sum(weights * basis)))
    return coeffs


def sample_lms(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
               callback: StepCallback | None = None, cancel: CancelCheck | None = None, order: int = 4) -> Tensor:
    """Linear multistep (order 4): reuses past slopes, one model call per step."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    slopes: list[Tensor] = []
    for i in range(run.total):
        denoised = run.model(x, s[i])
        slopes.append((x - denoised) / s[i])
        if len(slopes) > order:
            slopes.pop(0)
        current = min(i + 1, order)
        coeffs = lms_coefficients(s, i, current)
        x = x + sum(c * d for c, d in zip(coeffs, reversed(slopes)))
        run.done(i, x, denoised)
    return x


def sample_dpmpp_2m(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                    callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """DPM-Solver++(2M): second order from the previous prediction, one model call per step."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    old_denoised: Tensor | None = None
    for i in range(run.total):
        denoised = run.model(x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            if old_denoised is None:
                denoised_d = denoised
            else:
                r = math.log(s[i - 1] / s[i]) / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (s[i + 1] / s[i]) * x - math.expm1(-h) * denoised_d
        old_denoised = denoised
        run.done(i, x, denoised)
    return x


def sample_dpmpp_2m_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                        callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                        eta: float = 1.0) -> Tensor:
    """DPM-Solver++(2M) SDE, midpoint variant (k-diffusion's default)."""
    noise = _need_noise(noise_sampler, "dpmpp_2m_sde")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    old_denoised: Tensor | None = None
    h_last: float | None = None
    for i in range(run.total):
        denoised = run.model(x, s[i])
        h = None
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            eta_h = eta * h
            x = (s[i + 1] / s[i]) * math.exp(-eta_h) * x - math.expm1(-h - eta_h) * denoised
            if old_denoised is not None and h_last is not None:
                r = h_last / h
                x = x - 0.5 * math.expm1(-h - eta_h) * (1 / r) * (denoised - old_denoised)
            if eta:
                x = x + noise(s[i], s[i + 1]) * (s[i + 1] * math.sqrt(-math.expm1(-2 * eta_h)))
        old_denoised, h_last = denoised, h
        run.done(i, x, denoised)
    return x


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    return [float(v) for v in np.linalg.solve(np.array(matrix, dtype=np.float64), np.array(rhs, dtype=np.float64))]


def _uni_pc_update(run: _Steps, x: Tensor, models: list[Tensor], lambdas: list[float], sigma: float, sigma_next: float,
                   order: int, variant: str, use_corrector: bool) -> tuple[Tensor, Tensor | None]:
    """One UniP step (predictor) and optionally UniC (corrector), in the data-prediction form.

    Written in VE/sigma space: with x = x_vp / alpha every alpha factor of the VP formulation
    cancels, and lambda = -log(sigma). The corrector's model call at the new point is returned,
    so the next step reuses it: UniC costs no extra evaluations.
    """
    m0 = models[-1]
    if sigma_next == 0:  # lambda = inf: the first-order step lands exactly on the prediction
        return m0, None
    lam0 = lambdas[-1]
    h = -math.log(sigma_next) - lam0
    rks: list[float] = []
    d1s: list[Tensor] = []
    for k in range(1, order):
        rk = (lambdas[-(k + 1)] - lam0) / h
        rks.append(rk)
        d1s.append((models[-(k + 1)] - m0) / rk)
    rks.append(1.0)

    hh = -h
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = hh if variant == "bh1" else math.expm1(hh)
    rows: list[list[float]] = []
    rhs: list[float] = []
    factorial = 1
    for k in range(1, order + 1):
        rows.append([rk ** (k - 1) for rk in rks])
        rhs.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1 / factorial

    x_first = (sigma_next / sigma) * x - h_phi_1 * m0
    x_t = x_first
    if d1s:
        rhos_p = [0.5] if order == 2 else _solve([r[:-1] for r in rows[:-1]], rhs[:-1])
        x_t = x_first - b_h * sum(rho * d for rho, d in zip(rhos_p, d1s))
    if not use_corrector:
        return x_t, None
    rhos_c = [0.5] if order == 1 else _solve(rows, rhs)
    model_t = run.model(x_t, sigma_next)
    correction = sum((rho * d for rho, d in zip(rhos_c[:-1], d1s)), torch.zeros_like(x)) + rhos_c[-1] * (model_t - m0)
    return x_first - b_h * correction, model_t


def sample_uni_pc(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                  callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                  variant: str = "bh1", order: int = 3) -> Tensor:
    """UniPC multistep predictor-corrector (Zhao et al. 2023), order 3 with lower-order warm-up
    and final steps, one model call per step; ``variant`` is "bh1" (ComfyUI's ``uni_pc``) or
    "bh2" (``uni_pc_bh2``, diffusers' default)."""
    if variant not in ("bh1", "bh2"):
        raise ValueError(f"unknown UniPC variant {variant!r}; choose 'bh1' or 'bh2'")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    n = run.total
    if n == 0:
        return x
    order = min(order, n)
    models = [run.model(x, s[0])]
    lambdas = [-math.log(s[0])]
    for i in range(n):
        step = i + 1
        step_order = step if step < order else min(order, n + 1 - step)
        use_corrector = step < n
        x, model_t = _uni_pc_update(run, x, models, lambdas, s[i], s[i + 1], step_order, variant, use_corrector)
        denoised = models[-1]
        if step < n:
            if model_t is None:
                model_t = run.model(x, s[i + 1])
            models, lambdas = [*models, model_t][-order:], [*lambdas, -math.log(s[i + 1])][-order:]
            denoised = model_t
        run.done(i, x, denoised)
    return x


def sample_uni_pc_bh2(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                      callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """UniPC with the B(h) = e^h - 1 variant."""
    return sample_uni_pc(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback, cancel=cancel, variant="bh2")


_SAMPLER_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "dpm_2": sample_dpm_2,
    "lms": sample_lms,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_sde": sample_dpmpp_sde,
    # ComfyUI's ddim is euler (identical in sigma space); only its inpaint re-noising differs,
    # see RANDOM_INPAINT_NOISE_SAMPLERS.
    "ddim": sample_euler,
    "uni_pc": sample_uni_pc,
    "uni_pc_bh2": sample_uni_pc_bh2,
    "lcm": sample_lcm,
}


def _without_repeats(sigmas: Tensor) -> Tensor:
    """Drop zero-length steps (a sigma equal to the one before): they change nothing, and the
    multistep formulas would divide by their zero length."""
    sigmas = sigmas.reshape(-1)
    if sigmas.numel() < 2:
        return sigmas
    keep = torch.ones_like(sigmas, dtype=torch.bool)
    keep[1:] = sigmas[1:] != sigmas[:-1]
    return sigmas[keep]


def sample(name: str, denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
           callback: StepCallback | None = None, check_cancelled: CancelCheck | None = None) -> Tensor:
    """Run sampler ``name`` over ``sigmas``; an empty or one-entry schedule returns ``x`` unchanged,
    and repeated sigmas are skipped (so ``total_steps`` counts the distinct steps).

    ``callback(step_index, total_steps, x, denoised)`` follows each step (index from 0);
    ``check_cancelled()`` runs before every model call and may raise to stop.
    """
    fn = _SAMPLER_FUNCTIONS.get(name)
    if fn is None:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    sigmas = _without_repeats(sigmas)
    if sigmas.numel() < 2:
        return x
    return fn(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback, cancel=check_cancelled)
