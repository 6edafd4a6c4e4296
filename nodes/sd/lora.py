"""LoRA nodes (ComfyUI's names and inputs): patch a clone of MODEL and CLIP with a LoRA file.

The LoRA file is read once (kept by the model manager, keyed by path, size and modification
time); the checkpoint is never reloaded or copied. Changing a strength re-runs this node and what
depends on it, which costs a few small matrix products when the sampler next runs.
"""

from __future__ import annotations

from typing import Any

from nodes.sd.loaders import _choices, _file_key, _fingerprint, load_cached
from studio.api import Combo, Float, Input, Node, Output, RunContext

STRENGTH = {"min": -100.0, "max": 100.0, "step": 0.01}


def _read(ctx: RunContext, lora_name: str) -> Any:
    from studio.models import lora

    return load_cached(ctx, "loras", lora_name, "lora", lambda path: lora.read_lora(path, identity=_file_key(path)),
                       small=True)


def apply_lora(ctx: RunContext, model: Any, clip: Any, lora_name: str, strength_model: float,
               strength_clip: float) -> tuple[Any, Any]:
    """MODEL and CLIP clones carrying the LoRA; an input that is None (or at strength 0) passes through."""
    from studio.models.lora import TEXT, UNET, ModelLayers, bind

    use_model = model is not None and strength_model != 0
    use_clip = clip is not None and strength_clip != 0
    if not (use_model or use_clip):
        return model, clip
    lora = _read(ctx, lora_name)
    components: dict[str, Any] = {}
    if model is not None:
        components[UNET] = model.unet
    if clip is not None:
        components.update({TEXT[i]: spec.model for i, spec in enumerate(clip.encoders)})
    arch = model.arch if model is not None else clip.arch
    bound = bind(lora, ModelLayers(arch, components))
    return (model.with_lora(bound, strength_model) if use_model else model,
            clip.with_lora(bound, strength_clip) if use_clip else clip)


class LoraLoader(Node):
    NAME = "LoraLoader"
    DISPLAY_NAME = "Load LoRA"
    CATEGORY = "loaders"
    DESCRIPTION = ("Apply a LoRA from the loras folder to the model and its text encoder (kohya / A1111, diffusers / "
                   "PEFT and LyCORIS LoCon, LoHa, LoKr files). Chain several to stack them; strength 0 leaves the "
                   "model exactly as it was, negative strengths invert the effect.")
    INPUTS = [Input("model", "MODEL"), Input("clip", "CLIP"),
              Combo("lora_name", _choices("loras"), tooltip="A file in the loras folder"),
              Float("strength_model", 1.0, tooltip="How strongly to change the diffusion model", **STRENGTH),
              Float("strength_clip", 1.0, tooltip="How strongly to change the text encoder", **STRENGTH)]
    OUTPUTS = [Output("MODEL", "MODEL"), Output("CLIP", "CLIP")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "loras", inputs["lora_name"])

    def run(self, ctx: RunContext, model: Any, clip: Any, lora_name: str, strength_model: float,
            strength_clip: float) -> tuple[Any, Any]:
        return apply_lora(ctx, model, clip, lora_name, strength_model, strength_clip)


class LoraLoaderModelOnly(Node):
    NAME = "LoraLoaderModelOnly"
    DISPLAY_NAME = "Load LoRA (model only)"
    CATEGORY = "loaders"
    DESCRIPTION = "Apply a LoRA to the diffusion model only (its text-encoder layers, if any, are left out)."
    INPUTS = [Input("model", "MODEL"), Combo("lora_name", _choices("loras"), tooltip="A file in the loras folder"),
              Float("strength_model", 1.0, tooltip="How strongly to change the diffusion model", **STRENGTH)]
    OUTPUTS = [Output("MODEL", "MODEL")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "loras", inputs["lora_name"])

    def run(self, ctx: RunContext, model: Any, lora_name: str, strength_model: float) -> Any:
        return apply_lora(ctx, model, None, lora_name, strength_model, 0.0)[0]


NODES = [LoraLoader, LoraLoaderModelOnly]
