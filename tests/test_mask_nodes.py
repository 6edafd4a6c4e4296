"""Mask and image tools (``nodes/sd/masks.py``), run the way users run them: small graphs through
``studio.engine.Executor``, on small hand-made tensors whose right answers can be written down.

A test-only source node (pack ``t``) turns a JSON list into an IMAGE (4 dimensions) or a MASK
(3 dimensions), so each test states its input exactly and the cache key follows the values.
MASK is ``[B, H, W]`` with 1 = the area to change; IMAGE is ``[B, H, W, C]`` in 0..1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from tensor_sources import ImageSource, MaskSource, source

from studio.core.graph import Graph
from studio.engine import Executor, RunOptions


# -- test-only sources ----------------------------------------------------------------------------
@pytest.fixture
def executor(registry, tmp_path: Path) -> Executor:
    registry.register(ImageSource, pack="t")
    registry.register(MaskSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu"))


def outcome(executor: Executor, node_type: str, tensors: dict[str, torch.Tensor], **values: Any):
    """Run ``node_type`` with these tensor inputs (through source nodes) and constant inputs."""
    graph = Graph()
    node = graph.add_node(node_type, values, id="node")
    for name, tensor in tensors.items():
        graph.connect(source(graph, tensor), 0, node.id, name)
    return executor.run(graph, [node.id])


def run_node(executor: Executor, node_type: str, tensors: dict[str, torch.Tensor], **values: Any) -> torch.Tensor:
    result = outcome(executor, node_type, tensors, **values)
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    (value,) = result.outputs["node"]
    return value


def mask(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor([rows], dtype=torch.float32)


def dot(size: int = 7) -> torch.Tensor:
    """A single 1 in the middle of a size × size mask."""
    m = torch.zeros(1, size, size)
    m[0, size // 2, size // 2] = 1.0
    return m


def diamond(size: int, radius: int) -> torch.Tensor:
    """1 where |dx| + |dy| ≤ radius from the middle: what a tapered grow of a dot gives."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    c = size // 2
    return (((ys - c).abs() + (xs - c).abs()) <= radius).float()[None]


