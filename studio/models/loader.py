"""Loading Stable Diffusion checkpoints (single files and diffusers folders) into diffusers models.

Every model is built on the meta device (no memory, no random init) and receives the file's
tensors with ``load_state_dict(assign=True, strict=True)``: weights are held once, and a tensor
the model expects but the file lacks, or one the file holds that the model has no place for, is
a ModelFileError naming the keys, so a mapping bug fails loudly instead of leaving noise weights.
Everything works offline: configs come from the file (``detect.py``) or the folder's JSON, and
the tokenizer from the folder or the bundled ``resources/tokenizers/clip``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from studio.models import convert
from studio.models.detect import (
    PREDICTIONS,
    VAE_PREFIX,
    CheckpointInfo,
    TextEncoderInfo,
    detect_checkpoint,
    detect_diffusers_folder,
    guess_kind,
    has_original_vae,
    infer_vae_config,
)
from studio.models.files import (
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIXES,
    ModelFileError,
    load_state_dict,
    read_safetensors_header,
)

TextEncoder = CLIPTextModel | CLIPTextModelWithProjection
_ALIGN = 64  # bytes


@dataclass
class LoadedCheckpoint:
    """The parts of a Stable Diffusion checkpoint, ready to run (eval mode, on the requested device)."""

    info: CheckpointInfo
    unet: UNet2DConditionModel
    vae: AutoencoderKL | None
    #: SD 1: [CLIP-L]; SD 2: [OpenCLIP-H]; SDXL: [CLIP-L CLIPTextModel, OpenCLIP-bigG CLIPTextModelWithProjection].
    text_encoders: list[TextEncoder]
    tokenizers: list[CLIPTokenizer]
    #: Per tokenizer: pads with <|endoftext|> (True, OpenAI CLIP) or with "!" (False, OpenCLIP).
    pad_with_end: list[bool]
    prediction_type: str  # "epsilon" | "v_prediction" (the override if one was given)
    vae_scaling_factor: float
    arch: str
    default_size: int

    @property
    def scheduler_config(self) -> dict[str, Any]:
        """The training noise schedule, with the prediction type in effect."""
        return {**self.info.scheduler_config, "prediction_type": self.prediction_type}


# ------------------------------------------------------------------------------------ building


def _on_meta(factory: Callable[[], Any]) -> Any:
    with torch.device("meta"):
        return factory()


def build_unet(config: Mapping[str, Any]) -> UNet2DConditionModel:
    """A UNet with the given config on the meta device (no memory is used until weights are assigned)."""
    return _on_meta(lambda: UNet2DConditionModel.from_config(dict(config)))


def build_vae(config: Mapping[str, Any]) -> AutoencoderKL:
    return _on_meta(lambda: AutoencoderKL.from_config(dict(config)))


def build_text_encoder(te: TextEncoderInfo) -> TextEncoder:
    cls = CLIPTextModelWithProjection if te.model_class == "CLIPTextModelWithProjection" else CLIPTextModel
    config = CLIPTextConfig.from_dict(dict(te.config))
    return _on_meta(lambda: cls(config))


def _fit_text_keys(state: Mapping[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Files name CLIP tensors ``text_model.*``; transformers 5's CLIPTextModel drops that level."""
    def fit(key: str) -> str:
        if key in expected:
            return key
        if key.startswith("text_model.") and key[len("text_model."):] in expected:
            return key[len("text_model."):]
        if "text_model." + key in expected:
            return "text_model." + key
        return key

    return {fit(k): v for k, v in state.items() if k not in convert.NON_PERSISTENT_KEYS}


