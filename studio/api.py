"""The public node-authoring API. Built-in node packs and community plugins import from here
(and only here), so that both work through one mechanism.

Example::

    from studio.api import Node, Int, Output

    class Double(Node):
        NAME = "Double"
        CATEGORY = "math"
        INPUTS = [Int("value", 1)]
        OUTPUTS = [Output("result", "INT")]

        def run(self, ctx, value):
            return value * 2
"""

from studio.core.errors import Cancelled, InputValueError, NuanceError
from studio.core.nodedef import (
    API_VERSION,
    MISSING,
    Boolean,
    Combo,
    Float,
    Input,
    Int,
    Node,
    NodePack,
    Output,
    String,
)
from studio.core.types import ANY
from studio.engine.context import RunContext

__all__ = [
    "ANY", "API_VERSION", "MISSING", "Boolean", "Cancelled", "Combo", "Float", "Input",
    "InputValueError", "Int", "Node", "NodePack", "NuanceError", "Output", "RunContext", "String",
]
