"""Basic nodes usable in any graph: primitives, arithmetic, logic, text, a switch, outputs."""

from nodes.basic import arithmetic, logic, outputs, primitives, text
from studio.api import NodePack

NODE_PACK = NodePack(
    name="basic",
    description="Primitives, arithmetic and comparison, logic, text formatting, a switch, outputs.",
    nodes=[
        *primitives.NODES, *arithmetic.NODES, *logic.NODES, *text.NODES, *outputs.NODES,
    ],
)
