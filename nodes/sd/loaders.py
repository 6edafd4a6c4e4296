"""Loading checkpoints and VAEs from the models folders (ComfyUI's node and input names).

Weights are loaded once per file (the model manager keys them by path, size and modification
time); the nodes return light handles, so changing a prompt or a seed never reloads anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studio.api import Boolean, Combo, Input, Int, Node, Output, RunContext


def _choices(kind: str) -> Callable[[], list[str]]:
    """The files of ``kind``, listed afresh each time the choices are asked for."""

    def files() -> list[str]:
        from studio.models.folders import model_folders

        return model_folders().list(kind)

    return files


def _file_key(path: Any) -> tuple[Any, ...]:
    """What identifies a model's content cheaply: path, size and modification time of its file(s)."""
    from studio.models.memory import file_identity

    if path.is_dir():
        return (str(path.resolve()), *(file_identity(p)[1:] for p in sorted(path.rglob("*")) if p.is_file()))
    return file_identity(path)


def _fingerprint(ctx: RunContext, kind: str, name: str) -> tuple[Any, ...] | None:
    from studio.models.folders import model_folders

    try:
        return _file_key(model_folders(ctx.options.models_dir).find(kind, name))
    except Exception:
        return None  # run() reports the missing file properly


def load_cached(ctx: RunContext, kind: str, name: str, tag: str, load: Callable[[Any], Any], *,
                extra: tuple[Any, ...] = (), size_hint: Callable[[Any], int] | None = None,
                small: Callable[[Any], bool] | bool = False) -> Any:
    """Find ``name`` in the ``kind`` models folder and load it once per process: the model manager
    keys it by ``tag``, the file's path, size and modification time, and ``extra`` (a dtype)."""
    from studio.models.folders import model_folders
    from studio.models.memory import model_manager

    path = model_folders(ctx.options.models_dir).find(kind, name)
    return model_manager().get((tag, *_file_key(path), *extra), lambda: load(path),
                               size_hint=size_hint(path) if size_hint else 0,
                               small=small(path) if callable(small) else small)


class CheckpointLoaderSimple(Node):
    NAME = "CheckpointLoaderSimple"
    DISPLAY_NAME = "Load Checkpoint"
    CATEGORY = "loaders"
    DESCRIPTION = ("Load a Stable Diffusion checkpoint (SD 1.x, SD 2.x or SDXL; a single .safetensors file or a "
                   "diffusers folder) from the checkpoints folder. Works offline.")
    INPUTS = [Combo("ckpt_name", _choices("checkpoints"), tooltip="A file in the checkpoints folder")]
    OUTPUTS = [Output("MODEL", "MODEL"), Output("CLIP", "CLIP"), Output("VAE", "VAE")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "checkpoints", inputs["ckpt_name"])

    def run(self, ctx: RunContext, ckpt_name: str) -> tuple[Any, Any, Any]:
        from studio.models.devices import unet_dtype
        from studio.models.handles import ClipHandle, ModelHandle, model_sigmas_from
        from studio.models.loader import load_checkpoint
        from studio.models.vae import VaeHandle

        dtype = unet_dtype(ctx.device)
        ctx.progress(0, 1)
        ckpt = load_cached(ctx, "checkpoints", ckpt_name, "checkpoint", lambda path: load_checkpoint(path, dtype=dtype),
                           extra=(str(dtype),), size_hint=lambda path: _memory_needed(path, dtype))
        ctx.progress(1, 1)
        model = ModelHandle(ckpt.unet, ckpt.arch, ckpt.prediction_type, model_sigmas_from(ckpt.info.scheduler_config),
                            latent_scale=ckpt.vae_scaling_factor, inpaint=ckpt.info.inpaint, name=ckpt_name)
        encoders = _encoder_specs(ckpt)
        clip = ClipHandle(encoders, ckpt.arch, name=ckpt_name)
        if ckpt.vae is None:
            raise ValueError(f"{ckpt_name} holds no VAE; load one with VAELoader")
        vae = VaeHandle(ckpt.vae, force_upcast=ckpt.arch == "sdxl", name=ckpt_name)
        return model, clip, vae


#: The model configs ComfyUI ships (models/configs), which its CheckpointLoader offers.
CHECKPOINT_CONFIGS = ("anything_v3.yaml", "v1-inference.yaml", "v1-inference_clip_skip_2.yaml",
                      "v1-inference_clip_skip_2_fp16.yaml", "v1-inference_fp16.yaml", "v1-inpainting-inference.yaml",
                      "v2-inference-v.yaml", "v2-inference-v_fp32.yaml", "v2-inference.yaml", "v2-inference_fp32.yaml",
                      "v2-inpainting-inference.yaml")


