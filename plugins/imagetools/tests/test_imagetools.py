"""The imagetools plugin, loaded the way the app loads a plugin (its folder imported as the package
``nuance_plugins.imagetools``, its ``NODE_PACK`` registered under the ``imagetools.`` prefix) and run through the
real engine, on small hand-made tensors whose right answers can be written down.

IMAGE is ``[B, H, W, C]`` in 0..1; MASK is ``[B, H, W]`` with 1 = the area to change. A test-only source node
(pack ``t``) turns a JSON list into an exact IMAGE (4 dimensions) or MASK (3 dimensions).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q plugins/imagetools/tests``
"""

from __future__ import annotations

import importlib
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from studio.api import Node, Output, String
from studio.core.graph import Graph
from studio.core.registry import NodeRegistry
from studio.engine import Executor, RunOptions, RunResult
from studio.plugins import LoadReport, create_registry, register_pack
from studio.plugins.importing import forget_modules, import_package

PLUGIN_DIR = Path(__file__).parents[1]
PACKAGE = "nuance_plugins.imagetools"
NODE_IDS = {"imagetools.Levels", "imagetools.ColorBalance", "imagetools.Vibrance", "imagetools.Sharpen",
            "imagetools.FilmGrain"}


# -- loading the plugin and running its nodes -----------------------------------------------------------------------
class ImageSource(Node):
    NAME = "Image"
    INPUTS = [String("data", "[]")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx, data):
        return torch.tensor(json.loads(data), dtype=torch.float32)


class MaskSource(ImageSource):
    NAME = "Mask"
    OUTPUTS = [Output("MASK", "MASK")]


@pytest.fixture(scope="module")
def plugin() -> Iterator[ModuleType]:
    module = import_package(PLUGIN_DIR, PACKAGE)
    yield module
    forget_modules(PACKAGE)


@pytest.fixture(scope="module")
def ops(plugin: ModuleType) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.ops")


@pytest.fixture
def registry(plugin: ModuleType) -> NodeRegistry:
    registry = create_registry()
    report = LoadReport()
    register_pack(registry, plugin.NODE_PACK, builtin=False, report=report)
    assert report.errors == []
    assert report.packs == ["imagetools"]
    registry.register(ImageSource, pack="t")
    registry.register(MaskSource, pack="t")
    return registry


@pytest.fixture
def executor(registry: NodeRegistry, tmp_path: Path) -> Executor:
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu"))


def source(graph: Graph, value: torch.Tensor) -> str:
    kind = {4: "t.Image", 3: "t.Mask"}[value.dim()]
    return graph.add_node(kind, {"data": json.dumps(value.tolist())}).id


def graph_of(node_type: str, tensors: dict[str, torch.Tensor], **values: Any) -> Graph:
    graph = Graph()
    graph.add_node(node_type, values, id="node")
    for name, tensor in tensors.items():
        graph.connect(source(graph, tensor), 0, "node", name)
    return graph


def run_node(executor: Executor, node_type: str, tensors: dict[str, torch.Tensor], **values: Any) -> torch.Tensor:
    result = executor.run(graph_of(node_type, tensors, **values), ["node"])
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    (value,) = result.outputs["node"]
    return value


def failure(result: RunResult) -> str:
    assert not result.ok
    (record,) = result.failures
    return record.error or ""


def grey(value: float, height: int = 4, width: int = 4, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, height, width, 3), value)


def pixels(*rgb: tuple[float, float, float]) -> torch.Tensor:
    """One image, one row, one pixel per colour."""
    return torch.tensor([[list(rgb)]], dtype=torch.float32)


def luma(image: torch.Tensor) -> torch.Tensor:
    return image[..., 0] * 0.2126 + image[..., 1] * 0.7152 + image[..., 2] * 0.0722


