"""ControlNet: loading (the real SD 1.5 diffusers layout from shared/fixtures, and tiny random files
in the three layouts), and the nodes on the tiny model: strength 0 is exactly no ControlNet, the
start/end range picks the steps it acts on, several combine, and mismatches fail by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny_models
import torch
from safetensors.torch import save_file
from tensor_sources import ImageSource, source

from studio.core.graph import Graph
from studio.engine import Executor, RunOptions
from studio.models import folders
from studio.models.controlnet import ControlStep, infer_controlnet_config, load_controlnet
from studio.models.files import ModelFileError
from studio.models.loader import _on_meta
from studio.plugins import create_registry

LAYOUTS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "model_layouts"
CKPT = "tiny.safetensors"


# -- the real layout ----------------------------------------------------------------------------
@pytest.mark.skipif(not LAYOUTS.is_dir(), reason="../shared/fixtures/model_layouts is not beside the repository")
def test_config_inferred_from_a_real_sd15_controlnet_builds_exactly_its_keys_and_shapes():
    from diffusers import ControlNetModel

    data = json.loads((LAYOUTS / "controlnet_sd15_diffusers.json").read_text(encoding="utf-8"))
    shapes = {k: tuple(v["shape"]) for k, v in data["keys"].items()}
    config, arch = infer_controlnet_config(shapes, "control_sd15_canny.safetensors")
    assert arch == "sd1"
    assert config["block_out_channels"] == [320, 640, 1280, 1280]
    assert config["conditioning_embedding_out_channels"] == [16, 32, 96, 256]
    assert config["attention_head_dim"] == 8 and config["cross_attention_dim"] == 768
    model = _on_meta(lambda: ControlNetModel.from_config(config))
    built = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert built == shapes


def test_the_three_layouts_load_the_same_weights(tmp_path):
    reference = tiny_models.build_tiny_controlnet(0).state_dict()
    for layout in tiny_models.CONTROLNET_LAYOUTS:
        path = tiny_models.write_tiny_controlnet(tmp_path / f"cn_{layout}", layout=layout)
        loaded = load_controlnet(path).controlnet.state_dict()
        assert loaded.keys() == reference.keys()
        assert all(torch.equal(loaded[k], reference[k]) for k in reference), layout


def test_not_a_controlnet_is_named(tmp_path):
    path = tmp_path / "vae.safetensors"
    save_file({"encoder.conv_in.weight": torch.zeros(2, 3, 3, 3)}, str(path))
    with pytest.raises(ModelFileError, match=r"vae.safetensors: not a ControlNet \(no hint encoder"):
        load_controlnet(path)


def test_active_range_follows_comfyui_percentages():
    step = ControlStep(control=None, hint=torch.zeros(1, 3, 8, 8), strength=1.0, start_percent=0.25, end_percent=0.5)
    assert not step.active(999.0) and step.active(749.25) and step.active(600.0) and step.active(499.5)
    assert not step.active(499.0)
    never = ControlStep(control=None, hint=torch.zeros(1, 3, 8, 8), strength=1.0, start_percent=0.0, end_percent=0.0)
    assert not never.active(999.0)


# -- the nodes on the tiny model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("controlnet_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / CKPT, seed=0)
    tiny_models.write_tiny_controlnet(root / "controlnet" / "tiny_a.safetensors", layout="original", seed=0)
    tiny_models.write_tiny_controlnet(root / "controlnet" / "tiny_b.safetensors", layout="diffusers_file", seed=1)
    wide = tiny_models.build_tiny_controlnet(0)
    from diffusers import ControlNetModel

    other = ControlNetModel.from_config({**dict(wide.config), "block_out_channels": [32, 64, 64]})
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(root / "controlnet" / "tiny_wide.safetensors"))
    return root


@pytest.fixture(autouse=True)
def _models_folder(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders, "_override", models_dir)


def executor(models_dir: Path, tmp_path: Path) -> Executor:
    registry = create_registry()
    registry.register(ImageSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))


HINT = torch.zeros(1, 64, 64, 3)
HINT[:, 16:48, 16:48] = 1.0


def graph(*controls: tuple[str, float, float, float], steps: int = 4) -> Graph:
    """txt2img (euler) with ControlNets applied in a chain: (file, strength, start, end)."""
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    g.add_node("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1}, id="5")
    g.add_node("CLIPTextEncode", {"text": "a red cube"}, id="6")
    g.add_node("CLIPTextEncode", {"text": "blurry"}, id="7")
    g.add_node("KSampler", {"seed": 1, "steps": steps, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                            "denoise": 1.0}, id="3")
    for target in ("6", "7"):
        g.connect("4", 1, target, "clip")
    hint = source(g, HINT)
    positive, negative = ("6", 0), ("7", 0)
    for i, (name, strength, start, end) in enumerate(controls):
        g.add_node("ControlNetLoader", {"control_net_name": name}, id=f"L{i}")
        g.add_node("ControlNetApplyAdvanced", {"strength": strength, "start_percent": start, "end_percent": end}, id=f"A{i}")
        g.connect(*positive, f"A{i}", "positive")
        g.connect(*negative, f"A{i}", "negative")
        g.connect(f"L{i}", 0, f"A{i}", "control_net")
        g.connect(hint, 0, f"A{i}", "image")
        positive, negative = (f"A{i}", 0), (f"A{i}", 1)
    g.connect("4", 0, "3", "model")
    g.connect(*positive, "3", "positive")
    g.connect(*negative, "3", "negative")
    g.connect("5", 0, "3", "latent_image")
    return g


def latent(ex: Executor, g: Graph) -> torch.Tensor:
    result = ex.run(g, ["3"])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result.outputs["3"][0]["samples"]


@pytest.mark.slow
def test_strength_zero_is_exactly_no_controlnet_and_strength_one_differs(models_dir, tmp_path):
    ex = executor(models_dir, tmp_path)
    plain = latent(ex, graph())
    assert torch.equal(latent(ex, graph(("tiny_a.safetensors", 0.0, 0.0, 1.0))), plain)
    controlled = latent(ex, graph(("tiny_a.safetensors", 1.0, 0.0, 1.0)))
    assert (controlled - plain).abs().max() > 0.05 * plain.abs().max()


def _timesteps_seen(models_dir: Path, tmp_path: Path, start: float, end: float) -> list[float]:
    """The timesteps on which the ControlNet ran (a forward hook on the loaded module)."""
    ex = executor(models_dir, tmp_path)
    g = graph(("tiny_a.safetensors", 1.0, start, end))
    module = ex.run(g, ["L0"]).outputs["L0"][0].controlnet
    seen: list[float] = []
    handle = module.register_forward_hook(lambda _m, args, _out: seen.append(float(args[1].flatten()[0])))
    try:
        latent(ex, g)
    finally:
        handle.remove()
    return seen


@pytest.mark.slow
def test_the_start_end_range_decides_the_steps(models_dir, tmp_path):
    everywhere = _timesteps_seen(models_dir, tmp_path, 0.0, 1.0)
    assert len(everywhere) == 4  # 4 euler steps, positive and negative batched in one call each
    late = _timesteps_seen(models_dir, tmp_path, 0.5, 1.0)
    early = _timesteps_seen(models_dir, tmp_path, 0.0, 0.5)
    assert late and all(t <= 499.5 + 1e-3 for t in late)
    assert early and all(t >= 499.5 - 1e-3 for t in early)
    assert sorted(late + early) == sorted(everywhere)
    assert _timesteps_seen(models_dir, tmp_path, 0.0, 0.0) == []


@pytest.mark.slow
def test_several_controlnets_combine(models_dir, tmp_path):
    ex = executor(models_dir, tmp_path)
    whole = latent(ex, graph(("tiny_a.safetensors", 1.0, 0.0, 1.0)))
    halves = latent(ex, graph(("tiny_a.safetensors", 0.5, 0.0, 1.0), ("tiny_a.safetensors", 0.5, 0.0, 1.0)))
    torch.testing.assert_close(halves, whole, atol=1e-4 * whole.abs().max(), rtol=0)  # residuals add up
    both = latent(ex, graph(("tiny_a.safetensors", 1.0, 0.0, 1.0), ("tiny_b.safetensors", 1.0, 0.0, 1.0)))
    only_b = latent(ex, graph(("tiny_b.safetensors", 1.0, 0.0, 1.0)))
    assert (both - whole).abs().max() > 0.01 * whole.abs().max()
    assert (both - only_b).abs().max() > 0.01 * whole.abs().max()


@pytest.mark.slow
def test_a_controlnet_for_another_model_fails_with_its_name(models_dir, tmp_path):
    result = executor(models_dir, tmp_path).run(graph(("tiny_wide.safetensors", 1.0, 0.0, 1.0)), ["3"])
    assert not result.ok
    assert "ControlNet tiny_wide.safetensors is for SD 1.x; it does not fit the model" in str(result.nodes["3"].error)


def test_start_after_end_is_refused(models_dir, tmp_path):
    result = executor(models_dir, tmp_path).run(graph(("tiny_a.safetensors", 1.0, 0.8, 0.2)), ["3"])
    assert not result.ok
    assert "start_percent 0.8 is after end_percent 0.2" in str(result.nodes["A0"].error)
