"""Turn a UNet into the ``D(x, sigma) -> x0`` that samplers integrate, with CFG.

Samplers work in sigma space (``x = x0 + sigma * eps``); SD UNets were trained on the
variance-preserving input ``x / sqrt(sigma² + 1)`` and an integer timestep, and predict eps, v or
x0 itself. :func:`scale_model_input` and :func:`prediction_to_x0` bridge the two (Karras et al. 2022,
table 1), for every prediction type ComfyUI's ``ModelSamplingDiscrete`` offers; every denoiser
(the plain CFG one here, the regional one in :mod:`studio.models.ksampler`) goes through them via
:class:`X0Predictor`, so a prediction type is read one way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from studio.models.sampling.schedules import ModelSigmas

ModelFn = Callable[[Tensor, Tensor, dict[str, Any]], Tensor]
#: What a UNet's output means, by the names the model handle uses (ComfyUI's sampling names in brackets):
#: ``epsilon`` (eps) the noise; ``v_prediction`` the velocity; ``lcm`` the noise of a latent-consistency
#: model, read through LCM's boundary condition; ``x0`` the clean latent; ``img_to_img`` the clean latent,
#: from an input that is not rescaled (ComfyUI's IMG_TO_IMG, made for Lotus-style image-to-image UNets).
PREDICTION_TYPES = ("epsilon", "v_prediction", "lcm", "x0", "img_to_img")
#: LCM's boundary-condition constants (ComfyUI's ``LCM.calculate_denoised``, diffusers' LCMScheduler).
LCM_SIGMA_DATA = 0.5
LCM_TIMESTEP_SCALING = 10.0


def check_prediction_type(prediction_type: str) -> str:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}")
    return prediction_type


def _per_item(values: Tensor, ndim: int) -> Tensor:
    """``[B]`` to ``[B, 1, 1, …]`` so it broadcasts over a latent of ``ndim`` dimensions."""
    return values.reshape(values.shape[:1] + (1,) * (ndim - 1))


def scale_model_input(prediction_type: str, x: Tensor, sigma: Tensor) -> Tensor:
    """What the UNet is fed for ``x`` at per-item ``sigma`` ([B]): ComfyUI's ``calculate_input``."""
    if prediction_type == "img_to_img":
        return x  # IMG_TO_IMG: the model reads the latent as it is
    sigma = _per_item(sigma, x.dim())
    return x * (1 / (sigma**2 + 1) ** 0.5)


def prediction_to_x0(prediction_type: str, x: Tensor, output: Tensor, sigma: Tensor, timestep: Tensor | None = None) -> Tensor:
    """The clean-latent estimate from a UNet ``output`` for input ``x`` at per-item ``sigma`` ([B]):
    ComfyUI's ``calculate_denoised`` (sigma_data 1). ``lcm`` also needs the ``timestep`` the UNet was
    given, because LCM's boundary condition is a function of it."""
    sig = _per_item(sigma, x.dim())
    if prediction_type == "epsilon":
        return x + output * -sig
    if prediction_type == "v_prediction":
        c_in = 1 / (sig**2 + 1) ** 0.5
        return x * (1 / (sig**2 + 1)) + output * (-sig * c_in)
    if prediction_type in ("x0", "img_to_img"):
        return output
    if prediction_type == "lcm":
        if timestep is None:
            raise ValueError("the lcm prediction type needs the timestep the model was given")
        x0 = x - output * sig
        scaled = _per_item(timestep, x.dim()).to(device=x.device, dtype=sig.dtype) * LCM_TIMESTEP_SCALING
        c_skip = LCM_SIGMA_DATA**2 / (scaled**2 + LCM_SIGMA_DATA**2)
        c_out = scaled / (scaled**2 + LCM_SIGMA_DATA**2) ** 0.5
        return c_out * x0 + c_skip * x
    check_prediction_type(prediction_type)
    raise AssertionError(prediction_type)  # pragma: no cover - every listed type is handled above


class X0Predictor:
    """One UNet call read as an x0 prediction: scale the input, map sigma to the model's timestep,
    run ``model_fn``, convert its output. Counts the calls (the cost of a run, for benchmarks)."""

    def __init__(self, model_fn: ModelFn, model_sigmas: ModelSigmas, prediction_type: str = "epsilon",
                 quantize_timesteps: bool = False) -> None:
        self.model_fn = model_fn
        self.model_sigmas = model_sigmas
        self.prediction_type = check_prediction_type(prediction_type)
        self.quantize_timesteps = quantize_timesteps
        self.model_calls = 0

    def __call__(self, x: Tensor, sigma: Tensor, cond: dict[str, Any]) -> Tensor:
        timestep = self.model_sigmas.timestep(sigma, quantize=self.quantize_timesteps).to(x.device)
        self.model_calls += 1
        out = self.model_fn(scale_model_input(self.prediction_type, x, sigma), timestep, cond)
        return prediction_to_x0(self.prediction_type, x, out.to(x.dtype), sigma, timestep)


