"""The nodes. Each is a class: declared sockets, one ``run`` that is a function of its inputs."""

from __future__ import annotations

from typing import Any

from studio.api import Float, Input, Node, Output, RunContext


class Brighten(Node):
    NAME = "Brighten"  # the node id becomes myplugin.Brighten
    CATEGORY = "image/adjust"
    DESCRIPTION = "Adds a constant to every pixel. A starting point: replace it with your own node."
    INPUTS = [
        Input("image", "IMAGE"),
        Float("amount", 0.1, min=-1.0, max=1.0, step=0.01, tooltip="How much to add (0 leaves the image as it is)."),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, amount: float) -> Any:
        # IMAGE is a float32 tensor [batch, height, width, channels] with values 0..1.
        return (image + amount).clamp(0.0, 1.0)
