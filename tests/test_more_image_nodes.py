"""Image, mask and loader nodes added for ComfyUI parity (EmptyImage, ImageBatch, ImageSharpen,
LoadImageMask, SolidMask, CropMask, CheckpointLoader, DiffControlNetLoader) and the trailing widgets
newer ComfyUI added to existing nodes; small graphs through the executor, expected values by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import tiny_models  # tests/ is on sys.path (pytest's default import mode)
import torch
from PIL import Image
from safetensors.torch import save_file
from tensor_sources import ImageSource, MaskSource, source

from studio.core.graph import Graph
from studio.core.workflow import load_workflow
from studio.engine import Executor, RunOptions
from studio.models import folders
from studio.models.convert import unet_to_original

CKPT = "tiny.safetensors"


@pytest.fixture
def executor(registry, tmp_path: Path) -> Executor:
    registry.register(ImageSource, pack="t")
    registry.register(MaskSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", base_dir=tmp_path, device="cpu"))


def run_graph(executor: Executor, node_type: str, tensors: dict[str, torch.Tensor] | None = None, **values: Any):
    graph = Graph()
    node = graph.add_node(node_type, values, id="node")
    for name, tensor in (tensors or {}).items():
        graph.connect(source(graph, tensor), 0, node.id, name)
    return executor.run(graph, [node.id])


def run_node(executor: Executor, node_type: str, tensors: dict[str, torch.Tensor] | None = None, **values: Any) -> Any:
    result = run_graph(executor, node_type, tensors, **values)
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    return result.outputs["node"][0]


# -- EmptyImage / ImageBatch ------------------------------------------------------------------------------------------------
def test_empty_image_fills_with_the_packed_colour(executor, registry):
    assert [i.name for i in registry.spec("EmptyImage").inputs] == ["width", "height", "batch_size", "color"]
    out = run_node(executor, "EmptyImage", width=4, height=3, batch_size=2, color=0xFF8000)
    assert out.shape == (2, 3, 4, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([1.0, 128 / 255, 0.0]).expand(2, 3, 4, 3))
    assert out[0, 0, 0, 1].item() == pytest.approx(0.502, abs=5e-4)
    black = run_node(executor, "EmptyImage", width=1, height=1, batch_size=1, color=0)
    assert black.eq(0).all()


def test_image_batch_joins_and_resizes_image2_to_image1(executor):
    image1 = torch.zeros(1, 4, 6, 3)
    image2 = torch.full((2, 2, 2, 3), 0.25)
    out = run_node(executor, "ImageBatch", {"image1": image1, "image2": image2})
    assert out.shape == (3, 4, 6, 3)
    assert out[0].eq(0).all()
    torch.testing.assert_close(out[1:], torch.full((2, 4, 6, 3), 0.25), rtol=0, atol=1e-6)

    same = run_node(executor, "ImageBatch", {"image1": image1 + 0.5, "image2": image1 + 0.75})
    assert same[:, 0, 0, 0].tolist() == [0.5, 0.75]


def test_image_batch_gives_an_opaque_alpha_to_the_image_without_one(executor):
    rgba = torch.full((1, 2, 2, 4), 0.5)
    rgb = torch.full((1, 2, 2, 3), 0.2)
    out = run_node(executor, "ImageBatch", {"image1": rgb, "image2": rgba})
    assert out.shape == (2, 2, 2, 4)
    assert out[0, ..., 3].eq(1).all() and out[1, ..., 3].eq(0.5).all()


# -- ImageSharpen ------------------------------------------------------------------------------------------------------
def test_sharpen_with_alpha_zero_changes_nothing(executor, registry):
    assert [(i.name, i.default) for i in registry.spec("ImageSharpen").inputs[1:]] == [
        ("sharpen_radius", 1), ("sigma", 1.0), ("alpha", 1.0)]
    image = torch.rand(1, 6, 5, 3, generator=torch.Generator().manual_seed(1))
    out = run_node(executor, "ImageSharpen", {"image": image}, sharpen_radius=2, sigma=1.0, alpha=0.0)
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("radius", "sigma", "alpha"), [(1, 1.0, 0.1), (2, 0.5, 0.05)])
def test_sharpen_matches_comfyui_kernel_by_hand(executor, radius, sigma, alpha):
    size = 9
    image = torch.full((1, size, size, 1), 0.5)
    image[0, 4, 4, 0] = 0.6
    out = run_node(executor, "ImageSharpen", {"image": image}, sharpen_radius=radius, sigma=sigma, alpha=alpha)[0, ..., 0]
    # ComfyUI's weights: exp(-d² / 2σ²) with d measured from −1 to 1 across the kernel (steps of 1/radius).
    weights = {(dy, dx): math.exp(-((dy / radius) ** 2 + (dx / radius) ** 2) / (2 * sigma**2))
               for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)}
    total = sum(weights.values())
    # out = (1 + 10α)·I − 10α·(G * I): with I = 0.5 + 0.1·impulse, a pixel at offset o gets 0.5 + 0.1·k(o).
    for (dy, dx), w in weights.items():
        k = (1 + 10 * alpha if (dy, dx) == (0, 0) else 0.0) - 10 * alpha * w / total
        assert out[4 + dy, 4 + dx].item() == pytest.approx(0.5 + 0.1 * k, abs=1e-5)
    assert out[0, 0].item() == pytest.approx(0.5, abs=1e-6)  # beyond the kernel's reach: unchanged


def test_sharpen_keeps_a_flat_picture_and_clips_to_0_1(executor):
    flat = torch.full((1, 5, 5, 3), 0.3)
    torch.testing.assert_close(run_node(executor, "ImageSharpen", {"image": flat}, sharpen_radius=2, sigma=1.0, alpha=5.0),
                               flat, rtol=0, atol=1e-5)
    edge = torch.zeros(1, 4, 4, 1)
    edge[..., 2:, 0] = 1.0
    out = run_node(executor, "ImageSharpen", {"image": edge}, sharpen_radius=1, sigma=1.0, alpha=5.0)
    assert out.min() >= 0 and out.max() <= 1 and out[0, 0, 2, 0] == 1 and out[0, 0, 1, 0] == 0


# -- LoadImageMask -----------------------------------------------------------------------------------------------------------
def test_load_image_mask_reads_alpha_as_one_minus_alpha_and_colours_as_they_are(executor, tmp_path, registry):
    assert [i.name for i in registry.spec("LoadImageMask").inputs] == ["image", "channel"]
    assert registry.spec("LoadImageMask").input_map["channel"].current_choices() == ["alpha", "red", "green", "blue"]
    Image.new("RGBA", (5, 3), (200, 100, 0, 64)).save(tmp_path / "pic.png")
    alpha = run_node(executor, "LoadImageMask", image="pic.png", channel="alpha")
    red = run_node(executor, "LoadImageMask", image="pic.png", channel="red")
    green = run_node(executor, "LoadImageMask", image="pic.png", channel="green")
    blue = run_node(executor, "LoadImageMask", image="pic.png", channel="blue")
    assert alpha.shape == red.shape == (1, 3, 5)
    torch.testing.assert_close(alpha, torch.full((1, 3, 5), 1 - 64 / 255))
    torch.testing.assert_close(red, torch.full((1, 3, 5), 200 / 255))
    torch.testing.assert_close(green, torch.full((1, 3, 5), 100 / 255))
    assert blue.eq(0).all()


def test_load_image_mask_of_an_opaque_file_is_all_zero_and_a_missing_file_fails(executor, tmp_path):
    Image.new("RGB", (4, 2), (255, 255, 255)).save(tmp_path / "opaque.png")
    out = run_node(executor, "LoadImageMask", image="opaque.png", channel="alpha")
    assert out.shape == (1, 2, 4) and out.eq(0).all()
    result = run_graph(executor, "LoadImageMask", image="nowhere.png", channel="red")
    assert not result.ok
    assert "nowhere.png" in result.nodes["node"].error


# -- SolidMask / CropMask -------------------------------------------------------------------------------------------------------
def test_solid_mask(executor, registry):
    assert [(i.name, i.default) for i in registry.spec("SolidMask").inputs] == [("value", 1.0), ("width", 512),
                                                                                ("height", 512)]
    out = run_node(executor, "SolidMask", value=0.25, width=3, height=2)
    assert out.shape == (1, 2, 3)
    assert out.eq(0.25).all()


def test_crop_mask_cuts_a_rectangle(executor, registry):
    assert [i.name for i in registry.spec("CropMask").inputs] == ["mask", "x", "y", "width", "height"]
    m = torch.arange(20.0).reshape(1, 4, 5)
    out = run_node(executor, "CropMask", {"mask": m}, x=1, y=2, width=3, height=5)
    assert torch.equal(out, m[:, 2:4, 1:4])


# -- ImageScaleToTotalPixels: resolution_steps ------------------------------------------------------------------------------
def test_scale_to_total_pixels_rounds_to_resolution_steps_and_defaults_to_the_old_size(executor, registry):
    steps = registry.spec("ImageScaleToTotalPixels").input_map["resolution_steps"]
    assert (steps.default, steps.min, steps.max, steps.optional) == (1, 1, 256, True)
    image = torch.rand(1, 50, 100, 3, generator=torch.Generator().manual_seed(0))
    # scale = sqrt(0.05 · 1024² / 5000) ≈ 3.238: 323.8 × 161.9
    old = run_node(executor, "ImageScaleToTotalPixels", {"image": image}, upscale_method="bilinear", megapixels=0.05)
    assert old.shape == (1, 162, 324, 3)
    one = run_node(executor, "ImageScaleToTotalPixels", {"image": image}, upscale_method="bilinear", megapixels=0.05,
                   resolution_steps=1)
    assert torch.equal(one, old)
    rounded = run_node(executor, "ImageScaleToTotalPixels", {"image": image}, upscale_method="bilinear", megapixels=0.05,
                       resolution_steps=64)
    assert rounded.shape == (1, 192, 320, 3)


# -- trailing widgets of newer ComfyUI --------------------------------------------------------------------------------------
def test_tiled_vae_nodes_take_comfyui_temporal_widgets_at_the_end(registry):
    for node_type, first, tile_step in (("VAEDecodeTiled", "samples", 32), ("VAEEncodeTiled", "pixels", 64)):
        spec = registry.spec(node_type)
        assert [i.name for i in spec.inputs] == [first, "vae", "tile_size", "overlap", "temporal_size", "temporal_overlap"]
        assert spec.input_map["tile_size"].step == tile_step
        for name, default in (("temporal_size", 64), ("temporal_overlap", 8)):
            assert spec.input_map[name].optional and spec.input_map[name].default == default
    ui = {"last_node_id": 3, "last_link_id": 0, "version": 0.4, "links": [], "nodes": [
        {"id": 1, "type": "VAEDecodeTiled", "pos": [0, 0], "widgets_values": [256, 32]},
        {"id": 2, "type": "VAEEncodeTiled", "pos": [0, 0], "widgets_values": [256, 32, 16, 4]},
        {"id": 3, "type": "ImageScaleToTotalPixels", "pos": [0, 0], "widgets_values": ["bilinear", 0.5, 8]}]}
    workflow = load_workflow(ui, registry)
    assert workflow.warnings == []
    nodes = {n.id: n.inputs for n in workflow.graph.nodes.values()}
    assert nodes["1"] == {"tile_size": 256, "overlap": 32}
    assert nodes["2"] == {"tile_size": 256, "overlap": 32, "temporal_size": 16, "temporal_overlap": 4}
    assert nodes["3"] == {"upscale_method": "bilinear", "megapixels": 0.5, "resolution_steps": 8}


# -- loaders on the tiny checkpoint --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("more_image_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / CKPT, seed=0)
    tiny_models.write_tiny_controlnet(root / "controlnet" / "full.safetensors", layout="original", seed=3)
    original = tiny_models.controlnet_to_original(tiny_models.build_tiny_controlnet(3).state_dict())
    unet = unet_to_original(tiny_models.build_tiny_components(seed=0).unet.state_dict())
    diff = {k: (v - unet[k[len("control_model."):]] if k[len("control_model."):] in unet else v).contiguous()
            for k, v in original.items()}
    assert sum(k[len("control_model."):] in unet for k in original) > 10
    diff["difference"] = torch.tensor([])
    save_file(diff, str(root / "controlnet" / "diff.safetensors"))
    return root


@pytest.fixture
def model_executor(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry) -> Executor:
    monkeypatch.setattr(folders, "_override", models_dir)
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))


def loader_outputs(executor: Executor, graph: Graph, *targets: str) -> dict[str, Any]:
    result = executor.run(graph, list(targets))
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    return result.outputs


def test_checkpoint_loader_with_config_loads_like_checkpoint_loader_simple(model_executor, registry):
    assert [i.name for i in registry.spec("CheckpointLoader").inputs] == ["config_name", "ckpt_name"]
    assert "v1-inference.yaml" in registry.spec("CheckpointLoader").input_map["config_name"].current_choices()
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="simple")
    g.add_node("CheckpointLoader", {"config_name": "v1-inference.yaml", "ckpt_name": CKPT}, id="v1")
    g.add_node("CheckpointLoader", {"config_name": "v2-inference-v.yaml", "ckpt_name": CKPT}, id="v")
    g.add_node("CheckpointLoader", {"config_name": "v1-inference_clip_skip_2.yaml", "ckpt_name": CKPT}, id="skip")
    out = loader_outputs(model_executor, g, "simple", "v1", "v", "skip")
    simple, v1, vpred, skip = out["simple"], out["v1"], out["v"], out["skip"]
    assert v1[0].unet is simple[0].unet and v1[2].vae is simple[2].vae  # the same loaded weights
    assert v1[0].prediction_type == simple[0].prediction_type == "epsilon"
    assert vpred[0].prediction_type == "v_prediction"
    assert [e.layer for e in v1[1].encoders] == [e.layer for e in simple[1].encoders]
    assert [e.layer for e in skip[1].encoders] == [e.layer for e in simple[1].with_last_layer(-2).encoders] == [-2]


def test_tiled_decode_ignores_temporal_settings_for_pictures(model_executor):
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="ckpt")
    g.add_node("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1}, id="latent")
    g.add_node("VAEDecodeTiled", {"tile_size": 64, "overlap": 32}, id="old")
    g.add_node("VAEDecodeTiled", {"tile_size": 64, "overlap": 32, "temporal_size": 8, "temporal_overlap": 4}, id="new")
    for node in ("old", "new"):
        g.connect("latent", 0, node, "samples")
        g.connect("ckpt", 2, node, "vae")
    out = loader_outputs(model_executor, g, "old", "new")
    assert out["old"][0].shape == (1, 64, 64, 3)
    assert torch.equal(out["old"][0], out["new"][0])


def test_diff_controlnet_adds_the_model_weights_back(model_executor, registry):
    assert [i.name for i in registry.spec("DiffControlNetLoader").inputs] == ["model", "control_net_name"]
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="ckpt")
    g.add_node("ControlNetLoader", {"control_net_name": "full.safetensors"}, id="full")
    g.add_node("DiffControlNetLoader", {"control_net_name": "diff.safetensors"}, id="diff")
    g.add_node("DiffControlNetLoader", {"control_net_name": "full.safetensors"}, id="plain")
    g.connect("ckpt", 0, "diff", "model")
    g.connect("ckpt", 0, "plain", "model")
    out = loader_outputs(model_executor, g, "full", "diff", "plain")
    full = out["full"][0].controlnet.state_dict()
    diff = out["diff"][0].controlnet.state_dict()
    assert set(diff) == set(full)
    for key, value in full.items():
        torch.testing.assert_close(diff[key], value, rtol=0, atol=1e-5 * max(1.0, value.abs().max().item()))
    assert out["plain"][0].controlnet is out["full"][0].controlnet  # an ordinary file loads as with ControlNetLoader
