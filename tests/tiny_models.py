"""Tiny, seeded SD 1-architecture models for tests: the real architecture, narrow and shallow.

The same seed gives the same weights, written either as ONE original-layout single file (through
``convert.to_single_file``, as our own checkpoints are saved) or as a diffusers folder, so tests can
check that both load to numerically identical models. Every parameter is filled with seeded random
values (norm weights too), so a tensor mapped to the wrong place changes the outputs.

Shapes: UNet widths (32, 32, 64), one resnet per level, attention on the first two levels and in
the middle (like SD 1), 8 heads, 32-wide context; VAE widths (8, 16, 16, 16) so it downsamples 8x,
4 latent channels; CLIP text model 32 wide, 2 layers, the real 49408-token vocabulary, 77 positions.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from studio.models.convert import canonical_text_keys, to_single_file
from studio.models.detect import META_DEFAULT_SIZE, norm_groups, scheduler_config_for
from studio.models.loader import bundled_tokenizer_dir

IMAGE_SIZE = 64  # pixels; latents are 8x8

UNET_CONFIG = {
    "sample_size": IMAGE_SIZE // 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32,
    "attention_head_dim": 8,  # SD 1's rule: 8 heads (diffusers' name for it)
    "norm_num_groups": 32,
}
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [8, 16, 16, 16],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": norm_groups([8, 16, 16, 16]),
    "sample_size": IMAGE_SIZE,
    "scaling_factor": 0.18215,
}
TEXT_CONFIG = {
    "vocab_size": 49408,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 1,  # hidden // 64, at least 1
    "max_position_embeddings": 77,
    "projection_dim": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}


@dataclass
class TinyComponents:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel


def _fill(model: torch.nn.Module, seed: int) -> None:
    """Seeded random values for every parameter (norm weights near 1, weights scaled by fan-in)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            noise = torch.randn(param.shape, generator=generator)
            if param.ndim == 1 and name.endswith("weight"):
                param.copy_(1.0 + 0.1 * noise)
            elif param.ndim == 1:
                param.copy_(0.1 * noise)
            else:
                fan_in = max(1, param[0].numel())
                param.copy_(noise / fan_in**0.5)


def build_tiny_components(seed: int = 0, *, inpaint: bool = False) -> TinyComponents:
    torch.manual_seed(seed)  # construction-time init is overwritten below; this only keeps it cheap and quiet
    unet = UNet2DConditionModel.from_config({**UNET_CONFIG, "in_channels": 9 if inpaint else 4})
    vae = AutoencoderKL.from_config(VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    _fill(unet, seed)
    _fill(vae, seed + 1)
    _fill(text_encoder, seed + 2)
    for model in (unet, vae, text_encoder):
        model.eval().requires_grad_(False)
    return TinyComponents(unet, vae, text_encoder)


def write_tiny_single_file(path: str | Path, *, seed: int = 0, inpaint: bool = False) -> Path:
    """One original-layout .safetensors checkpoint (UNet + VAE + CLIP) of the tiny model."""
    path = Path(path)
    parts = build_tiny_components(seed, inpaint=inpaint)
    state = to_single_file(parts.unet.state_dict(), parts.vae.state_dict(), [parts.text_encoder.state_dict()], "sd1")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={"format": "pt", META_DEFAULT_SIZE: str(IMAGE_SIZE)})
    return path


