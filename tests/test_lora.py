"""LoRA: file layouts, key mapping (against a real community file's layout), the update maths, and
the nodes on the tiny model through the executor (strength 0, stacking, caching, refusals).

The mapping test reads key names and shapes from ``../shared/fixtures/model_layouts`` (taken from
a real kohya SD 1.5 LoRA) and binds them to an SD 1.5-sized model built on the meta device from
the real checkpoint layout, so a naming bug in our code cannot be cancelled by the same bug in a
test helper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tiny_models
import torch
from safetensors.torch import save_file

from studio.core.graph import Graph
from studio.engine import Executor, RunOptions
from studio.models import folders
from studio.models.detect import detect_checkpoint
from studio.models.loader import build_text_encoder, build_unet
from studio.models.lora import TEXT, UNET, Adapter, LoraError, ModelLayers, bind, parse_lora, sync_patches
from studio.models.memory import model_manager
from studio.plugins import create_registry

LAYOUTS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "model_layouts"
CKPT = "tiny.safetensors"


def shapes_of(name: str) -> dict[str, tuple[int, ...]]:
    data = json.loads((LAYOUTS / f"{name}.json").read_text(encoding="utf-8"))
    return {k: tuple(v["shape"]) for k, v in data["keys"].items()}


def meta_model(name: str) -> ModelLayers:
    """An SD model of a real checkpoint's exact size, on the meta device (no memory)."""
    info = detect_checkpoint(shapes_of(name))
    components: dict[str, Any] = {UNET: build_unet(info.unet_config or {})}
    for i, te in enumerate(info.text_encoders):
        components[TEXT[i]] = build_text_encoder(te)
    return ModelLayers(info.arch, components)


def fixture_lora() -> Any:
    shapes = shapes_of("lora_kohya_sd15")
    state = {k: torch.tensor(8.0) if k.endswith(".alpha") else torch.empty(s, device="meta") for k, s in shapes.items()}
    return parse_lora(state, "kohya_sd15.safetensors")


pytestmark = pytest.mark.skipif(not LAYOUTS.is_dir(), reason="../shared/fixtures/model_layouts is not beside the repository")


# -- mapping against the real layout --------------------------------------------------------------
def test_every_layer_of_a_real_kohya_sd15_lora_maps_onto_an_sd15_model():
    lora = fixture_lora()
    assert len(lora.adapters) == len(shapes_of("lora_kohya_sd15")) // 3  # down, up, alpha per layer
    bound = bind(lora, meta_model("sd15_single_file"))
    unet_keys = [k for k in lora.adapters if k.startswith("lora_unet_")]
    te_keys = [k for k in lora.adapters if k.startswith("lora_te_")]
    assert len(bound.targets[UNET]) == len(unet_keys) > 100
    assert len(bound.targets[TEXT[0]]) == len(te_keys) > 50
    proj_in = lora.adapters["lora_unet_down_blocks_0_attentions_0_proj_in"]
    assert bound.targets[UNET]["down_blocks.0.attentions.0.proj_in"] is proj_in
    assert (bound.targets[UNET]["up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k"]
            is lora.adapters["lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_k"])
    assert bound.targets[UNET]["mid_block.attentions.0.transformer_blocks.0.ff.net.2"] is not None
    te_paths = set(bound.targets[TEXT[0]])
    assert any(p.endswith("encoder.layers.11.self_attn.out_proj") for p in te_paths)
    assert lora.arch_hint() == "sd1"
    assert lora.adapters["lora_unet_down_blocks_0_attentions_0_proj_in"].scale() == 1.0  # alpha 8, rank 8


@pytest.mark.parametrize(("model", "expected"), [("sdxl_base_single_file", "SDXL"), ("sd21_768v_single_file", "SD 2.x")])
def test_an_sd15_lora_is_refused_on_other_architectures(model, expected):
    with pytest.raises(LoraError, match=rf"kohya_sd15.safetensors is a LoRA for SD 1\.x, but the model is {expected}"):
        bind(fixture_lora(), meta_model(model))


