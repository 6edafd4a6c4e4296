"""Latent compositing, batch and transform nodes (``nodes/sd/latent.py``), run through the executor
on small hand-made latents whose right answers can be written down; checked against ComfyUI's
definitions (input names and order, defaults, semantics, noise_mask and batch_index handling)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tensor_sources import MaskSource, source

from studio.api import Node, Output, String
from studio.core.graph import Graph
from studio.engine import Executor, RunOptions


class LatentSource(Node):
    """Test-only: a JSON object {"samples": [...], "noise_mask"?: [...], "batch_index"?: [...]} → LATENT."""

    NAME = "Latent"
    INPUTS = [String("data", "{}")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx, data):
        raw = json.loads(data)
        out: dict[str, Any] = {"samples": torch.tensor(raw["samples"], dtype=torch.float32)}
        if "noise_mask" in raw:
            out["noise_mask"] = torch.tensor(raw["noise_mask"], dtype=torch.float32)
        if "batch_index" in raw:
            out["batch_index"] = raw["batch_index"]
        return out


@pytest.fixture
def executor(registry, tmp_path: Path) -> Executor:
    registry.register(LatentSource, pack="t")
    registry.register(MaskSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu"))


def latent_source(graph: Graph, samples: torch.Tensor, noise_mask: torch.Tensor | None = None,
                  batch_index: list[int] | None = None) -> str:
    data: dict[str, Any] = {"samples": samples.tolist()}
    if noise_mask is not None:
        data["noise_mask"] = noise_mask.tolist()
    if batch_index is not None:
        data["batch_index"] = batch_index
    return graph.add_node("t.Latent", {"data": json.dumps(data)}).id


def run_node(executor: Executor, node_type: str, latents: dict[str, Any], masks: dict[str, torch.Tensor] | None = None,
             **values: Any) -> dict[str, Any]:
    """Run ``node_type``; ``latents`` maps input names to a tensor or (tensor, noise_mask, batch_index)."""
    graph = Graph()
    node = graph.add_node(node_type, values, id="node")
    for name, value in latents.items():
        args = value if isinstance(value, tuple) else (value,)
        graph.connect(latent_source(graph, *args), 0, node.id, name)
    for name, tensor in (masks or {}).items():
        graph.connect(source(graph, tensor), 0, node.id, name)
    result = executor.run(graph, [node.id])
    assert result.ok, [(r.node_id, r.error or r.reason) for r in result.nodes.values()]
    (value,) = result.outputs["node"]
    return value


def ramp(*shape: int) -> torch.Tensor:
    return torch.arange(float(torch.Size(shape).numel())).reshape(shape)


# -- definitions match ComfyUI (widget values are stored by position) ---------------------------------------------------
MAX = 16384
DEFINITIONS = {
    "LatentComposite": [("samples_to", None), ("samples_from", None), ("x", (0, 0, MAX, 8)), ("y", (0, 0, MAX, 8)),
                        ("feather", (0, 0, MAX, 8))],
    "LatentCompositeMasked": [("destination", None), ("source", None), ("x", (0, 0, MAX, 8)), ("y", (0, 0, MAX, 8)),
                              ("resize_source", False), ("mask", None)],
    "RepeatLatentBatch": [("samples", None), ("amount", (1, 1, 64, 1))],
    "LatentFromBatch": [("samples", None), ("batch_index", (0, 0, 63, 1)), ("length", (1, 1, 64, 1))],
    "LatentFlip": [("samples", None), ("flip_method", ["x-axis: vertically", "y-axis: horizontally"])],
    "LatentRotate": [("samples", None), ("rotation", ["none", "90 degrees", "180 degrees", "270 degrees"])],
    "LatentCrop": [("samples", None), ("width", (512, 64, MAX, 8)), ("height", (512, 64, MAX, 8)), ("x", (0, 0, MAX, 8)),
                   ("y", (0, 0, MAX, 8))],
    "LatentBlend": [("samples1", None), ("samples2", None), ("blend_factor", (0.5, 0.0, 1.0, 0.01))],
}


@pytest.mark.parametrize("node_type", sorted(DEFINITIONS))
def test_inputs_match_comfyui(registry, node_type):
    spec = registry.spec(node_type)
    assert [i.name for i in spec.inputs] == [name for name, _ in DEFINITIONS[node_type]]
    assert [o.type for o in spec.outputs] == ["LATENT"]
    for inp, (_, expected) in zip(spec.inputs, DEFINITIONS[node_type], strict=True):
        if isinstance(expected, tuple):
            assert (inp.default, inp.min, inp.max, inp.step) == expected, inp.name
        elif isinstance(expected, list):
            assert inp.current_choices() == expected and inp.default == expected[0]
        elif isinstance(expected, bool):
            assert inp.type == "BOOLEAN" and inp.default is expected
    assert spec.input_map.get("mask") is None or spec.input_map["mask"].optional


# -- LatentComposite ----------------------------------------------------------------------------------------------------
def test_composite_without_feather_pastes_exactly_and_keeps_the_destination_extras(executor):
    to = torch.zeros(1, 4, 6, 6)
    noise_mask = torch.ones(1, 1, 48, 48)
    src = ramp(1, 4, 2, 3) + 1
    out = run_node(executor, "LatentComposite", {"samples_to": (to, noise_mask, [7]), "samples_from": src},
                   x=8, y=16, feather=0)
    expected = to.clone()
    expected[:, :, 2:4, 1:4] = src
    assert torch.equal(out["samples"], expected)
    assert torch.equal(out["noise_mask"], noise_mask) and out["batch_index"] == [7]


def test_composite_positions_are_rounded_down_to_latent_pixels_and_clipped_at_the_edge(executor):
    to = torch.zeros(1, 4, 4, 4)
    src = torch.ones(1, 4, 3, 3)
    out = run_node(executor, "LatentComposite", {"samples_to": to, "samples_from": src}, x=23, y=0, feather=0)["samples"]
    assert torch.equal(out[..., :3, 2:], torch.ones(1, 4, 3, 2))  # x 23 → column 2; only 2 columns fit
    assert out[..., :, :2].eq(0).all() and out[..., 3, :].eq(0).all()
    beyond = run_node(executor, "LatentComposite", {"samples_to": to, "samples_from": src}, x=64, y=0, feather=0)
    assert torch.equal(beyond["samples"], to)


def test_composite_feather_ramps_the_inner_edges_linearly(executor):
    to = torch.zeros(1, 4, 8, 8)
    src = torch.ones(1, 4, 4, 4)
    out = run_node(executor, "LatentComposite", {"samples_to": to, "samples_from": src}, x=16, y=16, feather=16)["samples"]
    ramp_ = torch.tensor([0.5, 1.0, 1.0, 0.5])  # feather 16 px = 2 latent pixels: 1/2, then 2/2
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = ramp_[:, None] * ramp_[None, :]
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out, expected.expand(1, 4, 8, 8), rtol=0, atol=1e-6)

    # At the top-left corner the pasted edges on the border are not faded (nothing to blend with there).
    corner = run_node(executor, "LatentComposite", {"samples_to": to + 2, "samples_from": src}, x=0, y=0,
                      feather=16)["samples"][0, 0]
    edge = torch.tensor([1.0, 1.0, 1.0, 0.5])
    weights = edge[:, None] * edge[None, :]
    torch.testing.assert_close(corner[:4, :4], weights * 1 + (1 - weights) * 2, rtol=0, atol=1e-6)
    assert corner[4:, :].eq(2).all() and corner[:, 4:].eq(2).all()


# -- LatentCompositeMasked ------------------------------------------------------------------------------------------------
def test_composite_masked_blends_through_the_mask(executor):
    dest = torch.zeros(1, 4, 4, 4)
    src = torch.full((1, 4, 2, 2), 2.0)
    m = torch.tensor([[[1.0, 0.0], [0.5, 0.0]]])
    out = run_node(executor, "LatentCompositeMasked", {"destination": (dest, None, [3]), "source": src}, {"mask": m},
                   x=8, y=8, resize_source=False)
    expected = torch.zeros(4, 4)
    expected[1, 1], expected[2, 1] = 2.0, 1.0
    torch.testing.assert_close(out["samples"][0], expected.expand(4, 4, 4), rtol=0, atol=1e-6)
    assert out["batch_index"] == [3]


def test_composite_masked_without_a_mask_replaces_and_can_resize_the_source(executor):
    dest = ramp(1, 4, 4, 4)
    src = torch.full((1, 4, 2, 2), -1.0)
    plain = run_node(executor, "LatentCompositeMasked", {"destination": dest, "source": src}, x=16, y=0,
                     resize_source=False)["samples"]
    expected = dest.clone()
    expected[..., 0:2, 2:4] = -1.0
    assert torch.equal(plain, expected)
    resized = run_node(executor, "LatentCompositeMasked", {"destination": dest, "source": src}, x=0, y=0,
                       resize_source=True)["samples"]
    torch.testing.assert_close(resized, torch.full((1, 4, 4, 4), -1.0), rtol=0, atol=1e-6)


def test_composite_masked_repeats_a_single_source_over_the_destination_batch(executor):
    dest = torch.zeros(3, 4, 2, 2)
    src = torch.ones(1, 4, 2, 2)
    out = run_node(executor, "LatentCompositeMasked", {"destination": dest, "source": src}, x=0, y=0,
                   resize_source=False)["samples"]
    assert torch.equal(out, torch.ones(3, 4, 2, 2))


# -- RepeatLatentBatch / LatentFromBatch -------------------------------------------------------------------------------
def test_repeat_latent_batch_repeats_samples_noise_mask_and_batch_index(executor):
    samples = torch.arange(2.0).reshape(2, 1, 1, 1).expand(2, 4, 1, 1).contiguous()
    masks = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    out = run_node(executor, "RepeatLatentBatch", {"samples": (samples, masks, [3, 5])}, amount=3)
    assert out["samples"].shape == (6, 4, 1, 1)
    assert out["samples"][:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert out["noise_mask"].shape == (6, 1, 8, 8)
    assert out["noise_mask"][:, 0, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert out["batch_index"] == [3, 5, 6, 8, 9, 11]  # each copy moves on by the span of the indices


def test_repeat_latent_batch_leaves_a_shared_noise_mask_and_no_batch_index_alone(executor):
    mask = torch.ones(1, 1, 8, 8)
    out = run_node(executor, "RepeatLatentBatch", {"samples": (torch.zeros(1, 4, 1, 1), mask)}, amount=4)
    assert out["samples"].shape == (4, 4, 1, 1)
    assert torch.equal(out["noise_mask"], mask) and "batch_index" not in out


def test_latent_from_batch_slices_and_records_batch_index(executor):
    samples = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 4, 2, 2).contiguous()
    masks = torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 1, 16, 16).contiguous()
    out = run_node(executor, "LatentFromBatch", {"samples": (samples, masks)}, batch_index=1, length=2)
    assert out["samples"][:, 0, 0, 0].tolist() == [1, 2]
    assert out["noise_mask"][:, 0, 0, 0].tolist() == [1, 2]
    assert out["batch_index"] == [1, 2]

    kept = run_node(executor, "LatentFromBatch", {"samples": (samples, None, [10, 11, 12, 13])}, batch_index=2, length=5)
    assert kept["samples"][:, 0, 0, 0].tolist() == [2, 3]  # the length stops at the end of the batch
    assert kept["batch_index"] == [12, 13]
    last = run_node(executor, "LatentFromBatch", {"samples": samples}, batch_index=9, length=1)
    assert last["samples"][:, 0, 0, 0].tolist() == [3] and last["batch_index"] == [3]


# -- flips, rotations, crop -----------------------------------------------------------------------------------------------
def test_flip_x_axis_turns_upside_down_and_y_axis_mirrors(executor):
    grid = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).expand(1, 4, 2, 3).contiguous()
    vertical = run_node(executor, "LatentFlip", {"samples": grid}, flip_method="x-axis: vertically")["samples"]
    horizontal = run_node(executor, "LatentFlip", {"samples": grid}, flip_method="y-axis: horizontally")["samples"]
    assert vertical[0, 0].tolist() == [[4, 5, 6], [1, 2, 3]]
    assert horizontal[0, 0].tolist() == [[3, 2, 1], [6, 5, 4]]


@pytest.mark.parametrize(("rotation", "expected"), [
    ("none", [[1, 2, 3], [4, 5, 6]]),
    ("90 degrees", [[4, 1], [5, 2], [6, 3]]),  # clockwise
    ("180 degrees", [[6, 5, 4], [3, 2, 1]]),
    ("270 degrees", [[3, 6], [2, 5], [1, 4]]),
])
def test_rotate_turns_clockwise(executor, rotation, expected):
    grid = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).expand(1, 4, 2, 3).contiguous()
    mask = torch.ones(1, 1, 16, 24)
    out = run_node(executor, "LatentRotate", {"samples": (grid, mask)}, rotation=rotation)
    assert out["samples"][0, 3].tolist() == expected
    assert torch.equal(out["noise_mask"], mask)  # passed on as ComfyUI does


def test_crop_cuts_in_latent_pixels_and_keeps_at_least_64_pixels(executor):
    samples = ramp(1, 4, 16, 16)
    out = run_node(executor, "LatentCrop", {"samples": samples}, width=64, height=128, x=16, y=8)["samples"]
    assert torch.equal(out, samples[..., 1:17, 2:10])
    moved = run_node(executor, "LatentCrop", {"samples": samples}, width=64, height=64, x=120, y=200)["samples"]
    assert torch.equal(moved, samples[..., 8:16, 8:16])


# -- LatentBlend ----------------------------------------------------------------------------------------------------------
def test_blend_factor_weights_samples1(executor):
    a, b = torch.full((1, 4, 2, 2), 4.0), torch.full((1, 4, 2, 2), -2.0)
    ones = run_node(executor, "LatentBlend", {"samples1": (a, None, [5]), "samples2": b}, blend_factor=1.0)
    zeros = run_node(executor, "LatentBlend", {"samples1": a, "samples2": b}, blend_factor=0.0)["samples"]
    quarter = run_node(executor, "LatentBlend", {"samples1": a, "samples2": b}, blend_factor=0.25)["samples"]
    assert torch.equal(ones["samples"], a) and ones["batch_index"] == [5]
    assert torch.equal(zeros, b)
    torch.testing.assert_close(quarter, torch.full((1, 4, 2, 2), 0.25 * 4 - 0.75 * 2))


def test_blend_resizes_samples2_to_samples1(executor):
    a, b = torch.zeros(1, 4, 4, 6), torch.full((1, 4, 2, 2), 3.0)
    out = run_node(executor, "LatentBlend", {"samples1": a, "samples2": b}, blend_factor=0.5)["samples"]
    assert out.shape == (1, 4, 4, 6)
    torch.testing.assert_close(out, torch.full((1, 4, 4, 6), 1.5), rtol=0, atol=1e-5)
