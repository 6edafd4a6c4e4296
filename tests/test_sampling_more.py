"""ComfyUI's further samplers and schedulers, against analytic problems and hand transcriptions.

The references below are written from ComfyUI's ``comfy/k_diffusion/sampling.py`` and
``comfy/samplers.py`` in their own style (tensor sigmas, ``to_d``, ``get_ancestral_step``, the
VP-space DDPM step, DEIS's weights with autograd), not from our sigma-space code, so a slip in
either shows as a mismatch. The data distribution N(MU, S²) has an exact denoiser, so the
probability-flow ODE has a known solution and the samplers' answers can be checked outright.
"""

from __future__ import annotations

import math

import pytest
import torch

from nodes.sd.metadata import A1111_SAMPLER_NAMES
from nodes.sd.sampling import SAMPLER_NAMES, SCHEDULER_NAMES
from studio.models.sampling import (
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS,
    SAMPLERS,
    SCHEDULERS,
    STOCHASTIC_SAMPLERS,
    CFGDenoiser,
    ModelSigmas,
    SeededNoise,
    denoise_sigmas,
    get_sigmas,
    kl_optimal_sigmas,
    linear_quadratic_sigmas,
    sample,
)
from studio.models.sampling import samplers as sm

MS = ModelSigmas()
MU, S = 1.0, 0.5  # the data distribution N(MU, S²)
MU_U, S_U = 0.2, 0.9  # a second one, standing in for the unconditional prediction under CFG
SHAPE = (4, 1, 64, 64)

NEW_DETERMINISTIC = ["heunpp2", "ipndm", "ipndm_v", "deis", "euler_cfg_pp", "dpmpp_2m_cfg_pp"]
NEW_STOCHASTIC = ["dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_3m_sde", "dpmpp_2m_sde_heun", "ddpm",
                  "euler_ancestral_cfg_pp"]
GPU_TWINS = {"dpmpp_sde_gpu": "dpmpp_sde", "dpmpp_2m_sde_gpu": "dpmpp_2m_sde", "dpmpp_2m_sde_heun_gpu": "dpmpp_2m_sde_heun",
             "dpmpp_3m_sde_gpu": "dpmpp_3m_sde"}
FIRST_ORDER = ("heunpp2", "euler_cfg_pp")  # heunpp2 weights its extra slopes by sigma / sigma_max: nearly Euler


def _b(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def gaussian_x0(x: torch.Tensor, sigma: torch.Tensor, mu: float = MU, s: float = S) -> torch.Tensor:
    """E[x0 | x] for x0 ~ N(mu, s²), x = x0 + sigma * eps."""
    sig = _b(sigma, x)
    return (x * s**2 + mu * sig**2) / (s**2 + sig**2)


class GuidedGaussian:
    """A CFG denoiser made of two analytic ones: cond = N(MU, S²), uncond = N(MU_U, S_U²)."""

    def __init__(self, cfg: float) -> None:
        self.cfg = cfg

    def denoise_with_uncond(self, x, sigma):
        cond, uncond = gaussian_x0(x, sigma), gaussian_x0(x, sigma, MU_U, S_U)
        return uncond + self.cfg * (cond - uncond), uncond

    def __call__(self, x, sigma):
        return self.denoise_with_uncond(x, sigma)[0]


class ListNoise:
    """The same fixed sequence of noise tensors for every run, whoever asks."""

    def __init__(self, shape, seed: int = 99, count: int = 64) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(count)]
        self.calls = 0

    def __call__(self, sigma, sigma_next):
        self.calls += 1
        return self.items[self.calls - 1]


def gaussian_start(sigma0: float, seeds=(1, 2, 3, 4)):
    noise = SeededNoise(list(seeds))
    n = noise.initial(SHAPE, "cpu", torch.float64)
    return MU + math.sqrt(S**2 + sigma0**2) * n, n, noise