def square(size: int, radius: int) -> torch.Tensor:
    """1 where max(|dx|, |dy|) ≤ radius from the middle: what a square grow of a dot gives."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    c = size // 2
    return (torch.maximum((ys - c).abs(), (xs - c).abs()) <= radius).float()[None]


def pattern_image(height: int, width: int, channels: int = 3, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Values on a 1/64 grid (exact in float32 and JSON), different in every pixel and channel."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 65, (batch, height, width, channels), generator=generator).float() / 64


# -- GrowMask -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expand", [1, 2])
def test_grow_tapered_makes_a_diamond(executor, expand):
    out = run_node(executor, "GrowMask", {"mask": dot()}, expand=expand, tapered_corners=True)
    assert torch.equal(out, diamond(7, expand))


@pytest.mark.parametrize("expand", [1, 2])
def test_grow_square_makes_a_square(executor, expand):
    out = run_node(executor, "GrowMask", {"mask": dot()}, expand=expand, tapered_corners=False)
    assert torch.equal(out, square(7, expand))


def test_grow_zero_leaves_the_mask_as_it_is(executor):
    m = mask([[0.0, 0.25], [0.5, 1.0]])
    assert torch.equal(run_node(executor, "GrowMask", {"mask": m}, expand=0, tapered_corners=True), m)


def test_grow_keeps_soft_values_and_takes_the_largest(executor):
    m = torch.zeros(1, 5, 5)
    m[0, 2, 2] = 0.5
    m[0, 2, 4] = 0.25
    out = run_node(executor, "GrowMask", {"mask": m}, expand=1, tapered_corners=False)
    expected = torch.zeros(1, 5, 5)
    expected[0, 1:4, 3:5] = 0.25
    expected[0, 1:4, 1:4] = 0.5  # the larger value wins where the two overlap
    assert torch.equal(out, expected)


@pytest.mark.parametrize(("tapered", "hole"), [(True, diamond(7, 1)), (False, square(7, 1))])
def test_shrink_with_a_negative_amount_grows_the_holes(executor, tapered, hole):
    m = 1.0 - dot()  # everything but the middle pixel
    out = run_node(executor, "GrowMask", {"mask": m}, expand=-1, tapered_corners=tapered)
    assert torch.equal(out, 1.0 - hole)


def test_shrink_a_block_by_one_and_two(executor):
    m = square(9, 3)  # a 7 × 7 block in a 9 × 9 mask
    assert torch.equal(run_node(executor, "GrowMask", {"mask": m}, expand=-1, tapered_corners=False), square(9, 2))
    assert torch.equal(run_node(executor, "GrowMask", {"mask": m}, expand=-2, tapered_corners=False), square(9, 1))
    # A pixel survives a tapered step when its four neighbours are set: a block shrinks to a block too.
    assert torch.equal(run_node(executor, "GrowMask", {"mask": m}, expand=-2, tapered_corners=True), square(9, 1))
    # …but a diamond loses one ring to a tapered step and two to a square one.
    d = diamond(9, 3)
    assert torch.equal(run_node(executor, "GrowMask", {"mask": d}, expand=-1, tapered_corners=True), diamond(9, 2))
    assert torch.equal(run_node(executor, "GrowMask", {"mask": d}, expand=-1, tapered_corners=False), diamond(9, 1))


def test_grow_back_to_back_with_shrink_restores_a_block(executor):
    m = square(11, 2)
    grown = run_node(executor, "GrowMask", {"mask": m}, expand=2, tapered_corners=False)
    assert torch.equal(grown, square(11, 4))
    assert torch.equal(run_node(executor, "GrowMask", {"mask": grown}, expand=-2, tapered_corners=False), m)


# -- FeatherMask ----------------------------------------------------------------------------------------------------
ONES = torch.ones(1, 6, 8)


def ramp(length: int, feather: int) -> torch.Tensor:
    """Factors from the edge inwards: 1/f, 2/f, … up to 1, then 1."""
    return torch.tensor([min(1.0, (i + 1) / feather) for i in range(length)])


def test_feather_left_ramps_the_first_columns(executor):
    out = run_node(executor, "FeatherMask", {"mask": ONES}, left=4, top=0, right=0, bottom=0)
    expected = ramp(8, 4)[None, None, :].expand(1, 6, 8)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    assert out[0, :, 0].tolist() == [0.25] * 6


def test_feather_right_ramps_the_last_columns(executor):
    out = run_node(executor, "FeatherMask", {"mask": ONES}, left=0, top=0, right=3, bottom=0)
    expected = ramp(8, 3).flip(0)[None, None, :].expand(1, 6, 8)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_feather_top_ramps_the_first_rows(executor):
    out = run_node(executor, "FeatherMask", {"mask": ONES}, left=0, top=2, right=0, bottom=0)
    expected = ramp(6, 2)[None, :, None].expand(1, 6, 8)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    assert out[0, 0].tolist() == [0.5] * 8 and out[0, 1:].eq(1).all()


def test_feather_bottom_ramps_the_last_rows(executor):
    out = run_node(executor, "FeatherMask", {"mask": ONES}, left=0, top=0, right=0, bottom=5)
    expected = ramp(6, 5).flip(0)[None, :, None].expand(1, 6, 8)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_feather_all_sides_multiply_in_the_corners_and_scale_soft_values(executor):
    m = ONES * 0.5
    out = run_node(executor, "FeatherMask", {"mask": m}, left=2, top=2, right=2, bottom=2)
    columns, rows = ramp(8, 2) * ramp(8, 2).flip(0), ramp(6, 2) * ramp(6, 2).flip(0)
    expected = 0.5 * rows[None, :, None] * columns[None, None, :]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)
    assert out[0, 0, 0].item() == pytest.approx(0.125)
    assert out[0, 3, 4].item() == 0.5


def test_feather_zero_changes_nothing(executor):
    m = mask([[0.0, 0.3], [0.6, 1.0]])
    assert torch.equal(run_node(executor, "FeatherMask", {"mask": m}, left=0, top=0, right=0, bottom=0), m)


# -- InvertMask, ThresholdMask ----------------------------------------------------------------------------------------
def test_invert(executor):
    m = mask([[0.0, 0.25], [0.75, 1.0]])
    assert torch.equal(run_node(executor, "InvertMask", {"mask": m}), mask([[1.0, 0.75], [0.25, 0.0]]))


def test_threshold_is_strictly_above_the_value(executor):
    m = mask([[0.2, 0.5, 0.7, 1.0]])
    assert torch.equal(run_node(executor, "ThresholdMask", {"mask": m}, value=0.5), mask([[0.0, 0.0, 1.0, 1.0]]))
    assert torch.equal(run_node(executor, "ThresholdMask", {"mask": m}, value=0.1), mask([[1.0, 1.0, 1.0, 1.0]]))
    assert torch.equal(run_node(executor, "ThresholdMask", {"mask": m}, value=1.0), mask([[0.0, 0.0, 0.0, 0.0]]))


# -- MaskComposite ----------------------------------------------------------------------------------------------------
DEST = mask([[0.5, 0.5, 0.5],
             [0.5, 1.0, 0.0],
             [0.5, 0.25, 0.75]])
SRC = mask([[0.6, 1.0],
            [0.0, 0.4]])
# The 2 × 2 corner of DEST at (1, 1) combined with SRC; the rest of DEST is kept.
COMPOSITE_REGION = {
    "multiply": [[0.6, 0.0], [0.0, 0.3]],
    "add": [[1.0, 1.0], [0.25, 1.0]],        # clipped to 1
    "subtract": [[0.4, 0.0], [0.25, 0.35]],  # clipped to 0
    "and": [[1.0, 0.0], [0.0, 0.0]],         # rounded: DEST [[1, 0], [0, 1]], SRC [[1, 1], [0, 0]]
    "or": [[1.0, 1.0], [0.0, 1.0]],
    "xor": [[0.0, 1.0], [0.0, 1.0]],
}


@pytest.mark.parametrize("operation", list(COMPOSITE_REGION))
def test_mask_composite_operation(executor, operation):
    out = run_node(executor, "MaskComposite", {"destination": DEST, "source": SRC}, x=1, y=1, operation=operation)
    expected = DEST.clone()
    expected[0, 1:, 1:] = torch.tensor(COMPOSITE_REGION[operation])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_mask_composite_at_the_origin_and_clipped_at_the_edges(executor):
    dest, src = torch.zeros(1, 3, 4), torch.ones(1, 2, 2)
    at_origin = run_node(executor, "MaskComposite", {"destination": dest, "source": src}, x=0, y=0, operation="add")
    assert torch.equal(at_origin, mask([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]))
    right_edge = run_node(executor, "MaskComposite", {"destination": dest, "source": src}, x=3, y=1, operation="add")
    assert right_edge.shape == (1, 3, 4)
    assert torch.equal(right_edge, mask([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]))
    corner = run_node(executor, "MaskComposite", {"destination": dest, "source": src}, x=3, y=2, operation="or")
    assert torch.equal(corner, mask([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]))
    outside = run_node(executor, "MaskComposite", {"destination": dest, "source": src}, x=4, y=0, operation="add")
    assert torch.equal(outside, dest)


def test_mask_composite_takes_the_top_left_of_the_source_when_clipping(executor):
    src = mask([[0.25, 0.5], [0.75, 1.0]])
    out = run_node(executor, "MaskComposite", {"destination": torch.zeros(1, 2, 2), "source": src}, x=1, y=1,
                   operation="add")
    assert torch.equal(out, mask([[0, 0], [0, 0.25]]))


def test_mask_composite_larger_source_keeps_the_destination_size(executor):
    out = run_node(executor, "MaskComposite", {"destination": torch.zeros(1, 2, 3), "source": torch.ones(1, 5, 5)},
                   x=0, y=0, operation="add")
    assert torch.equal(out, torch.ones(1, 2, 3))


# -- MaskToImage, ImageToMask, ImageColorToMask -------------------------------------------------------------------------
def test_mask_to_image_is_grey_in_three_channels(executor):
    m = mask([[0.0, 0.25], [0.5, 1.0]])
    image = run_node(executor, "MaskToImage", {"mask": m})
    assert image.shape == (1, 2, 2, 3)
    for channel in range(3):
        assert torch.equal(image[..., channel], m)


@pytest.mark.parametrize(("channel", "index"), [("red", 0), ("green", 1), ("blue", 2), ("alpha", 3)])
def test_image_to_mask_takes_one_channel(executor, channel, index):
    image = pattern_image(3, 4, channels=4, batch=2)
    out = run_node(executor, "ImageToMask", {"image": image}, channel=channel)
    assert out.shape == (2, 3, 4)
    assert torch.equal(out, image[..., index])


def test_mask_round_trips_through_an_image(executor):
    m = mask([[0.0, 0.125, 0.5], [0.75, 0.875, 1.0]])
    graph = Graph()
    to_image = graph.add_node("MaskToImage", id="to_image").id
    to_mask = graph.add_node("ImageToMask", {"channel": "green"}, id="to_mask").id
    graph.connect(source(graph, m), 0, to_image, "mask")
    graph.connect(to_image, 0, to_mask, "image")
    result = executor.run(graph, [to_mask])
    assert result.ok
    assert torch.equal(result.outputs[to_mask][0], m)


def test_image_to_mask_alpha_of_an_rgb_image_is_a_clear_error(executor):
    result = outcome(executor, "ImageToMask", {"image": pattern_image(2, 2)}, channel="alpha")
    assert not result.ok
    record = result.nodes["node"]
    assert record.status == "failed"
    assert "alpha" in record.error and "3 channels" in record.error


def test_image_color_to_mask_picks_one_exact_colour(executor):
    rgb = [[(255, 0, 0), (254, 0, 0), (0, 128, 255)],
           [(255, 0, 0), (255, 0, 1), (0, 0, 0)]]
    image = torch.tensor([rgb], dtype=torch.float32) / 255
    red = run_node(executor, "ImageColorToMask", {"image": image}, color=0xFF0000)
    assert torch.equal(red, mask([[1, 0, 0], [1, 0, 0]]))
    azure = run_node(executor, "ImageColorToMask", {"image": image}, color=0x0080FF)
    assert torch.equal(azure, mask([[0, 0, 1], [0, 0, 0]]))
    black = run_node(executor, "ImageColorToMask", {"image": image}, color=0)
    assert torch.equal(black, mask([[0, 0, 0], [0, 0, 1]]))


# -- ImageCompositeMasked -------------------------------------------------------------------------------------------
def test_composite_without_mask_pastes_the_source_at_x_y(executor):
    dest, src = pattern_image(5, 6, seed=1), pattern_image(2, 3, seed=2)
    out = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src}, x=2, y=1, resize_source=False)
    expected = dest.clone()
    expected[:, 1:3, 2:5] = src
    assert torch.equal(out, expected)


def test_composite_clips_the_source_at_the_edge(executor):
    dest, src = pattern_image(4, 4, seed=1), pattern_image(3, 3, seed=2)
    out = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src}, x=2, y=3, resize_source=False)
    expected = dest.clone()
    expected[:, 3:4, 2:4] = src[:, :1, :2]
    assert torch.equal(out, expected)
    beyond = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src}, x=4, y=0, resize_source=False)
    assert torch.equal(beyond, dest)


def test_composite_through_a_mask_mixes_by_the_mask(executor):
    dest = torch.zeros(1, 3, 3, 3)
    src = torch.ones(1, 2, 2, 3)
    m = mask([[1.0, 0.0], [0.25, 0.5]])
    out = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src, "mask": m}, x=1, y=1,
                   resize_source=False)
    expected = torch.zeros(1, 3, 3)
    expected[0, 1:, 1:] = m[0]
    for channel in range(3):
        assert torch.equal(out[..., channel], expected)


def test_composite_with_resize_source_covers_the_destination(executor):
    dest = torch.zeros(1, 4, 6, 3)
    src = torch.tensor([[[[0.25, 0.5, 0.75]] * 2] * 2])  # 2 × 2, one colour
    out = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src}, x=0, y=0, resize_source=True)
    assert out.shape == (1, 4, 6, 3)
    torch.testing.assert_close(out, torch.tensor([0.25, 0.5, 0.75]).expand(1, 4, 6, 3), rtol=0, atol=1e-6)
    # Without resizing, the same source covers only its own 2 × 2.
    small = run_node(executor, "ImageCompositeMasked", {"destination": dest, "source": src}, x=0, y=0, resize_source=False)
    assert small[:, :2, :2].eq(src).all() and small[:, 2:].eq(0).all() and small[:, :, 2:].eq(0).all()


# -- ImageBlend -------------------------------------------------------------------------------------------------------
def _soft_light(a: float, b: float) -> float:
    """The W3C compositing spec's soft-light, written from the spec."""
    if b <= 0.5:
        return a - (1 - 2 * b) * a * (1 - a)
    d = ((16 * a - 12) * a + 4) * a if a <= 0.25 else math.sqrt(a)
    return a + (2 * b - 1) * (d - a)


