"""The sampling core against analytic problems and independent implementations (no model weights).

The data distributions used here have exact denoisers, so a sampler's answer can be checked
particle by particle (deterministic samplers follow a known ODE solution) or in distribution
(stochastic ones), and diffusers' schedulers serve as a second, independent implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from studio.models.sampling import (
    SAMPLERS,
    SCHEDULERS,
    STOCHASTIC_SAMPLERS,
    CFGDenoiser,
    ModelSigmas,
    SeededNoise,
    beta_cdf,
    denoise_sigmas,
    get_sigmas,
    karras_sigmas,
    latent_to_rgb,
    lms_coefficients,
    sample,
    sd_alphas_cumprod,
)
from studio.models.sampling.samplers import sample_dpmpp_2m_sde, sample_dpmpp_sde

MS = ModelSigmas()
DETERMINISTIC = [name for name in SAMPLERS if name not in STOCHASTIC_SAMPLERS]
HIGHER_ORDER = ["heun", "dpm_2", "lms", "dpmpp_2m", "uni_pc", "uni_pc_bh2"]
MU, S = 1.0, 0.5  # the analytic data distribution N(MU, S²)
SHAPE = (4, 1, 64, 64)  # 16384 one-dimensional particles in four batch items


def _b(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x0 | x] for x0 ~ N(MU, S²), x = x0 + sigma * eps."""
    sig = _b(sigma, x)
    return (x * S**2 + MU * sig**2) / (S**2 + sig**2)