# -- ComfyUI's algorithms, transcribed ------------------------------------------------------------

def to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def get_ancestral_step(sigma_from, sigma_to, eta=1.0):
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def ref_dpm_2_ancestral(model, x, sigmas, noise_sampler, eta=1.0):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid))
            x = x + d_2 * (sigma_down - sigmas[i])
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


def ref_dpmpp_2s_ancestral(model, x, sigmas, noise_sampler, eta=1.0):
    sigma_fn = lambda t: t.neg().exp()  # noqa: E731
    t_fn = lambda sigma: sigma.log().neg()  # noqa: E731
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        sigma_down, sigma_up = get_ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = t_fn(sigmas[i]), t_fn(sigma_down)
            h = t_next - t
            s = t + h / 2
            x_2 = (sigma_fn(s) / sigma_fn(t)) * x - (-h / 2).expm1() * denoised
            denoised_2 = model(x_2, sigma_fn(s))
            x = (sigma_fn(t_next) / sigma_fn(t)) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


def ref_dpmpp_2m_sde_heun(model, x, sigmas, noise_sampler, eta=1.0):
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
            h = lambda_t - lambda_s
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lambda_t.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            if old_denoised is not None:
                r = h_last / h
                x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - old_denoised)
            if eta > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt()
        old_denoised, h_last = denoised, h
    return x


def ref_dpmpp_3m_sde(model, x, sigmas, noise_sampler, eta=1.0):
    denoised_1, denoised_2 = None, None
    h, h_1, h_2 = None, None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
            h = lambda_t - lambda_s
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lambda_t.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + (alpha_t * phi_2) * d1 - (alpha_t * phi_3) * d2
            elif h_1 is not None:
                r = h_1 / h
                d = (denoised - denoised_1) / r
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                x = x + (alpha_t * phi_2) * d
            if eta > 0:
                x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt()
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def ddpm_step(x, sigma, sigma_prev, noise, noise_sampler):
    alpha_cumprod = 1 / ((sigma * sigma) + 1)
    alpha_cumprod_prev = 1 / ((sigma_prev * sigma_prev) + 1)
    alpha = alpha_cumprod / alpha_cumprod_prev
    mu = (1.0 / alpha).sqrt() * (x - (1 - alpha) * noise / (1 - alpha_cumprod).sqrt())
    if sigma_prev > 0:
        mu += ((1 - alpha) * (1.0 - alpha_cumprod_prev) / (1.0 - alpha_cumprod)).sqrt() * noise_sampler(sigma, sigma_prev)
    return mu


def ref_ddpm(model, x, sigmas, noise_sampler):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        x = ddpm_step(x / torch.sqrt(1.0 + sigmas[i] ** 2.0), sigmas[i], sigmas[i + 1], (x - denoised) / sigmas[i], noise_sampler)
        if sigmas[i + 1] != 0:
            x *= torch.sqrt(1.0 + sigmas[i + 1] ** 2.0)
    return x


def ref_heunpp2(model, x, sigmas, noise_sampler=None):
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        d = to_d(x, sigmas[i], denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == s_end:
            x = x + d * dt
        elif sigmas[i + 2] == s_end:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1]))
            w = 2 * sigmas[0]
            w2 = sigmas[i + 1] / w
            w1 = 1 - w2
            x = x + (d * w1 + d_2 * w2) * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1]))
            x_3 = x_2 + d_2 * (sigmas[i + 2] - sigmas[i + 1])
            d_3 = to_d(x_3, sigmas[i + 2], model(x_3, sigmas[i + 2]))
            w = 3 * sigmas[0]
            w2, w3 = sigmas[i + 1] / w, sigmas[i + 2] / w
            w1 = 1 - w2 - w3
            x = x + (w1 * d + w2 * d_2 + w3 * d_3) * dt
    return x


