"""Inputs: turning constants and command-line text into values of the input's type."""

from __future__ import annotations

import math

import pytest

from studio.api import ANY, MISSING, Boolean, Combo, Float, Input, InputValueError, Int, String


# -- coerce: constants from a workflow file -----------------------------------------------------
def test_int_coerce():
    inp = Int("steps", 20)
    assert inp.coerce(7) == 7
    value = inp.coerce(7.0)
    assert value == 7 and type(value) is int
    for bad in (7.5, "7", True, None, [7], math.inf, math.nan):
        with pytest.raises(InputValueError, match="whole number"):
            inp.coerce(bad)


def test_int_coerce_message_names_the_value():
    with pytest.raises(InputValueError) as info:
        Int("steps").coerce("seven")
    assert str(info.value) == "expects a whole number, got str 'seven'"
    with pytest.raises(InputValueError) as info:
        Int("steps").coerce(None)
    assert "null" in str(info.value)


def test_float_coerce():
    inp = Float("cfg", 7.0)
    value = inp.coerce(3)
    assert value == 3.0 and type(value) is float
    assert inp.coerce(2.5) == 2.5
    for bad in ("2.5", True, False, None, {}):
        with pytest.raises(InputValueError, match="a number"):
            inp.coerce(bad)


def test_float_coerce_of_a_huge_whole_number_is_refused_cleanly():
    # JSON allows integers of any size; one too big for a float must be an InputValueError
    # (which the validator reports against the node), not an OverflowError that escapes.
    inp = Float("cfg", 7.0)
    with pytest.raises(InputValueError):
        inp.coerce(10**400)


def test_string_coerce():
    inp = String("prompt", "")
    assert inp.coerce("a cat") == "a cat"
    assert inp.coerce("") == ""
    for bad in (1, 1.5, True, None, ["a"]):
        with pytest.raises(InputValueError, match="text"):
            inp.coerce(bad)


def test_boolean_coerce():
    inp = Boolean("enabled", False)
    assert inp.coerce(True) is True
    assert inp.coerce(False) is False
    for bad in (1, 0, "true", "false", None):
        with pytest.raises(InputValueError, match="true or false"):
            inp.coerce(bad)


def test_union_coerce_keeps_a_member_type_then_converts_in_order():
    int_first = Input("x", "INT|FLOAT")
    assert type(int_first.coerce(3)) is int
    assert type(int_first.coerce(3.5)) is float
    # A value already of a member type keeps it: 2.0 stays FLOAT, 3 stays INT.
    assert type(int_first.coerce(2.0)) is float
    float_first = Input("x", "FLOAT|INT")
    assert type(float_first.coerce(3)) is int
    # Conversion (needed only when no member matches exactly) follows the declared order.
    assert type(Input("x", "FLOAT|STRING").coerce(3)) is float
    mixed = Input("x", "INT|STRING")
    assert mixed.coerce("abc") == "abc"
    assert mixed.coerce(4) == 4
    with pytest.raises(InputValueError) as info:
        mixed.coerce(None)
    assert "whole number or text" in str(info.value)


def test_wildcard_coerce_accepts_anything():
    inp = Input("source", ANY)
    for value in (1, "x", None, [1, 2], {"a": 1}):
        assert inp.coerce(value) == value


@pytest.mark.parametrize("type_name", ["IMAGE", "LATENT", "MODEL|CLIP"])
def test_non_widget_types_refuse_constants(type_name):
    inp = Input("thing", type_name)
    assert not inp.accepts_constant
    with pytest.raises(InputValueError, match="connect it instead"):
        inp.coerce(1)
    with pytest.raises(InputValueError, match="connect it instead"):
        inp.coerce("x")
    with pytest.raises(InputValueError, match="cannot be given as text"):
        inp.parse_text("x")


def test_accepts_constant():
    assert Int("a").accepts_constant
    assert Input("a", ANY).accepts_constant
    assert Input("a", "INT|IMAGE").accepts_constant
    assert not Input("a", "IMAGE").accepts_constant


# -- ranges and choices ----------------------------------------------------------------------
def test_min_max():
    inp = Int("steps", 20, min=1, max=100)
    assert inp.coerce(1) == 1
    assert inp.coerce(100) == 100
    with pytest.raises(InputValueError) as info:
        inp.coerce(0)
    assert str(info.value) == "0 is below the minimum 1"
    with pytest.raises(InputValueError) as info:
        inp.coerce(101)
    assert str(info.value) == "101 is above the maximum 100"


