"""ControlNet nodes (ComfyUI's names and inputs): load a ControlNet, apply it to conditioning.

Applying returns new conditioning that carries the ControlNet, its hint picture, strength and
active range; the sampler runs it on each step where it is active. Several applied one after the
other are chained and their residuals added. Strength 0 returns the conditioning untouched, so
the result is exactly the one without the ControlNet.
"""

from __future__ import annotations

from typing import Any

from nodes.sd.loaders import _choices, _fingerprint, load_cached
from studio.api import Combo, Float, Input, Node, Output, RunContext


class ControlNetLoader(Node):
    NAME = "ControlNetLoader"
    DISPLAY_NAME = "Load ControlNet Model"
    CATEGORY = "loaders"
    DESCRIPTION = ("Load a ControlNet from the controlnet folder: a diffusers folder, or one .safetensors file in the "
                   "diffusers or the original (control_model.*) layout. Works offline.")
    INPUTS = [Combo("control_net_name", _choices("controlnet"), tooltip="A file in the controlnet folder")]
    OUTPUTS = [Output("CONTROL_NET", "CONTROL_NET")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "controlnet", inputs["control_net_name"])

    def run(self, ctx: RunContext, control_net_name: str) -> Any:
        from studio.models.controlnet import load_controlnet
        from studio.models.devices import unet_dtype

        dtype = unet_dtype(ctx.device)
        return load_cached(ctx, "controlnet", control_net_name, "controlnet", lambda path: load_controlnet(path, dtype=dtype),
                           extra=(str(dtype),), size_hint=lambda path: 2 * path.stat().st_size if path.is_file() else 0)


class DiffControlNetLoader(Node):
    NAME = "DiffControlNetLoader"
    DISPLAY_NAME = "Load ControlNet Model (diff)"
    CATEGORY = "loaders"
    DESCRIPTION = ("Load a 'diff' ControlNet: a file (original control_model.* layout with a 'difference' marker) that "
                   "stores its weights as differences to a UNet; the model's UNet weights (with its LoRAs) are added "
                   "back, as in ComfyUI. An ordinary ControlNet file loads as with Load ControlNet Model.")
    INPUTS = [Input("model", "MODEL", tooltip="The model the diff was made against (its UNet weights are added)"),
              Combo("control_net_name", _choices("controlnet"), tooltip="A file in the controlnet folder")]
    OUTPUTS = [Output("CONTROL_NET", "CONTROL_NET")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "controlnet", inputs["control_net_name"])

    def run(self, ctx: RunContext, model: Any, control_net_name: str) -> Any:
        from studio.models.devices import unet_dtype
        from studio.models.folders import model_folders

        path = model_folders(ctx.options.models_dir).find("controlnet", control_net_name)
        if not (path.is_file() and "difference" in _tensor_names(path)):
            return ControlNetLoader().run(ctx, control_net_name)
        dtype = unet_dtype(ctx.device)
        lora_key = tuple((id(bound), strength) for bound, strength in getattr(model, "loras", ()))
        return load_cached(ctx, "controlnet", control_net_name, "diff-controlnet",
                           lambda p: _load_diff_controlnet(p, model, ctx.device, dtype),
                           extra=(str(dtype), id(model.unet), lora_key),
                           size_hint=lambda p: 2 * p.stat().st_size)


def _tensor_names(path: Any) -> set[str]:
    from studio.models.files import load_state_dict, read_safetensors_header

    if path.suffix.lower() == ".safetensors":
        return set(read_safetensors_header(path).tensors)
    return set(load_state_dict(path, device="cpu"))


def _load_diff_controlnet(path: Any, model: Any, device: str, dtype: Any) -> Any:
    """ComfyUI's diff loading: each ``control_model.K`` tensor that has a UNet counterpart
    ``diffusion_model.K`` gets that UNet weight added; the control-only parts load as stored."""
    import torch
    from diffusers import ControlNetModel

    from studio.models.controlnet import ORIGINAL_PREFIX, ControlNetHandle, infer_controlnet_config, to_diffusers_layout
    from studio.models.convert import unet_to_original
    from studio.models.files import ModelFileError, load_state_dict
    from studio.models.loader import assign_weights

    state = load_state_dict(path, device="cpu")
    state.pop("difference", None)
    if not any(k.startswith(ORIGINAL_PREFIX) for k in state):
        raise ModelFileError(f"{path.name}: a diff ControlNet must use the original layout (control_model.* keys)")
    unet = unet_to_original(model.prepare(device, dtype).state_dict())
    added = 0
    for key in list(state):
        base = unet.get(key[len(ORIGINAL_PREFIX):]) if key.startswith(ORIGINAL_PREFIX) else None
        if base is not None and tuple(base.shape) == tuple(state[key].shape):
            state[key] = state[key].float() + base.detach().float().cpu()
            added += 1
    if added == 0:
        raise ModelFileError(f"{path.name}: no tensor of this diff ControlNet matches the model's UNet; "
                             "connect the model it was made for")
    weights = to_diffusers_layout(state, path.name)
    config, arch = infer_controlnet_config({k: tuple(v.shape) for k, v in weights.items()}, path.name)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        controlnet = ControlNetModel.from_config(config)
    controlnet = assign_weights(controlnet, weights, what="ControlNet", source=path.name, dtype=dtype, device="cpu")
    return ControlNetHandle(controlnet.eval().requires_grad_(False), arch, path.name)


