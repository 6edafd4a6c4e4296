"""SD 2.x and SDXL end to end on tiny models of their real architectures.

The tiny SD 1 model (tests/tiny_models.py) covers most of the pipeline; these two cover what only
the other architectures have: SD 2's OpenCLIP encoder (loaded without its unused last block) and
v-prediction, and SDXL's two text encoders, pooled output and size conditioning.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from tiny_models import TEXT_CONFIG, VAE_CONFIG, _fill
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from studio.cli import main
from studio.models.convert import to_single_file
from studio.models.detect import detect_file
from studio.models.loader import load_checkpoint
from studio.models.memory import model_manager

pytestmark = pytest.mark.slow

OPEN_CLIP = {**TEXT_CONFIG, "hidden_size": 64, "intermediate_size": 128, "projection_dim": 64, "hidden_act": "gelu",
             "num_attention_heads": 1}


def _unet(**config):
    base = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, norm_num_groups=32,
                use_linear_projection=True)
    unet = UNet2DConditionModel.from_config({**base, **config})
    _fill(unet, 0)
    return unet


def _vae():
    vae = AutoencoderKL.from_config(VAE_CONFIG)
    _fill(vae, 1)
    return vae


def write_tiny_sdxl(path):
    unet = _unet(block_out_channels=[64, 128], down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], transformer_layers_per_block=[1, 2],
                 cross_attention_dim=32 + 64, attention_head_dim=[1, 2], addition_embed_type="text_time",
                 addition_time_embed_dim=256, projection_class_embeddings_input_dim=64 + 6 * 256)
    clip_l = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**OPEN_CLIP))
    _fill(clip_l, 2)
    _fill(clip_g, 3)
    state = to_single_file(unet.state_dict(), _vae().state_dict(), [clip_l.state_dict(), clip_g.state_dict()], "sdxl")
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"nuance.default_size": "64"})


def write_tiny_sd2(path, prediction):
    unet = _unet(block_out_channels=[64, 128], down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], cross_attention_dim=64, attention_head_dim=[1, 2])
    text = CLIPTextModel(CLIPTextConfig(**OPEN_CLIP))
    _fill(text, 2)
    state = to_single_file(unet.state_dict(), _vae().state_dict(), [text.state_dict()], "sd2")
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={"nuance.default_size": "64", "nuance.prediction": prediction})


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    write_tiny_sdxl(root / "checkpoints" / "xl.safetensors")
    write_tiny_sd2(root / "checkpoints" / "sd2v.safetensors", "v_prediction")
    write_tiny_sd2(root / "checkpoints" / "sd2eps.safetensors", "epsilon")
    yield root
    model_manager().free_memory()


def txt2img(models_dir, tmp_path, ckpt, *extra):
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    code = main(["run", "txt2img", "--models-dir", str(models_dir), "--output-dir", str(out), "--report", str(report),
                 "--quiet", "--set", f"4.ckpt_name={ckpt}", "--set", "5.width=64", "--set", "5.height=64",
                 "--set", "3.steps=3", *extra])
    data = json.loads(report.read_text())
    assert code == 0, data
    [path] = data["runs"][0]["outputs"]
    return np.asarray(Image.open(path))


def test_architectures_are_detected(models_dir):
    assert detect_file(models_dir / "checkpoints" / "xl.safetensors").arch == "sdxl"
    sd2 = detect_file(models_dir / "checkpoints" / "sd2v.safetensors")
    assert sd2.arch == "sd2" and sd2.details["prediction"] == "v_prediction"


def test_sdxl_loads_two_encoders_and_conditions_on_pooled_output(models_dir):
    ckpt = load_checkpoint(models_dir / "checkpoints" / "xl.safetensors")
    assert [type(t).__name__ for t in ckpt.text_encoders] == ["CLIPTextModel", "CLIPTextModelWithProjection"]
    assert ckpt.unet.config.addition_embed_type == "text_time"
    assert ckpt.vae_scaling_factor == pytest.approx(0.13025)


def test_sdxl_txt2img_is_reproducible_and_follows_the_seed(models_dir, tmp_path):
    first = txt2img(models_dir, tmp_path / "a", "xl.safetensors", "--set", "3.seed=5")
    again = txt2img(models_dir, tmp_path / "b", "xl.safetensors", "--set", "3.seed=5")
    other = txt2img(models_dir, tmp_path / "c", "xl.safetensors", "--set", "3.seed=6")
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_sdxl_prompt_changes_the_picture(models_dir, tmp_path):
    a = txt2img(models_dir, tmp_path / "a", "xl.safetensors", "--set", "6.text=a red circle")
    b = txt2img(models_dir, tmp_path / "b", "xl.safetensors", "--set", "6.text=a green triangle")
    assert not np.array_equal(a, b)


def test_sd2_v_prediction_runs_and_differs_from_epsilon_on_equal_weights(models_dir, tmp_path):
    v_pred = txt2img(models_dir, tmp_path / "v", "sd2v.safetensors")
    eps = txt2img(models_dir, tmp_path / "e", "sd2eps.safetensors")
    assert v_pred.shape == eps.shape == (64, 64, 3)
    # The two files hold the same weights; only the prediction type differs, and it must matter.
    assert not np.array_equal(v_pred, eps)


def test_sd2_clip_skip_reads_the_loaded_last_layer_by_default(models_dir):
    from studio.models.handles import ClipHandle
    from studio.models.text import sd2_encoder

    ckpt = load_checkpoint(models_dir / "checkpoints" / "sd2eps.safetensors")
    assert ckpt.text_encoders[0].config.num_hidden_layers == 2  # the file's third, unused block is not loaded
    clip = ClipHandle([sd2_encoder(ckpt.text_encoders[0], ckpt.tokenizers[0])], "sd2")
    default, _ = clip.encode("a cat", "cpu")
    skip2, _ = clip.with_last_layer(-2).encode("a cat", "cpu")
    skip3, _ = clip.with_last_layer(-3).encode("a cat", "cpu")
    assert torch.equal(default, skip2)  # ComfyUI's SD 2 default is the penultimate layer
    assert not torch.equal(default, skip3)
