"""Key mapping between the original (LDM) single-file layout and diffusers / transformers models.

Original → diffusers uses diffusers' own converters (``diffusers.loaders.single_file_utils``) with
the configs that ``detect.py`` inferred from the shapes, so narrow models map like full-size ones.
Diffusers → original (to save our own single-file checkpoints) is written here as explicit tables.
Two things change shape on the way, both ways: the VAE mid-block attention (1x1 convolutions in
the original, linear layers in diffusers) and OpenCLIP's fused ``in_proj`` (q, k and v stacked)
against transformers' separate ``q_proj`` / ``k_proj`` / ``v_proj``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch

from studio.models.detect import (
    TEXT_ENCODER_PREFIXES,
    UNET_PREFIX,
    VAE_PREFIX,
    CheckpointInfo,
    TextEncoderInfo,
    arch_facts,
)
from studio.models.files import ModelFileError

StateDict = dict[str, torch.Tensor]

#: Keys the diffusers / transformers models do not hold: buffers rebuilt at load time.
NON_PERSISTENT_KEYS = ("text_model.embeddings.position_ids",)
#: OpenCLIP's learned softmax temperature; a trained CLIP ends at ln(100). Unused for generation.
OPEN_CLIP_LOGIT_SCALE = math.log(100.0)


def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    n = len(prefix)
    return {k[n:]: v for k, v in state.items() if k.startswith(prefix)}


def _check_complete(converted: Mapping[str, Any], what: str) -> StateDict:
    """diffusers' converters use ``dict.get``: a tensor missing from the file becomes None."""
    missing = sorted(k for k, v in converted.items() if v is None)
    if missing:
        raise ModelFileError(f"{what}: the file lacks tensors for {', '.join(missing[:5])}"
                             f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''}; it is incomplete")
    return dict(converted)


# ------------------------------------------------------------------------------ original → diffusers


def unet_to_diffusers(state: Mapping[str, torch.Tensor], config: Mapping[str, Any], prefix: str = UNET_PREFIX) -> StateDict:
    """The UNet's tensors under diffusers' names (same tensors, no copies)."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    # Only the UNet's own keys go in: model_ema.* and the rest would only slow the substring scans.
    sub = {UNET_PREFIX + k: v for k, v in _sub(state, prefix).items()}
    return _check_complete(convert_ldm_unet_checkpoint(sub, dict(config)), "UNet")


def vae_to_diffusers(state: Mapping[str, torch.Tensor], config: Mapping[str, Any], prefix: str = VAE_PREFIX) -> StateDict:
    """The VAE's tensors under diffusers' names; mid-block attention 1x1 convs become linear weights."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    sub = {k: v for k, v in _sub(state, prefix).items() if k.startswith(("encoder.", "decoder.", "quant_conv.",
                                                                           "post_quant_conv."))}
    return _check_complete(convert_ldm_vae_checkpoint(sub, dict(config)), "VAE")


def text_encoder_to_diffusers(state: Mapping[str, torch.Tensor], te: TextEncoderInfo) -> StateDict:
    """One text encoder's tensors under transformers' CLIPTextModel(WithProjection) names."""
    if te.layout == "clip":
        from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint

        sub = {k: v for k, v in state.items() if k.startswith(te.prefix)}
        # canonical_text_keys: old files lack the ``text_model.`` level under the prefix.
        converted = canonical_text_keys(convert_ldm_clip_checkpoint(sub, remove_prefix=te.prefix))
    else:
        from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

        sub = _sub(state, te.prefix)
        if te.drop_last_layer:
            last = max(int(m.group(1)) for k in sub if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k)))
            sub = {k: v for k, v in sub.items() if not k.startswith(f"transformer.resblocks.{last}.")}
        if te.model_class != "CLIPTextModelWithProjection":
            sub.pop("text_projection", None)
        # A neutral prefix keeps diffusers' hard-coded SD 2 ignore list (resblocks.23 under
        # cond_stage_model.model.) away from models whose layers we choose ourselves.
        neutral = "nuance_open_clip."
        hidden = te.config["hidden_size"]
        text_model = SimpleNamespace(config=SimpleNamespace(hidden_size=hidden))
        converted = convert_open_clip_checkpoint(text_model, {neutral + k: v for k, v in sub.items()}, prefix=neutral)
    converted = {k: v for k, v in converted.items() if k not in NON_PERSISTENT_KEYS}
    return _check_complete(converted, f"text encoder {te.name}")


