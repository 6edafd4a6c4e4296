"""One sampling run: conditioning in, latent out. Shared by KSampler, KSamplerAdvanced and the
benchmark, so the figures measure exactly what users run.

CONDITIONING is a list of ``(embedding [1, tokens, width], extras)`` pairs; SDXL's pooled output
rides in ``extras["pooled_output"]``. One pair per side with no area, mask, strength or step range
runs the batched :class:`CFGDenoiser`. Anything else runs :class:`RegionalDenoiser`, which
combines the pairs the way ComfyUI's ``calc_cond_batch`` does: each pair predicts on its area (the
whole latent, or the crop of ``ConditioningSetArea``), weighted by its ``mult`` (strength × mask,
or strength with an 8-cell ramp at area edges inside the picture), and each side is
``Σ prediction · mult / (Σ mult + 1e-37)``. A pair outside its ``start_percent``/``end_percent``
range sits the step out; a side with no active pair predicts 0 there (as in ComfyUI).
"""

from __future__ import annotations

import functools
import math
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
    ModelSigmas,
    SeededNoise,
    denoise_sigmas,
    get_sigmas,
    latent_to_rgb,
    sample,
)
from studio.models.sampling.denoiser import X0Predictor, _concat, _same_layout

SEED_MODULUS = 2**64
Progress = Callable[[int, int, Any], None]
Conditioning = list[tuple[torch.Tensor, dict[str, Any]]]
#: Extras the model itself reads (ComfyUI's ``model_conds``): an area copy made for the other side
#: takes these from the entry it borrows, everything else from the area entry.
MODEL_COND_KEYS = ("pooled_output", "width", "height", "crop_w", "crop_h", "target_width", "target_height",
                   "aesthetic_score", "concat_mask", "concat_latent")
#: ComfyUI's out_counts start value: a place no entry covers predicts 0 instead of dividing by 0.
EMPTY_COUNT = 1e-37
FEATHER = 8  # ComfyUI's ``fuzz``: the ramp width (latent cells) at area edges inside the picture


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

    positive, negative = list(request.positive), list(request.negative)
    if not positive:
        raise ValueError("the positive conditioning is empty")
    check_conditioning_fits(model, unet, [*positive, *negative])
    regional = not (len(positive) == 1 and len(negative) <= 1 and all(is_plain(e[1]) for e in (*positive, *negative)))
    if regional:
        positive, negative = resolve_conditioning(positive, negative, tuple(latent_image.shape[-2:]))
    for _cond, extras in (*positive, *negative):
        if extras.get("control") is not None:
            for step in extras["control"].chain():
                check_fits(step, unet, model.name or model.arch)
    mask = request.latent.get("noise_mask")
    mask_kwargs: dict[str, Any] = {}
    if mask is not None:
        mask_kwargs = {"denoise_mask": mask.float().to(device), "latent_image": latent_dev}
    if regional:
        def regions(entries: Conditioning) -> list[Region]:
            return [make_region(kwargs, entry[1], latent_image.shape, model.model_sigmas, device)
                    for kwargs, entry in zip(side(entries), entries)]

        denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = RegionalDenoiser(
            model_fn, model.model_sigmas, positive=regions(positive), negative=regions(negative), cfg=request.cfg,
            prediction_type=model.prediction_type, **mask_kwargs)
    else:
        denoiser = _combined_denoiser(model_fn, model, side(positive), side(negative), request.cfg, mask_kwargs)

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
                       cfg: float, mask_kwargs: dict[str, Any]) -> CFGDenoiser:
    """The common case, one plain conditioning per side: one CFG denoiser, positive and negative
    batched in one call."""
    return CFGDenoiser(model_fn, model.model_sigmas, positive=positives[0], negative=negatives[0] if negatives else None,
                       cfg=cfg if negatives else 1.0, prediction_type=model.prediction_type, **mask_kwargs)


# ---------------------------------------------------------------------------- several / regional conditionings


def is_plain(extras: dict[str, Any]) -> bool:
    """Whether an entry acts everywhere, at full weight, on every step (no area, mask, strength or range)."""
    return (extras.get("area") is None and extras.get("mask") is None and float(extras.get("strength", 1.0)) == 1.0
            and float(extras.get("start_percent", 0.0)) <= 0.0 and float(extras.get("end_percent", 1.0)) >= 1.0)


