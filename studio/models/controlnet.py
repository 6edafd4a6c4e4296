"""ControlNet: load community files (diffusers and original layouts) and steer the UNet with them.

Files come as a diffusers folder (``config.json`` + weights), as one file in the diffusers layout
(``controlnet_cond_embedding.*``, ``controlnet_down_blocks.*``; no config) or in the original
layout (``control_model.input_blocks.*``, ``input_hint_block.*``, ``zero_convs.*``). The original
layout is renamed with diffusers' own converter, then the config is read off the shapes, so
narrow or custom ControlNets load like full-size ones.

Applying one (``ControlNetApplyAdvanced``) stores a :class:`ControlStep` in the conditioning; the
sampler asks :func:`control_residuals` on every model call, which runs each step of the chain that
is active at this noise level and adds up their residuals, as ComfyUI does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.models.files import ModelFileError

ORIGINAL_PREFIX = "control_model."
CONTEXT_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
ARCH_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}


@dataclass(eq=False)
class ControlNetHandle:
    """CONTROL_NET: a loaded ControlNet (owned by the model manager) and what it was made for."""

    controlnet: Any
    arch: str
    name: str = ""

    def cache_nbytes(self) -> int:
        return 1024

    def describe(self) -> str:
        return ARCH_NAMES.get(self.arch, f"a {self.controlnet.config.cross_attention_dim}-wide context")


# ---------------------------------------------------------------------------- loading


def to_diffusers_layout(state: Mapping[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """A ControlNet state dict under diffusers names, whichever layout the file uses."""
    keys = list(state)
    if "controlnet_cond_embedding.conv_in.weight" in state:
        return dict(state)
    original = {k[len(ORIGINAL_PREFIX):]: v for k, v in state.items() if k.startswith(ORIGINAL_PREFIX)} or dict(state)
    if "input_hint_block.0.weight" not in original:
        sample = ", ".join(keys[:3])
        raise ModelFileError(f"{name}: not a ControlNet (no hint encoder; keys such as {sample})")
    if any(k.startswith(("output_blocks.", "model.diffusion_model.")) for k in original):
        raise ModelFileError(f"{name}: a full UNet with a control branch ('diff' ControlNet) is not supported")
    blocks = sorted({int(m.group(1)) for k in original if (m := re.match(r"input_blocks\.(\d+)\.0\.op\.", k))})
    if not blocks:
        raise ModelFileError(f"{name}: the ControlNet has no downsampling blocks; unsupported layout")
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    converted = convert_controlnet_checkpoint(original, {"layers_per_block": blocks[0] - 1})
    return {k: v for k, v in converted.items() if v is not None}


def _count(keys: Any, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def infer_controlnet_config(shapes: Mapping[str, tuple[int, ...]], name: str = "ControlNet") -> tuple[dict[str, Any], str]:
    """The diffusers ``ControlNetModel`` config for a diffusers-layout state dict, and its architecture."""
    from studio.models.detect import _heads, arch_facts, norm_groups

    def need(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise ModelFileError(f"{name}: missing {key}; not a complete ControlNet")
        return tuple(shapes[key])

    levels = _count(shapes, r"down_blocks\.(\d+)\.")
    layers = _count(shapes, r"down_blocks\.0\.resnets\.(\d+)\.")
    if levels == 0 or layers == 0:
        raise ModelFileError(f"{name}: no down blocks found; not a ControlNet")
    widths = [need(f"down_blocks.{i}.resnets.0.conv1.weight")[0] for i in range(levels)]
    depths = [_count(shapes, rf"down_blocks\.{i}\.attentions\.0\.transformer_blocks\.(\d+)\.") for i in range(levels)]
    mid_depth = _count(shapes, r"mid_block\.attentions\.0\.transformer_blocks\.(\d+)\.")
    to_k = sorted(k for k in shapes if k.endswith("attn2.to_k.weight"))
    if not to_k:
        raise ModelFileError(f"{name}: no cross-attention found; not a text-to-image ControlNet")
    context = need(to_k[0])[1]
    arch = CONTEXT_ARCH.get(context, "sd1")
    facts = arch_facts(arch)
    rule = facts["unet"]["heads"]
    per_level = [_heads(rule, w) for w in widths]
    embedding = [need("controlnet_cond_embedding.conv_in.weight")[0]]
    embedding += [need(f"controlnet_cond_embedding.blocks.{2 * i + 1}.weight")[0]
                  for i in range(_count(shapes, r"controlnet_cond_embedding\.blocks\.(\d+)\.") // 2)]
    proj_in = next(v for k, v in shapes.items() if k.endswith(".proj_in.weight"))
    transformer_depths = [d if d else 1 for d in depths]
    if depths[-1] == 0 and mid_depth:  # diffusers takes the middle block's depth from the deepest level
        transformer_depths[-1] = mid_depth
    config: dict[str, Any] = {
        "in_channels": need("conv_in.weight")[1],
        "conditioning_channels": need("controlnet_cond_embedding.conv_in.weight")[1],
        "down_block_types": ["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in depths],
        "block_out_channels": widths,
        "layers_per_block": layers,
        "cross_attention_dim": context,
        "attention_head_dim": per_level[0] if rule["rule"] == "count" else per_level,
        "use_linear_projection": len(proj_in) == 2,
        "transformer_layers_per_block": transformer_depths[0] if len(set(transformer_depths)) == 1 else transformer_depths,
        "norm_num_groups": norm_groups(widths),
        "conditioning_embedding_out_channels": embedding,
        "mid_block_type": "UNetMidBlock2DCrossAttn" if mid_depth else "UNetMidBlock2D",
    }
    time_embed = need("time_embedding.linear_1.weight")
    if time_embed[0] != 4 * widths[0]:
        raise ModelFileError(f"{name}: time embedding width {time_embed[0]} is not 4 × {widths[0]}; unsupported layout")
    unet_config = dict(facts["unet"]["config"])
    if "add_embedding.linear_1.weight" in shapes:
        config["addition_embed_type"] = unet_config.get("addition_embed_type", "text_time")
        config["addition_time_embed_dim"] = unet_config.get("addition_time_embed_dim", 256)
        config["projection_class_embeddings_input_dim"] = need("add_embedding.linear_1.weight")[1]
    if "upcast_attention" in unet_config:
        config["upcast_attention"] = unet_config["upcast_attention"]
    return config, arch


def load_controlnet(path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32) -> ControlNetHandle:
    """Load a ControlNet file or diffusers folder, offline; clear errors for anything else."""
    from diffusers import ControlNetModel

    from studio.models.files import load_state_dict
    from studio.models.loader import _on_meta, assign_weights

    path = Path(path)
    if path.is_dir():
        config_file = path / "config.json"
        weights = sorted(path.glob("diffusion_pytorch_model*.safetensors")) or sorted(path.glob("*.safetensors"))
        if not config_file.is_file() or not weights:
            raise ModelFileError(f"{path.name}: a ControlNet folder needs config.json and a .safetensors file")
        state: dict[str, torch.Tensor] = {}
        for file in weights:
            state.update(load_state_dict(file, device="cpu"))
        config = json.loads(config_file.read_text(encoding="utf-8"))
        arch = CONTEXT_ARCH.get(int(config.get("cross_attention_dim", 768)), "sd1")
    else:
        state = to_diffusers_layout(load_state_dict(path, device="cpu"), path.name)
        config, arch = infer_controlnet_config({k: tuple(v.shape) for k, v in state.items()}, path.name)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    model = _on_meta(lambda: ControlNetModel.from_config(config))
    model = assign_weights(model, state, what="ControlNet", source=path.name, dtype=dtype, device="cpu")
    return ControlNetHandle(model.eval().requires_grad_(False), arch, path.name)


# ---------------------------------------------------------------------------- applying


@dataclass(eq=False)
class ControlStep:
    """One ControlNet applied to a conditioning, chained to the one applied before it."""

    control: ControlNetHandle
    hint: torch.Tensor  # [B, 3, H, W] in 0..1
    strength: float
    start_percent: float = 0.0
    end_percent: float = 1.0
    previous: ControlStep | None = None
    _prepared: dict[tuple[Any, ...], torch.Tensor] = field(default_factory=dict, repr=False)

    def chain(self) -> list[ControlStep]:
        steps: list[ControlStep] = []
        node: ControlStep | None = self
        while node is not None:
            steps.append(node)
            node = node.previous
        return steps[::-1]

    def active(self, timestep: float) -> bool:
        """Whether this step acts at ``timestep`` (0..999): start/end percent of the schedule,
        measured like ComfyUI (percent p is the model's timestep (1 − p) · 999)."""
        if self.end_percent <= 0 or self.start_percent >= 1:
            return False  # ComfyUI: percent 0 is "before the first step", 1 "after the last"
        if self.start_percent > 0 and timestep > (1 - self.start_percent) * 999.0 + 1e-4:
            return False
        return not (self.end_percent < 1 and timestep < (1 - self.end_percent) * 999.0 - 1e-4)

    def hint_for(self, batch: int, height: int, width: int, device: Any, dtype: torch.dtype) -> torch.Tensor:
        """The hint at the picture size of the latent (×8), repeated to the batch, on ``device``."""
        key = (batch, height, width, str(device), dtype)
        if key not in self._prepared:
            hint = self.hint.float()
            if hint.shape[-2:] != (height, width):
                hint = torch.nn.functional.interpolate(hint, size=(height, width), mode="nearest-exact")
            if hint.shape[0] != batch:
                repeats = -(-batch // hint.shape[0])
                hint = hint.repeat(repeats, 1, 1, 1)[:batch]
            self._prepared.clear()
            self._prepared[key] = hint.to(device=device, dtype=dtype)
        return self._prepared[key]


def check_fits(step: ControlStep, unet: Any, model_name: str) -> None:
    """Refuse a ControlNet made for another architecture before the first step, by name."""
    cn, un = step.control.controlnet.config, unet.config
    if (int(cn.cross_attention_dim) != int(un.cross_attention_dim)
            or list(cn.block_out_channels) != list(un.block_out_channels)):
        raise ModelFileError(f"ControlNet {step.control.name} is for {step.control.describe()}; it does not fit "
                             f"the model {model_name} (block widths {list(un.block_out_channels)}, context "
                             f"{un.cross_attention_dim})")


def control_residuals(step: ControlStep, x: torch.Tensor, timestep: torch.Tensor, cond: Mapping[str, Any],
                      prepare: Any) -> dict[str, Any]:
    """The UNet keyword arguments that carry the residuals of every active step of the chain
    (none when no step acts at this timestep). ``prepare(module)`` puts a ControlNet on the
    device in the UNet's dtype."""
    down: list[torch.Tensor] | None = None
    mid: torch.Tensor | None = None
    t = float(timestep.flatten()[0])
    for link in step.chain():
        if link.strength == 0 or not link.active(t):
            continue
        module = prepare(link.control.controlnet)
        hint = link.hint_for(x.shape[0], x.shape[-2] * 8, x.shape[-1] * 8, x.device, x.dtype)
        d, m = module(x, timestep, encoder_hidden_states=cond["encoder_hidden_states"], controlnet_cond=hint,
                      conditioning_scale=float(link.strength), added_cond_kwargs=cond.get("added_cond_kwargs"),
                      return_dict=False)
        down = list(d) if down is None else [a + b for a, b in zip(down, d)]
        mid = m if mid is None else mid + m
    if down is None:
        return {}
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