def consistency_fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The exact consistency function (end point of the probability-flow ODE) for N(MU, S²)."""
    sig = _b(sigma, x)
    return MU + (x - MU) * S / (S**2 + sig**2).sqrt()


def point_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x, MU)


def gaussian_start(sigmas: torch.Tensor, seeds=(1, 2, 3, 4)) -> tuple[torch.Tensor, torch.Tensor, SeededNoise]:
    """Particles drawn from the true marginal at sigmas[0], and where the exact ODE takes each one."""
    noise = SeededNoise(list(seeds))
    n = noise.initial(SHAPE, "cpu", torch.float64)
    x = MU + math.sqrt(S**2 + float(sigmas[0]) ** 2) * n
    return x, MU + S * n, noise


# -- schedules ------------------------------------------------------------------------------------

def test_sd_training_sigmas_span_the_known_range():
    assert len(MS.sigmas) == 1000
    assert torch.all(MS.sigmas[1:] > MS.sigmas[:-1])
    assert MS.sigma_min == pytest.approx(0.0292, abs=1e-4)
    assert MS.sigma_max == pytest.approx(14.6146, abs=1e-3)


@pytest.mark.parametrize("schedule", ["scaled_linear", "linear"])
def test_alphas_cumprod_match_diffusers(schedule):
    from diffusers import DDPMScheduler

    reference = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule=schedule).alphas_cumprod
    assert torch.allclose(sd_alphas_cumprod(schedule=schedule).float(), reference, rtol=1e-6)


def test_unknown_beta_schedule_is_rejected():
    with pytest.raises(ValueError, match="scaled_linear"):
        sd_alphas_cumprod(schedule="cosine")


def test_timestep_and_sigma_are_inverse_log_interpolations():
    assert float(MS.timestep(MS.sigma_max)) == pytest.approx(999)
    assert float(MS.timestep(MS.sigma_min)) == pytest.approx(0, abs=1e-4)
    assert float(MS.sigma(500)) == pytest.approx(float(MS.sigmas[500]), rel=1e-6)
    # half way between two training steps in timestep is half way in log sigma
    assert float(MS.sigma(500.5)) == pytest.approx(math.sqrt(float(MS.sigmas[500]) * float(MS.sigmas[501])), rel=1e-5)
    sigmas = torch.tensor([0.05, 0.3, 1.0, 3.7, 12.0])
    t = MS.timestep(sigmas)
    assert torch.all(t != t.round())  # continuous, not snapped to a training step
    assert torch.allclose(MS.sigma(t), sigmas, rtol=1e-5)
    quantized = MS.timestep(sigmas, quantize=True)
    assert torch.equal(quantized, quantized.round()) and torch.all((quantized - t).abs() <= 0.5 + 1e-4)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("steps", [1, 10, 25])
def test_schedules_descend_to_zero(scheduler, steps):
    sigmas = get_sigmas(scheduler, steps, MS)
    if scheduler != "ddim_uniform":  # ComfyUI's ddim_uniform is longer when 1000 % steps != 0
        assert len(sigmas) == steps + 1
    assert sigmas.dtype == torch.float32
    assert float(sigmas[-1]) == 0.0
    assert torch.all(sigmas[1:] < sigmas[:-1])
    assert float(sigmas[0]) <= MS.sigma_max + 1e-4


def test_ddim_uniform_keeps_comfyui_stride():
    assert len(get_sigmas("ddim_uniform", 20, MS)) == 21  # stride 50 from index 1
    sigmas = get_sigmas("ddim_uniform", 30, MS)  # stride 33 reaches index 991: 31 sigmas and the 0
    assert len(sigmas) == 32
    assert float(sigmas[0]) == pytest.approx(float(MS.sigmas[991]))
    assert float(sigmas[-2]) == pytest.approx(float(MS.sigmas[1]))


@pytest.mark.parametrize("scheduler", ["normal", "karras", "exponential"])
def test_full_range_schedules_start_at_sigma_max_and_end_at_sigma_min(scheduler):
    sigmas = get_sigmas(scheduler, 12, MS)
    assert float(sigmas[0]) == pytest.approx(MS.sigma_max, rel=1e-5)
    assert float(sigmas[-2]) == pytest.approx(MS.sigma_min, rel=1e-5)


def test_karras_matches_a_hand_computed_case():
    sigmas = karras_sigmas(3, 0.1, 10.0)
    # middle value: ((10^(1/7) + 0.1^(1/7)) / 2)^7, worked out by hand
    assert sigmas.tolist() == pytest.approx([10.0, 1.4507321, 0.1, 0.0], rel=1e-5)
    assert torch.equal(get_sigmas("karras", 7, MS), karras_sigmas(7, MS.sigma_min, MS.sigma_max))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_karras_matches_diffusers():
    from diffusers import EulerDiscreteScheduler

    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", use_karras_sigmas=True)
    scheduler.set_timesteps(20)
    assert torch.allclose(get_sigmas("karras", 20, MS), scheduler.sigmas.float(), rtol=1e-5, atol=1e-6)


def test_normal_is_uniform_in_timestep_and_sgm_drops_the_duplicate_end():
    normal = get_sigmas("normal", 9, MS)
    t = MS.timestep(normal[:-1])
    assert t.tolist() == pytest.approx(np.linspace(999, 0, 9).tolist(), abs=1e-2)
    sgm = get_sigmas("sgm_uniform", 9, MS)
    assert MS.timestep(sgm[:-1]).tolist() == pytest.approx(np.linspace(999, 0, 10)[:-1].tolist(), abs=1e-2)


def test_simple_takes_evenly_strided_training_sigmas():
    sigmas = get_sigmas("simple", 8, MS)
    expected = [float(MS.sigmas[999 - int(i * 1000 / 8)]) for i in range(8)] + [0.0]
    assert sigmas.tolist() == pytest.approx(expected)


def test_beta_cdf_matches_closed_forms():
    x = np.linspace(0, 1, 41)
    assert beta_cdf(x, 1.0, 1.0) == pytest.approx(x, abs=1e-10)
    assert beta_cdf(x, 0.5, 0.5) == pytest.approx(2 / math.pi * np.arcsin(np.sqrt(x)), abs=1e-6)
    assert beta_cdf(x, 2.0, 1.0) == pytest.approx(x**2, abs=1e-10)


def test_beta_schedule_rounds_the_beta_quantiles_like_comfyui():
    steps = 10
    probs = 1 - np.linspace(0, 1, steps, endpoint=False)
    lo, hi = np.zeros(steps), np.ones(steps)
    for _ in range(60):  # invert the CDF by bisection: the ppf ComfyUI takes from scipy
        mid = (lo + hi) / 2
        below = beta_cdf(mid, 0.6, 0.6) < probs
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    timesteps = np.rint(hi * 999).astype(int)
    expected = [float(MS.sigmas[t]) for t in timesteps] + [0.0]
    assert get_sigmas("beta", steps, MS).tolist() == pytest.approx(expected)


def test_unknown_scheduler_lists_the_choices():
    with pytest.raises(ValueError, match=r"karras.*exponential"):
        get_sigmas("linear_quadratic_typo", 10, MS)


def test_denoise_keeps_the_tail_of_a_longer_schedule():
    assert torch.equal(denoise_sigmas("normal", 10, 0.5, MS), get_sigmas("normal", 20, MS)[-11:])
    partial = denoise_sigmas("karras", 10, 0.35, MS)
    assert torch.equal(partial, get_sigmas("karras", 28, MS)[-11:])  # int(10 / 0.35) == 28, not rounded to 29
    assert len(partial) == 11 and float(partial[0]) < MS.sigma_max / 2
    assert torch.equal(denoise_sigmas("normal", 10, 1.0, MS), get_sigmas("normal", 10, MS))
    assert denoise_sigmas("normal", 10, 0.0, MS).numel() == 0
    assert denoise_sigmas("normal", 10, -0.5, MS).numel() == 0


def test_discard_penultimate_computes_one_step_more_and_drops_the_last_nonzero_sigma():
    longer = get_sigmas("karras", 11, MS)
    sigmas = get_sigmas("karras", 10, MS, discard_penultimate=True)
    assert len(sigmas) == 11
    assert torch.equal(sigmas, torch.cat([longer[:-2], longer[-1:]]))


# -- samplers on analytic problems ----------------------------------------------------------------

@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_lands_on_a_point_target(name):
    sigmas = get_sigmas("karras", 20, MS)
    noise = SeededNoise([3, 4])
    x = noise.initial((2, 4, 8, 8), "cpu", torch.float64) * sigmas[0]
    out = sample(name, point_denoiser, x, sigmas, noise_sampler=noise)
    assert (out - MU).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_samplers_follow_the_exact_ode_for_a_gaussian(name):
    sigmas = get_sigmas("karras", 30, MS)
    x, exact, noise = gaussian_start(sigmas)
    out = sample(name, gaussian_denoiser, x, sigmas, noise_sampler=noise)
    first_order = name in ("euler", "ddim", "euler_cfg_pp", "heunpp2")  # the last two are Euler-accurate
    assert (out - exact).abs().max().item() < (0.15 if first_order else 0.02)
    assert out.mean().item() == pytest.approx(MU, abs=0.01)
    assert out.std().item() == pytest.approx(S, rel=0.06 if first_order else 0.02)


@pytest.mark.parametrize(("steps", "rel"), [(30, 0.15), (100, 0.04)])
@pytest.mark.parametrize("name", STOCHASTIC_SAMPLERS)
def test_stochastic_samplers_reach_the_gaussian_in_distribution(name, steps, rel):
    sigmas = get_sigmas("karras", steps, MS)
    x, _, noise = gaussian_start(sigmas)
    # LCM expects a consistency model, which maps straight to the ODE's end point
    denoiser = consistency_fn if name == "lcm" else gaussian_denoiser
    out = sample(name, denoiser, x, sigmas, noise_sampler=noise)
    assert out.mean().item() == pytest.approx(MU, abs=0.02)
    assert out.std().item() == pytest.approx(S, rel=rel)


def test_euler_ancestral_variance_matches_its_exact_recursion():
    # For a Gaussian everything is linear, so the variance each ancestral step leaves can be
    # followed exactly; the Monte-Carlo spread must agree (it is ~11% below S at 30 steps).
    sigmas = get_sigmas("karras", 30, MS)
    s = sigmas.tolist()
    var = S**2 + s[0] ** 2
    for i in range(30):
        a = S**2 / (S**2 + s[i] ** 2)
        if s[i + 1] == 0:
            var *= a * a
            continue
        up = math.sqrt(s[i + 1] ** 2 * (s[i] ** 2 - s[i + 1] ** 2) / s[i] ** 2)
        down = math.sqrt(s[i + 1] ** 2 - up**2)
        var = (1 + (1 - a) * (down - s[i]) / s[i]) ** 2 * var + up**2
    x, _, noise = gaussian_start(sigmas)
    out = sample("euler_ancestral", gaussian_denoiser, x, sigmas, noise_sampler=noise)
    assert out.std().item() == pytest.approx(math.sqrt(var), rel=0.02)
    assert math.sqrt(var) < 0.9 * S


def test_higher_order_samplers_beat_euler_at_equal_steps():
    sigmas = get_sigmas("karras", 20, MS)
    x, exact, noise = gaussian_start(sigmas)
    errors = {name: (sample(name, gaussian_denoiser, x, sigmas, noise_sampler=noise) - exact).abs().max().item()
              for name in ["euler", *HIGHER_ORDER]}
    for name in HIGHER_ORDER:
        assert errors[name] < errors["euler"] / 3, errors


@pytest.mark.parametrize("fn", [sample_dpmpp_sde, sample_dpmpp_2m_sde])
def test_sde_samplers_without_noise_are_second_order_ode_solvers(fn):
    sigmas = get_sigmas("karras", 20, MS)
    x, exact, _ = gaussian_start(sigmas)
    euler_error = (sample("euler", gaussian_denoiser, x, sigmas) - exact).abs().max().item()
    loud = lambda a, b: torch.full_like(x, 100.0)  # noqa: E731  (eta = 0 must ignore it)
    error = (fn(gaussian_denoiser, x, sigmas, noise_sampler=loud, eta=0.0) - exact).abs().max().item()
    assert error < euler_error / 3


def test_lms_coefficients_integrate_the_interpolating_polynomial():
    sigmas = [10.0, 6.0, 3.5, 2.0, 1.1, 0.5]
    assert lms_coefficients(sigmas, 0, 1) == pytest.approx([-4.0])
    for order in (2, 3, 4):
        coeffs = lms_coefficients(sigmas, 4, order)
        assert sum(coeffs) == pytest.approx(0.5 - 1.1)  # the basis polynomials sum to 1
        # a slope that is a polynomial of degree order - 1 in sigma is integrated exactly
        poly = [1.5, -0.7, 2.0, 0.3][-order:]
        estimate = sum(c * np.polyval(poly, sigmas[4 - j]) for j, c in enumerate(coeffs))
        integral = np.polyint(poly)
        assert estimate == pytest.approx(np.polyval(integral, 0.5) - np.polyval(integral, 1.1), rel=1e-10)


@pytest.mark.parametrize("name", ["lms", "dpmpp_2m", "uni_pc", "euler"])
def test_repeated_sigmas_are_skipped(name):
    sigmas = get_sigmas("karras", 12, MS)
    repeated = torch.cat([sigmas[:5], sigmas[4:5], sigmas[5:]])
    x, _, noise = gaussian_start(sigmas)
    steps = []
    out = sample(name, gaussian_denoiser, x, repeated, noise_sampler=noise, callback=lambda i, n, *_: steps.append(n))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, sample(name, gaussian_denoiser, x, sigmas, noise_sampler=noise))
    assert set(steps) == {12}


def test_empty_schedule_returns_the_input_and_bad_calls_are_explained():
    x = torch.randn(1, 4, 8, 8)
    assert sample("euler", point_denoiser, x, torch.zeros(0)) is x
    with pytest.raises(ValueError, match="dpmpp_2m"):
        sample("dpmpp_3m_typo", point_denoiser, x, get_sigmas("normal", 4, MS))
    with pytest.raises(ValueError, match="noise_sampler"):
        sample("euler_ancestral", point_denoiser, x, get_sigmas("normal", 4, MS))


# -- agreement with diffusers' schedulers -----------------------------------------------------------

# diffusers with numpy 2 warns about np.array(copy=...) inside its own code; not ours to fix
_DIFFUSERS_NOISE = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
SD_CONFIG = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def _diffusers_run(scheduler, x_start: torch.Tensor, variance_preserving: bool, seed: int | None = None):
    """Step a diffusers scheduler with eps from the analytic denoiser. Returns the points where the
    model was evaluated and the final sample, in our sigma-space convention (x = x0 + sigma * eps)."""
    sigmas = scheduler.sigmas.tolist()
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    x = x_start / math.sqrt(sigmas[0] ** 2 + 1) if variance_preserving else x_start.clone()
    evaluated = []
    for i, t in enumerate(scheduler.timesteps):
        x_ve = x * math.sqrt(sigmas[i] ** 2 + 1) if variance_preserving else x
        evaluated.append(x_ve)
        eps = (x_ve - gaussian_denoiser(x_ve, torch.tensor([sigmas[i]]))) / sigmas[i]
        scheduler.scale_model_input(x, t)  # bookkeeping only; the eps above already accounts for it
        extra = {"generator": generator} if generator is not None else {}
        x = scheduler.step(eps, t, x, **extra).prev_sample
    return evaluated, x  # the last sigma is 0, where both conventions agree


def _our_run(name: str, x_start: torch.Tensor, sigmas: torch.Tensor, seed: int | None = None):
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    evaluated: list[torch.Tensor] = []

    def denoiser(x, sigma):
        evaluated.append(x)
        return gaussian_denoiser(x, sigma)

    noise_sampler = (lambda a, b: torch.randn(x_start.shape, generator=generator)) if generator else None
    return evaluated, sample(name, denoiser, x_start, sigmas.float(), noise_sampler=noise_sampler)


@_DIFFUSERS_NOISE
@pytest.mark.parametrize(("ours", "theirs", "options", "vp", "seed"), [
    ("euler", "EulerDiscreteScheduler", {}, False, None),
    ("euler", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, False, None),
    ("euler_ancestral", "EulerAncestralDiscreteScheduler", {}, False, 5),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, True, None),
    ("dpmpp_2m", "DPMSolverMultistepScheduler", {}, True, None),
    ("dpmpp_2m_sde", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"}, True, 5),
    ("uni_pc_bh2", "UniPCMultistepScheduler", {"use_karras_sigmas": True, "solver_order": 3, "solver_type": "bh2"}, True, None),
    ("uni_pc", "UniPCMultistepScheduler", {"use_karras_sigmas": True, "solver_order": 3, "solver_type": "bh1"}, True, None),
])
def test_samplers_match_diffusers_step_by_step(ours, theirs, options, vp, seed):
    import diffusers

    scheduler = getattr(diffusers, theirs)(**SD_CONFIG, **options)
    scheduler.set_timesteps(20)  # >= 15, so diffusers takes no extra low-order step before the last
    sigmas = scheduler.sigmas.float()
    x_start = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(0)) * sigmas[0]
    expected_points, expected = _diffusers_run(scheduler, x_start, vp, seed)
    got_points, got = _our_run(ours, x_start, sigmas, seed)
    # UniPC's corrector lands in diffusers' next step() call and in our same step, so the samples
    # between steps differ by design; the points the model is evaluated at must not.
    assert len(got_points) == len(expected_points) == 20
    for step, (ours_x, theirs_x) in enumerate(zip(got_points, expected_points)):
        assert torch.allclose(ours_x, theirs_x, atol=3e-5, rtol=1e-5), f"model input of step {step}"
    assert torch.isfinite(got).all()
    if ours == "uni_pc":
        # diffusers' bh1 multiplies B(h) = -inf by 0 on the final jump to sigma 0 and returns NaN;
        # ours takes that step as order 1, which lands exactly on the last prediction.
        assert torch.isnan(expected).any()
        assert torch.allclose(got, gaussian_denoiser(got_points[-1], sigmas[-2:-1]))
    else:
        assert torch.allclose(got, expected, atol=3e-5, rtol=1e-5)


# -- seeded noise ---------------------------------------------------------------------------------

def test_seeded_noise_is_reproducible_per_item():
    a = SeededNoise([7, 11, 13])
    b = SeededNoise([7, 11, 13])
    first = a.initial((3, 4, 8, 8), "cpu", torch.float32)
    assert torch.equal(first, b.initial((3, 4, 8, 8), "cpu", torch.float32))
    assert torch.equal(a(1.0, 0.5), b(1.0, 0.5))
    assert not torch.equal(a(1.0, 0.5), first)  # step noise continues the stream
    assert torch.equal(a.initial((3, 4, 8, 8)), first)  # initial restarts it
    alone = SeededNoise([11])
    assert torch.equal(alone.initial((1, 4, 8, 8))[0], first[1])
    a.initial((3, 4, 8, 8))
    assert torch.equal(alone(1.0, 0.5)[0], a(1.0, 0.5)[1])
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(SeededNoise([8]).initial((1, 4, 8, 8))[0], first[0])
    assert SeededNoise.consecutive(11, 3).seeds == [11, 12, 13]


def test_seeded_noise_is_drawn_in_float32_whatever_dtype_is_asked():
    reference = SeededNoise([42]).initial((1, 4, 16, 16), "cpu", torch.float32)
    half = SeededNoise([42]).initial((1, 4, 16, 16), "cpu", torch.float16)
    double = SeededNoise([42]).initial((1, 4, 16, 16), "cpu", torch.float64)
    assert half.dtype == torch.float16 and double.dtype == torch.float64
    assert torch.equal(half, reference.half())
    assert torch.equal(double, reference.double())


def test_seeded_noise_rejects_misuse():
    with pytest.raises(ValueError, match="2 seed"):
        SeededNoise([1, 2]).initial((3, 4, 8, 8))
    with pytest.raises(RuntimeError, match="initial"):
        SeededNoise([1])(1.0, 0.5)


def test_an_item_samples_the_same_alone_as_in_a_batch():
    sigmas = get_sigmas("karras", 12, MS)
    batch = SeededNoise([5, 9])
    x = batch.initial((2, 4, 8, 8)) * sigmas[0]
    together = sample("euler_ancestral", gaussian_denoiser, x, sigmas, noise_sampler=batch)
    alone = SeededNoise([9])
    single = sample("euler_ancestral", gaussian_denoiser, alone.initial((1, 4, 8, 8)) * sigmas[0], sigmas, noise_sampler=alone)
    assert torch.equal(together[1], single[0])


# -- progress and cancellation --------------------------------------------------------------------

@pytest.mark.parametrize("name", SAMPLERS)
def test_callback_once_per_step_and_cancel_checked_before_each_model_call(name):
    sigmas = get_sigmas("normal", 6, MS)
    noise = SeededNoise([1])
    x = noise.initial((1, 4, 8, 8)) * sigmas[0]
    calls: list[tuple[int, int]] = []
    last: list[torch.Tensor] = []
    checks = [0]
    evaluations = [0]

    def denoiser(x, sigma):
        evaluations[0] += 1
        return gaussian_denoiser(x, sigma)

    def callback(i, total, x, denoised):
        calls.append((i, total))
        last[:] = [x]
        assert denoised.shape == x.shape

    def check():
        checks[0] += 1

    out = sample(name, denoiser, x, sigmas, noise_sampler=noise, callback=callback, check_cancelled=check)
    assert calls == [(i, 6) for i in range(6)]
    assert torch.equal(last[0], out)
    assert checks[0] == evaluations[0] >= 6


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", SAMPLERS)
def test_cancel_stops_within_one_step(name):
    sigmas = get_sigmas("karras", 10, MS)
    noise = SeededNoise([1])
    x = noise.initial((1, 4, 8, 8)) * sigmas[0]
    steps_done: list[int] = []
    checks = [0]

    def check():
        checks[0] += 1
        if len(steps_done) >= 3:
            raise _Stop

    with pytest.raises(_Stop):
        sample(name, gaussian_denoiser, x, sigmas, noise_sampler=noise, check_cancelled=check,
               callback=lambda i, *_: steps_done.append(i))
    assert steps_done == [0, 1, 2]


# -- the CFG denoiser -----------------------------------------------------------------------------

class RecordingModel:
    """eps = 0.1 * x_in + a per-item offset read from the conditioning, so mixing up batches shows."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, x_in, timestep, cond):
        self.calls.append({"batch": x_in.shape[0], "timestep": timestep.clone(), "cond": cond})
        offset = cond["encoder_hidden_states"].mean(dim=(1, 2)) + cond["added_cond_kwargs"]["text_embeds"].sum(dim=1)
        return 0.1 * x_in + offset.view(-1, 1, 1, 1)


