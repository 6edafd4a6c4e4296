"""Recognising Stable Diffusion model files from their tensor names and shapes.

Single-file checkpoints (the "original" LDM layout most users download) carry no config. The
architecture, the diffusers configs of the UNet and the VAE and the CLIP text encoder configs are
therefore read off the shapes, with the few facts that are not in the weights (scheduler, VAE
scaling factor, attention-head rule, activations) taken from ``resources/model_configs``. Reading
shapes, not matching a list of known sizes, is what lets narrow or shallow models (our demo model,
the tests' tiny models) load through the same code as community checkpoints.

Nothing here needs torch: ``detect_file`` works from the safetensors header alone, for
``nuance models list``. Only the SD 2 v-prediction check reads one tensor, through ``read_tensor``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.models.files import PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES, ModelFileError, read_safetensors_header

if TYPE_CHECKING:
    import torch

ARCHES = ("sd1", "sd2", "sdxl")
PREDICTIONS = ("epsilon", "v_prediction")
KINDS = ("checkpoint", "vae", "lora", "controlnet", "embedding", "upscale", "diffusers", "pickle", "unknown")

#: Where each component's keys start in an original-layout single file.
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_ENCODER_PREFIXES = {
    # (arch, index of the encoder) -> prefix
    ("sd1", 0): "cond_stage_model.transformer.",
    ("sd2", 0): "cond_stage_model.model.",
    ("sdxl", 0): "conditioner.embedders.0.transformer.",
    ("sdxl", 1): "conditioner.embedders.1.model.",
}
SDXL_REFINER_PREFIX = "conditioner.embedders.0.model."

#: Optional safetensors metadata that overrides a rule (values are strings, as safetensors stores them).
META_UNET_HEADS = "nuance.unet.heads"
META_TEXT_HEADS = "nuance.text.heads"
META_DEFAULT_SIZE = "nuance.default_size"
META_PREDICTION = "nuance.prediction"
_MODELSPEC_PREDICTION = "modelspec.prediction_type"

Shapes = Mapping[str, tuple[int, ...]]


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TextEncoderInfo:
    """One text encoder of a checkpoint: where its keys are and how to build it."""

    name: str  # "clip_l", "open_clip_h", "open_clip_bigg" (role in the architecture, whatever its width)
    layout: str  # "clip": transformers CLIPTextModel keys; "open_clip": OpenCLIP ``resblocks`` keys
    prefix: str  # where its keys start in the file ("" for a diffusers folder)
    model_class: str  # "CLIPTextModel" | "CLIPTextModelWithProjection"
    config: dict[str, Any]  # CLIPTextConfig keyword arguments
    pad_with_end: bool  # the tokenizer pads with <|endoftext|> (OpenAI CLIP) rather than "!" (OpenCLIP)
    drop_last_layer: bool = False  # SD 2 uses the penultimate layer: the file's last block is not loaded


@dataclass(frozen=True)
class CheckpointInfo:
    """What a Stable Diffusion checkpoint is and the configs to build its parts."""

    arch: str  # "sd1" | "sd2" | "sdxl"
    inpaint: bool  # the UNet takes 9 input channels (latent + mask + masked-image latent)
    prediction: str | None  # "epsilon" | "v_prediction"; None when it could not be told (SD 2 without weights)
    has_unet: bool
    has_vae: bool
    text_encoders: tuple[TextEncoderInfo, ...]
    unet_config: dict[str, Any] | None
    vae_config: dict[str, Any] | None
    default_size: int
    vae_scaling_factor: float
    scheduler_config: dict[str, Any]
    layout: str = "single_file"  # "single_file" (original layout) | "diffusers" (a diffusers folder)
    vae_prefix: str = VAE_PREFIX
    unet_prefix: str = UNET_PREFIX

    @property
    def components(self) -> tuple[str, ...]:
        """The parts present, named as in a diffusers folder."""
        names = ["unet"] if self.has_unet else []
        if self.has_vae:
            names.append("vae")
        names += ["text_encoder" if i == 0 else f"text_encoder_{i + 1}" for i in range(len(self.text_encoders))]
        return tuple(names)

    @property
    def text_encoder_configs(self) -> tuple[dict[str, Any], ...]:
        return tuple(te.config for te in self.text_encoders)


@dataclass(frozen=True)
class FileInfo:
    """What a file in a models folder appears to be (from its header only)."""

    path: Path
    kind: str  # one of KINDS
    arch: str | None = None  # "sd1" | "sd2" | "sdxl" where it can be told
    format: str = "safetensors"  # "safetensors" | "pickle" | "diffusers" | "folder"
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------- bundled facts


@cache
def _load_facts(arch: str) -> dict[str, Any]:
    from studio.core.resources import resource_path

    path = resource_path("model_configs", f"{arch}.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"the bundled model config {path} is missing or broken ({exc}); reinstall Nuance Studio") from None


def arch_facts(arch: str) -> dict[str, Any]:
    """The bundled per-architecture facts (a copy: callers may change it)."""
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHES)}")
    return copy.deepcopy(_load_facts(arch))


def default_size_for(arch: str, prediction: str | None) -> int:
    size = arch_facts(arch)["default_size"]
    if isinstance(size, dict):
        return int(size.get(prediction or "unknown", size["unknown"]))
    return int(size)


def scheduler_config_for(arch: str, prediction: str | None) -> dict[str, Any]:
    config = arch_facts(arch)["scheduler"]
    config["prediction_type"] = prediction or "epsilon"
    return config


# ------------------------------------------------------------------------------------------- helpers


def _strip(shapes: Shapes, prefix: str) -> dict[str, tuple[int, ...]]:
    n = len(prefix)
    return {k[n:]: tuple(v) for k, v in shapes.items() if k.startswith(prefix)}


def _indices(keys: Any, pattern: str) -> list[int]:
    """Sorted distinct N for keys matching ``pattern`` (a regex with one ``(\\d+)`` group)."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def _need(shapes: Mapping[str, tuple[int, ...]], key: str, what: str) -> tuple[int, ...]:
    try:
        return shapes[key]
    except KeyError:
        raise ModelFileError(f"{what}: tensor {key!r} is missing; the file is incomplete or of an unsupported layout") from None