def _few(keys: set[str]) -> str:
    shown = sorted(keys)[:5]
    return ", ".join(shown) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def assign_weights(model: torch.nn.Module, state: Mapping[str, torch.Tensor], *, what: str, source: str,
                   dtype: torch.dtype, device: str | torch.device) -> torch.nn.Module:
    """Give a meta-device model its weights (strict: every key must match, with its shape)."""
    expected = model.state_dict()
    if isinstance(model, CLIPTextModel | CLIPTextModelWithProjection):
        state = _fit_text_keys(state, set(expected))
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s): {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s): {_few(unexpected)}")
        raise ModelFileError(f"{source}: the {what} does not match its inferred architecture ({'; '.join(parts)}); "
                             "the file is incomplete, of an unsupported variant, or the key mapping is wrong")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ModelFileError(f"{source}: the {what} has tensors of the wrong shape: {', '.join(wrong[:3])}")
    ready = {}
    state = dict(state)
    for key in list(state):
        value = state.pop(key)  # drop our reference as we go, so a converted copy replaces rather than adds
        target = dtype if expected[key].is_floating_point() else expected[key].dtype
        value = value.to(device=device, dtype=target).contiguous()  # no copy when nothing changes
        if value.device.type == "cpu" and value.data_ptr() % _ALIGN:
            # Tensors read from a file sit at arbitrary offsets; CPU kernels pick different (slower,
            # and numerically different) code paths for unaligned data, so give them aligned memory.
            value = value.clone()
        ready[key] = value
    model.load_state_dict(ready, strict=True, assign=True)
    _materialise_buffers(model, device)
    return model.eval().requires_grad_(False)


def _materialise_buffers(model: torch.nn.Module, device: str | torch.device) -> None:
    """Non-persistent buffers are not in any file: rebuild the ones still on the meta device."""
    for module in model.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer is None or buffer.device.type != "meta":
                continue
            if name == "position_ids":
                module.register_buffer(name, torch.arange(buffer.shape[-1], device=device).expand(buffer.shape),
                                       persistent=False)
            else:
                raise RuntimeError(f"buffer {name!r} of {type(module).__name__} was not loaded and cannot be rebuilt")


# ------------------------------------------------------------------------------------ tokenizers


def bundled_tokenizer_dir() -> Path:
    from studio.core.resources import resource_path

    return resource_path("tokenizers", "clip")


def load_tokenizer(pad_with_end: bool, folder: str | Path | None = None) -> CLIPTokenizer:
    """A CLIP tokenizer, from ``folder`` when it holds one, else the bundled one.

    SD 2 and SDXL's second encoder (OpenCLIP) pad with "!" rather than <|endoftext|>.
    """
    source = Path(folder) if folder is not None and (Path(folder) / "vocab.json").is_file() else bundled_tokenizer_dir()
    kwargs: dict[str, Any] = {} if source != bundled_tokenizer_dir() else ({} if pad_with_end else {"pad_token": "!"})
    try:
        return CLIPTokenizer.from_pretrained(str(source), local_files_only=True, **kwargs)
    except Exception as exc:
        raise ModelFileError(f"{source}: the CLIP tokenizer could not be loaded ({exc})") from None


# ------------------------------------------------------------------------------------ entry points


def _check_prediction(prediction: str | None) -> str | None:
    if prediction is not None and prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)} (or None to detect it); got {prediction!r}")
    return prediction