def to_diffusers(state: Mapping[str, torch.Tensor], info: CheckpointInfo) -> dict[str, Any]:
    """All parts of an original-layout checkpoint: {"unet": sd, "vae": sd | None, "text_encoders": [sd, ...]}."""
    return {
        "unet": unet_to_diffusers(state, info.unet_config or {}, info.unet_prefix) if info.has_unet else None,
        "vae": vae_to_diffusers(state, info.vae_config or {}, info.vae_prefix) if info.has_vae else None,
        "text_encoders": [text_encoder_to_diffusers(state, te) for te in info.text_encoders],
    }


# ------------------------------------------------------------------------------ diffusers → original

_UNET_TOP = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "add_embedding.linear_1.": "label_emb.0.0.",
    "add_embedding.linear_2.": "label_emb.0.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}
#: Inside a resnet: diffusers name -> original name.
_UNET_RESNET = {
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "time_emb_proj.": "emb_layers.1.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "conv_shortcut.": "skip_connection.",
}
_VAE_TOP = {
    "conv_norm_out.": "norm_out.",
    "conv_in.": "conv_in.",
    "conv_out.": "conv_out.",
}
_VAE_RESNET = {"conv_shortcut.": "nin_shortcut."}  # norm1, conv1, norm2, conv2 keep their names
_VAE_ATTENTION = {
    "group_norm.": "norm.",
    "to_q.": "q.",
    "to_k.": "k.",
    "to_v.": "v.",
    "to_out.0.": "proj_out.",
}
_OPEN_CLIP_TOP = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
    "self_attn.out_proj.": "attn.out_proj.",
}


def _rename(rest: str, table: Mapping[str, str], what: str, key: str) -> str:
    for new, old in table.items():
        if rest.startswith(new):
            return old + rest[len(new):]
    raise ModelFileError(f"{what}: no original-layout name for {key!r}")


