"""Detection, config inference and key mapping against the layouts of real community model files.

The shared fixtures hold the key names and shapes (no weights) of SD 1.5, SD 1.5 inpainting,
SD 2.1 768-v and SDXL base single files, a kohya LoRA and a diffusers ControlNet. Meta tensors of
those shapes go through the same code as real files: no memory, and the whole suite stays fast.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import torch

from studio.core.resources import resource_path
from studio.models import convert, detect
from studio.models.detect import detect_checkpoint, guess_kind
from studio.models.files import ModelFileError


def _layouts_dir() -> Path | None:
    for candidate in (Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "model_layouts",
                      Path("/work/shared/fixtures/model_layouts")):
        if candidate.is_dir():
            return candidate
    return None


LAYOUTS = _layouts_dir()
pytestmark = pytest.mark.skipif(LAYOUTS is None, reason="the shared real model layouts (shared/fixtures/model_layouts) "
                                                        "are not present in this checkout")

# layout file -> (arch, inpaint, reference config folder, diffusers name of each text encoder config)
CHECKPOINTS = {
    "sd15_single_file": ("sd1", False, "sd15", ["text_encoder"]),
    "sd15_inpainting_single_file": ("sd1", True, "sd15", ["text_encoder"]),
    "sd21_768v_single_file": ("sd2", False, "sd21_768v", ["text_encoder"]),
    "sdxl_base_single_file": ("sdxl", False, "sdxl_base", ["text_encoder", "text_encoder_2"]),
}


def load_shapes(name: str) -> dict[str, tuple[int, ...]]:
    assert LAYOUTS is not None
    data = json.loads((LAYOUTS / f"{name}.json").read_text(encoding="utf-8"))
    return {k: tuple(v["shape"]) for k, v in data["keys"].items()}


def meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def reference(folder: str, name: str) -> dict:
    return json.loads(resource_path("model_configs", "reference", folder, f"{name}.json").read_text(encoding="utf-8"))


def effective(cls, config: dict) -> dict:
    """A config as the class sees it: its defaults, overridden by the given values (tuples as lists)."""
    values = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD}
    values.update({k: v for k, v in config.items() if k in values})
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def effective_text(config: dict) -> dict:
    from transformers import CLIPTextConfig

    values = effective(CLIPTextConfig, config)
    for bookkeeping in ("transformers_version", "architectures", "output_hidden_states", "return_dict", "dtype",
                        "chunk_size_feed_forward", "is_encoder_decoder", "id2label", "label2id", "problem_type"):
        values.pop(bookkeeping, None)
    return values


def meta_models(info):
    from studio.models.loader import build_text_encoder, build_unet, build_vae

    unet, vae = build_unet(info.unet_config), build_vae(info.vae_config)
    encoders = [build_text_encoder(te) for te in info.text_encoders]
    for model in (unet, vae, *encoders):  # built without memory: the loader assigns the file's tensors
        assert all(p.is_meta for p in model.parameters())
    return unet, vae, encoders


def shapes_of(state) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_detects_architecture_inpainting_and_components(name):
    arch, inpaint, _, te_names = CHECKPOINTS[name]
    info = detect_checkpoint(load_shapes(name))
    assert info.arch == arch
    assert info.inpaint is inpaint
    assert info.components == ("unet", "vae", *te_names)
    assert info.prediction == (None if arch == "sd2" else "epsilon")  # SD 2 needs the weights to tell
    assert info.vae_scaling_factor == (0.13025 if arch == "sdxl" else 0.18215)
    assert info.default_size == {"sd1": 512, "sd2": 768, "sdxl": 1024}[arch]
    assert info.scheduler_config["beta_schedule"] == "scaled_linear"
    assert (info.scheduler_config["beta_start"], info.scheduler_config["beta_end"]) == (0.00085, 0.012)


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_inferred_configs_equal_the_reference_configs(name):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    _, inpaint, folder, te_names = CHECKPOINTS[name]
    info = detect_checkpoint(load_shapes(name))
    expected_unet = reference(folder, "unet") | ({"in_channels": 9} if inpaint else {})
    assert effective(UNet2DConditionModel, info.unet_config) == effective(UNet2DConditionModel, expected_unet)
    assert effective(AutoencoderKL, info.vae_config) == effective(AutoencoderKL, reference(folder, "vae"))
    assert len(info.text_encoders) == len(te_names)
    for te, te_name in zip(info.text_encoders, te_names):
        ref = reference(folder, te_name)
        assert effective_text(te.config) == effective_text(ref), te_name
        assert te.model_class == ref["architectures"][0]


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_conversion_gives_exactly_the_keys_and_shapes_of_the_diffusers_models(name):
    info = detect_checkpoint(load_shapes(name))
    parts = convert.to_diffusers(meta_state(load_shapes(name)), info)
    unet, vae, encoders = meta_models(info)
    assert shapes_of(parts["unet"]) == shapes_of(unet.state_dict())
    assert shapes_of(parts["vae"]) == shapes_of(vae.state_dict())
    for model, state in zip(encoders, parts["text_encoders"], strict=True):
        assert shapes_of(state) == shapes_of(convert.canonical_text_keys(model.state_dict()))


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_reverse_mapping_gives_back_the_original_names_and_shapes(name):
    shapes = load_shapes(name)
    info = detect_checkpoint(shapes)
    parts = convert.to_diffusers(meta_state(shapes), info)
    back = convert.to_single_file(parts["unet"], parts["vae"], parts["text_encoders"], info.arch)
    # position_ids is a buffer transformers rebuilds; some files carry it, others (SD 1.5 here) do not.
    original = {k: v for k, v in shapes.items() if not k.endswith("position_ids")}
    assert shapes_of(back) == original


def test_round_trip_moves_values_not_only_names():
    """Reshapes and the fused q/k/v must keep each value where it belongs (small real tensors)."""
    shapes = load_shapes("sd21_768v_single_file")
    info = detect_checkpoint(shapes)
    te = info.text_encoders[0]
    width = 8
    prefix = te.prefix + "transformer.resblocks.0.attn."
    small = {prefix + "in_proj_weight": torch.arange(3 * width * width, dtype=torch.float32).reshape(3 * width, width),
             prefix + "in_proj_bias": torch.arange(3 * width, dtype=torch.float32)}
    tiny_te = detect.TextEncoderInfo(te.name, te.layout, te.prefix, te.model_class, {**te.config, "hidden_size": width},
                                     te.pad_with_end)
    converted = convert.text_encoder_to_diffusers(small, tiny_te)
    q = converted["text_model.encoder.layers.0.self_attn.q_proj.weight"]
    v = converted["text_model.encoder.layers.0.self_attn.v_proj.bias"]
    assert torch.equal(q, small[prefix + "in_proj_weight"][:width])
    assert torch.equal(v, small[prefix + "in_proj_bias"][2 * width:])
    back = convert.open_clip_to_original(converted)
    assert torch.equal(back["transformer.resblocks.0.attn.in_proj_weight"], small[prefix + "in_proj_weight"])
    assert torch.equal(back["transformer.resblocks.0.attn.in_proj_bias"], small[prefix + "in_proj_bias"])

    conv = torch.randn(4, 4, 1, 1)
    forward = convert.vae_to_diffusers({"first_stage_model.encoder.mid.attn_1.q.weight": conv},
                                       {"down_block_types": [], "up_block_types": []})
    assert torch.equal(forward["encoder.mid_block.attentions.0.to_q.weight"], conv[:, :, 0, 0])
    back_vae = convert.vae_to_original(forward)
    assert torch.equal(back_vae["encoder.mid.attn_1.q.weight"], conv)


@pytest.mark.parametrize(("std", "expected", "size"), [(0.05, "epsilon", 512), (0.15, "v_prediction", 768)])
def test_sd2_prediction_is_read_from_the_norm_bias_spread(std, expected, size):
    asked = []

    def read_tensor(key):
        asked.append(key)
        generator = torch.Generator().manual_seed(0)
        values = torch.randn(1280, generator=generator)
        return values / values.std() * std

    info = detect_checkpoint(load_shapes("sd21_768v_single_file"), read_tensor)
    assert asked == ["model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"]
    assert info.prediction == expected
    assert info.scheduler_config["prediction_type"] == expected
    assert info.default_size == size  # SD 2 epsilon models are the 512 "base" ones
    assert info.unet_config["sample_size"] == size // 8


def test_sd1_and_sdxl_do_not_read_weights_for_the_prediction():
    def read_tensor(key):
        raise AssertionError(f"read {key}")

    assert detect_checkpoint(load_shapes("sd15_single_file"), read_tensor).prediction == "epsilon"
    assert detect_checkpoint(load_shapes("sdxl_base_single_file"), read_tensor).prediction == "epsilon"


def test_metadata_overrides_prediction_and_rules():
    shapes = load_shapes("sd15_single_file")
    info = detect_checkpoint(shapes, metadata={"modelspec.prediction_type": "v", "nuance.unet.heads": "5,10,20,20",
                                               "nuance.text.heads": "6", "nuance.default_size": "640"})
    assert info.prediction == "v_prediction"
    assert info.unet_config["attention_head_dim"] == [5, 10, 20, 20]
    assert info.text_encoders[0].config["num_attention_heads"] == 6
    assert info.default_size == 640 and info.unet_config["sample_size"] == 80
    with pytest.raises(ModelFileError, match=r"nuance\.unet\.heads"):
        detect_checkpoint(shapes, metadata={"nuance.unet.heads": "eight"})


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_extra_keys_are_tolerated(name):
    shapes = load_shapes(name)
    extra = dict(shapes)
    extra.update({"betas": (1000,), "alphas_cumprod": (1000,), "posterior_mean_coef1": (1000,),
                  "model_ema.decay": (), "model_ema.num_updates": (),
                  "cond_stage_model.transformer.text_model.embeddings.position_ids": (1, 77)}
                 if not name.startswith("sdxl") else
                 {"betas": (1000,), "alphas_cumprod": (1000,), "model_ema.decay": ()})
    # EMA copies of UNet weights, as in un-pruned files (flattened names, as ldm writes them)
    for key, shape in list(shapes.items())[:150]:
        if key.startswith("model.diffusion_model."):
            extra["model_ema." + key[len("model."):].replace(".", "")] = shape
    plain, with_extra = detect_checkpoint(shapes), detect_checkpoint(extra)
    assert with_extra == plain
    parts = convert.to_diffusers(meta_state(extra), with_extra)
    unet, _, encoders = meta_models(with_extra)
    assert shapes_of(parts["unet"]) == shapes_of(unet.state_dict())
    for model, state in zip(encoders, parts["text_encoders"], strict=True):
        assert shapes_of(state) == shapes_of(convert.canonical_text_keys(model.state_dict()))


def test_lora_and_controlnet_are_recognised_by_kind():
    assert guess_kind(load_shapes("lora_kohya_sd15")) == detect.KindGuess("lora", "sd1")
    assert guess_kind(load_shapes("controlnet_sd15_diffusers")) == detect.KindGuess("controlnet", "sd1")
    for name in CHECKPOINTS:
        assert guess_kind(load_shapes(name)).kind == "checkpoint"
    with pytest.raises(ModelFileError, match="looks like a LoRA for sd1"):
        detect_checkpoint(load_shapes("lora_kohya_sd15"))
    with pytest.raises(ModelFileError, match="looks like a ControlNet"):
        detect_checkpoint(load_shapes("controlnet_sd15_diffusers"))


def test_vae_only_shapes_are_a_vae():
    shapes = {k[len("first_stage_model."):]: v for k, v in load_shapes("sd15_single_file").items()
              if k.startswith("first_stage_model.")}
    assert guess_kind(shapes).kind == "vae"


def test_sdxl_refiner_is_refused_clearly():
    shapes = load_shapes("sdxl_base_single_file")
    refiner = {k.replace("conditioner.embedders.1.", "conditioner.embedders.0."): v for k, v in shapes.items()
               if not k.startswith("conditioner.embedders.0.")}
    with pytest.raises(ModelFileError, match="SDXL refiner"):
        detect_checkpoint(refiner)


def test_unknown_and_inconsistent_layouts_are_refused():
    with pytest.raises(ModelFileError, match="not a Stable Diffusion checkpoint"):
        detect_checkpoint({"foo.weight": (3, 3), "bar.bias": (3,)})
    sd15 = load_shapes("sd15_single_file")
    sd21 = load_shapes("sd21_768v_single_file")
    mixed = {k: v for k, v in sd15.items() if not k.startswith("cond_stage_model.")}
    mixed.update({k: v for k, v in sd21.items() if k.startswith("cond_stage_model.")})
    with pytest.raises(ModelFileError, match="text encoder of another architecture"):
        detect_checkpoint(mixed)
    broken = {k: v for k, v in sd15.items() if not k.startswith("model.diffusion_model.output_blocks.11.")}
    with pytest.raises(ModelFileError, match="output blocks"):
        detect_checkpoint(broken)
