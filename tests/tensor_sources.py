"""Test-only source nodes (register them in pack ``t``): a JSON list in, an exact IMAGE (4-D) or
MASK (3-D) tensor out, so a test states its inputs exactly and the cache key follows the values."""

from __future__ import annotations

import json

import torch

from studio.api import Node, Output, String
from studio.core.graph import Graph


class ImageSource(Node):
    NAME = "Image"
    INPUTS = [String("data", "[]")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx, data):
        return torch.tensor(json.loads(data), dtype=torch.float32)


class MaskSource(ImageSource):
    NAME = "Mask"
    OUTPUTS = [Output("MASK", "MASK")]


def source(graph: Graph, value: torch.Tensor) -> str:
    """A ``t.Image`` (4-D) or ``t.Mask`` (3-D) node giving exactly ``value``."""
    kind = {4: "t.Image", 3: "t.Mask"}[value.dim()]
    return graph.add_node(kind, {"data": json.dumps(value.tolist())}).id