def write_tiny_diffusers(folder: str | Path, *, seed: int = 0) -> Path:
    """The same tiny model as a diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
    folder = Path(folder)
    parts = build_tiny_components(seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts.unet.save_pretrained(folder / "unet", safe_serialization=True)
    parts.vae.save_pretrained(folder / "vae", safe_serialization=True)
    te_dir = folder / "text_encoder"
    te_dir.mkdir(exist_ok=True)
    config = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", **TEXT_CONFIG}
    (te_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    # As published SD folders hold it: text_model.* names.
    weights = canonical_text_keys(parts.text_encoder.state_dict())
    save_file({k: v.contiguous() for k, v in weights.items()}, str(te_dir / "model.safetensors"), metadata={"format": "pt"})
    shutil.copytree(bundled_tokenizer_dir(), folder / "tokenizer", dirs_exist_ok=True)
    scheduler = {"_class_name": "PNDMScheduler", **scheduler_config_for("sd1", "epsilon"), "skip_prk_steps": True}
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=2), encoding="utf-8")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return folder


# -- LoRA files for the tiny model ----------------------------------------------------------------
LORA_LAYOUTS = ("kohya", "peft", "ldm")


def tiny_lora_targets(parts: TinyComponents) -> dict[str, dict[str, torch.Size]]:
    """What the tiny LoRAs adapt: every linear layer and convolution of the UNet's attention blocks,
    the ResNets' 3×3 convolutions (LoCon) and the text encoder's attention and MLP layers."""
    unet = {name: module.weight.shape for name, module in parts.unet.named_modules()
            if ("attentions" in name and isinstance(module, torch.nn.Linear | torch.nn.Conv2d))
            or ("resnets" in name and name.endswith(("conv1", "conv2")))}
    text = {name: module.weight.shape for name, module in parts.text_encoder.named_modules()
            if isinstance(module, torch.nn.Linear) and ".layers." in name}
    return {"unet": unet, "text": text}


def tiny_lora_state(*, seed: int = 0, rank: int = 4, alpha: float = 2.0, layout: str = "kohya",
                    magnitude: float = 0.3) -> dict[str, torch.Tensor]:
    """A seeded random LoRA for the tiny model in a community layout. The layouts hold the same
    update: kohya (diffusers names, underscored, with ``alpha``), PEFT (``unet.…lora_A``, no alpha,
    so ``alpha / rank`` is folded into ``lora_B``) and kohya with original (LDM) UNet names."""
    from studio.models.convert import unet_to_original

    parts = build_tiny_components(0)
    targets = tiny_lora_targets(parts)
    generator = torch.Generator().manual_seed(1000 + seed)
    ldm = {v: k[: -len(".weight")] for k, v in unet_to_original(
        {f"{n}.weight": n for n in targets["unet"]}).items()}
    state: dict[str, torch.Tensor] = {}
    for component, layers in (("unet", targets["unet"]), ("te", targets["text"])):
        for name, shape in sorted(layers.items()):
            if component == "te" and not name.startswith("text_model."):
                name = f"text_model.{name}"  # as community files name CLIP layers, whatever transformers calls them
            kernel = tuple(shape[2:])
            down = torch.randn((rank, shape[1], *kernel), generator=generator) * magnitude / shape[1] ** 0.5
            up = torch.randn((shape[0], rank, *(1,) * len(kernel)), generator=generator) * magnitude / rank**0.5
            if layout == "peft":
                prefix = f"unet.{name}" if component == "unet" else f"text_encoder.{name}"
                state[f"{prefix}.lora_A.weight"] = down
                state[f"{prefix}.lora_B.weight"] = up * (alpha / rank)
                continue
            path = ldm[name] if (layout == "ldm" and component == "unet") else name
            prefix = f"lora_{component}_" + path.replace(".", "_")
            state[f"{prefix}.lora_down.weight"] = down
            state[f"{prefix}.lora_up.weight"] = up
            state[f"{prefix}.alpha"] = torch.tensor(alpha)
    return state


def write_tiny_lora(path: str | Path, **kwargs: object) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tiny_lora_state(**kwargs).items()}, str(path))  # type: ignore[arg-type]
    return path


# -- ControlNet files for the tiny model ----------------------------------------------------------
CONTROLNET_LAYOUTS = ("diffusers_file", "diffusers_folder", "original")


def build_tiny_controlnet(seed: int = 0, *, unet_seed: int = 0) -> torch.nn.Module:
    """A ControlNet for the tiny UNet, every weight random (zero convolutions too, so it acts)."""
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(build_tiny_components(unet_seed).unet,
                                           conditioning_embedding_out_channels=(8, 16, 16, 16))
    _fill(controlnet, 500 + seed)
    return controlnet.eval().requires_grad_(False)


def controlnet_to_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers ControlNet state dict under the original names (``control_model.`` prefix)."""
    import re

    from studio.models.convert import unet_to_original

    blocks = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("controlnet_cond_embedding.blocks."))
    out: dict[str, torch.Tensor] = {}
    shared: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.(.*)", key):
            out[f"input_hint_block.{2 * (int(m.group(1)) + 1)}.{m.group(2)}"] = value
        elif key.startswith("controlnet_cond_embedding.conv_out."):
            out[f"input_hint_block.{2 * (blocks + 1)}." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("controlnet_cond_embedding.conv_in."):
            out["input_hint_block.0." + key.rsplit(".", 1)[1]] = value
        elif m := re.match(r"controlnet_down_blocks\.(\d+)\.(.*)", key):
            out[f"zero_convs.{m.group(1)}.0.{m.group(2)}"] = value
        elif key.startswith("controlnet_mid_block."):
            out["middle_block_out.0." + key.rsplit(".", 1)[1]] = value
        else:
            shared[key] = value
    out.update(unet_to_original(shared))
    return {f"control_model.{k}": v for k, v in out.items()}


def write_tiny_controlnet(path: str | Path, *, layout: str = "diffusers_file", seed: int = 0) -> Path:
    path = Path(path)
    controlnet = build_tiny_controlnet(seed)
    state = {k: v.contiguous() for k, v in controlnet.state_dict().items()}
    if layout == "diffusers_folder":
        controlnet.save_pretrained(path, safe_serialization=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "original":
        state = {k: v.contiguous() for k, v in controlnet_to_original(state).items()}
    save_file(state, str(path))
    return path