def test_an_sd15_lora_is_refused_on_a_narrower_sd1_model():
    parts = tiny_models.build_tiny_components(0)
    layers = ModelLayers("sd1", {UNET: parts.unet, TEXT[0]: parts.text_encoder})
    lora = fixture_lora()
    lora.adapters = {k: v for k, v in lora.adapters.items() if "attn2_to_k" not in k}  # hide the architecture hint
    with pytest.raises(LoraError, match=r"does not fit this SD 1\.x model: .* other sizes"):
        bind(lora, layers)


def test_original_layout_names_map_like_diffusers_names():
    parts = tiny_models.build_tiny_components(0)
    layers = ModelLayers("sd1", {UNET: parts.unet, TEXT[0]: parts.text_encoder})
    kohya = bind(parse_lora(tiny_models.tiny_lora_state(layout="kohya")), layers)
    ldm = bind(parse_lora(tiny_models.tiny_lora_state(layout="ldm")), layers)
    peft = bind(parse_lora(tiny_models.tiny_lora_state(layout="peft")), layers)
    for other in (ldm, peft):
        for component in (UNET, TEXT[0]):
            assert set(other.targets[component]) == set(kohya.targets[component])
    source = ldm.targets[UNET]["down_blocks.1.attentions.0.proj_in"].source
    assert source.endswith("lora_unet_input_blocks_3_1_proj_in")  # one resnet per level


def test_not_a_lora_file_is_named():
    with pytest.raises(LoraError, match=r"broken.safetensors: no LoRA weights found \(keys such as model.weight\)"):
        parse_lora({"model.weight": torch.zeros(2, 2)}, "broken.safetensors")
    with pytest.raises(LoraError, match="layer lora_unet_x is incomplete"):
        parse_lora({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, "half.safetensors")


# -- the update maths -----------------------------------------------------------------------------
def test_lora_update_is_up_down_times_alpha_over_rank():
    g = torch.Generator().manual_seed(0)
    down, up = torch.randn(4, 6, generator=g), torch.randn(5, 4, generator=g)
    adapter = Adapter("lora", {"down": down, "up": up}, alpha=2.0)
    torch.testing.assert_close(adapter.delta((5, 6)), up @ down * 0.5)


def test_locon_convolution_and_tucker_core():
    g = torch.Generator().manual_seed(1)
    down, up = torch.randn(3, 4, 3, 3, generator=g), torch.randn(5, 3, 1, 1, generator=g)
    plain = Adapter("lora", {"down": down, "up": up}, alpha=3.0).delta((5, 4, 3, 3))
    expected = torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down)
    torch.testing.assert_close(plain, expected)
    # Tucker: down is 1×1, the 3×3 core mixes ranks; ΔW[o,i,k,l] = Σ up[o,a] mid[a,b,k,l] down[b,i]
    d1, mid = torch.randn(3, 4, 1, 1, generator=g), torch.randn(3, 3, 3, 3, generator=g)
    tucker = Adapter("lora", {"down": d1, "up": up, "mid": mid}, alpha=3.0).delta((5, 4, 3, 3))
    torch.testing.assert_close(tucker, torch.einsum("oa,abkl,bi->oikl", up[:, :, 0, 0], mid, d1[:, :, 0, 0]))


def test_loha_and_lokr_updates():
    g = torch.Generator().manual_seed(2)
    w1a, w1b, w2a, w2b = (torch.randn(s, generator=g) for s in ((5, 2), (2, 6), (5, 2), (2, 6)))
    loha = Adapter("loha", {"w1_a": w1a, "w1_b": w1b, "w2_a": w2a, "w2_b": w2b}, alpha=1.0)
    torch.testing.assert_close(loha.delta((5, 6)), (w1a @ w1b) * (w2a @ w2b) * 0.5)
    k1, k2 = torch.randn(2, 3, generator=g), torch.randn(4, 5, generator=g)
    lokr = Adapter("lokr", {"w1": k1, "w2": k2}, alpha=7.0)  # full factors: alpha is not applied
    torch.testing.assert_close(lokr.delta((8, 15)), torch.kron(k1, k2))