def test_float_min_max():
    inp = Float("denoise", 1.0, min=0.0, max=1.0)
    assert inp.coerce(0) == 0.0
    with pytest.raises(InputValueError, match="above the maximum"):
        inp.coerce(1.5)
    with pytest.raises(InputValueError, match="below the minimum"):
        inp.coerce(-0.01)


def test_combo_choices():
    combo = Combo("sampler", ["euler", "ddim"])
    assert combo.default == "euler"
    assert combo.type == "STRING"
    assert combo.coerce("ddim") == "ddim"
    with pytest.raises(InputValueError) as info:
        combo.coerce("heun")
    assert str(info.value) == "'heun' is not one of the choices ('euler', 'ddim')"
    with pytest.raises(InputValueError):
        combo.coerce(1)


def test_combo_with_callable_choices_asks_each_time():
    available = ["a.safetensors"]
    combo = Combo("ckpt", lambda: list(available))
    assert combo.default is MISSING
    assert combo.coerce("a.safetensors") == "a.safetensors"
    with pytest.raises(InputValueError):
        combo.coerce("b.safetensors")
    available.append("b.safetensors")
    assert combo.coerce("b.safetensors") == "b.safetensors"
    assert combo.current_choices() == ["a.safetensors", "b.safetensors"]


def test_empty_choices_say_none_available():
    combo = Combo("ckpt", [])
    assert combo.default is MISSING
    with pytest.raises(InputValueError, match="none available"):
        combo.coerce("x")


def test_long_choice_lists_are_shortened():
    combo = Combo("n", [f"option{i}" for i in range(40)])
    with pytest.raises(InputValueError) as info:
        combo.coerce("nope")
    message = str(info.value)
    assert "'option0'" in message and "'option11'" in message
    assert "'option12'" not in message and "…" in message


# -- parse_text: values given on the command line -----------------------------------------
def test_parse_int():
    inp = Int("steps", 20, min=1)
    assert inp.parse_text("12") == 12
    assert inp.parse_text(" 12 ") == 12
    with pytest.raises(InputValueError, match="whole number"):
        inp.parse_text("12.5")
    with pytest.raises(InputValueError, match="whole number"):
        inp.parse_text("twelve")
    with pytest.raises(InputValueError, match="below the minimum"):
        inp.parse_text("0")


def test_parse_float():
    inp = Float("cfg", 7.0, max=30.0)
    value = inp.parse_text("7")
    assert value == 7.0 and type(value) is float
    assert inp.parse_text("2.5e1") == 25.0
    with pytest.raises(InputValueError, match="a number"):
        inp.parse_text("seven")
    with pytest.raises(InputValueError, match="above the maximum"):
        inp.parse_text("31")


def test_parse_string_keeps_text_as_is():
    inp = String("prompt")
    assert inp.parse_text("  a cat, 4k  ") == "  a cat, 4k  "
    assert inp.parse_text("12") == "12"


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False), ("True", True), (" FALSE ", False)])
def test_parse_boolean(text, expected):
    assert Boolean("flag").parse_text(text) is expected


@pytest.mark.parametrize("text", ["1", "0", "yes", "no", "on", "", "t"])
def test_parse_boolean_accepts_only_true_or_false(text):
    with pytest.raises(InputValueError, match="true or false"):
        Boolean("flag").parse_text(text)


def test_parse_union():
    inp = Input("x", "INT|FLOAT")
    assert type(inp.parse_text("3")) is int
    value = inp.parse_text("3.5")
    assert value == 3.5 and type(value) is float
    with pytest.raises(InputValueError) as info:
        inp.parse_text("abc")
    assert "whole number" in str(info.value) and "a number" in str(info.value)
    assert Input("x", "INT|STRING").parse_text("abc") == "abc"
    assert Input("x", "INT|STRING").parse_text("5") == 5


def test_parse_combo():
    combo = Combo("op", ["add", "multiply"])
    assert combo.parse_text("multiply") == "multiply"
    with pytest.raises(InputValueError, match="not one of the choices"):
        combo.parse_text("divide")


def test_parse_wildcard_gives_text():
    assert Input("source", ANY).parse_text("12") == "12"


# -- declaration helpers ---------------------------------------------------------------------
def test_input_properties():
    required = Input("image", "IMAGE")
    assert required.required and not required.has_default
    optional = Input("mask", "MASK", optional=True)
    assert not optional.required
    assert Int("steps", 0).has_default
    assert Int("noise_seed").label == "noise seed"
    assert Int("noise_seed", display_name="Seed").label == "Seed"