def ref_ipndm(model, x, sigmas, noise_sampler=None, max_order=4):
    x_next, buffer_model = x, []
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        denoised = model(x_cur, t_cur)
        d_cur = (x_cur - denoised) / t_cur
        order = min(max_order, i + 1)
        if t_next == 0:
            x_next = denoised
        elif order == 1:
            x_next = x_cur + (t_next - t_cur) * d_cur
        elif order == 2:
            x_next = x_cur + (t_next - t_cur) * (3 * d_cur - buffer_model[-1]) / 2
        elif order == 3:
            x_next = x_cur + (t_next - t_cur) * (23 * d_cur - 16 * buffer_model[-1] + 5 * buffer_model[-2]) / 12
        else:
            x_next = x_cur + (t_next - t_cur) * (55 * d_cur - 59 * buffer_model[-1] + 37 * buffer_model[-2]
                                                 - 9 * buffer_model[-3]) / 24
        if len(buffer_model) == max_order - 1:
            buffer_model = [*buffer_model[1:], d_cur]
        else:
            buffer_model.append(d_cur)
    return x_next


def ref_ipndm_v(model, x, sigmas, noise_sampler=None, max_order=4):
    x_next, t_steps, buffer_model = x, sigmas, []
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        denoised = model(x_cur, t_cur)
        d_cur = (x_cur - denoised) / t_cur
        order = min(max_order, i + 1)
        h_n = t_next - t_cur
        if t_next == 0:
            x_next = denoised
        elif order == 1:
            x_next = x_cur + h_n * d_cur
        elif order == 2:
            h_n_1 = t_cur - t_steps[i - 1]
            coeff1, coeff2 = (2 + (h_n / h_n_1)) / 2, -(h_n / h_n_1) / 2
            x_next = x_cur + h_n * (coeff1 * d_cur + coeff2 * buffer_model[-1])
        elif order == 3:
            h_n_1, h_n_2 = t_cur - t_steps[i - 1], t_steps[i - 1] - t_steps[i - 2]
            temp = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2
            coeff1 = (2 + (h_n / h_n_1)) / 2 + temp
            coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp
            coeff3 = temp * h_n_1 / h_n_2
            x_next = x_cur + h_n * (coeff1 * d_cur + coeff2 * buffer_model[-1] + coeff3 * buffer_model[-2])
        else:
            h_n_1, h_n_2, h_n_3 = t_cur - t_steps[i - 1], t_steps[i - 1] - t_steps[i - 2], t_steps[i - 2] - t_steps[i - 3]
            temp1 = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2
            temp2 = ((1 - h_n / (3 * (h_n + h_n_1))) / 2 + (1 - h_n / (2 * (h_n + h_n_1))) * h_n / (6 * (h_n + h_n_1 + h_n_2))) \
                * (h_n * (h_n + h_n_1) * (h_n + h_n_1 + h_n_2)) / (h_n_1 * (h_n_1 + h_n_2) * (h_n_1 + h_n_2 + h_n_3))
            coeff1 = (2 + (h_n / h_n_1)) / 2 + temp1 + temp2
            coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1 \
                - (1 + (h_n_1 / h_n_2) + (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3)))) * temp2
            coeff3 = temp1 * h_n_1 / h_n_2 \
                + ((h_n_1 / h_n_2) + (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))) * (1 + h_n_2 / h_n_3)) * temp2
            coeff4 = -temp2 * (h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))) * h_n_1 / h_n_2
            x_next = x_cur + h_n * (coeff1 * d_cur + coeff2 * buffer_model[-1] + coeff3 * buffer_model[-2]
                                    + coeff4 * buffer_model[-3])
        if len(buffer_model) == max_order - 1:
            buffer_model = [*buffer_model[1:], d_cur]
        else:
            buffer_model.append(d_cur)
    return x_next