def _cond(value: float, batch: int = 2, tokens: int = 77) -> dict:
    return {"encoder_hidden_states": torch.full((batch, tokens, 8), value),
            "added_cond_kwargs": {"text_embeds": torch.full((batch, 4), value / 4), "time_ids": torch.ones(batch, 6)}}


def _eps_denoised(x, sigma, offset):
    c_in = 1 / math.sqrt(sigma**2 + 1)
    return x - sigma * (0.1 * c_in * x + offset)


def test_cfg_one_skips_the_negative_pass():
    model = RecordingModel()
    denoiser = CFGDenoiser(model, MS, positive=_cond(1.0), negative=_cond(-1.0), cfg=1.0)
    sigmas = get_sigmas("normal", 5, MS)
    x = torch.randn(2, 4, 8, 8)
    sample("euler", denoiser, x * sigmas[0], sigmas)
    assert len(model.calls) == denoiser.model_calls == 5
    assert all(call["batch"] == 2 and call["cond"] is denoiser.positive for call in model.calls)


def test_cfg_batches_positive_and_negative_into_one_call():
    model = RecordingModel()
    denoiser = CFGDenoiser(model, MS, positive=_cond(1.0), negative=_cond(-3.0), cfg=7.5)
    x = torch.randn(2, 4, 8, 8)
    out = denoiser(x, torch.full((2,), 2.0))
    assert len(model.calls) == 1
    call = model.calls[0]
    assert call["batch"] == 4
    assert call["cond"]["added_cond_kwargs"]["time_ids"].shape == (4, 6)
    assert torch.allclose(call["timestep"], MS.timestep(torch.full((4,), 2.0)))
    cond, uncond = _eps_denoised(x, 2.0, 1.0 + 1.0), _eps_denoised(x, 2.0, -3.0 - 3.0)
    assert torch.allclose(out, uncond + 7.5 * (cond - uncond), atol=1e-5)


