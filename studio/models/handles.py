"""The MODEL and CLIP values that flow between nodes (VAE lives in :mod:`studio.models.vae`).

Handles are small and cheap to clone: they point at modules owned by the model manager, so
nodes that change a setting (the CLIP layer, the prediction type) return a modified clone and
never copy or reload weights. Their ``cache_nbytes`` is tiny, because the output cache must not
count weights the model manager already accounts for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from studio.models.lora import UNET, BoundLora, patches_for, sync_patches, unpatch
from studio.models.memory import model_manager
from studio.models.sampling import ModelSigmas, sd_alphas_cumprod
from studio.models.sampling.denoiser import check_prediction_type

#: ModelSamplingDiscrete's choices, in ComfyUI's order, and the prediction type each one sets.
SAMPLING_MODES = {"eps": "epsilon", "v_prediction": "v_prediction", "lcm": "lcm", "x0": "x0", "img_to_img": "img_to_img"}


@dataclass(eq=False)
class ModelHandle:
    """MODEL: the denoising UNet and how to drive it."""

    unet: Any
    arch: str
    prediction_type: str
    model_sigmas: ModelSigmas
    #: Raw VAE latents times this are what the UNet works on (0.18215 for SD 1/2, 0.13025 SDXL).
    latent_scale: float = 0.18215
    inpaint: bool = False
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: LoRAs on this model, in order: (LoRA mapped onto this model, strength).
    loras: tuple[tuple[BoundLora, float], ...] = ()
    #: The checkpoint's own training schedule, kept once a sampling override replaced ``model_sigmas``
    #: (None: ``model_sigmas`` is still it).
    base_sigmas: ModelSigmas | None = None

    def clone(self, **changes: Any) -> ModelHandle:
        return replace(self, **changes)

    def with_sampling(self, sampling: str, zsnr: bool = False) -> ModelHandle:
        """ModelSamplingDiscrete: a clone that reads the UNet as ``sampling`` (a key of :data:`SAMPLING_MODES`).

        As ComfyUI, the schedule is rebuilt from the checkpoint's own, so overrides never compound:
        ``zsnr`` rescales it to zero terminal SNR, then ``lcm`` keeps the 50 timesteps an LCM was
        distilled on (:class:`DistilledSigmas`).
        """
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling {sampling!r}; choose one of {', '.join(SAMPLING_MODES)}")
        prediction_type = check_prediction_type(SAMPLING_MODES[sampling])
        base = self.model_sigmas if self.base_sigmas is None else self.base_sigmas
        sigmas = zero_terminal_snr(base) if zsnr else base
        if sampling == "lcm":
            sigmas = DistilledSigmas(sigmas)
        return self.clone(prediction_type=prediction_type, model_sigmas=sigmas, base_sigmas=base)

    def cache_nbytes(self) -> int:
        return 1024

    def with_lora(self, bound: BoundLora, strength: float) -> ModelHandle:
        """A clone with one more LoRA; the shared UNet is patched only while this clone runs."""
        return self.clone(loras=(*self.loras, (bound, float(strength))))

    def prepare(self, device: str, dtype: torch.dtype) -> Any:
        """The UNet on ``device`` in ``dtype``, with this handle's LoRAs (and no others) applied."""
        module = model_manager().use(self.unet, device)
        if next(module.parameters()).dtype != dtype:
            unpatch(module)  # cast the originals, not patched weights
            module.to(dtype=dtype)
        sync_patches(module, patches_for(self.loras, UNET))
        return module


def model_sigmas_from(scheduler_config: dict[str, Any]) -> ModelSigmas:
    """The training noise schedule a checkpoint was made with."""
    alphas = sd_alphas_cumprod(
        float(scheduler_config.get("beta_start", 0.00085)), float(scheduler_config.get("beta_end", 0.012)),
        int(scheduler_config.get("num_train_timesteps", 1000)),
        str(scheduler_config.get("beta_schedule", "scaled_linear")),
    )
    return ModelSigmas(alphas)


