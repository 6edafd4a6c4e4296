"""Constant values to wire into several inputs at once (ComfyUI's Primitive* names)."""

from __future__ import annotations

import sys
from typing import Any

from studio.api import Boolean, Float, Int, Node, Output, RunContext, String

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
SEED_MAX = 2**64 - 1


class _Primitive(Node):
    """A constant: its one input, ``value``, is its output."""

    CATEGORY = "utils/primitive"

    def run(self, ctx: RunContext, value: Any) -> Any:
        return value


class PrimitiveInt(_Primitive):
    NAME = "PrimitiveInt"
    DISPLAY_NAME = "Int"
    DESCRIPTION = "A whole number to feed into other nodes' inputs."
    INPUTS = [Int("value", 0, min=INT_MIN, max=INT_MAX)]
    OUTPUTS = [Output("INT", "INT")]


class PrimitiveFloat(_Primitive):
    NAME = "PrimitiveFloat"
    DISPLAY_NAME = "Float"
    DESCRIPTION = "A number to feed into other nodes' inputs."
    INPUTS = [Float("value", 0.0, min=-sys.float_info.max, max=sys.float_info.max)]
    OUTPUTS = [Output("FLOAT", "FLOAT")]


class PrimitiveString(_Primitive):
    NAME = "PrimitiveString"
    DISPLAY_NAME = "String"
    DESCRIPTION = "A line of text to feed into other nodes' inputs."
    INPUTS = [String("value", "")]
    OUTPUTS = [Output("STRING", "STRING")]


class PrimitiveStringMultiline(_Primitive):
    NAME = "PrimitiveStringMultiline"
    DISPLAY_NAME = "String (Multiline)"
    DESCRIPTION = "Text of several lines (a shared prompt, say) to feed into other nodes' inputs."
    INPUTS = [String("value", "", multiline=True)]
    OUTPUTS = [Output("STRING", "STRING")]


class PrimitiveBoolean(_Primitive):
    NAME = "PrimitiveBoolean"
    DISPLAY_NAME = "Boolean"
    DESCRIPTION = "True or false, to feed into other nodes' inputs."
    INPUTS = [Boolean("value", False)]
    OUTPUTS = [Output("BOOLEAN", "BOOLEAN")]


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