BLEND_FORMULAS = {
    "normal": lambda a, b: b,
    "multiply": lambda a, b: a * b,
    "screen": lambda a, b: 1 - (1 - a) * (1 - b),
    "overlay": lambda a, b: 2 * a * b if a <= 0.5 else 1 - 2 * (1 - a) * (1 - b),
    "soft_light": _soft_light,
    "difference": lambda a, b: abs(a - b),
}


@pytest.mark.parametrize("mode", list(BLEND_FORMULAS))
@pytest.mark.parametrize("factor", [1.0, 0.3])
def test_blend_mode_follows_its_formula(executor, mode, factor):
    image1, image2 = pattern_image(4, 5, seed=3), pattern_image(4, 5, seed=4)
    out = run_node(executor, "ImageBlend", {"image1": image1, "image2": image2}, blend_factor=factor, blend_mode=mode)
    formula = BLEND_FORMULAS[mode]
    expected = torch.tensor([
        min(1.0, max(0.0, a * (1 - factor) + formula(a, b) * factor))
        for a, b in zip(image1.flatten().tolist(), image2.flatten().tolist())
    ]).reshape(image1.shape)
    assert out.shape == image1.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", list(BLEND_FORMULAS))
def test_blend_factor_zero_keeps_image1(executor, mode):
    image1, image2 = pattern_image(3, 3, seed=5), pattern_image(3, 3, seed=6)
    out = run_node(executor, "ImageBlend", {"image1": image1, "image2": image2}, blend_factor=0.0, blend_mode=mode)
    assert torch.equal(out, image1)


