"""Loading checkpoints for real: tiny seeded SD 1-architecture models as a single file and as a diffusers folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tiny_models  # tests/ is on sys.path (rootdir-less test folder, pytest's default import mode)
import torch
from safetensors.torch import load_file, save_file

from studio.models import convert
from studio.models.detect import detect_file
from studio.models.files import ModelFileError
from studio.models.loader import LoadedCheckpoint, load_checkpoint, load_vae

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tiny")
    return {
        "single": tiny_models.write_tiny_single_file(base / "tiny.safetensors", seed=0),
        "diffusers": tiny_models.write_tiny_diffusers(base / "tiny-diffusers", seed=0),
        "inpaint": tiny_models.write_tiny_single_file(base / "tiny-inpaint.safetensors", seed=0, inpaint=True),
    }


@pytest.fixture(scope="module")
def reference() -> tiny_models.TinyComponents:
    return tiny_models.build_tiny_components(seed=0)


@pytest.fixture(scope="module")
def loaded(tiny) -> dict[str, LoadedCheckpoint]:
    return {"single": load_checkpoint(tiny["single"]), "diffusers": load_checkpoint(tiny["diffusers"])}


def _outputs(unet, vae, text_encoder, tokenizer) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(123)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 5, 32, generator=generator)
    image = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    ids = tokenizer(["a red cube on a table", "!"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        text = text_encoder(ids)
        return {
            "unet": unet(latents, torch.tensor([10, 500]), encoder_hidden_states=context).sample,
            "vae_encode": vae.encode(image).latent_dist.mean,
            "vae_decode": vae.decode(latents[:1]).sample,
            "text_hidden": text.last_hidden_state,
            "text_pooled": text.pooler_output,
        }


def test_both_forms_load_with_the_expected_facts(loaded):
    for form, checkpoint in loaded.items():
        assert checkpoint.arch == "sd1", form
        assert checkpoint.prediction_type == "epsilon"
        assert checkpoint.vae_scaling_factor == 0.18215
        assert checkpoint.default_size == 64
        assert checkpoint.pad_with_end == [True]
        assert len(checkpoint.text_encoders) == len(checkpoint.tokenizers) == 1
        assert type(checkpoint.text_encoders[0]).__name__ == "CLIPTextModel"
        assert list(checkpoint.unet.config.block_out_channels) == [32, 32, 64]
        assert checkpoint.scheduler_config["prediction_type"] == "epsilon"
        for model in (checkpoint.unet, checkpoint.vae, checkpoint.text_encoders[0]):
            tensors = [*model.parameters(), *model.buffers()]
            assert all(t.device.type == "cpu" for t in tensors), f"{form}: a tensor stayed on the meta device"
            assert all(p.dtype == torch.float32 for p in model.parameters())
            assert not model.training


def test_single_file_and_diffusers_folder_give_identical_outputs(loaded, reference):
    single, folder = loaded["single"], loaded["diffusers"]
    a = _outputs(single.unet, single.vae, single.text_encoders[0], single.tokenizers[0])
    b = _outputs(folder.unet, folder.vae, folder.text_encoders[0], folder.tokenizers[0])
    truth = _outputs(reference.unet, reference.vae, reference.text_encoder, single.tokenizers[0])
    for name in truth:
        assert torch.equal(a[name], b[name]), name
        torch.testing.assert_close(a[name], truth[name], rtol=0, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
        assert truth[name].abs().mean() > 1e-3, f"{name}: degenerate output cannot tell mappings apart"


def test_inferred_single_file_configs_match_the_folder_configs(loaded):
    """What the shapes say equals what the folder's config.json says (narrow widths, 8 heads, 8 norm groups...)."""
    single, folder = loaded["single"], loaded["diffusers"]

    def clean(config):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_")}

    for one, other in ((single.unet, folder.unet), (single.vae, folder.vae)):
        assert clean(one.config) == clean(other.config), type(one).__name__
    assert single.text_encoders[0].config.to_diff_dict() == folder.text_encoders[0].config.to_diff_dict()


