"""The demo model's toy world, its classifier, and a smoke run of every training entry point."""

from __future__ import annotations

import collections
import json
import random

import numpy as np
import pytest

from training.demo import toyworld
from training.demo.train import main as train


def test_captions_name_the_scene():
    rng = random.Random(3)
    _, captions, scenes = toyworld.batch(rng, 20)
    for caption, scene in zip(captions, scenes):
        assert caption == f"a {scene.color} {scene.shape} on a {scene.background} background"
        assert scene.color != scene.background


def test_batches_are_reproducible_from_the_seed():
    a, caps_a, _ = toyworld.batch(random.Random(7), 8)
    b, caps_b, _ = toyworld.batch(random.Random(7), 8)
    c, _, _ = toyworld.batch(random.Random(8), 8)
    assert np.array_equal(a, b) and caps_a == caps_b
    assert not np.array_equal(a, c)


def test_the_world_has_the_promised_variety():
    _, _, scenes = toyworld.batch(random.Random(0), 400)
    assert {s.shape for s in scenes} == {"circle", "square", "triangle"}
    assert len({s.color for s in scenes}) >= 6 and len({s.background for s in scenes}) >= 6
    assert len({round(s.radius) for s in scenes}) > 5 and len({round(s.center[0]) for s in scenes}) > 10


def test_classifier_reads_the_generators_own_pictures():
    pictures, _, scenes = toyworld.batch(random.Random(11), 300)
    right = collections.Counter()
    for picture, scene in zip(pictures, scenes):
        reading = toyworld.classify(picture)
        right["background"] += reading.background == scene.background
        right["color"] += reading.color == scene.color
        right["shape"] += reading.shape == scene.shape
    assert right["background"] == right["color"] == 300
    assert right["shape"] >= 297


def test_classifier_says_nothing_about_an_empty_picture():
    blank = np.full((64, 64, 3), toyworld.COLORS["blue"], dtype=np.float32) / 255
    reading = toyworld.classify(blank)
    assert reading.background == "blue" and reading.color is None and reading.shape is None


@pytest.mark.slow
def test_style_statistics_read_the_generators_own_pictures():
    flat, _, scenes = toyworld.batch(random.Random(5), 60)
    pattern, _, _ = toyworld.batch(random.Random(5), 60, style="pattern")
    assert [toyworld.count_shapes(p) for p in flat] == [1] * 60
    assert [toyworld.count_shapes(p) for p in pattern] == [4] * 60
    assert np.mean([toyworld.edge_fraction(p) for p in pattern]) > 1.5 * np.mean([toyworld.edge_fraction(p) for p in flat])
    for picture, scene in zip(flat[:10], scenes[:10]):
        drawn, read = toyworld.shape_mask(scene), toyworld.foreground_mask(picture)
        assert (drawn & read).sum() / (drawn | read).sum() > 0.95  # the classifier's cut is the drawn shape
    with pytest.raises(ValueError, match="unknown style 'outline'"):
        toyworld.draw(scenes[0], style="outline")


def test_every_training_stage_runs_resumes_and_exports_a_loadable_checkpoint(tmp_path):
    run = tmp_path / "run"
    small = ["--run", str(run), "--batch-size", "4", "--save-every", "1"]
    train(["vae", "--steps", "2", *small])
    assert json.loads((run / "vae" / "state.json").read_text())["step"] == 2
    train(["vae", "--steps", "3", *small])  # resumes from step 2
    assert json.loads((run / "vae" / "state.json").read_text())["step"] == 3
    train(["diffusion", "--steps", "2", "--pool-size", "16", *small])
    assert json.loads((run / "diffusion" / "state.json").read_text())["step"] == 2
    out = tmp_path / "demo.safetensors"
    train(["export", "--run", str(run), "--out", str(out)])

    from studio.models.detect import detect_file
    from studio.models.loader import load_checkpoint

    info = detect_file(out)
    assert info.kind == "checkpoint" and info.arch == "sd1"
    ckpt = load_checkpoint(out)
    assert ckpt.default_size == 64 and ckpt.prediction_type == "epsilon"
    assert out.stat().st_size < 30 * 1024 * 1024


def test_rescaling_the_vae_keeps_pictures_and_scales_latents():
    import torch

    from training.demo.train import new_vae, pictures, rescale_vae

    torch.manual_seed(0)
    vae = new_vae().eval()
    x, _ = pictures(0, 0, 4)
    with torch.no_grad():
        mean = vae.encode(x).latent_dist.mean
        decoded = vae.decode(mean).sample
        rescale_vae(vae, 3.0)
        mean3 = vae.encode(x).latent_dist.mean
        decoded3 = vae.decode(mean3).sample
    assert torch.allclose(mean3, mean * 3, atol=1e-5)
    assert torch.allclose(decoded3, decoded, atol=1e-4)


@pytest.mark.slow
def test_the_add_on_stages_run_resume_and_export_files_the_loaders_take(tmp_path):
    from studio.models.controlnet import load_controlnet
    from studio.models.lora import TEXT, UNET, ModelLayers, bind, read_lora
    from training.demo import addons

    run = tmp_path / "run"
    small = ["--run", str(run), "--pool-size", "64", "--batch-size", "4", "--save-every", "2"]
    addons.main(["lora", "--steps", "2", *small])
    addons.main(["lora", "--steps", "3", *small])  # resumes at step 2
    addons.main(["controlnet", "--steps", "2", *small])
    assert json.loads((run / "lora" / "state.json").read_text())["step"] == 3
    lora_out, cn_out = tmp_path / "pattern.safetensors", tmp_path / "canny.safetensors"
    addons.main(["export", "--run", str(run), "--lora-out", str(lora_out), "--controlnet-out", str(cn_out)])
    ckpt = addons.base_model()
    lora = read_lora(lora_out)
    assert all(key.startswith("lora_unet_") for key in lora.adapters)
    bound = bind(lora, ModelLayers("sd1", {UNET: ckpt.unet, TEXT[0]: ckpt.text_encoders[0]}))
    assert len(bound.targets[UNET]) == len(lora.adapters)
    assert any(adapter.tensors["down"].dim() == 4 and adapter.tensors["down"].shape[-1] == 3
               for adapter in lora.adapters.values())  # LoCon: 3×3 convolutions
    controlnet = load_controlnet(cn_out)
    assert list(controlnet.controlnet.config.block_out_channels) == list(ckpt.unet.config.block_out_channels)