def test_blend_fits_image2_to_image1s_size(executor):
    image1 = torch.full((1, 4, 6, 3), 0.5)
    image2 = torch.full((1, 2, 2, 3), 0.25)
    out = run_node(executor, "ImageBlend", {"image1": image1, "image2": image2}, blend_factor=1.0, blend_mode="normal")
    assert out.shape == (1, 4, 6, 3)
    torch.testing.assert_close(out, torch.full((1, 4, 6, 3), 0.25), rtol=0, atol=1e-5)


# -- ImageBlur -------------------------------------------------------------------------------------------------------
def test_blur_keeps_a_constant_image_constant(executor):
    image = torch.full((1, 9, 7, 3), 0.3)
    image[..., 1] = 0.8
    out = run_node(executor, "ImageBlur", {"image": image}, blur_radius=3, sigma=2.0)
    assert out.shape == image.shape
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("radius", "sigma"), [(1, 1.0), (2, 0.8), (3, 2.0)])
def test_blur_spreads_an_impulse_symmetrically_as_a_gaussian(executor, radius, sigma):
    size, c = 11, 5
    image = torch.zeros(1, size, size, 3)
    image[0, c, c] = 1.0
    out = run_node(executor, "ImageBlur", {"image": image}, blur_radius=radius, sigma=sigma)[0, ..., 0]
    torch.testing.assert_close(out, out.flip(0), rtol=0, atol=1e-7)
    torch.testing.assert_close(out, out.flip(1), rtol=0, atol=1e-7)
    torch.testing.assert_close(out, out.T, rtol=0, atol=1e-7)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)  # nothing lost, far from the edges
    assert out[c, c] == out.max() and out[c, c] < 1.0
    # Spread exactly ``radius`` pixels, with Gaussian weights.
    assert out[c, c + radius] > 0 and out[c + radius, c + radius] > 0
    assert out[c, c + radius + 1] == 0 and out[c + radius + 1, c] == 0
    # ComfyUI's kernel: sigma in radii, so a neighbour one pixel away is 1/radius out.
    assert (out[c, c + 1] / out[c, c]).item() == pytest.approx(math.exp(-1 / (2 * (sigma * radius) ** 2)), rel=1e-4)