def test_tokenizer_pads_as_its_encoder_expects(loaded):
    tokenizer = loaded["single"].tokenizers[0]
    ids = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert ids[0] == 49406 and ids[-1] == 49407  # SD 1 (OpenAI CLIP) pads with <|endoftext|>
    from studio.models.loader import load_tokenizer

    open_clip = load_tokenizer(pad_with_end=False)
    assert open_clip("a cat", padding="max_length", max_length=77).input_ids[-1] == 0  # "!" for OpenCLIP


def test_inpainting_variant(tiny):
    checkpoint = load_checkpoint(tiny["inpaint"])
    assert checkpoint.info.inpaint is True
    assert checkpoint.unet.config.in_channels == 9
    out = checkpoint.unet(torch.zeros(1, 9, 8, 8), 1, encoder_hidden_states=torch.zeros(1, 3, 32)).sample
    assert out.shape == (1, 4, 8, 8)


def test_prediction_override_and_dtype(tiny):
    checkpoint = load_checkpoint(tiny["single"], prediction="v_prediction", dtype=torch.float16)
    assert checkpoint.prediction_type == "v_prediction"
    assert checkpoint.info.prediction == "epsilon"  # what the file says; the override wins
    assert checkpoint.scheduler_config["prediction_type"] == "v_prediction"
    assert {p.dtype for p in checkpoint.unet.parameters()} == {torch.float16}
    assert load_checkpoint(tiny["diffusers"], prediction="v_prediction").prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction must be one of"):
        load_checkpoint(tiny["single"], prediction="sample")


def test_truncated_file_is_refused(tiny, tmp_path):
    data = tiny["single"].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ModelFileError, match="truncated"):
        load_checkpoint(cut)
    stub = tmp_path / "stub.safetensors"
    stub.write_bytes(data[:5])
    with pytest.raises(ModelFileError, match="truncated or empty"):
        load_checkpoint(stub)


def test_corrupt_file_is_refused(tiny, tmp_path):
    data = bytearray(tiny["single"].read_bytes())
    data[8:40] = b"\x00\xff garbage, not a JSON header \xfe"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupt"):
        load_checkpoint(bad)
    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(b"\xff" * 4096)
    with pytest.raises(ModelFileError, match="not a valid safetensors file"):
        load_checkpoint(noise)


def test_missing_tensor_fails_loudly_naming_it(tiny, tmp_path):
    state = load_file(str(tiny["single"]))
    del state["model.diffusion_model.out.2.bias"]
    path = tmp_path / "incomplete.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelFileError, match=r"conv_out\.bias"):
        load_checkpoint(path)


def test_unknown_layout_is_refused(tmp_path):
    path = tmp_path / "random.safetensors"
    save_file({"layer1.weight": torch.zeros(4, 4), "layer2.bias": torch.zeros(4)}, str(path))
    with pytest.raises(ModelFileError, match="not a Stable Diffusion checkpoint"):
        load_checkpoint(path)


def test_pickle_checkpoint_refused_by_default_and_allowed_weights_only(tiny, tmp_path, monkeypatch):
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(str(tiny["single"]))}, path)
    monkeypatch.delenv("NUANCE_ALLOW_PICKLE", raising=False)
    with pytest.raises(ModelFileError, match="allow_pickle = true"):
        load_checkpoint(path)
    assert detect_file(path).kind == "pickle"
    checkpoint = load_checkpoint(path, allow_pickle=True)
    assert checkpoint.arch == "sd1"
    monkeypatch.setenv("NUANCE_ALLOW_PICKLE", "1")
    assert load_checkpoint(path).arch == "sd1"