def test_cfg_with_different_prompt_lengths_calls_twice():
    model = RecordingModel()
    denoiser = CFGDenoiser(model, MS, positive=_cond(1.0, tokens=154), negative=_cond(-3.0), cfg=4.0)
    x = torch.randn(2, 4, 8, 8)
    out = denoiser(x, torch.full((2,), 0.5))
    assert [call["batch"] for call in model.calls] == [2, 2]
    cond, uncond = _eps_denoised(x, 0.5, 2.0), _eps_denoised(x, 0.5, -6.0)
    assert torch.allclose(out, uncond + 4.0 * (cond - uncond), atol=1e-5)


def _true_model(x0: torch.Tensor, output: str):
    """A perfect UNet for a known x0: recovers sigma from the timestep and eps from its input."""

    def model_fn(x_in, timestep, cond):
        sigma = MS.sigma(timestep).view(-1, 1, 1, 1)
        alpha, sig_vp = 1 / (sigma**2 + 1).sqrt(), sigma / (sigma**2 + 1).sqrt()
        eps = (x_in - alpha * x0) / sig_vp
        return alpha * eps - sig_vp * x0 if output == "v" else eps

    return model_fn


@pytest.mark.parametrize(("prediction_type", "output"), [("v_prediction", "v"), ("epsilon", "eps")])
def test_scalings_recover_the_exact_x0(prediction_type, output):
    x0 = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    eps = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    denoiser = CFGDenoiser(_true_model(x0, output), MS, positive={}, prediction_type=prediction_type)
    sigma = torch.tensor([0.05, 1.3, 14.0], dtype=torch.float64)
    x = x0 + sigma.view(-1, 1, 1, 1) * eps
    assert torch.allclose(denoiser(x, sigma), x0, atol=1e-4)


