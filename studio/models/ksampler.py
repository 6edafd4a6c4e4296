"""One sampling run: conditioning in, latent out. Shared by KSampler, KSamplerAdvanced and the
benchmark, so the figures measure exactly what users run.

CONDITIONING is a list of ``(embedding [1, tokens, width], extras)`` pairs; SDXL's pooled output
rides in ``extras["pooled_output"]``. With several pairs on one side their predictions are
averaged, as ComfyUI does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from studio.models.controlnet import check_fits, control_residuals
from studio.models.devices import unet_dtype
from studio.models.handles import ModelHandle
from studio.models.memory import model_manager
from studio.models.sampling import (
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS,
    CFGDenoiser,
    SeededNoise,
    denoise_sigmas,
    get_sigmas,
    latent_to_rgb,
    sample,
)

SEED_MODULUS = 2**64
Progress = Callable[[int, int, Any], None]


@dataclass
class SamplingRequest:
    seed: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    positive: list[tuple[torch.Tensor, dict[str, Any]]]
    negative: list[tuple[torch.Tensor, dict[str, Any]]]
    latent: dict[str, Any]
    denoise: float = 1.0
    add_noise: bool = True
    start_step: int | None = None
    last_step: int | None = None
    force_full_denoise: bool = True


def schedule(model: ModelHandle, request: SamplingRequest) -> torch.Tensor:
    """The sigmas this request visits, with KSamplerAdvanced's start/end steps applied."""
    discard = request.sampler_name in DISCARD_PENULTIMATE_SIGMA_SAMPLERS
    if request.start_step is None and request.last_step is None:
        return denoise_sigmas(request.scheduler, request.steps, request.denoise, model.model_sigmas,
                              discard_penultimate=discard)
    sigmas = get_sigmas(request.scheduler, request.steps, model.model_sigmas, discard_penultimate=discard)
    if request.last_step is not None and request.last_step < len(sigmas) - 1:
        sigmas = sigmas[: request.last_step + 1].clone()
        if request.force_full_denoise:
            sigmas[-1] = 0
    start = request.start_step or 0
    if start >= len(sigmas) - 1:
        return sigmas[:0]
    return sigmas[start:]


def _cond_kwargs(entry: tuple[torch.Tensor, dict[str, Any]], model: ModelHandle, batch: int, latent_hw: tuple[int, int],
                 device: str, dtype: torch.dtype) -> dict[str, Any]:
    cond, extras = entry
    kwargs: dict[str, Any] = {"encoder_hidden_states": cond.to(device, dtype).repeat(batch, 1, 1)}
    if model.arch == "sdxl":
        pooled = extras.get("pooled_output")
        if pooled is None:
            raise ValueError("SDXL needs the pooled text embedding; use CLIPTextEncode with this checkpoint's CLIP")
        height, width = latent_hw[0] * 8, latent_hw[1] * 8
        time_ids = torch.tensor([[
            extras.get("height", height), extras.get("width", width), extras.get("crop_h", 0), extras.get("crop_w", 0),
            extras.get("target_height", height), extras.get("target_width", width),
        ]], dtype=dtype, device=device).repeat(batch, 1)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(device, dtype).repeat(batch, 1), "time_ids": time_ids}
    if extras.get("control") is not None:
        kwargs["_control"] = extras["control"]  # the same object on both sides, so CFG still batches
    return kwargs


def _inpaint_concat(model: ModelHandle, extras: dict[str, Any], latent: torch.Tensor, device: str,
                    dtype: torch.dtype) -> torch.Tensor | None:
    """The 5 extra input channels of an inpainting UNet: mask (1 = repaint, rounded as ComfyUI
    does) and masked-image latent. Without an inpaint conditioning the whole picture is to be
    painted, from an empty (zero) latent."""
    if not model.inpaint:
        return None
    batch, _, height, width = latent.shape
    mask = extras.get("concat_mask")
    image = extras.get("concat_latent")
    if mask is None or image is None:
        mask = torch.ones(batch, 1, height, width)
        image = torch.zeros(batch, 4, height, width)
    mask = torch.nn.functional.interpolate(mask.float(), size=(height, width), mode="bilinear").round()
    image = image.float() * model.latent_scale  # raw VAE latents, into the model's space
    if image.shape[-2:] != (height, width):
        image = torch.nn.functional.interpolate(image, size=(height, width), mode="bilinear")
    return torch.cat([mask.expand(batch, -1, -1, -1), image.expand(batch, -1, -1, -1)], dim=1).to(device, dtype)