def check_conditioning_fits(model: ModelHandle, unet: Any, entries: Conditioning) -> None:
    """Refuse, by name, an embedding whose width the UNet cannot read (another family's CLIP,
    an SDXL refiner's conditioning) before the first step, instead of a shape error inside it."""
    width = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
    if not isinstance(width, int):
        return
    name = model.name or model.arch
    for cond, extras in entries:
        if cond.shape[-1] == width:
            continue
        if "aesthetic_score" in extras:
            raise ValueError(f"this conditioning comes from CLIPTextEncodeSDXLRefiner with an SDXL refiner's CLIP "
                             f"({cond.shape[-1]}-wide), but the model {name} reads {width}-wide text embeddings and is "
                             "not an SDXL refiner (refiner checkpoints are not supported): encode the prompt with "
                             "CLIPTextEncodeSDXL or CLIPTextEncode and this checkpoint's CLIP")
        raise ValueError(f"the conditioning is {cond.shape[-1]} wide but the model {name} reads {width}-wide text "
                         "embeddings: encode the prompt with the CLIP of the same checkpoint as the model")


def percent_to_sigma(model_sigmas: ModelSigmas, percent: float) -> float:
    """ComfyUI's ``percent_to_sigma``: 0 is before the first step, 1 after the last."""
    if percent <= 0.0:
        return 999999999.9
    if percent >= 1.0:
        return 0.0
    return float(model_sigmas.sigma(torch.tensor((1.0 - percent) * 999.0)))


