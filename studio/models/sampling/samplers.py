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

from studio.models.sampling.deis import deis_coefficients

Denoiser = Callable[[Tensor, Tensor], Tensor]
NoiseSampler = Callable[[float, float], Tensor]
StepCallback = Callable[[int, int, Tensor, Tensor], None]
CancelCheck = Callable[[], None]

SAMPLERS = ("euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
            "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
            "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu",
            "ddpm", "ddim", "uni_pc", "uni_pc_bh2", "lcm", "ipndm", "ipndm_v", "deis")
#: Samplers that want ``get_sigmas(..., discard_penultimate=True)``, as in ComfyUI.
DISCARD_PENULTIMATE_SIGMA_SAMPLERS = ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2")
#: Samplers that draw fresh noise through ``noise_sampler`` (the rest are deterministic ODE solvers).
STOCHASTIC_SAMPLERS = ("euler_ancestral", "dpmpp_2m_sde", "dpmpp_sde", "lcm", "euler_ancestral_cfg_pp", "dpm_2_ancestral",
                       "dpmpp_2s_ancestral", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu",
                       "dpmpp_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm")
#: ComfyUI re-noises the kept (unmasked) area of an inpaint with a second noise for these.
RANDOM_INPAINT_NOISE_SAMPLERS = ("ddim",)
#: CFG++ samplers (Chung et al. 2024): they step with the *unconditional* prediction and add the
#: guidance separately, so they need the denoiser's ``denoise_with_uncond`` (see ``CFGDenoiser``).
CFG_PP_SAMPLERS = ("euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2m_cfg_pp")


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

    def model_and_uncond(self, x: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
        """The guided prediction and the unconditional one, for the CFG++ samplers.

        A denoiser without ``denoise_with_uncond`` does no guidance of its own (an analytic test
        denoiser, a single prediction), so its one prediction is the unconditional one too.
        """
        if self.cancel is not None:
            self.cancel()
        sigmas = x.new_full((self.batch,), sigma)
        both = getattr(self.denoiser, "denoise_with_uncond", None)
        if both is None:
            denoised = self.denoiser(x, sigmas)
            return denoised, denoised
        return both(x, sigmas)

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
                        eta: float = 1.0, solver_type: str = "midpoint") -> Tensor:
    """DPM-Solver++(2M) SDE; ``solver_type`` "midpoint" (k-diffusion's default, ComfyUI's
    ``dpmpp_2m_sde``) or "heun" (``dpmpp_2m_sde_heun``), which differ only in the second-order term."""
    if solver_type not in ("midpoint", "heun"):
        raise ValueError(f"unknown DPM-Solver++(2M) SDE solver type {solver_type!r}; choose 'midpoint' or 'heun'")
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
                if solver_type == "heun":
                    h_eta = h + eta_h
                    x = x + (-math.expm1(-h_eta) / -h_eta + 1) * (1 / r) * (denoised - old_denoised)
                else:
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


# -- more of ComfyUI's samplers (k-diffusion's algorithms, written in sigma space) -----------------
#
# ComfyUI's ``*_gpu`` names differ from the plain ones only in where their Brownian-tree noise is
# drawn (GPU instead of CPU). Ours draws per-step noise from the seeded CPU streams of
# ``SeededNoise`` whatever the device, so each ``_gpu`` name runs exactly its plain sampler: the
# name is kept so ComfyUI workflows load and run, and a seed gives the same picture under both.