def _apply(conditionings: list[Any], control_net: Any, image: Any, strength: float, start_percent: float,
           end_percent: float) -> list[Any]:
    """Each conditioning with the ControlNet chained after whatever it already carried. Entries
    that carried the same chain get the same step, so positive and negative still batch."""
    from studio.models.controlnet import ControlStep

    if start_percent > end_percent:
        raise ValueError(f"start_percent {start_percent} is after end_percent {end_percent}; the ControlNet would never act")
    hint = image[..., :3].movedim(-1, 1).float()
    steps: dict[int, ControlStep] = {}
    out = []
    for conditioning in conditionings:
        entries = []
        for cond, extras in conditioning:
            previous = extras.get("control")
            key = id(previous)
            if key not in steps:
                steps[key] = ControlStep(control_net, hint, float(strength), float(start_percent), float(end_percent),
                                         previous)
            entries.append((cond, {**extras, "control": steps[key]}))
        out.append(entries)
    return out


STRENGTH = Float("strength", 1.0, min=0.0, max=10.0, step=0.01, tooltip="How strongly the hint steers the picture")


class ControlNetApplyAdvanced(Node):
    NAME = "ControlNetApplyAdvanced"
    DISPLAY_NAME = "Apply ControlNet"
    CATEGORY = "conditioning/controlnet"
    DESCRIPTION = ("Steer generation with a hint picture (edges, scribbles, depth, …) through a ControlNet. The hint "
                   "is scaled to the picture size. start/end percent choose the part of the sampling it acts on "
                   "(0 = the first step, 1 = the last); chain several to combine ControlNets.")
    INPUTS = [Input("positive", "CONDITIONING"), Input("negative", "CONDITIONING"), Input("control_net", "CONTROL_NET"),
              Input("image", "IMAGE", tooltip="The hint, made by a preprocessor such as Canny"), STRENGTH,
              Float("start_percent", 0.0, min=0.0, max=1.0, step=0.001, tooltip="Where in the sampling it starts acting"),
              Float("end_percent", 1.0, min=0.0, max=1.0, step=0.001, tooltip="Where in the sampling it stops acting"),
              Input("vae", "VAE", optional=True, tooltip="Accepted for ComfyUI workflows; SD 1/2/XL ControlNets do not use it")]
    OUTPUTS = [Output("positive", "CONDITIONING"), Output("negative", "CONDITIONING")]

    def run(self, ctx: RunContext, positive: Any, negative: Any, control_net: Any, image: Any, strength: float,
            start_percent: float, end_percent: float, vae: Any = None) -> tuple[Any, Any]:
        if strength == 0:
            return positive, negative
        new_positive, new_negative = _apply([positive, negative], control_net, image, strength, start_percent, end_percent)
        return new_positive, new_negative


class ControlNetApply(Node):
    NAME = "ControlNetApply"
    DISPLAY_NAME = "Apply ControlNet (old)"
    CATEGORY = "conditioning/controlnet"
    DESCRIPTION = "The older single-conditioning form of Apply ControlNet (acts on the whole sampling), kept for workflows."
    INPUTS = [Input("conditioning", "CONDITIONING"), Input("control_net", "CONTROL_NET"), Input("image", "IMAGE"), STRENGTH]
    OUTPUTS = [Output("CONDITIONING", "CONDITIONING")]

    def run(self, ctx: RunContext, conditioning: Any, control_net: Any, image: Any, strength: float) -> Any:
        if strength == 0:
            return conditioning
        return _apply([conditioning], control_net, image, strength, 0.0, 1.0)[0]


NODES = [ControlNetLoader, ControlNetApplyAdvanced, ControlNetApply, DiffControlNetLoader]