def test_patching_restores_the_originals_exactly():
    layer = torch.nn.Linear(6, 5)
    original = layer.weight.detach().clone()
    adapter = Adapter("lora", {"down": torch.randn(2, 6), "up": torch.randn(5, 2)}, alpha=2.0)
    sync_patches(layer, ((("a",), 0.7, {"": adapter}),))
    torch.testing.assert_close(layer.weight.detach(), original + 0.7 * adapter.delta((5, 6)))
    sync_patches(layer, ((("a",), 0.0, {"": adapter}),))  # strength 0: the originals, bit for bit
    assert torch.equal(layer.weight.detach(), original)


# -- the nodes on the tiny model ------------------------------------------------------------------
@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lora_models")
    tiny_models.write_tiny_single_file(root / "checkpoints" / CKPT, seed=0)
    for layout in tiny_models.LORA_LAYOUTS:
        tiny_models.write_tiny_lora(root / "loras" / f"tiny_{layout}.safetensors", layout=layout)
    tiny_models.write_tiny_lora(root / "loras" / "tiny_other.safetensors", layout="kohya", seed=5)
    sdxl = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(2, 32),
            "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(64, 2)}
    save_file(sdxl, str(root / "loras" / "tiny_sdxl.safetensors"))
    return root


@pytest.fixture(autouse=True)
def _models_folder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "models_dir" in request.fixturenames:
        monkeypatch.setattr(folders, "_override", request.getfixturevalue("models_dir"))


def executor(models_dir: Path, tmp_path: Path) -> Executor:
    return Executor(create_registry(), options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))


def graph(*loras: tuple[str, float, float], model_only: bool = False, seed: int = 3) -> Graph:
    """txt2img (2 euler steps) with a chain of LoRA loaders between the checkpoint and its users."""
    g = Graph()
    g.add_node("CheckpointLoaderSimple", {"ckpt_name": CKPT}, id="4")
    model, clip = ("4", 0), ("4", 1)
    for i, (name, strength_model, strength_clip) in enumerate(loras):
        node = f"L{i}"
        if model_only:
            g.add_node("LoraLoaderModelOnly", {"lora_name": name, "strength_model": strength_model}, id=node)
            g.connect(*model, node, "model")
            model = (node, 0)
        else:
            g.add_node("LoraLoader", {"lora_name": name, "strength_model": strength_model, "strength_clip": strength_clip},
                       id=node)
            g.connect(*model, node, "model")
            g.connect(*clip, node, "clip")
            model, clip = (node, 0), (node, 1)
    g.add_node("EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1}, id="5")
    g.add_node("CLIPTextEncode", {"text": "a red cube"}, id="6")
    g.add_node("CLIPTextEncode", {"text": "blurry"}, id="7")
    g.add_node("KSampler", {"seed": seed, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                            "denoise": 1.0}, id="3")
    for target in ("6", "7"):
        g.connect(*clip, target, "clip")
    g.connect(*model, "3", "model")
    g.connect("6", 0, "3", "positive")
    g.connect("7", 0, "3", "negative")
    g.connect("5", 0, "3", "latent_image")
    return g


def run(ex: Executor, g: Graph, *targets: str) -> Any:
    result = ex.run(g, list(targets or ["3"]))
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result


def latent(result: Any) -> torch.Tensor:
    return result.outputs["3"][0]["samples"]


@pytest.mark.slow
def test_strength_zero_is_the_base_model_and_the_base_comes_back_after_a_lora(models_dir, tmp_path):
    base = latent(run(executor(models_dir, tmp_path), graph()))
    zero = latent(run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 0.0, 0.0))))
    lora = latent(run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 1.0, 1.0))))
    again = latent(run(executor(models_dir, tmp_path), graph()))  # a new executor: computed afresh
    assert torch.equal(zero, base)
    assert (lora - base).abs().max() > 0.05 * base.abs().max()
    assert torch.equal(again, base)


@pytest.mark.slow
def test_the_three_layouts_give_the_same_result(models_dir, tmp_path):
    results = [latent(run(executor(models_dir, tmp_path), graph((f"tiny_{layout}.safetensors", 0.8, 0.6))))
               for layout in tiny_models.LORA_LAYOUTS]
    scale = results[0].abs().max()
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], atol=1e-4 * scale, rtol=0)