class CheckpointLoader(CheckpointLoaderSimple):
    NAME = "CheckpointLoader"
    DISPLAY_NAME = "Load Checkpoint With Config (DEPRECATED)"
    CATEGORY = "advanced/loaders"
    DESCRIPTION = ("ComfyUI's old loader with a model config, kept so its workflows run. The architecture is detected "
                   "from the weights as in Load Checkpoint; of the config only what it changes from that is used: "
                   "'-v' configs predict v (v_prediction), 'clip_skip_2' and anything_v3 read the prompt from the "
                   "next-to-last CLIP layer. Prefer Load Checkpoint.")
    INPUTS = [Combo("config_name", CHECKPOINT_CONFIGS, tooltip="ComfyUI's model config (only its v-prediction and "
                    "CLIP-skip settings matter here)"),
              Combo("ckpt_name", _choices("checkpoints"), tooltip="A file in the checkpoints folder")]

    def run(self, ctx: RunContext, config_name: str, ckpt_name: str) -> tuple[Any, Any, Any]:  # type: ignore[override]
        model, clip, vae = super().run(ctx, ckpt_name)
        stem = config_name.rsplit(".", 1)[0]
        if stem.startswith("v2-inference-v"):
            model = model.clone(prediction_type="v_prediction")
        if "clip_skip_2" in stem or stem == "anything_v3":
            clip = clip.with_last_layer(-2)
        return model, clip, vae


def _memory_needed(path: Any, dtype: Any) -> int:
    """About how much memory a checkpoint takes once loaded (files are mostly fp16)."""
    import torch

    files = [path] if path.is_file() else list(path.rglob("*.safetensors"))
    size = sum(p.stat().st_size for p in files)
    return size * 2 if dtype == torch.float32 else size


def _encoder_specs(ckpt: Any) -> list[Any]:
    """Text encoders with each architecture's defaults (SD 1: last layer; SD 2 and SDXL: penultimate)."""
    from studio.models.text import sd1_encoder, sd2_encoder, sdxl_encoders

    if ckpt.arch == "sdxl":
        return sdxl_encoders(ckpt.text_encoders[0], ckpt.text_encoders[1], ckpt.tokenizers[0], ckpt.tokenizers[1])
    if ckpt.arch == "sd2":
        return [sd2_encoder(ckpt.text_encoders[0], ckpt.tokenizers[0])]
    return [sd1_encoder(ckpt.text_encoders[0], ckpt.tokenizers[0])]


class VAELoader(Node):
    NAME = "VAELoader"
    DISPLAY_NAME = "Load VAE"
    CATEGORY = "loaders"
    DESCRIPTION = "Load a VAE from the vae folder, to use instead of the checkpoint's own."
    INPUTS = [Combo("vae_name", _choices("vae"), tooltip="A file in the vae folder")]
    OUTPUTS = [Output("VAE", "VAE")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "vae", inputs["vae_name"])

    def run(self, ctx: RunContext, vae_name: str) -> Any:
        from studio.models.loader import load_vae
        from studio.models.vae import VaeHandle

        vae = load_cached(ctx, "vae", vae_name, "vae", load_vae)
        return VaeHandle(vae, force_upcast=bool(getattr(vae.config, "force_upcast", False)), name=vae_name)


class CLIPSetLastLayer(Node):
    NAME = "CLIPSetLastLayer"
    DISPLAY_NAME = "CLIP Set Last Layer"
    CATEGORY = "conditioning"
    DESCRIPTION = "Read the prompt from an earlier CLIP layer ('clip skip'): -1 is the last layer, -2 the one before."
    INPUTS = [Input("clip", "CLIP"), Int("stop_at_clip_layer", -1, min=-24, max=-1)]
    OUTPUTS = [Output("CLIP", "CLIP")]

    def run(self, ctx: RunContext, clip: Any, stop_at_clip_layer: int) -> Any:
        return clip.with_last_layer(stop_at_clip_layer)


class ModelSamplingDiscrete(Node):
    NAME = "ModelSamplingDiscrete"
    DISPLAY_NAME = "Model Sampling Discrete"
    CATEGORY = "advanced/model"
    DESCRIPTION = ("Override what the model predicts, as ComfyUI: eps (most models), v_prediction (SD 2.x 768-v and "
                   "some fine-tunes), lcm (latent-consistency models and LoRAs: their 50-step distilled schedule and "
                   "boundary condition; sample with the lcm sampler), x0 (the model predicts the clean latent), "
                   "img_to_img (x0 from an unscaled input, ComfyUI's mode for Lotus-style image-to-image models, which "
                   "this app does not load: on an SD checkpoint it gives what ComfyUI gives). zsnr rescales the "
                   "schedule to zero terminal SNR. The schedule is rebuilt from the checkpoint's each time, so two "
                   "of these nodes in a row do not compound.")
    INPUTS = [Input("model", "MODEL"), Combo("sampling", ["eps", "v_prediction", "lcm", "x0", "img_to_img"]),
              Boolean("zsnr", False)]
    OUTPUTS = [Output("MODEL", "MODEL")]

    def run(self, ctx: RunContext, model: Any, sampling: str, zsnr: bool) -> Any:
        return model.with_sampling(sampling, zsnr)


NODES = [CheckpointLoaderSimple, VAELoader, CLIPSetLastLayer, ModelSamplingDiscrete, CheckpointLoader]