def ref_deis_coefficients(sigmas, max_order=3, n=10000):
    """ComfyUI's ``get_deis_coeff_list`` ("tab"), with d(log alpha)/dt from autograd as there."""
    eps_s, sigma_min, sigma_max = 1e-3, torch.tensor(0.002, dtype=torch.float64), torch.tensor(80.0, dtype=torch.float64)
    beta_d = 2 * (torch.log(sigma_min**2 + 1) / eps_s - torch.log(sigma_max**2 + 1)) / (eps_s - 1)
    beta_min = torch.log(sigma_max**2 + 1) - 0.5 * beta_d
    t_steps = ((beta_min**2 + 2 * beta_d * (sigmas**2 + 1).log()).sqrt() - beta_min) / beta_d
    beta_0, beta_1 = beta_min, beta_d + beta_min
    coeffs = []
    for i in range(len(t_steps) - 1):
        order = min(i + 1, max_order)
        if order == 1 or sigmas[i + 1] == 0:
            coeffs.append([])
            continue
        taus = torch.linspace(float(t_steps[i]), float(t_steps[i + 1]), n, dtype=torch.float64).requires_grad_(True)
        alpha = torch.exp(-0.5 * taus**2 * (beta_1 - beta_0) - taus * beta_0)
        alpha.log().sum().backward()
        integrand = (-0.5 * taus.grad / torch.sqrt(alpha * (1 - alpha))).detach()
        taus = taus.detach()
        dtau = (t_steps[i + 1] - t_steps[i]) / n
        prev_t = t_steps[[i - k for k in range(order)]]
        row = []
        for j in range(order):
            poly = 1
            for k in range(order):
                if k != j:
                    poly = poly * (taus - prev_t[k]) / (prev_t[j] - prev_t[k])
            row.append(torch.sum(integrand * poly) * dtau)
        coeffs.append(row)
    return coeffs


def ref_deis(model, x, sigmas, noise_sampler=None, max_order=3):
    coeff_list = ref_deis_coefficients(sigmas, max_order)
    x_next, buffer_model = x, []
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        denoised = model(x_cur, t_cur)
        d_cur = (x_cur - denoised) / t_cur
        order = min(max_order, i + 1)
        if t_next <= 0:
            order = 1
        if order == 1:
            x_next = x_cur + (t_next - t_cur) * d_cur
        elif order == 2:
            c_cur, c_prev1 = coeff_list[i]
            x_next = x_cur + c_cur * d_cur + c_prev1 * buffer_model[-1]
        else:
            c_cur, c_prev1, c_prev2 = coeff_list[i]
            x_next = x_cur + c_cur * d_cur + c_prev1 * buffer_model[-1] + c_prev2 * buffer_model[-2]
        if len(buffer_model) == max_order - 1:
            buffer_model = [*buffer_model[1:], d_cur]
        else:
            buffer_model.append(d_cur)
    return x_next