def _same_layout(a: Any, b: Any) -> bool:
    """Whether two cond structures can ride in one batched call (tensors of equal shape, rest equal)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
            return False
        if a.dim() == 0:
            return b.dim() == 0 and torch.equal(a, b)
        return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(_same_layout(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_layout(x, y) for x, y in zip(a, b))
    try:
        return bool(a is b or a == b)
    except Exception:
        return False


def _concat(a: Any, b: Any) -> Any:
    """Stack two structures of the same layout along the batch dimension (other leaves: the first)."""
    if isinstance(a, Tensor):
        return a if a.dim() == 0 else torch.cat([a, b])
    if isinstance(a, Mapping):
        return {k: _concat(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)):
        return type(a)(_concat(x, y) for x, y in zip(a, b))
    return a


class CFGDenoiser:
    """``D(x, sigma)`` for a UNet, with classifier-free guidance and optional inpainting.

    ``model_fn(x_in, timestep, cond_kwargs)`` runs the network; ``positive``/``negative`` are opaque
    keyword dicts for it (``encoder_hidden_states``, SDXL's ``added_cond_kwargs``, …) whose tensors
    carry the same batch size as ``x``. Guidance is applied to the x0 predictions, which is the
    same as applying it to eps or v because every conversion is affine in the model output.

    Inpainting: with ``denoise_mask`` (1 = change) and ``latent_image``, the prediction is pinned
    to the original outside the mask after every call, so the kept area ends exactly at the
    original. With ``inpaint_noise`` as well, the kept area of the model's input is replaced by the
    original noised to the current sigma (as ComfyUI), so the model sees a consistent picture.
    """

    def __init__(self, model_fn: ModelFn, model_sigmas: ModelSigmas, *, positive: dict[str, Any],
                 negative: dict[str, Any] | None = None, cfg: float = 7.0, prediction_type: str = "epsilon",
                 denoise_mask: Tensor | None = None, latent_image: Tensor | None = None,
                 inpaint_noise: Tensor | None = None, quantize_timesteps: bool = False) -> None:
        if (denoise_mask is None) != (latent_image is None):
            raise ValueError("inpainting needs both denoise_mask and latent_image")
        self.predictor = X0Predictor(model_fn, model_sigmas, prediction_type, quantize_timesteps)
        self.positive = positive
        self.negative = negative
        self.cfg = float(cfg)
        self.latent_image = latent_image
        self.denoise_mask = None if denoise_mask is None or latent_image is None else self._fit_mask(denoise_mask, latent_image)
        self.inpaint_noise = inpaint_noise

    @staticmethod
    def _fit_mask(mask: Tensor, latent: Tensor) -> Tensor:
        """Bring a [B,H,W] / [B,1,H,W] mask (any resolution) to the latent's size, as ComfyUI does."""
        if mask.dim() == 2:
            mask = mask[None]
        if mask.dim() == 3:
            mask = mask[:, None]
        mask = mask.to(device=latent.device, dtype=latent.dtype)
        if mask.shape[-2:] != latent.shape[-2:]:
            mask = F.interpolate(mask, size=latent.shape[-2:], mode="bilinear", align_corners=False)
        return mask.clamp(0, 1)

    @property
    def model_calls(self) -> int:
        """How many times ``model_fn`` has been called; the cost of a run, readable by benchmarks."""
        return self.predictor.model_calls

    @property
    def prediction_type(self) -> str:
        return self.predictor.prediction_type

    @property
    def uses_uncond(self) -> bool:
        """CFG 1 means "the positive prediction alone": the negative pass would be thrown away."""
        return self.negative is not None and self.cfg != 1.0

    def _predict(self, x: Tensor, sigma: Tensor, cond: dict[str, Any]) -> Tensor:
        return self.predictor(x, sigma, cond)

    def _inpaint_input(self, x: Tensor, sigma: Tensor) -> Tensor:
        mask, latent = self.denoise_mask, self.latent_image
        if mask is not None and latent is not None and self.inpaint_noise is not None:
            sig = sigma.reshape(sigma.shape[:1] + (1,) * (x.dim() - 1))
            x = x * mask + (latent + self.inpaint_noise * sig) * (1 - mask)
        return x

    def _pin_kept_area(self, denoised: Tensor) -> Tensor:
        mask, latent = self.denoise_mask, self.latent_image
        if mask is not None and latent is not None:
            denoised = denoised * mask + latent * (1 - mask)
        return denoised

    def _cond_and_uncond(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        assert self.negative is not None
        if _same_layout(self.positive, self.negative):
            both = self._predict(torch.cat([x, x]), torch.cat([sigma, sigma]), _concat(self.positive, self.negative))
            cond, uncond = both.chunk(2)
            return cond, uncond
        # e.g. SDXL prompts of different token lengths: two calls
        return self._predict(x, sigma, self.positive), self._predict(x, sigma, self.negative)

    def __call__(self, x: Tensor, sigma: Tensor) -> Tensor:
        """x0 prediction for ``x`` at per-item noise level ``sigma`` ([B])."""
        x = self._inpaint_input(x, sigma)
        if not self.uses_uncond:
            denoised = self._predict(x, sigma, self.positive)
        else:
            cond, uncond = self._cond_and_uncond(x, sigma)
            denoised = uncond + self.cfg * (cond - uncond)
        return self._pin_kept_area(denoised)

    def denoise_with_uncond(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """The guided x0 prediction and the unconditional one, for the CFG++ samplers.

        As ComfyUI does for them, the negative pass runs even at cfg 1 (CFG++ steps along the
        unconditional prediction, so it is never thrown away), and only the guided prediction is
        pinned to the original in an inpaint. Without a negative the two are the same.
        """
        x = self._inpaint_input(x, sigma)
        if self.negative is None:
            cond = self._predict(x, sigma, self.positive)
            return self._pin_kept_area(cond), cond
        cond, uncond = self._cond_and_uncond(x, sigma)
        return self._pin_kept_area(uncond + self.cfg * (cond - uncond)), uncond