@pytest.mark.slow
def test_loras_stack(models_dir, tmp_path):
    twice = latent(run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 0.5, 0.5),
                                                              ("tiny_kohya.safetensors", 0.5, 0.5))))
    once = latent(run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 1.0, 1.0))))
    torch.testing.assert_close(twice, once, atol=1e-4 * once.abs().max(), rtol=0)
    two = latent(run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 1.0, 1.0),
                                                            ("tiny_other.safetensors", 1.0, 1.0))))
    assert (two - once).abs().max() > 0.01 * once.abs().max()


@pytest.mark.slow
def test_changing_strength_reruns_only_what_depends_on_it_and_reads_the_file_once(models_dir, tmp_path, monkeypatch):
    import studio.models.lora as lora_module

    model_manager().free_memory()
    reads: list[str] = []
    real = lora_module.read_lora
    monkeypatch.setattr(lora_module, "read_lora", lambda path, identity=(): reads.append(Path(path).name) or real(path, identity))
    ex = executor(models_dir, tmp_path)
    g = graph(("tiny_kohya.safetensors", 1.0, 1.0))
    first = run(ex, g)
    loads = model_manager().loads
    g.set_input("L0", "strength_model", 0.5)
    second = run(ex, g)
    status = {n: r.status for n, r in second.nodes.items()}
    assert status["4"] == "cached" and status["5"] == "cached"
    assert status["L0"] == "executed" and status["3"] == "executed"
    assert model_manager().loads == loads  # neither the checkpoint nor the LoRA was loaded again
    assert reads == ["tiny_kohya.safetensors"]
    assert not torch.equal(latent(first), latent(second))


@pytest.mark.slow
def test_clip_strength_changes_the_text_encoding_and_the_cache_keeps_them_apart(models_dir, tmp_path):
    def encoding(*loras: tuple[str, float, float]) -> torch.Tensor:
        return run(executor(models_dir, tmp_path), graph(*loras), "6").outputs["6"][0][0][0]

    base = encoding()
    patched = encoding(("tiny_kohya.safetensors", 0.0, 1.0))
    assert not torch.allclose(base, patched)
    assert torch.equal(encoding(), base)
    assert torch.equal(encoding(("tiny_kohya.safetensors", 1.0, 0.0)), base)


@pytest.mark.slow
def test_model_only_loader_leaves_the_text_encoder(models_dir, tmp_path):
    full = run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 1.0, 0.0)))
    model_only = run(executor(models_dir, tmp_path), graph(("tiny_kohya.safetensors", 1.0, 0.0), model_only=True))
    assert torch.equal(latent(full), latent(model_only))


@pytest.mark.slow
def test_a_lora_for_another_architecture_fails_the_node_with_a_clear_message(models_dir, tmp_path):
    result = executor(models_dir, tmp_path).run(graph(("tiny_sdxl.safetensors", 1.0, 1.0)), ["3"])
    assert not result.ok
    error = str(result.nodes["L0"].error)
    assert "tiny_sdxl.safetensors is a LoRA for SDXL, but the model is SD 1.x" in error


def test_older_diffusers_names_map_to_the_same_layers():
    parts = tiny_models.build_tiny_components(0)
    layers = ModelLayers("sd1", {UNET: parts.unet, TEXT[0]: parts.text_encoder})
    attn = "down_blocks.0.attentions.0.transformer_blocks.0.attn1"
    state = {f"unet.{attn}.processor.to_q_lora.down.weight": torch.zeros(2, 32),
             f"unet.{attn}.processor.to_q_lora.up.weight": torch.zeros(32, 2),
             f"unet.{attn}.processor.to_out_lora.down.weight": torch.zeros(2, 32),
             f"unet.{attn}.processor.to_out_lora.up.weight": torch.zeros(32, 2),
             f"unet.{attn}.to_k.lora.down.weight": torch.zeros(2, 32),
             f"unet.{attn}.to_k.lora.up.weight": torch.zeros(32, 2),
             "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight": torch.zeros(2, 32),
             "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight": torch.zeros(64, 2)}
    bound = bind(parse_lora(state), layers)
    assert set(bound.targets[UNET]) == {f"{attn}.to_q", f"{attn}.to_out.0", f"{attn}.to_k"}
    assert [p.endswith("encoder.layers.0.mlp.fc1") for p in bound.targets[TEXT[0]]] == [True]
