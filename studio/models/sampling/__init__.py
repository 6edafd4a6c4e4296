"""The sampling core: noise schedules, samplers, the CFG denoiser and cheap latent previews.

Model-agnostic on purpose: everything here sees the UNet only as ``model_fn(x, t, cond)``, so it
is tested against analytic problems and independent implementations, with no weights at all.
"""

from studio.models.sampling.denoiser import PREDICTION_TYPES, CFGDenoiser
from studio.models.sampling.preview import PREVIEW_ARCHS, latent_to_rgb
from studio.models.sampling.samplers import (
    CFG_PP_SAMPLERS,
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS,
    RANDOM_INPAINT_NOISE_SAMPLERS,
    SAMPLERS,
    STOCHASTIC_SAMPLERS,
    SeededNoise,
    lms_coefficients,
    sample,
)
from studio.models.sampling.schedules import (
    SCHEDULERS,
    ModelSigmas,
    beta_cdf,
    denoise_sigmas,
    exponential_sigmas,
    get_sigmas,
    karras_sigmas,
    kl_optimal_sigmas,
    linear_quadratic_sigmas,
    sd_alphas_cumprod,
)

__all__ = [
    "CFG_PP_SAMPLERS",
    "DISCARD_PENULTIMATE_SIGMA_SAMPLERS",
    "PREDICTION_TYPES",
    "PREVIEW_ARCHS",
    "RANDOM_INPAINT_NOISE_SAMPLERS",
    "SAMPLERS",
    "SCHEDULERS",
    "STOCHASTIC_SAMPLERS",
    "CFGDenoiser",
    "ModelSigmas",
    "SeededNoise",
    "beta_cdf",
    "denoise_sigmas",
    "exponential_sigmas",
    "get_sigmas",
    "karras_sigmas",
    "kl_optimal_sigmas",
    "latent_to_rgb",
    "linear_quadratic_sigmas",
    "lms_coefficients",
    "sample",
    "sd_alphas_cumprod",
]
