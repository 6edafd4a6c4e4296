"""The samplers (ComfyUI's KSampler and KSamplerAdvanced, with the same inputs)."""

from __future__ import annotations

from typing import Any

from studio.api import Combo, Float, Input, Int, Node, Output, RunContext

#: Kept here (torch-free) so listing nodes does not import torch; a test checks they match
#: studio.models.sampling.SAMPLERS / SCHEDULERS.
SAMPLER_NAMES = ("euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
                 "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
                 "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_sde", "dpmpp_sde_gpu",
                 "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "ddim", "uni_pc", "uni_pc_bh2", "lcm", "ipndm", "ipndm_v", "deis")
SCHEDULER_NAMES = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta", "linear_quadratic",
                   "kl_optimal")
SEED_MAX = 2**64 - 1

_COMMON_HEAD = [Input("model", "MODEL", tooltip="The model that removes the noise")]
_COMMON_TAIL = [
    Int("steps", 20, min=1, max=10000, tooltip="More steps: more detail, more time"),
    Float("cfg", 8.0, min=0.0, max=100.0, step=0.1, tooltip="How strongly to follow the prompt (classifier-free guidance)"),
    Combo("sampler_name", SAMPLER_NAMES),
    Combo("scheduler", SCHEDULER_NAMES),
    Input("positive", "CONDITIONING", tooltip="What the picture should show"),
    Input("negative", "CONDITIONING", tooltip="What it should not show"),
    Input("latent_image", "LATENT", tooltip="An empty latent (text-to-image) or an encoded picture (image-to-image)"),
]


def _sample(ctx: RunContext, model: Any, latent: dict[str, Any], **request: Any) -> dict[str, Any]:
    from studio.models.ksampler import SamplingRequest, run_sampler

    def progress(step: int, total: int, preview: Any) -> None:
        ctx.progress(step, total, preview)

    return run_sampler(model, SamplingRequest(latent=latent, **request), ctx.device, progress=progress,
                       check_cancelled=ctx.check_cancelled)


class KSampler(Node):
    NAME = "KSampler"
    CATEGORY = "sampling"
    DESCRIPTION = ("Make a picture from noise, guided by the prompt. The seed decides the noise: the same seed "
                   "gives the same picture on any device. Denoise below 1 keeps part of the input latent (img2img).")
    INPUTS = [*_COMMON_HEAD, Int("seed", 0, min=0, max=SEED_MAX, tooltip="Batch item i uses seed + i"),
              *_COMMON_TAIL, Float("denoise", 1.0, min=0.0, max=1.0, step=0.01)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
            positive: Any, negative: Any, latent_image: dict[str, Any], denoise: float) -> dict[str, Any]:
        return _sample(ctx, model, latent_image, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler_name,
                       scheduler=scheduler, positive=positive, negative=negative, denoise=denoise)


class KSamplerAdvanced(Node):
    NAME = "KSamplerAdvanced"
    DISPLAY_NAME = "KSampler (Advanced)"
    CATEGORY = "sampling"
    DESCRIPTION = ("KSampler with control over which steps run: start and end at given steps, add noise or not, "
                   "and return with leftover noise for a second sampler to finish.")
    INPUTS = [*_COMMON_HEAD, Combo("add_noise", ["enable", "disable"]), Int("noise_seed", 0, min=0, max=SEED_MAX),
              *_COMMON_TAIL, Int("start_at_step", 0, min=0, max=10000), Int("end_at_step", 10000, min=0, max=10000),
              Combo("return_with_leftover_noise", ["disable", "enable"])]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, model: Any, add_noise: str, noise_seed: int, steps: int, cfg: float, sampler_name: str,
            scheduler: str, positive: Any, negative: Any, latent_image: dict[str, Any], start_at_step: int,
            end_at_step: int, return_with_leftover_noise: str) -> dict[str, Any]:
        return _sample(ctx, model, latent_image, seed=noise_seed, steps=steps, cfg=cfg, sampler_name=sampler_name,
                       scheduler=scheduler, positive=positive, negative=negative, add_noise=add_noise == "enable",
                       start_step=start_at_step, last_step=end_at_step,
                       force_full_denoise=return_with_leftover_noise != "enable")


NODES = [KSampler, KSamplerAdvanced]