def test_blur_of_a_corner_pixel_stays_near_the_corner(executor):
    image = torch.zeros(1, 7, 7, 1)
    image[0, 0, 0] = 1.0
    out = run_node(executor, "ImageBlur", {"image": image}, blur_radius=1, sigma=1.0)
    assert out.shape == (1, 7, 7, 1)
    assert out[0, 0, 0, 0] > 0 and out[0, 1, 1, 0] > 0 and out[0, 3:, :, 0].eq(0).all()


# -- ImageQuantize ------------------------------------------------------------------------------------------------------
def colours(image: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(p) for p in (image[0] * 255).round().to(torch.int64).reshape(-1, image.shape[-1]).tolist()}


@pytest.mark.parametrize("colors", [2, 4, 16])
@pytest.mark.parametrize("dither", ["none", "floyd-steinberg"])
def test_quantize_reduces_to_at_most_n_colours(executor, colors, dither):
    image = pattern_image(16, 16, seed=7)
    assert len(colours(image)) > 200
    out = run_node(executor, "ImageQuantize", {"image": image}, colors=colors, dither=dither)
    assert out.shape == image.shape
    assert 1 < len(colours(out)) <= colors
    assert (out - image).abs().mean() < 0.35  # still a likeness of the picture


def test_quantize_keeps_a_picture_that_has_few_enough_colours(executor):
    image = torch.zeros(1, 4, 4, 3)
    image[0, :2] = torch.tensor([1.0, 0.0, 0.0])
    image[0, 2:] = torch.tensor([0.0, 0.0, 1.0])
    out = run_node(executor, "ImageQuantize", {"image": image}, colors=4, dither="none")
    assert torch.equal(out, image)