def load_checkpoint(path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32, device: str = "cpu",
                    prediction: str | None = None, allow_pickle: bool | None = None) -> LoadedCheckpoint:
    """Load an SD 1 / SD 2 / SDXL-base checkpoint: a single file (original layout) or a diffusers folder.

    ``prediction`` ("epsilon" / "v_prediction") overrides the detected prediction type. Pickle files
    (.ckpt, .pt, ...) follow ``files.load_state_dict``'s rule: refused unless allowed.
    """
    path = Path(path)
    _check_prediction(prediction)
    if path.is_dir():
        return _load_diffusers(path, dtype=dtype, device=device, prediction=prediction, allow_pickle=allow_pickle)
    state, read_tensor, shapes, metadata = _open_single_file(path, allow_pickle)
    info = detect_checkpoint(shapes, read_tensor, metadata)
    if not info.text_encoders:
        raise ModelFileError(f"{path.name}: holds no text encoder; checkpoints without one are not supported")
    if info.prediction is None:  # cannot happen when the tensor is readable; keep a safe default
        info = replace(info, prediction="epsilon")
    if state is None:
        wanted = [k for k in shapes if k.startswith((info.unet_prefix, info.vae_prefix))
                  or any(k.startswith(te.prefix) for te in info.text_encoders)]
        state = load_state_dict(path, device="cpu", keys=wanted)
    source = path.name
    parts = convert.to_diffusers(state, info)
    del state
    unet = assign_weights(build_unet(info.unet_config or {}), parts.pop("unet"), what="UNet", source=source, dtype=dtype,
                          device=device)
    vae = None
    if info.has_vae:
        vae = assign_weights(build_vae(info.vae_config or {}), parts.pop("vae"), what="VAE", source=source, dtype=dtype,
                             device=device)
    encoders = [assign_weights(build_text_encoder(te), sd, what=f"text encoder {te.name}", source=source, dtype=dtype,
                               device=device) for te, sd in zip(info.text_encoders, parts.pop("text_encoders"))]
    tokenizers = [load_tokenizer(te.pad_with_end) for te in info.text_encoders]
    return LoadedCheckpoint(
        info=info, unet=unet, vae=vae, text_encoders=encoders, tokenizers=tokenizers,
        pad_with_end=[te.pad_with_end for te in info.text_encoders], prediction_type=prediction or info.prediction,
        vae_scaling_factor=info.vae_scaling_factor, arch=info.arch, default_size=info.default_size)


