"""Boolean logic and a switch that picks one of two values."""

from __future__ import annotations

from typing import Any

from studio.api import ANY, Boolean, Combo, Input, Node, Output, RunContext

LOGIC = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": lambda a, b: a != b,
    "nand": lambda a, b: not (a and b),
    "nor": lambda a, b: not (a or b),
}


class BooleanLogic(Node):
    NAME = "BooleanLogic"
    DISPLAY_NAME = "Logic"
    CATEGORY = "utils/logic"
    DESCRIPTION = "Combine two true/false values."
    INPUTS = [Boolean("a", False), Boolean("b", False), Combo("operation", list(LOGIC))]
    OUTPUTS = [Output("BOOLEAN", "BOOLEAN")]

    def run(self, ctx: RunContext, a: bool, b: bool, operation: str) -> bool:
        return bool(LOGIC[operation](a, b))


class BooleanNot(Node):
    NAME = "BooleanNot"
    DISPLAY_NAME = "Not"
    CATEGORY = "utils/logic"
    DESCRIPTION = "True becomes false and false becomes true."
    INPUTS = [Boolean("value", False)]
    OUTPUTS = [Output("BOOLEAN", "BOOLEAN")]

    def run(self, ctx: RunContext, value: bool) -> bool:
        return not value


class Switch(Node):
    NAME = "Switch"
    CATEGORY = "utils/logic"
    DESCRIPTION = ("Pass on_true or on_false on, depending on select. Both branches are computed "
                   "(and cached), so flipping select back and forth costs nothing.")
    INPUTS = [
        Boolean("select", True),
        Input("on_true", ANY, optional=True),
        Input("on_false", ANY, optional=True),
    ]
    OUTPUTS = [Output("value", ANY)]

    def run(self, ctx: RunContext, select: bool, on_true: Any = None, on_false: Any = None, **_: Any) -> Any:
        chosen = "on_true" if select else "on_false"
        value = on_true if select else on_false
        if value is None:
            raise ValueError(f"select is {str(select).lower()} but {chosen} is not connected")
        return value


NODES = [BooleanLogic, BooleanNot, Switch]