def ref_euler_ancestral_cfg_pp(model, x, sigmas, noise_sampler, eta=1.0):
    """``model`` returns (denoised, uncond_denoised), which ComfyUI reads through a post-CFG hook."""
    lambda_fn = lambda sigma: sigma.log().neg()  # noqa: E731
    for i in range(len(sigmas) - 1):
        denoised, uncond_denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            alpha_s = sigmas[i] * lambda_fn(sigmas[i]).exp()
            alpha_t = sigmas[i + 1] * lambda_fn(sigmas[i + 1]).exp()
            d = to_d(x, sigmas[i], alpha_s * uncond_denoised)
            sigma_down, sigma_up = get_ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta=eta)
            sigma_down = alpha_t * sigma_down
            x = alpha_t * denoised + sigma_down * d
            if eta > 0:
                x = x + alpha_t * noise_sampler(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


def ref_euler_cfg_pp(model, x, sigmas, noise_sampler):
    return ref_euler_ancestral_cfg_pp(model, x, sigmas, None, eta=0.0)


def ref_dpmpp_2m_cfg_pp(model, x, sigmas, noise_sampler=None):
    t_fn = lambda sigma: sigma.log().neg()  # noqa: E731
    old_uncond_denoised = None
    for i in range(len(sigmas) - 1):
        denoised, uncond_denoised = model(x, sigmas[i])
        if sigmas[i + 1] == 0:  # t_next = inf: ComfyUI's formula reduces to x = denoised
            x = denoised
        else:
            t, t_next = t_fn(sigmas[i]), t_fn(sigmas[i + 1])
            h = t_next - t
            if old_uncond_denoised is None:
                denoised_mix = -torch.exp(-h) * uncond_denoised
            else:
                r = (t - t_fn(sigmas[i - 1])) / h
                denoised_mix = (-torch.exp(-h) * uncond_denoised
                                - torch.expm1(-h) * (1 / (2 * r)) * (denoised - old_uncond_denoised))
            x = denoised + denoised_mix + torch.exp(-h) * x
        old_uncond_denoised = uncond_denoised
    return x


REFERENCES = {
    "dpm_2_ancestral": ref_dpm_2_ancestral,
    "dpmpp_2s_ancestral": ref_dpmpp_2s_ancestral,
    "dpmpp_2m_sde_heun": ref_dpmpp_2m_sde_heun,
    "dpmpp_3m_sde": ref_dpmpp_3m_sde,
    "ddpm": ref_ddpm,
    "heunpp2": ref_heunpp2,
    "ipndm": ref_ipndm,
    "ipndm_v": ref_ipndm_v,
    "deis": ref_deis,
    "euler_cfg_pp": ref_euler_cfg_pp,
    "euler_ancestral_cfg_pp": ref_euler_ancestral_cfg_pp,
    "dpmpp_2m_cfg_pp": ref_dpmpp_2m_cfg_pp,
}
SCHEDULES = {
    "two_steps": [6.0, 1.5, 0.3],
    "two_steps_to_zero": [6.0, 1.5, 0.0],
    "six_steps_to_zero": [9.0, 4.0, 1.6, 0.7, 0.2, 0.05, 0.0],
}


# -- each new sampler is ComfyUI's formula ----------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("name", REFERENCES)
def test_sampler_matches_the_transcribed_comfyui_formula(name, schedule):
    sigmas = torch.tensor(SCHEDULES[schedule], dtype=torch.float64)
    x = torch.randn((2, 3, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 6.0 + 0.7
    cfg_pp = name.endswith("_cfg_pp")
    guided = GuidedGaussian(cfg=1.8)
    if cfg_pp:
        ref_model = lambda x, sigma: guided.denoise_with_uncond(x, sigma.reshape(1).expand(x.shape[0]))  # noqa: E731
        ours = guided
    else:
        ref_model = lambda x, sigma: gaussian_x0(x, sigma.reshape(1).expand(x.shape[0]))  # noqa: E731
        ours = gaussian_x0
    expected = REFERENCES[name](ref_model, x.clone(), sigmas, ListNoise(x.shape))
    noise = ListNoise(x.shape)
    got = sample(name, ours, x.clone(), sigmas, noise_sampler=noise)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-9), (got - expected).abs().max()
    assert (noise.calls > 0) == (name in STOCHASTIC_SAMPLERS)


def test_ddpm_is_euler_ancestral_in_another_coordinate_system():
    # The DDPM posterior q(x_next | x, x0) is the same distribution in VP and VE coordinates, and
    # in VE it is exactly Euler down to sigma_down plus sigma_up of noise: an independent check.
    sigmas = get_sigmas("karras", 12, MS).double()
    x, _, _ = gaussian_start(float(sigmas[0]))
    a = sample("ddpm", gaussian_x0, x, sigmas, noise_sampler=ListNoise(SHAPE))
    b = sample("euler_ancestral", gaussian_x0, x, sigmas, noise_sampler=ListNoise(SHAPE))
    assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_cfg_pp_without_guidance_is_the_plain_sampler():
    sigmas = get_sigmas("karras", 10, MS).double()
    x, _, _ = gaussian_start(float(sigmas[0]))
    no_guidance = GuidedGaussian(cfg=1.0)
    no_guidance.denoise_with_uncond = lambda x, sigma: (gaussian_x0(x, sigma), gaussian_x0(x, sigma))
    for pp, plain in [("euler_cfg_pp", "euler"), ("dpmpp_2m_cfg_pp", "dpmpp_2m"), ("euler_ancestral_cfg_pp", "euler_ancestral")]:
        got = sample(pp, no_guidance, x, sigmas, noise_sampler=ListNoise(SHAPE))
        assert torch.allclose(got, sample(plain, gaussian_x0, x, sigmas, noise_sampler=ListNoise(SHAPE)), atol=1e-9), pp
    # and with guidance the step really follows the unconditional prediction
    guided = sample("euler_cfg_pp", GuidedGaussian(cfg=1.8), x, sigmas)
    assert not torch.allclose(guided, sample("euler", GuidedGaussian(cfg=1.8), x, sigmas), atol=1e-3)


# -- convergence on the analytic problem ----------------------------------------------------------

def _ode_error(fn, steps: int, **options) -> float:
    """Distance from the exact probability-flow solution at sigma_min (the schedule stops there, as
    with leftover noise, so the last jump to 0 does not hide the integration error)."""
    sigmas = get_sigmas("karras", steps, MS)[:-1].double()
    x, n, noise = gaussian_start(float(sigmas[0]))
    exact = MU + n * math.sqrt(S**2 + float(sigmas[-1]) ** 2)
    return (fn(gaussian_x0, x, sigmas, noise_sampler=noise, **options) - exact).abs().max().item()


@pytest.mark.parametrize("name", NEW_DETERMINISTIC)
def test_deterministic_samplers_converge_to_the_exact_ode_solution(name):
    fn = sm._SAMPLER_FUNCTIONS[name]
    coarse, fine = _ode_error(fn, 10), _ode_error(fn, 40)
    assert fine < coarse / (3 if name in FIRST_ORDER else 8), (coarse, fine)
    assert fine < (0.1 if name in FIRST_ORDER else 0.01)


@pytest.mark.parametrize(("fn", "options"), [
    (sm.sample_dpm_2_ancestral, {"eta": 0.0}),
    (sm.sample_dpmpp_2s_ancestral, {"eta": 0.0}),
    (sm.sample_dpmpp_3m_sde, {"eta": 0.0}),
    (sm.sample_dpmpp_2m_sde, {"eta": 0.0, "solver_type": "heun"}),
], ids=["dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_3m_sde", "dpmpp_2m_sde_heun"])
def test_stochastic_samplers_without_noise_are_higher_order_ode_solvers(fn, options):
    coarse, fine = _ode_error(fn, 10, **options), _ode_error(fn, 40, **options)
    assert fine < coarse / 8 and fine < 0.02, (coarse, fine)


@pytest.mark.parametrize("name", NEW_STOCHASTIC)
def test_stochastic_samplers_approach_the_data_distribution_as_steps_grow(name):
    spread = []
    for steps in (10, 40):
        sigmas = get_sigmas("karras", steps, MS)
        x, _, noise = gaussian_start(float(sigmas[0]))
        out = sample(name, gaussian_x0, x, sigmas, noise_sampler=noise)
        assert out.mean().item() == pytest.approx(MU, abs=0.03)
        spread.append(abs(out.std().item() - S))
    assert spread[1] < spread[0] / 2 and spread[1] < 0.12 * S, spread


# -- seeds and names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW_STOCHASTIC + list(GPU_TWINS))
def test_stochastic_samplers_are_reproducible_per_seed_and_per_item(name):
    sigmas = get_sigmas("karras", 8, MS)

    def run(seeds):
        noise = SeededNoise(seeds)
        return sample(name, gaussian_x0, noise.initial((2, 4, 8, 8)) * sigmas[0], sigmas, noise_sampler=noise)

    first = run([5, 6])
    assert torch.equal(first, run([5, 6]))
    other = run([7, 6])
    assert not torch.allclose(other[0], first[0]) and torch.equal(other[1], first[1])


@pytest.mark.parametrize(("gpu", "plain"), GPU_TWINS.items())
def test_gpu_names_run_their_plain_sampler(gpu, plain):
    sigmas = get_sigmas("karras", 9, MS)
    outs = []
    for name in (gpu, plain):
        noise = SeededNoise([42])
        outs.append(sample(name, gaussian_x0, noise.initial((1, 4, 8, 8)) * sigmas[0], sigmas, noise_sampler=noise))
    assert torch.equal(*outs)
    assert A1111_SAMPLER_NAMES[gpu] == A1111_SAMPLER_NAMES[plain]


COMFY_SAMPLERS = ["euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
                  "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
                  "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
                  "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
                  "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
                  "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
                  "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2"]
OLD_SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim", "uni_pc",
                "uni_pc_bh2", "lcm"]


def test_sampler_and_scheduler_names():
    assert SAMPLER_NAMES == SAMPLERS and SCHEDULER_NAMES == SCHEDULERS  # the node's torch-free copy
    assert len(set(SAMPLERS)) == len(SAMPLERS)
    assert [n for n in SAMPLERS if n in OLD_SAMPLERS] == OLD_SAMPLERS  # saved choices keep their place in the list
    assert set(SAMPLERS) <= set(COMFY_SAMPLERS)
    for gpu, plain in GPU_TWINS.items():  # as in ComfyUI, each _gpu name right after its plain one
        assert SAMPLERS.index(gpu) == SAMPLERS.index(plain) + 1
    assert SCHEDULERS[:7] == ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta")
    assert set(SCHEDULERS) == {"simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                               "linear_quadratic", "kl_optimal"}
    assert "dpm_2_ancestral" in DISCARD_PENULTIMATE_SIGMA_SAMPLERS
    assert set(A1111_SAMPLER_NAMES) >= set(SAMPLERS) - {"uni_pc_bh2"}


# -- the CFG denoisers' unconditional prediction ------------------------------------------------

def _eps_model(x_in, timestep, cond):
    return 0.1 * x_in + cond["offset"].view(-1, 1, 1, 1)


def test_cfg_denoiser_reports_its_unconditional_prediction_even_at_cfg_one():
    pos, neg = {"offset": torch.full((2,), 0.5)}, {"offset": torch.full((2,), -1.0)}
    x, sigma = torch.randn(2, 4, 8, 8), torch.full((2,), 1.7)
    for cfg in (1.0, 3.0):
        denoiser = CFGDenoiser(_eps_model, MS, positive=pos, negative=neg, cfg=cfg)
        guided, uncond = denoiser.denoise_with_uncond(x, sigma)
        assert denoiser.model_calls == 1  # one batched call, the negative included
        assert torch.allclose(guided, denoiser(x, sigma), atol=1e-6)
        alone = CFGDenoiser(_eps_model, MS, positive=neg)
        assert torch.allclose(uncond, alone(x, sigma), atol=1e-6)
    lone = CFGDenoiser(_eps_model, MS, positive=pos, cfg=5.0)
    guided, uncond = lone.denoise_with_uncond(x, sigma)
    assert torch.equal(guided, uncond)


# -- the new schedulers --------------------------------------------------------------------------

def _kl_optimal_formula(n: int, sigma_min: float, sigma_max: float) -> list[float]:
    # sigma_k = tan((1 - k/(n-1)) * atan(sigma_max) + k/(n-1) * atan(sigma_min)), then a final 0
    return [math.tan((1 - k / (n - 1)) * math.atan(sigma_max) + k / (n - 1) * math.atan(sigma_min)) for k in range(n)] + [0.0]


def _linear_quadratic_formula(steps: int, sigma_max: float, threshold: float = 0.025) -> list[float]:
    # Mochi: the noise fraction is linear (threshold * i / L) for i < L = steps // 2, then the
    # quadratic through (L, threshold) with the same slope there that reaches 1 at i = steps.
    lin = steps // 2
    q = steps - lin
    a = (lin - threshold * steps) / (lin * q**2)
    b = threshold / lin - 2 * (lin - threshold * steps) / q**2
    c = a * lin**2
    fractions = [threshold * i / lin if i < lin else a * i**2 + b * i + c for i in range(steps)]
    return [(1 - f) * sigma_max for f in fractions] + [0.0]


@pytest.mark.parametrize(("steps", "sigma_min", "sigma_max"), [(4, 0.0292, 14.6146), (10, 0.03, 10.0), (25, 0.1, 80.0)])
def test_kl_optimal_matches_the_formula(steps, sigma_min, sigma_max):
    got = kl_optimal_sigmas(steps, sigma_min, sigma_max)
    assert got.dtype == torch.float32 and len(got) == steps + 1 and float(got[-1]) == 0.0
    # float32 like ComfyUI; tan near pi/2 magnifies its rounding at large sigma_max
    assert got.tolist() == pytest.approx(_kl_optimal_formula(steps, sigma_min, sigma_max), rel=2e-5)
    assert float(got[0]) == pytest.approx(sigma_max, rel=1e-5) and float(got[-2]) == pytest.approx(sigma_min, rel=1e-5)


def test_kl_optimal_through_get_sigmas_and_with_one_step():
    assert get_sigmas("kl_optimal", 7, MS).tolist() == pytest.approx(_kl_optimal_formula(7, MS.sigma_min, MS.sigma_max), rel=2e-6)
    assert get_sigmas("kl_optimal", 1, MS).tolist() == pytest.approx([MS.sigma_max, 0.0])  # ComfyUI: 0/0 = nan here


def test_linear_quadratic_matches_a_hand_worked_case():
    # steps 4: L = 2, linear part 0, 0.0125; quadratic 0.2375 i² - 0.9375 i + 0.95 at i = 2, 3: 0.025, 0.275
    assert linear_quadratic_sigmas(4, 10.0).tolist() == pytest.approx([10.0, 9.875, 9.75, 7.25, 0.0], rel=1e-6)
    assert linear_quadratic_sigmas(1, 10.0).tolist() == [10.0, 0.0]


@pytest.mark.parametrize(("steps", "sigma_max"), [(2, 14.6146), (5, 10.0), (10, 14.6146), (25, 1.0)])
def test_linear_quadratic_matches_the_formula(steps, sigma_max):
    got = linear_quadratic_sigmas(steps, sigma_max)
    assert got.dtype == torch.float32 and len(got) == steps + 1 and float(got[-1]) == 0.0
    assert torch.all(got[1:] < got[:-1])
    assert got.tolist() == pytest.approx(_linear_quadratic_formula(steps, sigma_max), rel=1e-6, abs=1e-6)


def test_linear_quadratic_through_get_sigmas_scales_by_the_models_largest_sigma():
    got = get_sigmas("linear_quadratic", 10, MS)
    assert got.tolist() == pytest.approx(_linear_quadratic_formula(10, MS.sigma_max), rel=1e-6)


@pytest.mark.parametrize("scheduler", ["linear_quadratic", "kl_optimal"])
def test_new_schedulers_work_with_discard_penultimate_and_denoise(scheduler):
    longer = get_sigmas(scheduler, 11, MS)
    assert torch.equal(get_sigmas(scheduler, 10, MS, discard_penultimate=True), torch.cat([longer[:-2], longer[-1:]]))
    assert torch.equal(denoise_sigmas(scheduler, 10, 0.5, MS), get_sigmas(scheduler, 20, MS)[-11:])
