"""Arithmetic and comparison on numbers."""

from __future__ import annotations

import math
import operator

from studio.api import Combo, Float, Input, Int, Node, Output, RunContext

INT_OPERATIONS = ["add", "subtract", "multiply", "divide", "modulo", "power", "min", "max"]
FLOAT_OPERATIONS = ["add", "subtract", "multiply", "divide", "modulo", "power", "min", "max"]
#: Largest whole-number power result, in bits; beyond it the node refuses instead of hanging.
MAX_POWER_BITS = 4096


def _check_divisor(b: float) -> None:
    if b == 0:
        raise ValueError("cannot divide by zero (b is 0)")


class MathInt(Node):
    NAME = "MathInt"
    DISPLAY_NAME = "Math (Int)"
    CATEGORY = "utils/math"
    DESCRIPTION = "Whole-number arithmetic on a and b; divide rounds down, as Python's // does."
    INPUTS = [Int("a", 0), Int("b", 0), Combo("operation", INT_OPERATIONS)]
    OUTPUTS = [Output("result", "INT")]

    def run(self, ctx: RunContext, a: int, b: int, operation: str) -> int:
        if operation in ("divide", "modulo"):
            _check_divisor(b)
            return a // b if operation == "divide" else a % b
        if operation == "power":
            if b < 0:
                raise ValueError("a whole-number power needs b ≥ 0; use Math (Float) for fractions")
            if abs(a) > 1 and a.bit_length() * b > MAX_POWER_BITS:
                raise ValueError(f"{a} to the power {b} is too large to compute")
            return a**b
        return _BINARY[operation](a, b)


class MathFloat(Node):
    NAME = "MathFloat"
    DISPLAY_NAME = "Math (Float)"
    CATEGORY = "utils/math"
    DESCRIPTION = "Arithmetic on numbers a and b; modulo takes the sign of b, as Math (Int) does."
    INPUTS = [Float("a", 0.0), Float("b", 0.0), Combo("operation", FLOAT_OPERATIONS)]
    OUTPUTS = [Output("result", "FLOAT")]

    def run(self, ctx: RunContext, a: float, b: float, operation: str) -> float:
        if operation in ("divide", "modulo"):
            _check_divisor(b)
            return a / b if operation == "divide" else a % b
        if operation == "power":
            result = a**b
            if isinstance(result, complex):
                raise ValueError(f"{a} to the power {b} is not a real number")
            return float(result)
        return float(_BINARY[operation](a, b))


_BINARY = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul, "min": min, "max": max}


class IntToFloat(Node):
    NAME = "IntToFloat"
    DISPLAY_NAME = "Int to Float"
    CATEGORY = "utils/math"
    DESCRIPTION = "Use a whole number where a number (FLOAT) is expected."
    INPUTS = [Int("value", 0)]
    OUTPUTS = [Output("FLOAT", "FLOAT")]

    def run(self, ctx: RunContext, value: int) -> float:
        return float(value)


class FloatToInt(Node):
    NAME = "FloatToInt"
    DISPLAY_NAME = "Float to Int"
    CATEGORY = "utils/math"
    DESCRIPTION = "Turn a number into a whole number, rounding as chosen."
    INPUTS = [Float("value", 0.0), Combo("rounding", ["round", "floor", "ceil", "truncate"],
              tooltip="round: to the nearest, halves away from zero (2.5 → 3, -2.5 → -3)")]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx: RunContext, value: float, rounding: str) -> int:
        if not math.isfinite(value):
            raise ValueError(f"cannot turn {value} into a whole number")
        if rounding == "round":
            return int(math.copysign(math.floor(abs(value) + 0.5), value))
        return {"floor": math.floor, "ceil": math.ceil, "truncate": math.trunc}[rounding](value)


COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}


class Compare(Node):
    NAME = "Compare"
    CATEGORY = "utils/math"
    DESCRIPTION = "Compare two numbers (whole or not); gives true or false."
    INPUTS = [Input("a", "INT|FLOAT", default=0), Input("b", "INT|FLOAT", default=0),
              Combo("comparison", list(COMPARISONS))]
    OUTPUTS = [Output("BOOLEAN", "BOOLEAN")]

    def run(self, ctx: RunContext, a: float, b: float, comparison: str) -> bool:
        return bool(COMPARISONS[comparison](a, b))


NODES = [MathInt, MathFloat, IntToFloat, FloatToInt, Compare]