def test_diffusers_folder_without_tokenizer_uses_the_bundled_one(tiny, tmp_path):
    folder = shutil.copytree(tiny["diffusers"], tmp_path / "no-tokenizer")
    shutil.rmtree(folder / "tokenizer")
    checkpoint = load_checkpoint(folder)
    assert checkpoint.tokenizers[0]("a cat").input_ids[0] == 49406


def test_diffusers_folder_problems_are_reported(tiny, tmp_path):
    with pytest.raises(ModelFileError, match=r"no model_index\.json"):
        load_checkpoint(tmp_path)
    folder = shutil.copytree(tiny["diffusers"], tmp_path / "broken")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="holds no weights"):
        load_checkpoint(folder)


def test_standalone_vae_in_every_layout(tiny, reference, tmp_path):
    original = {k[len("first_stage_model."):]: v for k, v in load_file(str(tiny["single"])).items()
                if k.startswith("first_stage_model.")}
    save_file(original, str(tmp_path / "vae-original.safetensors"))
    save_file(reference.vae.state_dict(), str(tmp_path / "vae-diffusers.safetensors"))
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = reference.vae.decode(latents).sample
        for source in (tmp_path / "vae-original.safetensors", tmp_path / "vae-diffusers.safetensors", tiny["single"],
                       tiny["diffusers"] / "vae", tiny["diffusers"]):
            vae = load_vae(source)
            torch.testing.assert_close(vae.decode(latents).sample, expected, rtol=0, atol=1e-6)
    assert load_vae(tmp_path / "vae-original.safetensors", arch="sdxl").config.scaling_factor == 0.13025
    assert load_vae(tmp_path / "vae-original.safetensors").config.scaling_factor == 0.18215


def test_detect_file_kinds(tiny, tmp_path):
    single = detect_file(tiny["single"])
    assert (single.kind, single.arch, single.format) == ("checkpoint", "sd1", "safetensors")
    folder = detect_file(tiny["diffusers"])
    assert (folder.kind, folder.arch) == ("diffusers", "sd1")
    assert "inpainting" in detect_file(tiny["inpaint"]).note
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": torch.zeros(4, 768),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": torch.zeros(320, 4),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": torch.tensor(4.0)}, str(lora))
    assert (detect_file(lora).kind, detect_file(lora).arch) == ("lora", "sd1")
    embedding = tmp_path / "embedding.safetensors"
    save_file({"emb_params": torch.zeros(2, 768)}, str(embedding))
    assert (detect_file(embedding).kind, detect_file(embedding).arch) == ("embedding", "sd1")
    vae = tmp_path / "vae.safetensors"
    save_file({k: v for k, v in load_file(str(tiny["single"])).items() if k.startswith("first_stage_model.")}, str(vae))
    assert detect_file(vae).kind == "vae"
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(other))
    assert detect_file(other).kind == "unknown"


def test_detect_file_needs_no_torch(tiny):
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("torch", "diffusers", "transformers", "safetensors"):
            sys.modules[name] = None  # importing it now fails
        from studio.models.detect import detect_file
        info = detect_file({str(tiny["single"])!r})
        folder = detect_file({str(tiny["diffusers"])!r})
        print(json.dumps([info.kind, info.arch, folder.kind, folder.arch]))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["checkpoint", "sd1", "diffusers", "sd1"]


def test_saved_single_file_round_trips_through_the_loader(loaded, tmp_path):
    """Our own writer (to_single_file) and reader agree: save what was loaded, load it again."""
    checkpoint = loaded["diffusers"]
    state = convert.to_single_file(checkpoint.unet.state_dict(), checkpoint.vae.state_dict(),
                                   [checkpoint.text_encoders[0].state_dict()], "sd1")
    path = tmp_path / "resaved.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"nuance.default_size": "64"})
    again = load_checkpoint(path)
    for (name, a), (_, b) in zip(sorted(checkpoint.unet.state_dict().items()), sorted(again.unet.state_dict().items())):
        assert torch.equal(a, b), name