def test_v_model_read_as_epsilon_is_wrong():
    x0 = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    sigma = torch.tensor([1.3], dtype=torch.float64)
    x = x0 + 1.3 * torch.randn_like(x0)
    wrong = CFGDenoiser(_true_model(x0, "v"), MS, positive={}, prediction_type="epsilon")
    assert (wrong(x, sigma) - x0).abs().max().item() > 0.1


def test_unknown_prediction_type_is_rejected():
    with pytest.raises(ValueError, match="v_prediction"):
        CFGDenoiser(_true_model(torch.zeros(1), "v"), MS, positive={}, prediction_type="flow")


def test_inpainting_keeps_the_unmasked_area_at_the_original():
    latent = torch.randn(1, 4, 8, 8)
    mask = torch.zeros(1, 64, 64)  # pixel-resolution mask: the denoiser brings it to latent size
    mask[:, :, :32] = 1.0  # change the left half only
    seen: list[torch.Tensor] = []

    def model_fn(x_in, timestep, cond):
        seen.append(x_in)
        return torch.zeros_like(x_in)  # predicts x0 = x: whatever is there stays

    noise = torch.randn(1, 4, 8, 8)
    denoiser = CFGDenoiser(model_fn, MS, positive={}, denoise_mask=mask, latent_image=latent, inpaint_noise=noise)
    sigmas = get_sigmas("karras", 8, MS)
    start = torch.randn(1, 4, 8, 8) * sigmas[0]
    out = sample("euler", denoiser, start, sigmas)
    assert torch.allclose(out[..., 4:], latent[..., 4:], atol=1e-5)
    assert not torch.allclose(out[..., :4], latent[..., :4], atol=0.1)
    sigma0 = float(sigmas[0])
    c_in = 1 / math.sqrt(sigma0**2 + 1)
    assert torch.allclose(seen[0][..., 4:], c_in * (latent + noise * sigma0)[..., 4:], atol=1e-5)
    assert torch.allclose(seen[0][..., :4], c_in * start[..., :4], atol=1e-5)


# -- preview --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arch", "expected"), [("sd1", [172, 157, 169]), ("sdxl", [188, 179, 183])])
def test_preview_is_an_rgb_image_of_the_first_item(arch, expected):
    latent = torch.zeros(2, 4, 12, 10)
    latent[0, 0] = 1.0  # channel 0 only: the first row of the factors (plus bias), mapped from [-1, 1]
    latent[1] = 5.0  # the second item must not leak in
    rgb = latent_to_rgb(latent, arch)
    assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == expected
    assert (rgb == rgb[0, 0]).all()


def test_preview_rejects_what_it_cannot_show():
    with pytest.raises(ValueError, match="sdxl"):
        latent_to_rgb(torch.zeros(1, 4, 8, 8), "flux")
    with pytest.raises(ValueError, match="4"):
        latent_to_rgb(torch.zeros(1, 16, 8, 8), "sd1")