def random_image(seed: int = 0, shape: tuple[int, ...] = (2, 8, 8, 3)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# -- manifest and registration ----------------------------------------------------------------------------------------
def test_manifest_has_exactly_the_expected_fields(plugin: ModuleType) -> None:
    data = tomllib.loads((PLUGIN_DIR / "plugin.toml").read_text(encoding="utf-8"))
    assert set(data) == {"name", "version", "api_version", "description", "author", "homepage", "requirements", "gui"}
    assert (data["name"], data["version"], data["api_version"]) == ("imagetools", "1.0.0", 1)
    assert data["requirements"] == [] and data["gui"] == "gui" and data["description"].strip()
    assert (plugin.NODE_PACK.name, plugin.NODE_PACK.version) == (data["name"], data["version"])

    from studio.plugins.manifest import read_manifest

    manifest = read_manifest(PLUGIN_DIR)
    assert (manifest.name, manifest.api_version, manifest.gui) == ("imagetools", 1, "gui")


def test_pack_registers_every_node_under_its_prefix(registry: NodeRegistry) -> None:
    specs = {spec.type: spec for spec in registry if spec.pack == "imagetools"}
    assert set(specs) == NODE_IDS
    for spec in specs.values():
        described = json.loads(json.dumps(spec.describe()))  # `nuance nodes --json` can print it
        assert described["description"] and described["category"].startswith("image/")
        assert [o["type"] for o in described["outputs"]] == ["IMAGE"]
        assert spec.deterministic


def test_levels_inputs_are_exactly_what_the_custom_widget_reads(registry: NodeRegistry) -> None:
    spec = registry.spec("imagetools.Levels")
    assert spec is not None
    table = [(i.name, i.type, i.default, i.min, i.max, i.step) for i in spec.inputs]
    assert table == [
        ("image", "IMAGE", table[0][2], None, None, None),
        ("black", "FLOAT", 0.0, 0.0, 1.0, 0.01),
        ("gamma", "FLOAT", 1.0, 0.1, 10.0, 0.01),
        ("white", "FLOAT", 1.0, 0.0, 1.0, 0.01),
        ("output_black", "FLOAT", 0.0, 0.0, 1.0, 0.01),
        ("output_white", "FLOAT", 1.0, 0.0, 1.0, 0.01),
    ]
    assert spec.inputs[0].required


def test_optional_mask_input_on_the_other_nodes(registry: NodeRegistry) -> None:
    for type_id in NODE_IDS - {"imagetools.Levels"}:
        spec = registry.spec(type_id)
        assert spec is not None and spec.input_map["mask"].type == "MASK" and spec.input_map["mask"].optional


# -- through the engine -----------------------------------------------------------------------------------------------
def test_levels_runs_through_the_engine_and_is_cached(executor: Executor) -> None:
    image = torch.tensor([[[[0.2, 0.5, 0.8], [0.0, 0.35, 1.0]]]])
    graph = graph_of("imagetools.Levels", {"image": image}, black=0.2, white=0.8)
    first = executor.run(graph, ["node"])
    assert first.ok
    out = first.outputs["node"][0]
    assert torch.allclose(out, torch.tensor([[[[0.0, 0.5, 1.0], [0.0, 0.25, 1.0]]]]), atol=1e-6)
    again = executor.run(graph, ["node"])
    assert again.nodes["node"].status == "cached" and torch.equal(again.outputs["node"][0], out)


def test_levels_refuses_white_at_or_below_black(executor: Executor) -> None:
    for black, white in ((0.5, 0.3), (0.4, 0.4)):
        error = failure(executor.run(graph_of("imagetools.Levels", {"image": grey(0.5)}, black=black, white=white), ["node"]))
        assert f"white ({white:g}) must be above black ({black:g})" in error


def test_a_chain_with_a_mask_runs_and_reruns_from_the_cache(executor: Executor) -> None:
    image = random_image(1, (1, 6, 6, 3))
    mask = torch.zeros(1, 6, 6)
    mask[:, :, :3] = 1.0
    graph = Graph()
    picture = source(graph, image)
    balance = graph.add_node("imagetools.ColorBalance", {"highlights_cyan_red": 0.8, "shadows_yellow_blue": 0.6}).id
    sharpen = graph.add_node("imagetools.Sharpen", {"amount": 2.0}).id
    grain = graph.add_node("imagetools.FilmGrain", {"intensity": 0.5, "seed": 7}, id="grain").id
    graph.connect(picture, 0, balance, "image")
    graph.connect(source(graph, mask), 0, balance, "mask")
    graph.connect(balance, 0, sharpen, "image")
    graph.connect(sharpen, 0, grain, "image")
    first = executor.run(graph, ["grain"])
    assert first.ok, [(r.node_id, r.error) for r in first.nodes.values()]
    out = first.outputs["grain"][0]
    assert out.shape == image.shape and out.dtype == torch.float32 and 0.0 <= out.min() and out.max() <= 1.0
    again = executor.run(graph, ["grain"])
    assert again.count("cached") == len(again.nodes) and torch.equal(again.outputs["grain"][0], out)
    graph.set_input("grain", "seed", 8)
    reseeded = executor.run(graph, ["grain"])
    assert reseeded.nodes["grain"].status == "executed" and not torch.equal(reseeded.outputs["grain"][0], out)


def test_mask_limits_the_effect_and_is_resized(executor: Executor) -> None:
    image = grey(0.8, 4, 4)
    half = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # 2×2: left half changes, resized to 4×4
    out = run_node(executor, "imagetools.ColorBalance", {"image": image, "mask": half},
                   highlights_cyan_red=1.0, preserve_luminosity=False)
    full = run_node(executor, "imagetools.ColorBalance", {"image": image}, highlights_cyan_red=1.0, preserve_luminosity=False)
    assert torch.equal(out[:, :, 3], image[:, :, 3])  # right edge untouched
    assert torch.equal(out[:, :, 0], full[:, :, 0])  # left edge fully changed
    assert out[0, 0, 0, 0] > image[0, 0, 0, 0] + 0.1


def test_mask_batch_must_be_one_or_one_per_image(executor: Executor) -> None:
    three_masks = graph_of("imagetools.Sharpen", {"image": grey(0.5, batch=2), "mask": torch.ones(3, 4, 4)})
    error = failure(executor.run(three_masks, ["node"]))
    assert "3 masks" in error and "2 images" in error
    shared = run_node(executor, "imagetools.Vibrance", {"image": random_image(2, (2, 4, 4, 3)), "mask": torch.zeros(1, 4, 4)},
                      saturation=-1.0)
    assert torch.equal(shared, random_image(2, (2, 4, 4, 3)))


# -- Levels -----------------------------------------------------------------------------------------------------------
def test_levels_defaults_are_exactly_identity(ops: ModuleType) -> None:
    image = random_image()
    assert torch.equal(ops.levels(image), image)


def test_levels_points_gamma_and_output_range(ops: ModuleType) -> None:
    ramp = torch.tensor([0.0, 0.1, 0.2, 0.25, 0.5, 0.8, 0.9, 1.0]).view(1, 1, -1, 1)
    stretched = ops.levels(ramp, black=0.2, white=0.8).flatten()
    assert torch.allclose(stretched, torch.tensor([0.0, 0.0, 0.0, 1 / 12, 0.5, 1.0, 1.0, 1.0]), atol=1e-6)
    brighter = ops.levels(ramp, gamma=2.0).flatten()
    assert brighter[3] == pytest.approx(0.5) and brighter[0] == 0.0 and brighter[-1] == 1.0
    assert (brighter[1:-1] > ramp.flatten()[1:-1]).all()  # gamma above 1 lifts every midtone
    assert (ops.levels(ramp, gamma=0.5).flatten()[1:-1] < ramp.flatten()[1:-1]).all()
    squeezed = ops.levels(ramp, output_black=0.2, output_white=0.6).flatten()
    assert torch.allclose(squeezed[[0, 4, 7]], torch.tensor([0.2, 0.4, 0.6]), atol=1e-6)
    assert torch.allclose(ops.levels(ramp, output_black=1.0, output_white=0.0), 1.0 - ramp, atol=1e-6)
    with pytest.raises(ValueError, match="white"):
        ops.levels(ramp, black=0.6, white=0.6)


# -- Color balance ----------------------------------------------------------------------------------------------------
def test_color_balance_defaults_are_exactly_identity(ops: ModuleType) -> None:
    image = random_image()
    assert torch.equal(ops.color_balance(image), image)
    assert torch.equal(ops.color_balance(image, preserve_luminosity=False), image)


def test_tonal_weights_cover_every_lightness_once(ops: ModuleType) -> None:
    lightness = torch.linspace(0, 1, 101)
    shadows, midtones, highlights = ops.tonal_weights(lightness)
    assert torch.allclose(shadows + midtones + highlights, torch.ones(101), atol=1e-6)
    assert shadows[5] == 1.0 and midtones[50] == 1.0 and highlights[95] == 1.0 and highlights[5] == 0.0


def test_red_in_the_highlights_reddens_bright_pixels_most(ops: ModuleType) -> None:
    image = pixels((0.1, 0.1, 0.1), (0.5, 0.5, 0.5), (0.7, 0.7, 0.7))
    out = ops.color_balance(image, highlights=(0.5, 0.0, 0.0), preserve_luminosity=False)
    gain = (out - image)[0, 0]
    assert gain[0, 0] == 0.0 and gain[2, 0] > 0.2 and 0.0 <= gain[1, 0] < gain[2, 0]
    assert torch.equal(gain[:, 1:], torch.zeros(3, 2))  # green and blue untouched
    cooler = ops.color_balance(image, shadows=(0.0, 0.0, 0.5), preserve_luminosity=False) - image
    assert cooler[0, 0, 0, 2] > 0.3 and cooler[0, 0, 2, 2] == 0.0  # blue added in the shadows only
    greener = ops.color_balance(image, midtones=(0.0, 0.5, 0.0), preserve_luminosity=False) - image
    assert greener[0, 0, 1, 1] > 0.3 and greener[0, 0, 1, 0] == 0.0


def test_preserve_luminosity_keeps_each_pixels_luma(ops: ModuleType) -> None:
    image = random_image(3, (1, 16, 16, 3))
    shifts = {"shadows": (-0.8, 0.4, 0.9), "midtones": (0.7, -0.6, 0.2), "highlights": (1.0, 0.3, -1.0)}
    kept = ops.color_balance(image, **shifts)
    free = ops.color_balance(image, **shifts, preserve_luminosity=False)
    assert (luma(kept) - luma(image)).abs().max() < 1e-5
    assert abs(luma(kept).mean() - luma(image).mean()) < 1e-5
    assert (luma(free) - luma(image)).abs().max() > 0.05  # the check above could fail: without it luma moves
    assert (kept - image).abs().max() > 0.1  # and the colours did change


# -- Vibrance -------------------------------------------------------------------------------------------------------
def test_vibrance_defaults_identity_and_saturation_extremes(ops: ModuleType) -> None:
    image = random_image(4)
    assert torch.equal(ops.vibrance(image), image)
    greyscale = ops.vibrance(image, saturation=-1.0)
    assert torch.allclose(greyscale, greyscale[..., :1].expand_as(greyscale), atol=1e-6)
    assert torch.allclose(luma(greyscale), luma(image), atol=1e-5)


def test_vibrance_lifts_dull_colours_more_than_vivid_ones(ops: ModuleType) -> None:
    image = pixels((0.55, 0.45, 0.45), (0.7, 0.3, 0.3))  # chroma (max - min) 0.1 and 0.4
    out = ops.vibrance(image, vibrance=0.5)
    chroma_before = image.amax(-1) - image.amin(-1)
    chroma_after = out.amax(-1) - out.amin(-1)
    ratio = (chroma_after / chroma_before)[0, 0]
    assert torch.allclose(ratio, torch.tensor([1 + 0.5 * 0.9, 1 + 0.5 * 0.6]), atol=1e-4)  # 1 + vibrance · (1 − chroma)
    assert torch.allclose(luma(out), luma(image), atol=1e-6)
    vivid = ops.vibrance(pixels((0.9, 0.1, 0.1)), vibrance=1.0, saturation=1.0)
    assert vivid.max() <= 1.0 and vivid.min() >= 0.0 and torch.allclose(luma(vivid), luma(pixels((0.9, 0.1, 0.1))), atol=1e-6)


# -- Sharpen --------------------------------------------------------------------------------------------------------
def edge(low: float = 0.25, high: float = 0.75, width: int = 16) -> torch.Tensor:
    image = torch.full((1, 4, width, 3), low)
    image[:, :, width // 2:] = high
    return image


def gradient_energy(image: torch.Tensor) -> float:
    return float((image[:, :, 1:] - image[:, :, :-1]).square().sum())


def test_sharpen_amount_zero_is_identity_and_flat_stays_flat(ops: ModuleType) -> None:
    image = random_image(5)
    assert torch.equal(ops.unsharp_mask(image, amount=0.0), image)
    assert torch.allclose(ops.unsharp_mask(grey(0.4, 8, 8), radius=3.0, amount=5.0), grey(0.4, 8, 8), atol=1e-6)


def test_sharpen_steepens_an_edge_with_overshoot(ops: ModuleType) -> None:
    image = edge()
    out = ops.unsharp_mask(image, radius=1.5, amount=1.0)
    assert gradient_energy(out) > 1.5 * gradient_energy(image)
    assert out[0, 0, 7, 0] < 0.2 and out[0, 0, 8, 0] > 0.8  # dark side darker, bright side brighter
    assert torch.allclose(out[0, :, 0], image[0, :, 0], atol=1e-3)  # far from the edge: unchanged
    stronger = ops.unsharp_mask(image, radius=1.5, amount=3.0)
    assert gradient_energy(stronger) > gradient_energy(out)


def test_sharpen_threshold_spares_small_differences(ops: ModuleType) -> None:
    image = edge()
    assert torch.equal(ops.unsharp_mask(image, threshold=0.5), image)  # the edge's detail never reaches 0.5
    assert gradient_energy(ops.unsharp_mask(image, threshold=0.05)) > gradient_energy(image)


def test_sharpen_any_radius_on_any_size_and_batch_independent(ops: ModuleType) -> None:
    tiny = random_image(6, (1, 2, 3, 3))
    assert ops.unsharp_mask(tiny, radius=50.0).shape == tiny.shape
    batch = torch.cat([edge(), grey(0.5, 4, 16)])
    out = ops.unsharp_mask(batch)
    assert torch.equal(out[:1], ops.unsharp_mask(edge())) and torch.allclose(out[1], batch[1], atol=1e-6)


# -- Film grain -----------------------------------------------------------------------------------------------------
def test_grain_is_deterministic_per_seed(ops: ModuleType) -> None:
    image = grey(0.5, 16, 16)
    first = ops.film_grain(image, intensity=0.3, seed=42)
    assert torch.equal(first, ops.film_grain(image, intensity=0.3, seed=42))
    assert not torch.equal(first, ops.film_grain(image, intensity=0.3, seed=43))
    assert not torch.equal(first, image)
    assert torch.equal(ops.film_grain(image, intensity=0.0, seed=42), image)


def test_grain_keeps_the_mean_and_has_the_stated_strength(ops: ModuleType) -> None:
    image = grey(0.5, 64, 64)
    for size in (1.0, 4.0):
        out = ops.film_grain(image, intensity=0.5, size=size, seed=1)
        assert abs(float(out.mean()) - 0.5) < 0.01
        assert 0.1 < float(out.std()) < 0.15  # 0.25 · intensity at mid-grey, whatever the grain size


def test_grain_is_strongest_in_the_midtones(ops: ModuleType) -> None:
    image = grey(0.5, 32, 32)
    image[:, :16] = 0.03
    image[:, 16:, 16:] = 0.97
    delta = ops.film_grain(image, intensity=0.5, seed=3) - image
    shadows, mids, highlights = delta[:, :16].std(), delta[:, 16:, :16].std(), delta[:, 16:, 16:].std()
    assert mids > 4 * shadows and mids > 4 * highlights


def test_grain_size_monochrome_colour_and_batch(ops: ModuleType) -> None:
    image = grey(0.5, 32, 32, batch=2)

    def neighbour_correlation(delta: torch.Tensor) -> float:
        a, b = delta[:, :, :-1].flatten(), delta[:, :, 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    fine = ops.film_grain(image, intensity=0.4, size=0.5, seed=5) - image
    coarse = ops.film_grain(image, intensity=0.4, size=6.0, seed=5) - image
    assert neighbour_correlation(coarse) > 0.8 > 0.2 > neighbour_correlation(fine)
    assert torch.equal(fine[..., 0], fine[..., 1]) and torch.equal(fine[..., 1], fine[..., 2])  # monochrome
    coloured = ops.film_grain(image, intensity=0.4, seed=5, color=True) - image
    assert not torch.equal(coloured[..., 0], coloured[..., 1])
    assert not torch.equal(fine[0], fine[1])  # each image in a batch gets its own grain


# -- dtype and device -----------------------------------------------------------------------------------------------
def all_ops(ops: ModuleType, image: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "levels": ops.levels(image, 0.1, 1.5, 0.9),
        "color_balance": ops.color_balance(image, highlights=(0.5, 0.0, -0.5)),
        "vibrance": ops.vibrance(image, 0.5, 0.2),
        "sharpen": ops.unsharp_mask(image, 1.0, 2.0),
        "grain": ops.film_grain(image, 0.5, 2.0, True, 9),
        "masked": ops.blend_with_mask(image, 1.0 - image, torch.rand(1, 3, 3)),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_keep_dtype_and_stay_in_range(ops: ModuleType, dtype: torch.dtype) -> None:
    image = random_image(8, (2, 6, 6, 3)).to(dtype)
    before = image.clone()
    for name, out in all_ops(ops, image).items():
        assert out.dtype == dtype and out.shape == image.shape, name
        assert 0.0 <= out.min() and out.max() <= 1.0, name
    assert torch.equal(image, before)  # no operation writes into its input


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_outputs_stay_on_the_input_device_and_grain_matches_the_cpu(ops: ModuleType) -> None:
    image = random_image(9, (1, 8, 8, 3))
    on_gpu = all_ops(ops, image.cuda())
    assert all(out.device.type == "cuda" for out in on_gpu.values())
    assert torch.allclose(on_gpu["grain"].cpu(), ops.film_grain(image, 0.5, 2.0, True, 9), atol=1e-5)
