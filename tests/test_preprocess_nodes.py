"""ControlNet preprocessors (``nodes/sd/preprocess.py`` over ``studio/preprocess.py``), run the way
users run them: small graphs through ``studio.engine.Executor`` on hand-made pictures whose right
answers can be stated (a white square's outline, a low-contrast step, blocks of known colours).

IMAGE is ``[B, H, W, C]`` in 0..1; every preprocessor gives RGB of the input's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tensor_sources import ImageSource, MaskSource, source

from studio.core.errors import GraphValidationError
from studio.core.graph import Graph
from studio.engine import Executor, RunOptions

ROOT = Path(__file__).resolve().parent.parent
PREPROCESSORS = ["Canny", "ScribbleFromEdges", "LineArtFromEdges", "ColorPalette", "TilePreprocessor"]


@pytest.fixture
def executor(registry, tmp_path: Path) -> Executor:
    registry.register(ImageSource, pack="t")
    registry.register(MaskSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu"))


def outcome(executor: Executor, node_type: str, image: torch.Tensor, **values: Any):
    graph = Graph()
    node = graph.add_node(node_type, values, id="node")
    graph.connect(source(graph, image), 0, node.id, "image")
    return executor.run(graph, [node.id])


def run_node(executor: Executor, node_type: str, image: torch.Tensor, **values: Any) -> torch.Tensor:
    result = outcome(executor, node_type, image, **values)
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    (value,) = result.outputs["node"]
    return value


# -- pictures --------------------------------------------------------------------------------------------------------
def square(size: int = 32, lo: int = 8, hi: int = 24, value: float = 1.0, background: float = 0.0) -> torch.Tensor:
    """A ``value`` square covering rows and columns lo..hi-1 on ``background``, as a 1-item IMAGE."""
    image = torch.full((1, size, size, 3), background)
    image[0, lo:hi, lo:hi] = value
    return image


def step(contrast: float, size: int = 24) -> torch.Tensor:
    """Left half 0.4, right half 0.4 + contrast: one vertical edge between columns 11 and 12."""
    image = torch.full((1, size, size, 3), 0.4)
    image[0, :, size // 2:] += contrast
    return image


def noise(height: int, width: int, batch: int = 1, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Values on a 1/64 grid (exact through JSON), different in every pixel."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 65, (batch, height, width, channels), generator=generator).float() / 64


def ring_distance(size: int, lo: int, hi: int) -> torch.Tensor:
    """Per pixel, how many pixels it is from the square's border (the outermost ring of it is 0)."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    outside = torch.stack([lo - ys, ys - (hi - 1), lo - xs, xs - (hi - 1)]).amax(0)
    return torch.where(outside >= 0, outside, -outside)


def grey_map(image: torch.Tensor) -> torch.Tensor:
    """The single channel of an output whose three channels must be equal."""
    assert image.shape[-1] == 3
    assert torch.equal(image[..., 0], image[..., 1]) and torch.equal(image[..., 0], image[..., 2])
    return image[..., 0]


