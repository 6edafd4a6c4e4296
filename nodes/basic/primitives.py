"""Constant values to wire into several inputs at once (ComfyUI's Primitive* names)."""

from __future__ import annotations

import sys

from studio.api import Boolean, Float, Int, Node, Output, RunContext, String

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
SEED_MAX = 2**64 - 1


class PrimitiveInt(Node):
    NAME = "PrimitiveInt"
    DISPLAY_NAME = "Int"
    CATEGORY = "utils/primitive"
    DESCRIPTION = "A whole number to feed into other nodes' inputs."
    INPUTS = [Int("value", 0, min=INT_MIN, max=INT_MAX)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx: RunContext, value: int) -> int:
        return value


class PrimitiveFloat(Node):
    NAME = "PrimitiveFloat"
    DISPLAY_NAME = "Float"
    CATEGORY = "utils/primitive"
    DESCRIPTION = "A number to feed into other nodes' inputs."
    INPUTS = [Float("value", 0.0, min=-sys.float_info.max, max=sys.float_info.max)]
    OUTPUTS = [Output("FLOAT", "FLOAT")]

    def run(self, ctx: RunContext, value: float) -> float:
        return value


class PrimitiveString(Node):
    NAME = "PrimitiveString"
    DISPLAY_NAME = "String"
    CATEGORY = "utils/primitive"
    DESCRIPTION = "A line of text to feed into other nodes' inputs."
    INPUTS = [String("value", "")]
    OUTPUTS = [Output("STRING", "STRING")]

    def run(self, ctx: RunContext, value: str) -> str:
        return value


class PrimitiveStringMultiline(Node):
    NAME = "PrimitiveStringMultiline"
    DISPLAY_NAME = "String (Multiline)"
    CATEGORY = "utils/primitive"
    DESCRIPTION = "Text of several lines (a shared prompt, say) to feed into other nodes' inputs."
    INPUTS = [String("value", "", multiline=True)]
    OUTPUTS = [Output("STRING", "STRING")]

    def run(self, ctx: RunContext, value: str) -> str:
        return value


class PrimitiveBoolean(Node):
    NAME = "PrimitiveBoolean"
    DISPLAY_NAME = "Boolean"
    CATEGORY = "utils/primitive"
    DESCRIPTION = "True or false, to feed into other nodes' inputs."
    INPUTS = [Boolean("value", False)]
    OUTPUTS = [Output("BOOLEAN", "BOOLEAN")]

    def run(self, ctx: RunContext, value: bool) -> bool:
        return value


class Seed(Node):
    NAME = "Seed"
    CATEGORY = "utils/primitive"
    DESCRIPTION = ("A random seed shared by several samplers. The editor can fix, increment or randomise "
                   "it after each run; the value itself is a plain number, so runs stay reproducible.")
    INPUTS = [Int("seed", 0, min=0, max=SEED_MAX, tooltip="The same seed gives the same noise.")]
    OUTPUTS = [Output("seed", "INT")]

    def run(self, ctx: RunContext, seed: int) -> int:
        return seed


NODES = [PrimitiveInt, PrimitiveFloat, PrimitiveString, PrimitiveStringMultiline, PrimitiveBoolean, Seed]