def sample_heunpp2(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                   callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Heun++ (ComfyUI's ``heunpp2``, from sd-webui-samplers-scheduler): up to three model calls per
    step, the slopes weighted by how far each point is from the start of the schedule; Heun-like
    before the last step, Euler on it."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    s_end = s[-1]
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        dt = s[i + 1] - s[i]
        if s[i + 1] == s_end:
            x = x + d * dt
        elif s[i + 2] == s_end:
            x_2 = x + d * dt
            d_2 = (x_2 - run.model(x_2, s[i + 1])) / s[i + 1]
            w2 = s[i + 1] / (2 * s[0])
            x = x + (d * (1 - w2) + d_2 * w2) * dt
        else:
            x_2 = x + d * dt
            d_2 = (x_2 - run.model(x_2, s[i + 1])) / s[i + 1]
            x_3 = x_2 + d_2 * (s[i + 2] - s[i + 1])
            d_3 = (x_3 - run.model(x_3, s[i + 2])) / s[i + 2]
            w2, w3 = s[i + 1] / (3 * s[0]), s[i + 2] / (3 * s[0])
            x = x + ((1 - w2 - w3) * d + w2 * d_2 + w3 * d_3) * dt
        run.done(i, x, denoised)
    return x


def sample_dpm_2_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                           callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                           eta: float = 1.0) -> Tensor:
    """DPM-Solver-2 down to sigma_down, then fresh noise up to sigma_next (k-diffusion's
    ``sample_dpm_2_ancestral``)."""
    noise = _need_noise(noise_sampler, "dpm_2_ancestral")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        sigma_down, sigma_up = _ancestral_step(s[i], s[i + 1], eta)
        d = (x - denoised) / s[i]
        if sigma_down == 0:
            x = x + d * (sigma_down - s[i])
        else:
            sigma_mid = math.exp((math.log(s[i]) + math.log(sigma_down)) / 2)
            x_2 = x + d * (sigma_mid - s[i])
            d_2 = (x_2 - run.model(x_2, sigma_mid)) / sigma_mid
            x = x + d_2 * (sigma_down - s[i])
            x = x + noise(s[i], s[i + 1]) * sigma_up
        run.done(i, x, denoised)
    return x


def sample_dpmpp_2s_ancestral(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                              callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                              eta: float = 1.0) -> Tensor:
    """DPM-Solver++(2S) (single step, midpoint in log sigma) down to sigma_down, then fresh noise."""
    noise = _need_noise(noise_sampler, "dpmpp_2s_ancestral")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        sigma_down, sigma_up = _ancestral_step(s[i], s[i + 1], eta)
        if sigma_down == 0:
            x = x + (x - denoised) / s[i] * (sigma_down - s[i])
        else:
            h = math.log(s[i] / sigma_down)
            sigma_mid = s[i] * math.exp(-h / 2)
            x_2 = (sigma_mid / s[i]) * x - math.expm1(-h / 2) * denoised
            denoised_2 = run.model(x_2, sigma_mid)
            x = (sigma_down / s[i]) * x - math.expm1(-h) * denoised_2
        if s[i + 1] > 0:
            x = x + noise(s[i], s[i + 1]) * sigma_up
        run.done(i, x, denoised)
    return x


def sample_dpmpp_2m_sde_heun(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                             callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """DPM-Solver++(2M) SDE with the Heun form of the second-order term."""
    return sample_dpmpp_2m_sde(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback, cancel=cancel,
                               solver_type="heun")


def sample_dpmpp_3m_sde(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                        callback: StepCallback | None = None, cancel: CancelCheck | None = None,
                        eta: float = 1.0) -> Tensor:
    """DPM-Solver++(3M) SDE: third order from the two previous predictions, one model call per step."""
    noise = _need_noise(noise_sampler, "dpmpp_3m_sde")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    denoised_1: Tensor | None = None
    denoised_2: Tensor | None = None
    h_1: float | None = None
    h_2: float | None = None
    for i in range(run.total):
        denoised = run.model(x, s[i])
        h: float | None = None
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            h_eta = h * (eta + 1)
            x = (s[i + 1] / s[i]) * math.exp(-h * eta) * x - math.expm1(-h_eta) * denoised
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None and h_1 is not None and denoised_1 is not None and denoised_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None and denoised_1 is not None:
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta:
                x = x + noise(s[i], s[i + 1]) * (s[i + 1] * math.sqrt(-math.expm1(-2 * h * eta)))
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
        run.done(i, x, denoised)
    return x


def sample_ddpm(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """The original DDPM ancestral step (Ho et al. 2020), taken in the variance-preserving
    space the UNet was trained in and mapped back to sigma space, as ComfyUI's ``ddpm``."""
    noise = _need_noise(noise_sampler, "ddpm")
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised = run.model(x, s[i])
        eps = (x - denoised) / s[i]
        alphas_cumprod, alphas_cumprod_next = 1 / (s[i] ** 2 + 1), 1 / (s[i + 1] ** 2 + 1)
        alpha = alphas_cumprod / alphas_cumprod_next
        one_minus = s[i] ** 2 / (s[i] ** 2 + 1)  # 1 - alphas_cumprod, without the cancellation
        x_vp = x / math.sqrt(1 + s[i] ** 2)
        mu = math.sqrt(1 / alpha) * (x_vp - (1 - alpha) * eps / math.sqrt(one_minus))
        if s[i + 1] > 0:
            mu = mu + math.sqrt((1 - alpha) * (1 - alphas_cumprod_next) / one_minus) * noise(s[i], s[i + 1])
            x = mu * math.sqrt(1 + s[i + 1] ** 2)
        else:
            x = mu
        run.done(i, x, denoised)
    return x


# -- multistep from the diff-solvers family (ComfyUI's ipndm, ipndm_v, deis) -----------------------

def _shift_in(buffer: list[Tensor], d: Tensor, keep: int) -> None:
    buffer.append(d)
    if len(buffer) > keep:
        buffer.pop(0)


def sample_ipndm(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                 callback: StepCallback | None = None, cancel: CancelCheck | None = None, max_order: int = 4) -> Tensor:
    """Improved PNDM: Adams-Bashforth with the fixed equal-step weights, up to order 4."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    slopes: list[Tensor] = []  # previous slopes, oldest first
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        order = min(max_order, i + 1)
        dt = s[i + 1] - s[i]
        if s[i + 1] == 0:
            x_next = denoised
        elif order == 1:
            x_next = x + dt * d
        elif order == 2:
            x_next = x + dt * (3 * d - slopes[-1]) / 2
        elif order == 3:
            x_next = x + dt * (23 * d - 16 * slopes[-1] + 5 * slopes[-2]) / 12
        else:
            x_next = x + dt * (55 * d - 59 * slopes[-1] + 37 * slopes[-2] - 9 * slopes[-3]) / 24
        _shift_in(slopes, d, max_order - 1)
        x = x_next
        run.done(i, x, denoised)
    return x


def ipndm_v_coefficients(sigmas: Sequence[float], i: int, order: int) -> list[float]:
    """iPNDM-v's weights for slopes ``[d_i, d_(i-1), …]`` on uneven steps (the diff-solvers formulas)."""
    if order == 1:
        return [1.0]
    h_n = sigmas[i + 1] - sigmas[i]
    h_n_1 = sigmas[i] - sigmas[i - 1]
    if order == 2:
        return [(2 + h_n / h_n_1) / 2, -(h_n / h_n_1) / 2]
    h_n_2 = sigmas[i - 1] - sigmas[i - 2]
    temp1 = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2
    if order == 3:
        return [(2 + h_n / h_n_1) / 2 + temp1, -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1, temp1 * h_n_1 / h_n_2]
    h_n_3 = sigmas[i - 2] - sigmas[i - 3]
    temp2 = (((1 - h_n / (3 * (h_n + h_n_1))) / 2 + (1 - h_n / (2 * (h_n + h_n_1))) * h_n / (6 * (h_n + h_n_1 + h_n_2)))
             * (h_n * (h_n + h_n_1) * (h_n + h_n_1 + h_n_2)) / (h_n_1 * (h_n_1 + h_n_2) * (h_n_1 + h_n_2 + h_n_3)))
    ratio = h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))
    return [
        (2 + h_n / h_n_1) / 2 + temp1 + temp2,
        -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1 - (1 + h_n_1 / h_n_2 + ratio) * temp2,
        temp1 * h_n_1 / h_n_2 + (h_n_1 / h_n_2 + ratio * (1 + h_n_2 / h_n_3)) * temp2,
        -temp2 * ratio * h_n_1 / h_n_2,
    ]


def sample_ipndm_v(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                   callback: StepCallback | None = None, cancel: CancelCheck | None = None, max_order: int = 4) -> Tensor:
    """iPNDM with variable-step weights, so uneven schedules (karras) keep its order."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    slopes: list[Tensor] = []
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        if s[i + 1] == 0:
            x_next = denoised
        else:
            coeffs = ipndm_v_coefficients(s, i, min(max_order, i + 1))
            x_next = x + (s[i + 1] - s[i]) * sum(c * slope for c, slope in zip(coeffs, [d, *reversed(slopes)]))
        _shift_in(slopes, d, max_order - 1)
        x = x_next
        run.done(i, x, denoised)
    return x


def sample_deis(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                callback: StepCallback | None = None, cancel: CancelCheck | None = None, max_order: int = 3) -> Tensor:
    """DEIS (Zhang & Chen 2023), "tAB" form: eps interpolated as a polynomial in the VP time of
    the past steps and integrated against d(sigma)/dt, as ComfyUI's ``deis``."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    coeffs = deis_coefficients(s, max_order)
    slopes: list[Tensor] = []
    for i in range(run.total):
        denoised = run.model(x, s[i])
        d = (x - denoised) / s[i]
        order = 1 if s[i + 1] <= 0 else min(max_order, i + 1)
        if order == 1:
            x_next = x + (s[i + 1] - s[i]) * d
        else:
            x_next = x + sum(c * slope for c, slope in zip(coeffs[i], [d, *reversed(slopes)]))
        _shift_in(slopes, d, max_order - 1)
        x = x_next
        run.done(i, x, denoised)
    return x


# -- CFG++ ----------------------------------------------------------------------------------------

def sample_euler_ancestral_cfg_pp(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *,
                                  noise_sampler: NoiseSampler | None = None, callback: StepCallback | None = None,
                                  cancel: CancelCheck | None = None, eta: float = 1.0) -> Tensor:
    """Euler ancestral with CFG++: jump to the guided prediction, then re-noise along the
    *unconditional* noise direction (ComfyUI's ``euler_ancestral_cfg_pp``; meant for low cfg)."""
    noise = _need_noise(noise_sampler, "euler_ancestral_cfg_pp") if eta else None
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    for i in range(run.total):
        denoised, uncond = run.model_and_uncond(x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            sigma_down, sigma_up = _ancestral_step(s[i], s[i + 1], eta)
            x = denoised + (x - uncond) / s[i] * sigma_down
            if noise is not None:
                x = x + noise(s[i], s[i + 1]) * sigma_up
        run.done(i, x, denoised)
    return x


def sample_euler_cfg_pp(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                        callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """Euler with CFG++ (deterministic)."""
    return sample_euler_ancestral_cfg_pp(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback, cancel=cancel,
                                         eta=0.0)


def sample_dpmpp_2m_cfg_pp(denoiser: Denoiser, x: Tensor, sigmas: Tensor, *, noise_sampler: NoiseSampler | None = None,
                           callback: StepCallback | None = None, cancel: CancelCheck | None = None) -> Tensor:
    """DPM-Solver++(2M) with CFG++, as ComfyUI's ``dpmpp_2m_cfg_pp``."""
    run = _Steps(denoiser, x, sigmas, callback, cancel)
    s = run.sigmas
    old_uncond: Tensor | None = None
    for i in range(run.total):
        denoised, uncond = run.model_and_uncond(x, s[i])
        if s[i + 1] == 0:
            x = denoised
        else:
            h = math.log(s[i] / s[i + 1])
            mix = -math.exp(-h) * uncond
            if old_uncond is not None:
                r = math.log(s[i - 1] / s[i]) / h
                mix = mix - math.expm1(-h) * (1 / (2 * r)) * (denoised - old_uncond)
            x = denoised + mix + math.exp(-h) * x
        old_uncond = uncond
        run.done(i, x, denoised)
    return x


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
    "euler_cfg_pp": sample_euler_cfg_pp,
    "euler_ancestral_cfg_pp": sample_euler_ancestral_cfg_pp,
    "heunpp2": sample_heunpp2,
    "dpm_2_ancestral": sample_dpm_2_ancestral,
    "dpmpp_2s_ancestral": sample_dpmpp_2s_ancestral,
    "dpmpp_2m_cfg_pp": sample_dpmpp_2m_cfg_pp,
    # ComfyUI's *_gpu names run their plain sampler: see "more of ComfyUI's samplers" above
    "dpmpp_2m_sde_gpu": sample_dpmpp_2m_sde,
    "dpmpp_2m_sde_heun": sample_dpmpp_2m_sde_heun,
    "dpmpp_2m_sde_heun_gpu": sample_dpmpp_2m_sde_heun,
    "dpmpp_sde_gpu": sample_dpmpp_sde,
    "dpmpp_3m_sde": sample_dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": sample_dpmpp_3m_sde,
    "ddpm": sample_ddpm,
    "ipndm": sample_ipndm,
    "ipndm_v": sample_ipndm_v,
    "deis": sample_deis,
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