def norm_groups(widths: Any) -> int:
    """GroupNorm groups: 32 as in every SD model, unless a narrow model's widths need fewer.

    The rule: the largest of 32, 16, 8, 4, 2, 1 that divides every width (full-size models get 32).
    """
    widths = [int(w) for w in widths]
    for groups in (32, 16, 8, 4, 2, 1):
        if all(w % groups == 0 for w in widths):
            return groups
    return 1


def _parse_ints(value: str | None, what: str) -> list[int] | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        numbers = [int(part) for part in str(value).replace(" ", "").split(",")]
    except ValueError:
        raise ModelFileError(f"metadata {what} = {value!r} is not a number or a comma-separated list of numbers") from None
    if any(n < 1 for n in numbers):
        raise ModelFileError(f"metadata {what} = {value!r} must hold positive numbers")
    return numbers


def _heads(rule: Mapping[str, Any], width: int) -> int:
    if rule["rule"] == "count":
        return int(rule["value"])
    return max(1, width // int(rule["value"]))


def _normalise_prediction(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = str(value).strip().lower()
    if lowered in ("v", "v_prediction", "v-prediction", "vpred", "v_pred"):
        return "v_prediction"
    if lowered in ("epsilon", "eps"):
        return "epsilon"
    return None


# ------------------------------------------------------------------------------------ UNet inference


def infer_unet_config(shapes: Shapes, arch: str, *, prefix: str = UNET_PREFIX, heads: list[int] | None = None,
                      default_size: int | None = None) -> dict[str, Any]:
    """The diffusers ``UNet2DConditionModel`` config for an original-layout UNet, from its shapes.

    ``heads`` overrides the architecture's head rule: one number for every level, or one per level.
    """
    s = _strip(shapes, prefix)
    what = "UNet"
    conv_in = _need(s, "input_blocks.0.0.weight", what)
    conv_out = _need(s, "out.2.weight", what)
    time_embed = _need(s, "time_embed.0.weight", what)
    model_channels, in_channels = conv_in[0], conv_in[1]

    def attention_depth(block: str) -> int:
        return len(_indices(s, re.escape(block) + r"\.1\.transformer_blocks\.(\d+)\."))

    # Input blocks: [conv_in], then per level N resnets (each maybe followed by attention), then a downsampler.
    levels: list[list[tuple[int, int]]] = [[]]  # per level: (resnet out channels, attention depth)
    for i in _indices(s, r"input_blocks\.(\d+)\.")[1:]:
        if f"input_blocks.{i}.0.op.weight" in s:
            levels.append([])
            continue
        out_ch = _need(s, f"input_blocks.{i}.0.out_layers.3.weight", what)[0]
        levels[-1].append((out_ch, attention_depth(f"input_blocks.{i}")))
    if not levels[-1] or any(not level for level in levels):
        raise ModelFileError("UNet: the input blocks do not form levels of resnets separated by downsamplers")
    layers = {len(level) for level in levels}
    if len(layers) != 1:
        raise ModelFileError(f"UNet: levels have different numbers of resnets ({sorted(layers)}); unsupported layout")
    layers_per_block = layers.pop()
    block_out_channels = []
    down_depths = []
    for index, level in enumerate(levels):
        widths = {w for w, _ in level}
        depths = {d for _, d in level}
        if len(widths) != 1 or len(depths) != 1:
            raise ModelFileError(f"UNet: level {index} mixes widths {sorted(widths)} or attention depths {sorted(depths)}")
        block_out_channels.append(widths.pop())
        down_depths.append(depths.pop())

    # Output blocks: per level (deepest first) N+1 resnets, each maybe with attention, then an upsampler.
    outputs = _indices(s, r"output_blocks\.(\d+)\.")
    if len(outputs) != len(levels) * (layers_per_block + 1):
        raise ModelFileError(f"UNet: {len(outputs)} output blocks for {len(levels)} levels of {layers_per_block} "
                             "resnets; unsupported layout")
    up_depths = []
    for level in range(len(levels)):
        blocks = range(level * (layers_per_block + 1), (level + 1) * (layers_per_block + 1))
        depths = {0 if f"output_blocks.{i}.1.conv.weight" in s else attention_depth(f"output_blocks.{i}") for i in blocks}
        if len(depths) != 1:
            raise ModelFileError(f"UNet: output level {level} mixes attention depths {sorted(depths)}")
        up_depths.append(depths.pop())
    if up_depths != list(reversed(down_depths)):
        raise ModelFileError(f"UNet: the attention of the output levels {up_depths} does not mirror the input levels "
                             f"{down_depths}; unsupported layout")
    mid_depth = attention_depth("middle_block")
    if mid_depth == 0:
        raise ModelFileError("UNet: the middle block has no attention; unsupported layout")

    attention_keys = sorted(k for k in s if k.endswith("attn2.to_k.weight"))
    if not attention_keys:
        raise ModelFileError("UNet: no cross-attention found; not a text-to-image UNet")
    cross_attention_dim = s[attention_keys[0]][1]
    proj_in = next(v for k, v in s.items() if k.endswith(".proj_in.weight"))
    use_linear_projection = len(proj_in) == 2

    facts = arch_facts(arch)
    if heads is None:
        rule = facts["unet"]["heads"]
        per_level = [_heads(rule, w) for w in block_out_channels]
        attention_head_dim: int | list[int] = per_level[0] if rule["rule"] == "count" else per_level
    else:
        if len(heads) not in (1, len(block_out_channels)):
            raise ModelFileError(f"metadata {META_UNET_HEADS} gives {len(heads)} values for {len(block_out_channels)} levels")
        per_level = heads * len(block_out_channels) if len(heads) == 1 else list(heads)
        attention_head_dim = heads[0] if len(heads) == 1 else list(heads)
    for index, (width, count) in enumerate(zip(block_out_channels, per_level)):
        has_attention = down_depths[index] > 0 or (index == len(block_out_channels) - 1)
        if has_attention and width % count:
            raise ModelFileError(
                f"UNet: level {index} is {width} channels wide, which {count} attention heads do not divide; "
                f"state the heads in the file's metadata ({META_UNET_HEADS})")

    # Levels without attention still need a depth in diffusers' list; the deepest one's is the middle block's.
    depths = [d if d else 1 for d in down_depths]
    if down_depths[-1] == 0:
        depths[-1] = mid_depth
    elif down_depths[-1] != mid_depth:
        raise ModelFileError(f"UNet: the middle block's attention depth {mid_depth} differs from the deepest level's "
                             f"{down_depths[-1]}; unsupported layout")
    transformer_layers: int | list[int] = depths[0] if len(set(depths)) == 1 else depths

    size = default_size or default_size_for(arch, None)
    config: dict[str, Any] = {
        "sample_size": size // 8,
        "in_channels": in_channels,
        "out_channels": conv_out[0],
        "down_block_types": ["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in down_depths],
        "up_block_types": ["CrossAttnUpBlock2D" if d else "UpBlock2D" for d in up_depths],
        "block_out_channels": block_out_channels,
        "layers_per_block": layers_per_block,
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": attention_head_dim,
        "use_linear_projection": use_linear_projection,
        "transformer_layers_per_block": transformer_layers,
        "norm_num_groups": norm_groups(block_out_channels),
    }
    if time_embed[0] != 4 * model_channels:
        config["time_embedding_dim"] = time_embed[0]
    config.update(facts["unet"]["config"])
    if "label_emb.0.0.weight" in s:
        if "addition_embed_type" not in config:
            raise ModelFileError(f"UNet: has a label embedding, which {arch} models do not have")
        config["projection_class_embeddings_input_dim"] = s["label_emb.0.0.weight"][1]
    else:
        for key in ("addition_embed_type", "addition_time_embed_dim"):
            config.pop(key, None)
    return config


# ------------------------------------------------------------------------------------- VAE inference


def has_original_vae(shapes: Shapes, prefix: str) -> bool:
    """Original-layout VAE keys under ``prefix`` (``encoder.down.N`` / ``decoder.up.N``, not diffusers' ``*_blocks``)."""
    starts = (f"{prefix}encoder.down.", f"{prefix}decoder.up.")
    return any(k.startswith(starts) for k in shapes)


def infer_vae_config(shapes: Shapes, arch: str | None, *, prefix: str = VAE_PREFIX,
                     default_size: int | None = None) -> dict[str, Any]:
    """The diffusers ``AutoencoderKL`` config for an original-layout VAE (``encoder.*``, ``decoder.*``)."""
    s = _strip(shapes, prefix)
    what = "VAE"
    conv_in = _need(s, "encoder.conv_in.weight", what)
    levels = _indices(s, r"encoder\.down\.(\d+)\.")
    if not levels:
        raise ModelFileError("VAE: no encoder levels (encoder.down.N) found")
    block_out_channels = [_need(s, f"encoder.down.{i}.block.0.conv2.weight", what)[0] for i in levels]
    layers = {len(_indices(s, rf"encoder\.down\.{i}\.block\.(\d+)\.")) for i in levels}
    if len(layers) != 1:
        raise ModelFileError(f"VAE: encoder levels have different numbers of resnets ({sorted(layers)})")
    layers_per_block = layers.pop()
    decoder_layers = {len(_indices(s, rf"decoder\.up\.{i}\.block\.(\d+)\.")) for i in levels}
    if decoder_layers != {layers_per_block + 1}:
        raise ModelFileError(f"VAE: decoder levels hold {sorted(decoder_layers)} resnets, expected {layers_per_block + 1}")
    latent_channels = _need(s, "decoder.conv_in.weight", what)[1]
    facts = arch_facts(arch or "sd1")
    config: dict[str, Any] = {
        "in_channels": conv_in[1],
        "out_channels": _need(s, "decoder.conv_out.weight", what)[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "block_out_channels": block_out_channels,
        "layers_per_block": layers_per_block,
        "latent_channels": latent_channels,
        "norm_num_groups": norm_groups(block_out_channels),
        "sample_size": default_size or default_size_for(arch or "sd1", None),
    }
    config.update(facts["vae"]["config"])
    if "encoder.mid.attn_1.q.weight" not in s:
        config["mid_block_add_attention"] = False
    if "quant_conv.weight" not in s:
        config["use_quant_conv"] = False
    if "post_quant_conv.weight" not in s:
        config["use_post_quant_conv"] = False
    return config


# -------------------------------------------------------------------------------- text encoder inference


def clip_text_root(shapes: Shapes, prefix: str) -> str | None:
    """Where the CLIPTextModel keys start under ``prefix``: old files lack the ``text_model.`` level."""
    for root in (prefix + "text_model.", prefix):
        if f"{root}embeddings.token_embedding.weight" in shapes:
            return root
    return None


def has_text_encoder(shapes: Shapes, layout: str, prefix: str) -> bool:
    if layout == "clip":
        return clip_text_root(shapes, prefix) is not None
    return f"{prefix}token_embedding.weight" in shapes


def infer_text_encoder_config(shapes: Shapes, facts: Mapping[str, Any], prefix: str,
                              heads: int | None = None) -> dict[str, Any]:
    """The transformers ``CLIPTextConfig`` arguments for one text encoder of a single file."""
    name = facts["name"]
    if facts["layout"] == "clip":
        root = clip_text_root(shapes, prefix)
        if root is None:
            raise ModelFileError(f"text encoder {name}: no token embedding under {prefix!r}")
        s = _strip(shapes, root)
        vocab, hidden = _need(s, "embeddings.token_embedding.weight", name)
        positions = _need(s, "embeddings.position_embedding.weight", name)[0]
        layers = len(_indices(s, r"encoder\.layers\.(\d+)\."))
        intermediate = _need(s, "encoder.layers.0.mlp.fc1.weight", name)[0]
        projection = hidden
    else:
        s = _strip(shapes, prefix)
        vocab, hidden = _need(s, "token_embedding.weight", name)
        positions = _need(s, "positional_embedding", name)[0]
        layers = len(_indices(s, r"transformer\.resblocks\.(\d+)\."))
        intermediate = _need(s, "transformer.resblocks.0.mlp.c_fc.weight", name)[0]
        # OpenCLIP's text_projection is [width, embed_dim]: x @ text_projection.
        projection = s["text_projection"][1] if "text_projection" in s else hidden
    if layers == 0:
        raise ModelFileError(f"text encoder {name}: no transformer layers found")
    if facts.get("drop_last_layer"):
        layers -= 1
    count = heads if heads is not None else _heads(facts["heads"], hidden)
    if hidden % count:
        raise ModelFileError(f"text encoder {name}: {count} attention heads do not divide its width {hidden}; "
                             f"state the heads in the file's metadata ({META_TEXT_HEADS})")
    config: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": count,
        "max_position_embeddings": positions,
        "projection_dim": projection,
    }
    config.update(facts["config"])
    return config


# --------------------------------------------------------------------------------------- detection


def _arch_of_unet(s: Mapping[str, tuple[int, ...]]) -> tuple[str, str]:
    """(arch, reason) from the UNet alone."""
    proj_in = next((v for k, v in s.items() if k.endswith(".proj_in.weight")), None)
    if "label_emb.0.0.weight" in s:
        return "sdxl", "the UNet has SDXL's added size/pooled-text embedding"
    if proj_in is not None and len(proj_in) == 2:
        return "sd2", "the UNet's attention uses linear projections (SD 2)"
    return "sd1", "the UNet's attention uses 1x1-convolution projections (SD 1)"


def detect_checkpoint(shapes: Shapes, read_tensor: Callable[[str], torch.Tensor] | None = None,
                      metadata: Mapping[str, str] | None = None) -> CheckpointInfo:
    """Recognise an original-layout SD 1 / SD 2 / SDXL-base single-file state dict from its shapes.

    Extra keys (noise-schedule buffers, ``model_ema.*``, ``position_ids``) are ignored. SD 2's
    prediction type shows only in the weights: it is read through ``read_tensor`` and is None
    without it. Raises ModelFileError, saying what was found, for anything else.
    """
    shapes = {k: tuple(v) for k, v in shapes.items()}
    metadata = dict(metadata or {})
    unet = _strip(shapes, UNET_PREFIX)
    if not unet:
        guess = guess_kind(shapes)
        raise ModelFileError(
            "not a Stable Diffusion checkpoint in the original single-file layout (no model.diffusion_model.* tensors); "
            f"it looks like {_describe(guess)}")
    # A text encoder counts as present by its token embedding: a stray buffer (position_ids) is not one.
    present = {key: has_text_encoder(shapes, "clip" if prefix.endswith(".transformer.") else "open_clip", prefix)
               for key, prefix in TEXT_ENCODER_PREFIXES.items()}
    if has_text_encoder(shapes, "open_clip", SDXL_REFINER_PREFIX) and not present[("sdxl", 0)]:
        raise ModelFileError("this is an SDXL refiner checkpoint (one OpenCLIP-bigG text encoder under "
                             "conditioner.embedders.0.model); only SDXL base models are supported")
    arch, reason = _arch_of_unet(unet)
    label = unet.get("label_emb.0.0.weight")
    if arch == "sdxl":
        if present[("sd1", 0)] or present[("sd2", 0)]:
            raise ModelFileError("unsupported checkpoint: its UNet has a class/label embedding but its text encoder is "
                                 "SD 1/2's (an SD 2 unCLIP or upscaler model?); only SD 1, SD 2 and SDXL base are supported")
        if label is not None and label[1] == 2560 and _cross_dim(unet) == 1280:
            raise ModelFileError("this is an SDXL refiner UNet (2560-wide added embedding, 1280-wide context); "
                                 "only SDXL base models are supported")
    else:
        other = {"sd1": ("sd2", 0), "sd2": ("sd1", 0)}[arch]
        if present[other] or present[("sdxl", 0)] or present[("sdxl", 1)]:
            found = [p for key, p in TEXT_ENCODER_PREFIXES.items() if present[key] and key[0] != arch]
            raise ModelFileError(f"inconsistent checkpoint: {reason}, but it holds the text encoder of another "
                                 f"architecture ({', '.join(found)}); unsupported")

    facts = arch_facts(arch)
    prediction = _normalise_prediction(metadata.get(META_PREDICTION) or metadata.get(_MODELSPEC_PREDICTION))
    if prediction is None and "v_pred" in shapes:
        prediction = "v_prediction"  # the marker key ComfyUI writes into v-prediction checkpoints
    if prediction is None:
        if facts["prediction"] != "detect":
            prediction = facts["prediction"]
        elif read_tensor is not None:
            prediction = _sd2_prediction(unet, read_tensor, facts)
    size_meta = _parse_ints(metadata.get(META_DEFAULT_SIZE), META_DEFAULT_SIZE)
    default_size = size_meta[0] if size_meta else default_size_for(arch, prediction)

    unet_config = infer_unet_config(shapes, arch, heads=_parse_ints(metadata.get(META_UNET_HEADS), META_UNET_HEADS),
                                    default_size=default_size)
    has_vae = has_original_vae(shapes, VAE_PREFIX)
    vae_config = infer_vae_config(shapes, arch, default_size=default_size) if has_vae else None

    text_heads = _parse_ints(metadata.get(META_TEXT_HEADS), META_TEXT_HEADS)
    encoders: list[TextEncoderInfo] = []
    expected = facts["text_encoders"]
    found = [has_text_encoder(shapes, te["layout"], TEXT_ENCODER_PREFIXES[(arch, i)]) for i, te in enumerate(expected)]
    if any(found) and not all(found):
        missing = [TEXT_ENCODER_PREFIXES[(arch, i)] for i, ok in enumerate(found) if not ok]
        raise ModelFileError(f"{arch} checkpoint with an incomplete set of text encoders (missing {', '.join(missing)}*)")
    if all(found):
        if text_heads is not None and len(text_heads) not in (1, len(expected)):
            raise ModelFileError(f"metadata {META_TEXT_HEADS} gives {len(text_heads)} values for {len(expected)} text encoders")
        for i, te in enumerate(expected):
            prefix = TEXT_ENCODER_PREFIXES[(arch, i)]
            heads = None if text_heads is None else text_heads[0 if len(text_heads) == 1 else i]
            encoders.append(TextEncoderInfo(
                name=te["name"], layout=te["layout"], prefix=prefix, model_class=te["model_class"],
                config=infer_text_encoder_config(shapes, te, prefix, heads), pad_with_end=bool(te["pad_with_end"]),
                drop_last_layer=bool(te.get("drop_last_layer", False))))
        _check_context(arch, unet_config, encoders)

    vae_scaling = float(vae_config["scaling_factor"] if vae_config else facts["vae"]["config"]["scaling_factor"])
    return CheckpointInfo(
        arch=arch, inpaint=unet_config["in_channels"] == 9, prediction=prediction, has_unet=True, has_vae=has_vae,
        text_encoders=tuple(encoders), unet_config=unet_config, vae_config=vae_config, default_size=default_size,
        vae_scaling_factor=vae_scaling, scheduler_config=scheduler_config_for(arch, prediction))


def _cross_dim(unet: Mapping[str, tuple[int, ...]]) -> int | None:
    key = next((k for k in sorted(unet) if k.endswith("attn2.to_k.weight")), None)
    return unet[key][1] if key else None


def _check_context(arch: str, unet_config: Mapping[str, Any], encoders: list[TextEncoderInfo]) -> None:
    """The UNet's cross-attention must take what the text encoders give (a mismatch is a broken file)."""
    widths = [te.config["hidden_size"] for te in encoders]
    expected = sum(widths)  # SDXL concatenates both encoders' hidden states
    if unet_config["cross_attention_dim"] != expected:
        raise ModelFileError(f"{arch} checkpoint: the UNet attends to {unet_config['cross_attention_dim']}-wide text "
                             f"embeddings but its text encoder(s) give {' + '.join(map(str, widths))}; the file mixes parts")


def _sd2_prediction(unet: Mapping[str, tuple[int, ...]], read_tensor: Callable[[str], Any],
                    facts: Mapping[str, Any]) -> str | None:
    rule = facts["v_prediction_heuristic"]
    last = max(_indices(unet, r"output_blocks\.(\d+)\."), default=None)
    if last is None:
        return None
    key = UNET_PREFIX + rule["tensor"].format(last=last)
    if key[len(UNET_PREFIX):] not in unet:
        return None
    try:
        tensor = read_tensor(key)
    except Exception:  # an unreadable tensor leaves the prediction unknown; loading reports the file error
        return None
    std = float(tensor.float().std())
    return "v_prediction" if std > float(rule["std_above"]) else "epsilon"


# ------------------------------------------------------------------------------- diffusers folders


def arch_from_unet_config(config: Mapping[str, Any]) -> str:
    if config.get("addition_embed_type") == "text_time":
        if config.get("cross_attention_dim") == 1280 and config.get("projection_class_embeddings_input_dim") == 2560:
            raise ModelFileError("this is an SDXL refiner; only SDXL base models are supported")
        return "sdxl"
    if config.get("addition_embed_type") or config.get("class_embed_type"):
        raise ModelFileError("unsupported UNet (it has a class/added embedding of type "
                             f"{config.get('addition_embed_type') or config.get('class_embed_type')!r})")
    return "sd2" if config.get("use_linear_projection") else "sd1"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: is not a JSON object")
    return data


def _clean(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def detect_diffusers_folder(folder: str | Path) -> CheckpointInfo:
    """Recognise a diffusers Stable Diffusion folder from its JSON configs (no weights are read)."""
    folder = Path(folder)
    index = _read_json(folder / "model_index.json")
    if "unet" not in index:
        raise ModelFileError(f"{folder.name}: the diffusers folder holds no UNet (pipeline {index.get('_class_name')!r})")
    unet_config = _clean(_read_json(folder / "unet" / "config.json"))
    arch = arch_from_unet_config(unet_config)
    facts = arch_facts(arch)
    vae_config = _clean(_read_json(folder / "vae" / "config.json")) if "vae" in index else None
    encoders: list[TextEncoderInfo] = []
    for i, te in enumerate(facts["text_encoders"]):
        sub = "text_encoder" if i == 0 else f"text_encoder_{i + 1}"
        if sub not in index or index[sub] in (None, [None, None]):
            continue
        config = _read_json(folder / sub / "config.json")
        classes = config.get("architectures") or [index[sub][1] if isinstance(index[sub], list) else te["model_class"]]
        config = {k: v for k, v in _clean(config).items()
                  if k not in ("architectures", "model_type", "torch_dtype", "dtype", "transformers_version")}
        encoders.append(TextEncoderInfo(name=te["name"], layout="clip", prefix="", model_class=str(classes[0]),
                                        config=config, pad_with_end=bool(te["pad_with_end"])))
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler = _read_json(scheduler_path) if scheduler_path.is_file() else {}
    prediction = _normalise_prediction(scheduler.get("prediction_type")) or "epsilon"
    scheduler_config = scheduler_config_for(arch, prediction)
    scheduler_config.update({k: v for k, v in _clean(scheduler).items() if k in scheduler_config})
    if vae_config and vae_config.get("sample_size"):
        default_size = int(vae_config["sample_size"])
    else:
        default_size = int(unet_config.get("sample_size", default_size_for(arch, prediction) // 8)) * 8
    scaling = float(vae_config.get("scaling_factor", facts["vae"]["config"]["scaling_factor"]) if vae_config
                    else facts["vae"]["config"]["scaling_factor"])
    return CheckpointInfo(
        arch=arch, inpaint=unet_config.get("in_channels") == 9, prediction=prediction, has_unet=True,
        has_vae=vae_config is not None, text_encoders=tuple(encoders), unet_config=unet_config, vae_config=vae_config,
        default_size=default_size, vae_scaling_factor=scaling, scheduler_config=scheduler_config, layout="diffusers",
        vae_prefix="", unet_prefix="")


# ------------------------------------------------------------------------------ kind of any file


@dataclass(frozen=True)
class KindGuess:
    kind: str
    arch: str | None = None
    note: str = ""


_CONTEXT_ARCH = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
_LORA_MARKERS = (".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight", ".hada_w1_a", ".hada_w1_b",
                 ".lokr_w1", ".lokr_w2", ".lora.down.weight", ".lora.up.weight", ".lora_mid.weight")
_UPSCALE_MARKERS = ("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "model.1.sub.0.RDB1.conv1.0.weight",
                    "body.0.rdb1.conv1.weight", "conv_body.weight", "upconv1.weight", "conv_up1.weight",
                    "layers.0.residual_group.blocks.0.attn.relative_position_bias_table")


def _describe(guess: KindGuess) -> str:
    names = {"vae": "a VAE", "lora": "a LoRA", "controlnet": "a ControlNet", "embedding": "a textual-inversion embedding",
             "upscale": "an upscale model", "checkpoint": "a checkpoint", "unknown": "none of the known kinds"}
    text = names.get(guess.kind, guess.kind)
    if guess.arch:
        text += f" for {guess.arch}"
    return text + (f" ({guess.note})" if guess.note else "")


def guess_kind(shapes: Shapes, metadata: Mapping[str, str] | None = None) -> KindGuess:
    """What a state dict appears to hold, from key names and shapes alone (cheap; no weights read)."""
    keys = list(shapes)
    if not keys:
        return KindGuess("unknown", note="no tensors")
    if any(k.startswith(UNET_PREFIX) for k in keys):
        arch, _ = _arch_of_unet(_strip(shapes, UNET_PREFIX))
        return KindGuess("checkpoint", arch)
    if any(k.endswith(_LORA_MARKERS) for k in keys):
        arch = None
        for k in keys:
            if ("attn2_to_k" in k or "attn2.to_k" in k) and ("lora_down" in k or "lora_A" in k or "lora.down" in k):
                arch = _CONTEXT_ARCH.get(tuple(shapes[k])[-1] if len(shapes[k]) else 0)
                break
        if any(k.startswith(("lora_te1_", "lora_te2_")) for k in keys):
            arch = "sdxl"
        return KindGuess("lora", arch)
    if any(k.startswith(("controlnet_cond_embedding.", "control_model.", "input_hint_block.")) for k in keys) or (
            any(k.startswith("controlnet_down_blocks.") for k in keys)):
        arch = None
        if any("add_embedding" in k or "label_emb" in k for k in keys):
            arch = "sdxl"
        else:
            k = next((k for k in sorted(keys) if k.endswith("attn2.to_k.weight")), None)
            if k is not None:
                arch = _CONTEXT_ARCH.get(tuple(shapes[k])[1])
        return KindGuess("controlnet", arch)
    for prefix in ("first_stage_model.", "vae.", ""):
        if has_original_vae(shapes, prefix):
            return KindGuess("vae", note="original layout; SD 1, SD 2 and SDXL VAEs share their shapes")
    if "encoder.down_blocks.0.resnets.0.conv1.weight" in shapes and "decoder.conv_in.weight" in shapes:
        return KindGuess("vae", note="diffusers layout; SD 1, SD 2 and SDXL VAEs share their shapes")
    if len(keys) <= 4 and (set(keys) <= {"emb_params", "clip_l", "clip_g"} or all(k.startswith("string_to_") for k in keys)):
        if "clip_g" in keys:
            return KindGuess("embedding", "sdxl")
        key = "emb_params" if "emb_params" in shapes else next((k for k in keys if k.startswith("string_to_param")), keys[0])
        width = tuple(shapes[key])[-1] if shapes[key] else 0
        return KindGuess("embedding", {768: "sd1", 1024: "sd2"}.get(width))
    if any(k.endswith(_UPSCALE_MARKERS) for k in keys) or any(k.startswith("model.1.sub.") for k in keys):
        return KindGuess("upscale")
    if "conv_in.weight" in shapes and "time_embedding.linear_1.weight" in shapes:
        return KindGuess("unknown", note="a UNet in the diffusers layout; load it as part of a diffusers folder")
    if any(k.startswith("text_model.encoder.layers.") for k in keys):
        return KindGuess("unknown", note="a CLIP text encoder on its own")
    return KindGuess("unknown")


def detect_file(path: str | Path) -> FileInfo:
    """What a model file or folder is, for listings: safetensors header and JSON configs only.

    Pickle files are reported as kind "pickle" without being opened. A corrupt or truncated
    safetensors file raises ModelFileError (callers listing many files catch it per file).
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            return FileInfo(path, "unknown", format="folder", note="a folder without model_index.json")
        index = _read_json(path / "model_index.json")
        try:
            info = detect_diffusers_folder(path)
        except ModelFileError as exc:
            return FileInfo(path, "diffusers", format="diffusers", note=str(exc),
                            details={"pipeline": index.get("_class_name")})
        return FileInfo(path, "diffusers", info.arch, "diffusers", _checkpoint_note(info),
                        {"pipeline": index.get("_class_name"), "inpaint": info.inpaint, "prediction": info.prediction})
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")
        return FileInfo(path, "pickle", format="pickle",
                        note="pickle-based file, not opened (it could run code); prefer a .safetensors version")
    if suffix not in SAFETENSORS_SUFFIXES:
        return FileInfo(path, "unknown", format=suffix.lstrip(".") or "file", note="not a model file type")
    header = read_safetensors_header(path)
    shapes = header.shapes()
    guess = guess_kind(shapes, header.metadata)
    if guess.kind != "checkpoint":
        return FileInfo(path, guess.kind, guess.arch, note=guess.note)
    try:
        info = detect_checkpoint(shapes, None, header.metadata)
    except ModelFileError as exc:
        return FileInfo(path, "checkpoint", None, note=str(exc))
    return FileInfo(path, "checkpoint", info.arch, note=_checkpoint_note(info),
                    details={"inpaint": info.inpaint, "prediction": info.prediction, "components": info.components})


def _checkpoint_note(info: CheckpointInfo) -> str:
    parts = ["inpainting" if info.inpaint else ""]
    if info.prediction == "v_prediction":
        parts.append("v-prediction")
    missing = [c for c in ("vae", "text_encoder") if c not in info.components]
    if missing:
        parts.append("without " + " and ".join(missing))
    return ", ".join(p for p in parts if p)