def test_quantize_each_item_of_a_batch(executor):
    image = pattern_image(8, 8, batch=2, seed=8)
    out = run_node(executor, "ImageQuantize", {"image": image}, colors=3, dither="none")
    assert out.shape == image.shape
    assert len(colours(out[:1])) <= 3 and len(colours(out[1:])) <= 3


# -- ImageCrop -------------------------------------------------------------------------------------------------------
def test_crop_size_and_offset(executor):
    image = pattern_image(6, 8, batch=2, seed=9)
    out = run_node(executor, "ImageCrop", {"image": image}, width=3, height=2, x=1, y=2)
    assert out.shape == (2, 2, 3, 3)
    assert torch.equal(out, image[:, 2:4, 1:4])


def test_crop_clamps_to_the_picture(executor):
    image = pattern_image(6, 8, seed=10)
    beyond_size = run_node(executor, "ImageCrop", {"image": image}, width=100, height=100, x=5, y=4)
    assert torch.equal(beyond_size, image[:, 4:, 5:])
    beyond_offset = run_node(executor, "ImageCrop", {"image": image}, width=3, height=3, x=50, y=50)
    assert beyond_offset.shape == (1, 1, 1, 3)  # the last pixel, not an empty picture
    assert torch.equal(beyond_offset, image[:, 5:, 7:])
    whole = run_node(executor, "ImageCrop", {"image": image}, width=512, height=512, x=0, y=0)
    assert torch.equal(whole, image)