def _count(keys: Sequence[str], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def unet_to_original(unet: Mapping[str, torch.Tensor]) -> StateDict:
    """A diffusers UNet2DConditionModel state dict under original names (no ``model.diffusion_model.`` prefix)."""
    keys = list(unet)
    levels = _count(keys, r"down_blocks\.(\d+)\.")
    n = _count(keys, r"down_blocks\.0\.resnets\.(\d+)\.")
    out: StateDict = {}
    for key, value in unet.items():
        if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            level, part, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            block = 1 + level * (n + 1) + j
            if part == "resnets":
                new = f"input_blocks.{block}.0." + _rename(rest, _UNET_RESNET, "UNet", key)
            else:
                new = f"input_blocks.{block}.1.{rest}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"input_blocks.{(int(m.group(1)) + 1) * (n + 1)}.0.op.{m.group(2)}"
        elif m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
            level, part, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            block = level * (n + 1) + j
            if part == "resnets":
                new = f"output_blocks.{block}.0." + _rename(rest, _UNET_RESNET, "UNet", key)
            else:
                new = f"output_blocks.{block}.1.{rest}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            level = int(m.group(1))
            has_attention = any(k.startswith(f"up_blocks.{level}.attentions.") for k in keys)
            new = f"output_blocks.{level * (n + 1) + n}.{2 if has_attention else 1}.conv.{m.group(2)}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"middle_block.{2 * int(m.group(1))}." + _rename(m.group(2), _UNET_RESNET, "UNet", key)
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            new = f"middle_block.1.{m.group(1)}"
        else:
            new = _rename(key, _UNET_TOP, "UNet", key)
        out[new] = value
    if levels == 0 or n == 0:
        raise ModelFileError("UNet: no down blocks found; not a diffusers UNet2DConditionModel state dict")
    return out


def vae_to_original(vae: Mapping[str, torch.Tensor]) -> StateDict:
    """A diffusers AutoencoderKL state dict under original names (no ``first_stage_model.`` prefix)."""
    levels = _count(list(vae), r"decoder\.up_blocks\.(\d+)\.")
    out: StateDict = {}
    for key, value in vae.items():
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"encoder.down.{m.group(1)}.block.{m.group(2)}." + _rename(m.group(3), {**_VAE_RESNET, "": ""}, "VAE", key)
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"encoder.down.{m.group(1)}.downsample.conv.{m.group(2)}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            level = levels - 1 - int(m.group(1))  # the original decoder counts levels from the top
            new = f"decoder.up.{level}.block.{m.group(2)}." + _rename(m.group(3), {**_VAE_RESNET, "": ""}, "VAE", key)
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            new = f"decoder.up.{levels - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}." + _rename(m.group(3), {**_VAE_RESNET, "": ""}, "VAE", key)
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
            new = f"{m.group(1)}.mid.attn_1." + _rename(m.group(2), _VAE_ATTENTION, "VAE", key)
            if m.group(2).endswith("weight") and not m.group(2).startswith("group_norm.") and value.ndim == 2:
                value = value[:, :, None, None]  # linear -> 1x1 convolution
        elif m := re.match(r"(encoder|decoder)\.(.*)", key):
            new = f"{m.group(1)}." + _rename(m.group(2), _VAE_TOP, "VAE", key)
        elif key.startswith(("quant_conv.", "post_quant_conv.")):
            new = key
        else:
            raise ModelFileError(f"VAE: no original-layout name for {key!r}")
        out[new] = value
    return out


def canonical_text_keys(te: Mapping[str, torch.Tensor]) -> StateDict:
    """Text-encoder keys as files hold them (``text_model.*``, ``text_projection.weight``).

    transformers 5's CLIPTextModel names its own tensors without the ``text_model.`` level.
    """
    return {k if k.startswith(("text_model.", "text_projection.")) else "text_model." + k: v for k, v in te.items()}


def clip_to_original(te: Mapping[str, torch.Tensor]) -> StateDict:
    """OpenAI CLIP text encoders keep transformers' names in single files (under their prefix)."""
    te = canonical_text_keys(te)
    return {k: v for k, v in te.items() if k not in NON_PERSISTENT_KEYS and not k.startswith("text_projection")}


def open_clip_to_original(te: Mapping[str, torch.Tensor], *, pad_last_layer: bool = False) -> StateDict:
    """A transformers CLIPTextModel(WithProjection) state dict under OpenCLIP's names.

    q/k/v are stacked into ``in_proj``; ``text_projection`` is stored transposed ([width, embed]).
    ``pad_last_layer`` (SD 2) appends the block SD 2 never runs, zero-filled, and an identity
    projection, so the file has the layout other tools expect and reads back with the same depth.
    """
    out: StateDict = {}
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in canonical_text_keys(te).items():
        if key in NON_PERSISTENT_KEYS:
            continue
        if key in _OPEN_CLIP_TOP:
            out[_OPEN_CLIP_TOP[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key):
            index, rest = int(m.group(1)), m.group(2)
            if q := re.match(r"self_attn\.(q|k|v)_proj\.(weight|bias)", rest):
                layers.setdefault(index, {})[f"{q.group(1)}.{q.group(2)}"] = value
            else:
                out[f"transformer.resblocks.{index}." + _rename(rest, _OPEN_CLIP_LAYER, "text encoder", key)] = value
        else:
            raise ModelFileError(f"text encoder: no OpenCLIP name for {key!r}")
    for index, parts in layers.items():
        for kind in ("weight", "bias"):
            try:
                stacked = torch.cat([parts[f"q.{kind}"], parts[f"k.{kind}"], parts[f"v.{kind}"]], dim=0)
            except KeyError:
                raise ModelFileError(f"text encoder: layer {index} lacks one of q/k/v_proj.{kind}") from None
            out[f"transformer.resblocks.{index}.attn.in_proj_{kind}"] = stacked
    if pad_last_layer and layers:
        last = max(layers)
        template = {k[len(f"transformer.resblocks.{last}."):]: v for k, v in out.items()
                    if k.startswith(f"transformer.resblocks.{last}.")}
        for name, value in template.items():
            out[f"transformer.resblocks.{last + 1}.{name}"] = torch.zeros_like(value)
        width = out["token_embedding.weight"].shape[1]
        dtype = out["token_embedding.weight"].dtype
        out.setdefault("text_projection", torch.eye(width, dtype=dtype))
    if "token_embedding.weight" in out:
        out["logit_scale"] = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=out["token_embedding.weight"].dtype)
    return out


def to_single_file(unet_sd: Mapping[str, torch.Tensor] | None, vae_sd: Mapping[str, torch.Tensor] | None,
                   text_encoder_sds: Sequence[Mapping[str, torch.Tensor]], arch: str) -> StateDict:
    """One original-layout state dict from diffusers-layout parts (any part may be left out: None / [])."""
    facts = arch_facts(arch)
    out: StateDict = {}
    if unet_sd is not None:
        out.update({UNET_PREFIX + k: v for k, v in unet_to_original(unet_sd).items()})
    if vae_sd is not None:
        out.update({VAE_PREFIX + k: v for k, v in vae_to_original(vae_sd).items()})
    encoders = facts["text_encoders"]
    if text_encoder_sds and len(text_encoder_sds) != len(encoders):
        raise ValueError(f"{arch} has {len(encoders)} text encoder(s); got {len(text_encoder_sds)} state dicts")
    for i, (te, sd) in enumerate(zip(encoders, text_encoder_sds)):
        prefix = TEXT_ENCODER_PREFIXES[(arch, i)]
        if te["layout"] == "clip":
            part = clip_to_original(sd)
        else:
            part = open_clip_to_original(sd, pad_last_layer=bool(te.get("drop_last_layer")))
        out.update({prefix + k: v for k, v in part.items()})
    return out