def zero_terminal_snr(model_sigmas: ModelSigmas) -> ModelSigmas:
    """Rescale the schedule so its last step is pure noise (Lin et al. 2023, 'zsnr')."""
    alphas_bar_sqrt = (1 / (model_sigmas.sigmas.double() ** 2 + 1)).sqrt()
    first, last = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * first / (first - last)
    alphas_cumprod = (alphas_bar_sqrt**2).clamp_min(4.8973451890853435e-08)  # keep sigma_max finite
    return ModelSigmas(alphas_cumprod.float())


class DistilledSigmas(ModelSigmas):
    """The sparse schedule a latent-consistency model was distilled on (ComfyUI's
    ``ModelSamplingDiscreteDistilled``, ``original_timesteps`` 50).

    Of the 1000 training sigmas only every ``skip``-th is kept, the last one included (timesteps
    19, 39, …, 999 for 50 of 1000). A sigma is snapped to the nearest kept one and the UNet gets that
    one's training timestep, always quantised, as an LCM saw in distillation; :meth:`sigma` is the
    inverse, interpolating log-sigma between kept entries, so every scheduler reads this table the way
    ComfyUI's do.
    """

    def __init__(self, full: ModelSigmas, original_timesteps: int = 50) -> None:
        self.original_timesteps = int(original_timesteps)
        self.skip_steps = len(full) // self.original_timesteps
        last = len(full) - 1
        kept = torch.tensor([last - (self.original_timesteps - 1 - i) * self.skip_steps for i in range(self.original_timesteps)])
        self.sigmas = full.sigmas[kept].clone()
        self.log_sigmas = self.sigmas.log()

    def timestep(self, sigma: Tensor | float, quantize: bool = True) -> Tensor:
        """The training timestep of the kept sigma nearest ``sigma`` in log space (always quantised)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        log_sigma = sigma.float().cpu().log().reshape(-1)
        index = (log_sigma[None, :] - self.log_sigmas[:, None]).abs().argmin(dim=0)
        t = (index * self.skip_steps + (self.skip_steps - 1)).float()
        return t.reshape(sigma.shape).to(sigma.device)

    def sigma(self, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        position = ((t.float().cpu() - (self.skip_steps - 1)) / self.skip_steps).clamp(0, len(self.sigmas) - 1)
        low, high = position.floor().long(), position.ceil().long()
        w = position.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(t.device)


@dataclass(eq=False)
class ClipHandle:
    """CLIP: the text encoder(s) with their tokenizers and the layer the prompt is read from."""

    encoders: list[Any]
    arch: str
    name: str = ""

    def clone(self, **changes: Any) -> ClipHandle:
        return replace(self, **changes)

    def cache_nbytes(self) -> int:
        return 1024

    def with_lora(self, bound: BoundLora, strength: float) -> ClipHandle:
        """A clone whose text encoders get one more LoRA (patched only while they encode)."""
        from studio.models.lora import TEXT

        encoders = [spec.with_patches((*spec.patches, *patches_for([(bound, strength)], TEXT[i])))
                    for i, spec in enumerate(self.encoders)]
        return self.clone(encoders=encoders)

    def with_last_layer(self, stop_at_clip_layer: int) -> ClipHandle:
        """CLIPSetLastLayer: -1 reads the last layer, -2 the one before, and so on.

        SD 2.x encoders are loaded without their unused last block, so their layers count from
        the penultimate one: -2 is the loaded model's last layer, and -1 (a layer SD 2 was never
        trained to read) falls back to it too.
        """
        layer = min(-1, stop_at_clip_layer + 1) if self.arch == "sd2" else stop_at_clip_layer
        return self.clone(encoders=[spec.with_layer(layer) for spec in self.encoders])

    def encode(self, text: str, device: str, embeddings: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        from studio.models.text import encode_prompt

        for spec in self.encoders:
            model_manager().use(spec.model, device)
        with torch.inference_mode():
            cond, pooled = encode_prompt(text, self.encoders, embeddings=embeddings)
        return cond.float().cpu(), None if pooled is None else pooled.float().cpu()