def high_frequency_energy(image: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels: what a blur takes away."""
    return float(image.diff(dim=1).pow(2).mean() + image.diff(dim=2).pow(2).mean())


# -- Canny -------------------------------------------------------------------------------------------------------------
def test_canny_declares_comfyuis_inputs(registry):
    spec = registry.spec("Canny")
    assert spec.category == "image/preprocessors"
    inputs = {i["name"]: i for i in spec.describe()["inputs"]}
    assert list(inputs) == ["image", "low_threshold", "high_threshold"]
    assert inputs["image"]["type"] == "IMAGE"
    for name, default in (("low_threshold", 0.4), ("high_threshold", 0.8)):
        assert {k: inputs[name][k] for k in ("type", "default", "min", "max", "step")} == {
            "type": "FLOAT", "default": default, "min": 0.01, "max": 0.99, "step": 0.01}
    assert [o["type"] for o in spec.describe()["outputs"]] == ["IMAGE"]


def test_canny_outlines_a_white_square(executor):
    out = run_node(executor, "Canny", square(), low_threshold=0.4, high_threshold=0.8)
    assert out.shape == (1, 32, 32, 3)
    edges = grey_map(out)[0]
    assert set(edges.unique().tolist()) == {0.0, 1.0}  # white edges on black
    distance = ring_distance(32, 8, 24)
    assert edges[distance > 1].sum() == 0  # nothing away from the outline
    # ... and the outline is there all round: each side's edge pixels cover (nearly) all its length.
    for side in (edges[7:9, 10:22], edges[23:25, 10:22], edges[10:22, 7:9].T, edges[10:22, 23:25].T):
        assert side.amax(0).sum() >= 11


def test_canny_thresholds_decide_whether_a_faint_edge_counts(executor):
    faint = step(0.15)  # a gradient of about 0.39 on the Canny scale
    found = grey_map(run_node(executor, "Canny", faint, low_threshold=0.1, high_threshold=0.2))[0]
    assert found[:, 11:13].amax(1).sum() >= 20  # the whole vertical edge
    assert found[:, :10].sum() == 0 and found[:, 14:].sum() == 0
    gone = run_node(executor, "Canny", faint, low_threshold=0.4, high_threshold=0.8)
    assert gone.sum() == 0
    # A strong edge in the same picture survives the high thresholds.
    strong = step(0.5)
    assert grey_map(run_node(executor, "Canny", strong, low_threshold=0.4, high_threshold=0.8))[0, :, 11:13].sum() >= 20


@pytest.mark.parametrize(("low", "high"), [(0.01, 0.99), (0.01, 0.01), (0.99, 0.99)])
def test_canny_thresholds_at_the_extremes_work(executor, low, high):
    edges = grey_map(run_node(executor, "Canny", square(), low_threshold=low, high_threshold=high))[0]
    assert edges[ring_distance(32, 8, 24) <= 1].sum() >= 40  # a unit step passes even 0.99
    assert edges[ring_distance(32, 8, 24) > 1].sum() == 0


def test_canny_low_above_high_is_a_clear_error(executor):
    result = outcome(executor, "Canny", square(), low_threshold=0.8, high_threshold=0.4)
    assert not result.ok
    error = result.nodes["node"].error
    assert "low_threshold (0.8)" in error and "high_threshold (0.4)" in error


def test_canny_thresholds_outside_comfyuis_range_are_refused(executor):
    with pytest.raises(GraphValidationError, match="high_threshold"):
        outcome(executor, "Canny", square(), low_threshold=0.4, high_threshold=1.5)


def test_canny_of_grey_and_rgba_pictures_matches_rgb(executor):
    rgb = square()
    expected = run_node(executor, "Canny", rgb, low_threshold=0.4, high_threshold=0.8)
    grey = rgb[..., :1]
    alpha = torch.zeros_like(grey)
    alpha[0, 2:5, 2:30] = 1.0  # edges of its own, which must not show
    rgba = torch.cat([rgb, alpha], dim=-1)
    assert torch.equal(run_node(executor, "Canny", grey, low_threshold=0.4, high_threshold=0.8), expected)
    assert torch.equal(run_node(executor, "Canny", rgba, low_threshold=0.4, high_threshold=0.8), expected)


# -- every preprocessor -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("node_type", PREPROCESSORS)
def test_each_batch_item_is_processed_on_its_own(executor, node_type):
    items = [square(24, 4, 14), torch.zeros(1, 24, 24, 3), noise(24, 24, seed=3), square(24, 9, 21, value=0.6)]
    together = run_node(executor, node_type, torch.cat(items))
    assert together.shape == (4, 24, 24, 3)
    for index, item in enumerate(items):
        assert torch.equal(together[index:index + 1], run_node(executor, node_type, item)), index
    assert not torch.equal(together[0], together[3])  # the items really differ


@pytest.mark.parametrize("node_type", [*PREPROCESSORS, "ImageInvert"])
@pytest.mark.parametrize(("height", "width"), [(13, 29), (40, 7), (1, 1)])
def test_output_keeps_the_input_size(executor, node_type, height, width):
    out = run_node(executor, node_type, noise(height, width, batch=2))
    assert out.shape == (2, height, width, 3)
    assert out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("node_type", PREPROCESSORS)
def test_grey_and_rgba_inputs_give_rgb(executor, node_type):
    for channels in (1, 4):
        assert run_node(executor, node_type, noise(12, 10, channels=channels)).shape == (1, 12, 10, 3)


@pytest.mark.parametrize("node_type", PREPROCESSORS)
def test_an_image_with_two_channels_is_a_clear_error(executor, node_type):
    result = outcome(executor, node_type, noise(8, 8, channels=2))
    assert not result.ok
    assert "IMAGE [batch, height, width, 1, 3 or 4 channels]" in result.nodes["node"].error


@pytest.mark.parametrize("node_type", [*PREPROCESSORS, "ImageInvert"])
def test_nodes_explain_themselves(registry, node_type):
    spec = registry.spec(node_type)
    assert len(spec.description) > 40
    for item in spec.inputs:
        if item.type != "IMAGE" and node_type != "Canny":
            assert item.tooltip, f"{node_type}.{item.name} has no tooltip"


# -- ImageInvert --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [3, 4])
def test_invert_is_one_minus_the_image(executor, registry, channels):
    image = noise(5, 7, batch=2, channels=channels)
    out = run_node(executor, "ImageInvert", image)
    assert torch.equal(out, 1.0 - image)
    assert registry.spec("ImageInvert").category == "image"


# -- scribble and line art ----------------------------------------------------------------------------------------------
def widths(lines: torch.Tensor, row: int) -> list[int]:
    """Lengths of the runs of white pixels along one row."""
    runs, count = [], 0
    for value in [*lines[row].tolist(), 0.0]:
        if value > 0.5:
            count += 1
        elif count:
            runs.append(count)
            count = 0
    return runs


def test_scribble_strokes_are_thicker_than_line_art(executor):
    picture = square(64, 16, 48)
    scribble = grey_map(run_node(executor, "ScribbleFromEdges", picture))[0]
    lines = grey_map(run_node(executor, "LineArtFromEdges", picture))[0]
    assert set(scribble.unique().tolist()) == {0.0, 1.0} and set(lines.unique().tolist()) == {0.0, 1.0}
    assert widths(lines, 32) == [1, 1]  # one thin line each side of the square
    assert len(widths(scribble, 32)) == 2 and min(widths(scribble, 32)) >= 6  # two thick strokes
    assert scribble.sum() > 4 * lines.sum()
    # Both trace the square: nothing far from its border.
    distance = ring_distance(64, 16, 48)
    assert lines[distance > 1].sum() == 0 and scribble[distance > 6].sum() == 0
    assert scribble[0].sum() == 0 and lines[0].sum() == 0  # white on black


@pytest.mark.parametrize("node_type, width_input", [("ScribbleFromEdges", "thickness"), ("LineArtFromEdges", "line_width")])
def test_stroke_width_follows_its_input(executor, node_type, width_input):
    picture = square(64, 16, 48)
    thin = grey_map(run_node(executor, node_type, picture, **{width_input: 2}))[0]
    thick = grey_map(run_node(executor, node_type, picture, **{width_input: 9}))[0]
    assert max(widths(thin, 32)) <= 3
    assert min(widths(thick, 32)) >= 8


def test_line_art_black_on_white_is_the_exact_inverse(executor):
    picture = square(40, 10, 30)
    white_on_black = run_node(executor, "LineArtFromEdges", picture)
    black_on_white = run_node(executor, "LineArtFromEdges", picture, black_on_white=True)
    assert torch.equal(black_on_white, 1.0 - white_on_black)
    assert black_on_white[0, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_line_art_leaves_out_specks_shorter_than_min_length(executor):
    picture = square(48, 8, 40)
    picture[0, 22:25, 22:25] = 0.0  # a 3 × 3 black speck inside: an outline of about 12 pixels
    with_speck = grey_map(run_node(executor, "LineArtFromEdges", picture, min_length=0))[0]
    cleaned = grey_map(run_node(executor, "LineArtFromEdges", picture, min_length=20))[0]
    assert with_speck[19:28, 19:28].sum() > 0
    assert cleaned[19:28, 19:28].sum() == 0
    assert torch.equal(cleaned[ring_distance(48, 8, 40) <= 1], with_speck[ring_distance(48, 8, 40) <= 1])


def test_scribble_simplifies_away_fine_texture(executor):
    picture = torch.full((1, 64, 64, 3), 0.5)
    grain = noise(32, 16, seed=5)[0].repeat_interleave(2, 0).repeat_interleave(2, 1)  # 2 × 2 pixel grains
    picture[0, :, 32:] += (grain - 0.5) * 0.6  # on the right half
    lines = grey_map(run_node(executor, "LineArtFromEdges", picture, threshold=0.3, min_length=0))[0]
    scribble = grey_map(run_node(executor, "ScribbleFromEdges", picture, threshold=0.3, min_length=0, thickness=1))[0]
    assert lines[:, 36:].sum() > 300  # the grain is full of edges at full detail
    assert scribble[:, 36:].sum() < lines[:, 36:].sum() / 4
    assert lines[:, :28].sum() == 0 and scribble[:, :28].sum() == 0  # and the flat half has none


@pytest.mark.parametrize("simplify", [0.0, 1.0, 3.0, 6.0])
def test_scribble_threshold_means_the_same_contrast_whatever_the_blur(executor, simplify):
    settings = {"threshold": 0.4, "simplify": simplify, "thickness": 1, "min_length": 0, "smooth": False}
    clear = grey_map(run_node(executor, "ScribbleFromEdges", step(0.2), **settings))[0]  # gradient ≈ 0.52
    faint = grey_map(run_node(executor, "ScribbleFromEdges", step(0.1), **settings))[0]  # gradient ≈ 0.26
    assert clear[:, 10:14].amax(1).sum() == 24 and clear[:, :9].sum() == 0 and clear[:, 15:].sum() == 0
    assert faint.sum() == 0


def test_scribble_smoothing_rounds_and_merges_strokes(executor):
    generator = torch.Generator().manual_seed(1)
    cells = torch.randint(0, 2, (8, 8), generator=generator).float()  # a random 8 × 8 board of 8-pixel cells
    picture = cells.repeat_interleave(8, 0).repeat_interleave(8, 1)[None, ..., None].expand(1, 64, 64, 3).contiguous()
    rough = grey_map(run_node(executor, "ScribbleFromEdges", picture, thickness=8, smooth=False))[0]
    smooth = grey_map(run_node(executor, "ScribbleFromEdges", picture, thickness=8, smooth=True))[0]

    def perimeter(strokes: torch.Tensor) -> int:
        return int((strokes.diff(dim=0) != 0).sum() + (strokes.diff(dim=1) != 0).sum())

    assert perimeter(smooth) < 0.95 * perimeter(rough)  # notches and pinholes closed
    assert abs(smooth.sum() - rough.sum()) < 0.05 * rough.sum()  # with the same amount of ink


# -- ColorPalette ----------------------------------------------------------------------------------------------------------
def colours(image: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(p) for p in image.reshape(-1, image.shape[-1]).tolist()}


def test_palette_is_blocks_of_mean_colour(executor):
    image = noise(32, 48, seed=7)
    out = run_node(executor, "ColorPalette", image, block_size=16)
    assert out.shape == image.shape
    assert len(colours(image)) > 500 and len(colours(out)) == 6  # 2 × 3 blocks, one colour each
    for y in (0, 16):
        for x in (0, 16, 32):
            block = out[0, y:y + 16, x:x + 16]
            assert len(colours(block)) == 1
            torch.testing.assert_close(block[0, 0], image[0, y:y + 16, x:x + 16].mean((0, 1)), rtol=0, atol=1e-5)


def test_palette_block_size_sets_the_block_count(executor):
    image = noise(60, 100, seed=8)  # not multiples of the block: blocks are about block_size
    for block_size, most in ((64, 2), (20, 15), (10, 60)):
        out = run_node(executor, "ColorPalette", image, block_size=block_size)
        assert out.shape == image.shape
        assert 1 < len(colours(out)) <= most
        # Each output row changes colour only at block borders: few changes per row.
        changes = (out[0].diff(dim=1).abs().sum(-1) > 0).sum(1)
        assert changes.max() <= round(100 / block_size) - 1


def test_palette_of_one_colour_is_that_colour(executor):
    image = torch.tensor([0.25, 0.5, 0.75]).expand(1, 20, 30, 3).clone()
    torch.testing.assert_close(run_node(executor, "ColorPalette", image, block_size=8), image, rtol=0, atol=1e-6)


# -- TilePreprocessor --------------------------------------------------------------------------------------------------------
def test_tile_is_a_smooth_likeness_of_the_same_size(executor):
    image = torch.zeros(1, 48, 64, 3)
    image[0, :, 32:] = 1.0  # half white,
    image[0] += (noise(48, 64, seed=9)[0] - 0.5) * 0.2  # with grain
    image = image.clamp(0, 1)
    out = run_node(executor, "TilePreprocessor", image, pyrUp_iters=3)
    assert out.shape == image.shape
    assert high_frequency_energy(out) < high_frequency_energy(image) / 10
    # Still the same picture at large: dark left, light right, same overall brightness.
    assert out[0, :, :16].mean() < 0.15 and out[0, :, 48:].mean() > 0.85
    assert out.mean().item() == pytest.approx(image.mean().item(), abs=0.02)


def test_more_pyrup_iters_blur_more(executor):
    image = noise(64, 64, seed=10)
    energies = [high_frequency_energy(run_node(executor, "TilePreprocessor", image, pyrUp_iters=n)) for n in (1, 2, 4)]
    assert energies[0] < high_frequency_energy(image) and energies[0] > energies[1] > energies[2]


def test_tile_keeps_a_constant_image(executor):
    image = torch.tensor([0.25, 0.5, 0.75]).expand(1, 21, 35, 3).clone()
    out = run_node(executor, "TilePreprocessor", image, pyrUp_iters=3)
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)


# -- layering ---------------------------------------------------------------------------------------------------------------
def test_the_preprocess_functions_work_without_torch_or_qt():
    code = """
import json, sys
for name in ("torch", "PySide6"):
    sys.modules[name] = None  # importing it now raises ImportError
import numpy as np
from studio import preprocess as p
picture = np.zeros((32, 40, 3), np.float32)
picture[8:24, 8:30] = 1.0
shapes = [list(f(picture).shape) for f in (p.canny, p.scribble, p.line_art, p.color_palette, p.tile, p.invert)]
print(json.dumps({"shapes": shapes, "edges": float(p.canny(picture).sum())}))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["shapes"] == [[32, 40], [32, 40], [32, 40], [32, 40, 3], [32, 40, 3], [32, 40, 3]]
    assert out["edges"] > 0


def test_preprocess_functions_refuse_bad_settings():
    from studio import preprocess as p

    picture = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="thickness"):
        p.scribble(picture, thickness=0)
    with pytest.raises(ValueError, match="block_size"):
        p.color_palette(picture, block_size=0)
    with pytest.raises(ValueError, match=r"got shape \(8, 8, 2\)"):
        p.rgb(np.zeros((8, 8, 2), np.float32))