def _resolve_entry(entry: tuple[torch.Tensor, dict[str, Any]], height: int, width: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """Percentage areas to latent cells, masks to the latent size, "mask bounds" to an area
    (ComfyUI's ``resolve_areas_and_cond_masks_multidim``)."""
    cond, extras = entry
    area = extras.get("area")
    if area is not None:
        if area[0] == "percentage":
            _, ph, pw, py, px = area
            area = (max(1, round(ph * height)), max(1, round(pw * width)), round(py * height), round(px * width))
        extras = {**extras, "area": tuple(int(v) for v in area)}
    mask = extras.get("mask")
    if mask is not None:
        mask = mask.float()
        if mask.dim() == 2:
            mask = mask[None]
        if tuple(mask.shape[1:]) != (height, width):
            mask = torch.nn.functional.interpolate(mask[:, None], size=(height, width), mode="bilinear")[:, 0]
        extras = {**extras, "mask": mask}
        if extras.get("set_area_to_bounds", False):
            ys, xs = torch.nonzero(mask.abs().max(dim=0).values, as_tuple=True)
            if len(ys) == 0:
                extras["area"] = (8, 8, 0, 0)  # an empty mask: the smallest area, which adds nothing anyway
            else:
                top, left = int(ys.min()), int(xs.min())
                extras["area"] = (max(8, int(ys.max()) - top + 1), max(8, int(xs.max()) - left + 1), top, left)
    return cond, extras


def _inside(inner: tuple[int, ...], outer: tuple[int, ...]) -> bool:
    return inner[2] >= outer[2] and inner[3] >= outer[3] and inner[0] + inner[2] <= outer[0] + outer[2] \
        and inner[1] + inner[3] <= outer[1] + outer[3]


def _pair_area(side: Conditioning, entry: tuple[torch.Tensor, dict[str, Any]]) -> None:
    """ComfyUI's ``create_cond_with_same_area_if_none``: give ``side`` an entry over ``entry``'s area
    (the smallest of its entries that covers it, else an area-less one), so both sides of CFG
    predict that area from the same crop."""
    area = entry[1].get("area")
    if area is None:
        return
    smallest = None
    for other in side:
        other_area = other[1].get("area")
        if other_area is not None:
            if _inside(area, other_area):
                if smallest is None or smallest[1].get("area") is None:
                    smallest = other
                elif math.prod(smallest[1]["area"][:2]) > math.prod(other_area[:2]):
                    smallest = other
        elif smallest is None:
            smallest = other
    if smallest is None or smallest[1].get("area") == area:
        return
    extras = {k: v for k, v in entry[1].items() if k not in MODEL_COND_KEYS}
    extras.update({k: v for k, v in smallest[1].items() if k in MODEL_COND_KEYS})
    side.append((smallest[0], extras))


def resolve_conditioning(positive: Conditioning, negative: Conditioning,
                         latent_hw: tuple[int, int]) -> tuple[Conditioning, Conditioning]:
    """Both sides as the sampler will run them: areas and masks resolved at the latent size, and
    every area entry mirrored on the other side (as ComfyUI's ``process_conds`` does)."""
    height, width = latent_hw
    positive = [_resolve_entry(e, height, width) for e in positive]
    negative = [_resolve_entry(e, height, width) for e in negative]
    for entry in positive:
        _pair_area(negative, entry)
    for entry in negative:
        _pair_area(positive, entry)
    return positive, negative


@dataclass(eq=False)
class Region:
    """One conditioning entry as the sampler runs it: model keyword arguments, where it acts
    (``area`` = (h, w, y, x) in latent cells, None = everywhere), its weight there and the sigma
    range of the steps it takes part in."""

    kwargs: dict[str, Any]
    mult: torch.Tensor  # [B, C, h, w]
    area: tuple[int, int, int, int] | None = None
    sigma_start: float | None = None
    sigma_end: float | None = None

    def active(self, sigma: float) -> bool:
        if self.sigma_start is not None and sigma > self.sigma_start:
            return False
        return not (self.sigma_end is not None and sigma < self.sigma_end)

    def crop(self, tensor: torch.Tensor) -> torch.Tensor:
        """The area of a [..., H, W] tensor (a view, so adding into it adds into the whole)."""
        if self.area is None:
            return tensor
        h, w, y, x = self.area
        return tensor[..., y:y + h, x:x + w]


def make_region(kwargs: dict[str, Any], extras: dict[str, Any], latent_shape: torch.Size | tuple[int, ...],
                model_sigmas: ModelSigmas, device: Any = "cpu") -> Region:
    """A resolved entry (see :func:`resolve_conditioning`) as a :class:`Region`; the weight is
    ComfyUI's ``get_area_and_mult``: mask × mask_strength × strength, or strength with a linear
    ramp of up to 8 cells (a quarter of the area at most) at each area edge inside the picture."""
    batch, channels, height, width = (int(v) for v in latent_shape)
    area = extras.get("area")
    if area is not None:
        h, w, y, x = (int(v) for v in area)
        h, w = min(height - y, h), min(width - x, w)
        if h <= 0 or w <= 0:
            raise ValueError(f"a conditioning area at x={x * 8}, y={y * 8} (pixels) lies outside the {width * 8}×{height * 8} "
                             "picture; move it inside (ConditioningSetArea)")
        area = (h, w, y, x)
    else:
        h, w = height, width
    mask = extras.get("mask")
    if mask is not None:
        m = mask.to(device=device, dtype=torch.float32)[:batch]
        if area is not None:
            m = m[:, area[2]:area[2] + h, area[3]:area[3] + w]
        m = m * float(extras.get("mask_strength", 1.0))
        m = m[:, None].repeat(-(-batch // m.shape[0]), channels, 1, 1)[:batch]
    else:
        m = torch.ones((batch, channels, h, w), device=device)
    mult = m * float(extras.get("strength", 1.0))
    if mask is None and area is not None:
        for dim, (size, offset, full) in enumerate(((h, area[2], height), (w, area[3], width)), start=2):
            ramp = min(FEATHER, mult.shape[dim] // 4)
            if offset != 0:
                for t in range(ramp):
                    mult.narrow(dim, t, 1).mul_((1.0 / ramp) * (t + 1))
            if size + offset < full:
                for t in range(ramp):
                    mult.narrow(dim, size - 1 - t, 1).mul_((1.0 / ramp) * (t + 1))
    if area is not None and kwargs.get("_concat") is not None:  # an inpainting UNet's extra channels, cropped alike
        kwargs = {**kwargs, "_concat": kwargs["_concat"][..., area[2]:area[2] + h, area[3]:area[3] + w]}
    start, end = extras.get("start_percent"), extras.get("end_percent")
    return Region(kwargs, mult, area,
                  None if start is None else percent_to_sigma(model_sigmas, float(start)),
                  None if end is None else percent_to_sigma(model_sigmas, float(end)))


class RegionalDenoiser:
    """``D(x, sigma)`` for several conditioning entries per side, combined as ComfyUI's
    ``calc_cond_batch``: entries that can share a batch (same crop size, same kind of keyword
    arguments) run in one model call; each side is ``Σ x0 · mult / (Σ mult + 1e-37)``, then CFG.
    A side whose entries all sit a step out predicts 0 there, as in ComfyUI. Inpainting
    (``denoise_mask`` / ``latent_image``, optionally ``inpaint_noise``) works as in
    :class:`CFGDenoiser`, and ``denoise_with_uncond`` serves the CFG++ samplers."""

    def __init__(self, model_fn: Any, model_sigmas: ModelSigmas, *, positive: list[Region], negative: list[Region],
                 cfg: float = 7.0, prediction_type: str = "epsilon", denoise_mask: torch.Tensor | None = None,
                 latent_image: torch.Tensor | None = None, inpaint_noise: torch.Tensor | None = None) -> None:
        if not positive:
            raise ValueError("the positive conditioning is empty")
        self.positive = positive
        self.negative = negative
        self.cfg = float(cfg)
        # The scaling to and from the UNet's input and output, shared with the fast path (CFGDenoiser).
        self._predictor = X0Predictor(model_fn, model_sigmas, prediction_type)
        self.latent_image = latent_image
        self.inpaint_noise = inpaint_noise
        self.denoise_mask = None
        if denoise_mask is not None and latent_image is not None:
            self.denoise_mask = CFGDenoiser._fit_mask(denoise_mask, latent_image)

    @property
    def model_calls(self) -> int:
        return self._predictor.model_calls

    @property
    def uses_uncond(self) -> bool:
        return bool(self.negative) and not math.isclose(self.cfg, 1.0)

    def _sides(self, x: torch.Tensor, sigma: torch.Tensor, with_uncond: bool) -> list[torch.Tensor]:
        """The combined x0 prediction of the positive side (and of the negative one)."""
        level = float(sigma.reshape(-1)[0])
        sides = [self.positive, self.negative] if with_uncond else [self.positive]
        out = [torch.zeros_like(x) for _ in sides]
        counts = [torch.ones_like(x) * EMPTY_COUNT for _ in sides]
        to_run = [(i, region) for i, regions in enumerate(sides) for region in regions if region.active(level)]
        while to_run:
            first = to_run[0][1]
            shape = first.crop(x).shape
            together = [j for j, (_i, r) in enumerate(to_run)
                        if r.crop(x).shape == shape and _same_layout(r.kwargs, first.kwargs)]
            batch = [to_run[j] for j in reversed(together)]  # ComfyUI pops them last first
            to_run = [item for j, item in enumerate(to_run) if j not in set(together)]
            x_in = torch.cat([r.crop(x) for _i, r in batch])
            kwargs = functools.reduce(_concat, [r.kwargs for _i, r in batch])
            preds = self._predictor(x_in, torch.cat([sigma] * len(batch)), kwargs).chunk(len(batch))
            for (i, region), pred in zip(batch, preds):
                region.crop(out[i]).add_(pred * region.mult)
                region.crop(counts[i]).add_(region.mult)
        return [o / c for o, c in zip(out, counts)]

    def _inpaint_input(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        mask, latent = self.denoise_mask, self.latent_image
        if mask is not None and latent is not None and self.inpaint_noise is not None:
            sig = sigma.reshape(sigma.shape[:1] + (1,) * (x.dim() - 1))
            x = x * mask + (latent + self.inpaint_noise * sig) * (1 - mask)
        return x

    def _pin(self, denoised: torch.Tensor) -> torch.Tensor:
        if self.denoise_mask is not None and self.latent_image is not None:
            denoised = denoised * self.denoise_mask + self.latent_image * (1 - self.denoise_mask)
        return denoised

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x = self._inpaint_input(x, sigma)
        if not self.uses_uncond:
            return self._pin(self._sides(x, sigma, False)[0])
        cond, uncond = self._sides(x, sigma, True)
        return self._pin(uncond + (cond - uncond) * self.cfg)

    def denoise_with_uncond(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The guided prediction and the unconditional one (computed even at cfg 1), for CFG++."""
        x = self._inpaint_input(x, sigma)
        if not self.negative:
            cond = self._sides(x, sigma, False)[0]
            return self._pin(cond), cond
        cond, uncond = self._sides(x, sigma, True)
        return self._pin(uncond + (cond - uncond) * self.cfg), uncond