def run_sampler(model: ModelHandle, request: SamplingRequest, device: str = "cpu", *, progress: Progress | None = None,
                check_cancelled: Callable[[], None] | None = None, preview: bool = True) -> dict[str, Any]:
    """Sample ``request`` with ``model`` and return the new LATENT (a copy of the input dict)."""
    latent_image = request.latent["samples"].float() * model.latent_scale  # into the model's space
    sigmas = schedule(model, request)
    result = dict(request.latent)
    if len(sigmas) < 2:
        return result  # nothing to do (denoise 0, or start at the last step)
    batch = latent_image.shape[0]
    dtype = unet_dtype(device)
    unet = model.prepare(device, dtype)

    noise = SeededNoise([(request.seed + i) % SEED_MODULUS for i in range(batch)])
    initial = noise.initial(latent_image.shape, device, torch.float32)
    if not request.add_noise:
        initial = torch.zeros_like(initial)
    latent_dev = latent_image.to(device)
    x = latent_dev + initial * sigmas[0].to(device)

    def prepare_control(module: Any) -> Any:
        module = model_manager().use(module, device)
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
        return module

    def model_fn(x_in: torch.Tensor, timestep: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        cond = dict(cond)
        extra = cond.pop("_concat", None)  # an inpainting UNet's extra input channels
        control = cond.pop("_control", None)
        t = timestep.to(device, dtype)
        if control is not None:  # ControlNets see the plain latent, not an inpainting model's extra channels
            cond.update(control_residuals(control, x_in.to(dtype), t, cond, prepare_control))
        sample_in = x_in.to(dtype) if extra is None else torch.cat([x_in.to(dtype), extra], dim=1)
        return unet(sample_in, t, **cond).sample.float()

    def side(entries: list[tuple[torch.Tensor, dict[str, Any]]]) -> list[dict[str, Any]]:
        kwargs_list = []
        for entry in entries:
            kwargs = _cond_kwargs(entry, model, batch, tuple(latent_image.shape[-2:]), device, dtype)
            extra = _inpaint_concat(model, entry[1], latent_image, device, dtype)
            if extra is not None:
                kwargs["_concat"] = extra
            kwargs_list.append(kwargs)
        return kwargs_list

    for _cond, extras in (*request.positive, *request.negative):
        if extras.get("control") is not None:
            for step in extras["control"].chain():
                check_fits(step, unet, model.name or model.arch)
    positives, negatives = side(request.positive), side(request.negative)
    if not positives:
        raise ValueError("the positive conditioning is empty")
    mask = request.latent.get("noise_mask")
    mask_kwargs: dict[str, Any] = {}
    if mask is not None:
        mask_kwargs = {"denoise_mask": mask.float().to(device), "latent_image": latent_dev}
    denoiser = _combined_denoiser(model_fn, model, positives, negatives, request.cfg, mask_kwargs)

    def callback(step: int, total: int, x_now: torch.Tensor, denoised: torch.Tensor) -> None:
        if progress is not None:
            progress(step + 1, total, latent_to_rgb(denoised, _preview_arch(model.arch)) if preview else None)

    with torch.inference_mode():
        samples = sample(request.sampler_name, denoiser, x, sigmas.to(device), noise_sampler=noise,
                         callback=callback, check_cancelled=check_cancelled)
    samples = samples.float().cpu() / model.latent_scale
    if mask is not None:
        change = CFGDenoiser._fit_mask(mask.float(), samples)
        original = request.latent["samples"].float()
        blended = samples * change + original * (1 - change)
        # Where nothing may change, the input latent comes back bit for bit (no scale round trip).
        samples = torch.where(change > 0, blended, original)
    result["samples"] = samples
    return result


def _preview_arch(arch: str) -> str:
    return "sdxl" if arch == "sdxl" else "sd1"


def _combined_denoiser(model_fn: Any, model: ModelHandle, positives: list[dict[str, Any]], negatives: list[dict[str, Any]],
                       cfg: float, mask_kwargs: dict[str, Any]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One CFG denoiser (positive and negative batched in one call) in the common case; with
    several conditionings per side, the average of each side's predictions, then guidance."""
    common = {"prediction_type": model.prediction_type, **mask_kwargs}
    if len(positives) == 1 and len(negatives) <= 1:
        return CFGDenoiser(model_fn, model.model_sigmas, positive=positives[0],
                          negative=negatives[0] if negatives else None, cfg=cfg if negatives else 1.0, **common)
    pos = [CFGDenoiser(model_fn, model.model_sigmas, positive=p, cfg=1.0, **common) for p in positives]
    neg = [CFGDenoiser(model_fn, model.model_sigmas, positive=n, cfg=1.0, **common) for n in negatives]

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        cond = torch.stack([d(x, sigma) for d in pos]).mean(0)
        if not neg or cfg == 1.0:
            return cond
        uncond = torch.stack([d(x, sigma) for d in neg]).mean(0)
        return uncond + cfg * (cond - uncond)

    return denoise