def _open_single_file(path: Path, allow_pickle: bool | None) -> tuple[
        dict[str, torch.Tensor] | None, Callable[[str], torch.Tensor], dict[str, tuple[int, ...]], dict[str, str]]:
    """(state dict if already read, tensor reader, shapes, metadata) for a single model file."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        state = load_state_dict(path, allow_pickle=allow_pickle)  # refuses unless allowed
        return state, state.__getitem__, {k: tuple(v.shape) for k, v in state.items()}, {}
    if suffix not in SAFETENSORS_SUFFIXES:
        if not path.exists():
            raise ModelFileError(f"{path}: no such model file")
        raise ModelFileError(f"{path.name}: not a model file type Nuance Studio reads (.safetensors, or a diffusers "
                             "folder; pickle files such as .ckpt only when allowed)")
    header = read_safetensors_header(path)  # clear errors for missing, truncated and corrupt files

    def read_tensor(key: str) -> torch.Tensor:
        return load_state_dict(path, keys=[key])[key]

    return None, read_tensor, header.shapes(), header.metadata


# ------------------------------------------------------------------------------------ diffusers folders


def _weights_in(folder: Path, allow_pickle: bool | None) -> dict[str, torch.Tensor]:
    """The weights of one diffusers/transformers component folder (single or sharded, fp16 variant as fallback)."""
    stems = ("diffusion_pytorch_model", "model")
    for variant in ("", ".fp16"):
        for stem in stems:
            single = folder / f"{stem}{variant}.safetensors"
            if single.is_file():
                return load_state_dict(single)
            index = folder / f"{stem}{variant}.safetensors.index.json"
            if index.is_file():
                try:
                    shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
                except (OSError, ValueError, KeyError, AttributeError) as exc:
                    raise ModelFileError(f"{index}: is not a valid shard index ({exc})") from None
                state: dict[str, torch.Tensor] = {}
                for shard in shards:
                    state.update(load_state_dict(folder / shard))
                return state
    for variant in ("", ".fp16"):
        for stem in ("diffusion_pytorch_model", "pytorch_model"):
            pickled = folder / f"{stem}{variant}.bin"
            if pickled.is_file():
                return load_state_dict(pickled, allow_pickle=allow_pickle)
    raise ModelFileError(f"{folder}: holds no weights (looked for *.safetensors and *.bin)")


def _load_diffusers(folder: Path, *, dtype: torch.dtype, device: str, prediction: str | None,
                    allow_pickle: bool | None) -> LoadedCheckpoint:
    if not (folder / "model_index.json").is_file():
        raise ModelFileError(f"{folder}: is a folder but not a diffusers model (no model_index.json)")
    info = detect_diffusers_folder(folder)
    if not info.text_encoders:
        raise ModelFileError(f"{folder.name}: the diffusers folder holds no text encoder; not supported")
    source = folder.name
    unet = assign_weights(build_unet(info.unet_config or {}), _weights_in(folder / "unet", allow_pickle), what="UNet",
                          source=source, dtype=dtype, device=device)
    vae = None
    if info.has_vae:
        vae = assign_weights(build_vae(info.vae_config or {}), _weights_in(folder / "vae", allow_pickle), what="VAE",
                             source=source, dtype=dtype, device=device)
    encoders, tokenizers = [], []
    for i, te in enumerate(info.text_encoders):
        sub = "text_encoder" if i == 0 else f"text_encoder_{i + 1}"
        encoders.append(assign_weights(build_text_encoder(te), _weights_in(folder / sub, allow_pickle),
                                       what=f"text encoder {te.name}", source=source, dtype=dtype, device=device))
        tokenizers.append(load_tokenizer(te.pad_with_end, folder / ("tokenizer" if i == 0 else f"tokenizer_{i + 1}")))
    return LoadedCheckpoint(
        info=info, unet=unet, vae=vae, text_encoders=encoders, tokenizers=tokenizers,
        pad_with_end=[te.pad_with_end for te in info.text_encoders], prediction_type=prediction or info.prediction or "epsilon",
        vae_scaling_factor=info.vae_scaling_factor, arch=info.arch, default_size=info.default_size)


# ------------------------------------------------------------------------------------ standalone VAE


def load_vae(path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32, device: str = "cpu",
             arch: str | None = None, allow_pickle: bool | None = None) -> AutoencoderKL:
    """Load a VAE on its own: an original-layout file (``encoder.*`` / ``decoder.*``, or a whole checkpoint's
    ``first_stage_model.*``), a diffusers-layout file, or a diffusers ``vae`` folder (config.json + weights).

    ``arch`` picks the scaling factor (and SDXL's force_upcast) for files that carry no config;
    without it SD 1/2's 0.18215 is used (SD 1, SD 2 and SDXL VAEs have the same shapes).
    """
    path = Path(path)
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file() and (path / "vae" / "config.json").is_file():
            path = path / "vae"
            config_path = path / "config.json"
        if not config_path.is_file():
            raise ModelFileError(f"{path}: is a folder without config.json; not a diffusers VAE")
        try:
            config = {k: v for k, v in json.loads(config_path.read_text(encoding="utf-8")).items() if not k.startswith("_")}
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{config_path}: is not valid JSON ({exc})") from None
        return assign_weights(build_vae(config), _weights_in(path, allow_pickle), what="VAE", source=path.name, dtype=dtype,
                              device=device)
    state, _, shapes, _ = _open_single_file(path, allow_pickle)
    if state is None:
        state = load_state_dict(path)
    for prefix in (VAE_PREFIX, "vae.", ""):
        if has_original_vae(shapes, prefix):
            config = infer_vae_config(shapes, arch, prefix=prefix)
            diffusers_state = convert.vae_to_diffusers(state, config, prefix)
            break
    else:
        if "encoder.down_blocks.0.resnets.0.conv1.weight" not in shapes:
            guess = guess_kind(shapes)
            raise ModelFileError(f"{path.name}: holds no VAE (it looks like a {guess.kind} file)")
        # Diffusers layout: the shapes say the config once mapped to original names.
        meta = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
        original = {k: tuple(v.shape) for k, v in convert.vae_to_original(meta).items()}
        config = infer_vae_config(original, arch, prefix="")
        diffusers_state = state
    return assign_weights(build_vae(config), diffusers_state, what="VAE", source=path.name, dtype=dtype, device=device)
