"""The basic node pack, run the way users run it: small graphs through the executor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.api import Node, Output
from studio.core.errors import GraphValidationError
from studio.core.graph import Graph
from studio.core.resources import resource_path
from studio.core.workflow import load_workflow
from studio.engine import Executor, RunOptions

PRIMITIVE_FOR = {int: "PrimitiveInt", float: "PrimitiveFloat", str: "PrimitiveString", bool: "PrimitiveBoolean"}


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "out"


@pytest.fixture
def executor(registry, out_dir):
    return Executor(registry, options=RunOptions(output_dir=out_dir))


def build(node_type, constants=None, wired=None):
    """Node "n" of ``node_type`` with constants, and each ``wired`` value fed by a primitive node."""
    graph = Graph()
    graph.add_node(node_type, constants or {}, id="n")
    for name, value in (wired or {}).items():
        source = graph.add_node(PRIMITIVE_FOR[type(value)], {"value": value}, id=f"src_{name}")
        graph.connect(source.id, 0, "n", name)
    return graph


def run(executor, node_type, constants=None, wired=None):
    return executor.run(build(node_type, constants, wired), targets=["n"])


def value(executor, node_type, constants=None, wired=None):
    result = run(executor, node_type, constants, wired)
    assert result.ok, [r.error for r in result.failures]
    (only,) = result.outputs["n"]
    return only


def error(executor, node_type, constants=None, wired=None):
    result = run(executor, node_type, constants, wired)
    assert result.status == "failed"
    record = result.nodes["n"]
    assert record.status == "failed"
    return record.error


def problems(executor, node_type, constants=None, wired=None):
    with pytest.raises(GraphValidationError) as info:
        run(executor, node_type, constants, wired)
    return str(info.value)


def preview_text(executor, graph, source_id):
    graph.add_node("PreviewAny", id="preview")
    graph.connect(source_id, 0, "preview", "source")
    result = executor.run(graph)
    assert result.ok, [r.error for r in result.failures]
    return result.nodes["preview"].ui["text"]


# -- primitives ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("node_type", "given", "expected"), [
    ("PrimitiveInt", 42, 42),
    ("PrimitiveInt", -(2**63), -(2**63)),
    ("PrimitiveInt", 3.0, 3),
    ("PrimitiveFloat", 2.5, 2.5),
    ("PrimitiveFloat", 3, 3.0),
    ("PrimitiveString", "a cat", "a cat"),
    ("PrimitiveString", "", ""),
    ("PrimitiveStringMultiline", "line one\nline two", "line one\nline two"),
    ("PrimitiveBoolean", True, True),
    ("PrimitiveBoolean", False, False),
    ("Seed", 2**64 - 1, 2**64 - 1),
    ("Seed", 0, 0),
])
def test_primitives_give_their_value(executor, node_type, given, expected):
    result = value(executor, node_type, {"value" if node_type != "Seed" else "seed": given})
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("node_type", "default"), [
    ("PrimitiveInt", 0), ("PrimitiveFloat", 0.0), ("PrimitiveString", ""), ("PrimitiveStringMultiline", ""),
    ("PrimitiveBoolean", False), ("Seed", 0),
])
def test_primitives_default(executor, node_type, default):
    result = value(executor, node_type)
    assert result == default and type(result) is type(default)


@pytest.mark.parametrize(("node_type", "name", "bad", "words"), [
    ("PrimitiveInt", "value", 2**63, "above the maximum"),
    ("PrimitiveInt", "value", 1.5, "whole number"),
    ("PrimitiveInt", "value", "7", "whole number"),
    ("PrimitiveFloat", "value", "x", "a number"),
    ("PrimitiveFloat", "value", math.inf, "above the maximum"),
    ("PrimitiveString", "value", 5, "text"),
    ("PrimitiveBoolean", "value", "true", "true or false"),
    ("PrimitiveBoolean", "value", 1, "true or false"),
    ("Seed", "seed", -1, "below the minimum 0"),
    ("Seed", "seed", 2**64, "above the maximum"),
])
def test_primitives_refuse_bad_values_before_running(executor, node_type, name, bad, words):
    message = problems(executor, node_type, {name: bad})
    assert f"node n ({node_type})" in message and f"input '{name}'" in message and words in message


def test_primitive_feeds_several_inputs(executor):
    graph = Graph()
    graph.add_node("PrimitiveInt", {"value": 9}, id="p")
    graph.add_node("MathInt", {"operation": "multiply"}, id="n")
    graph.connect("p", 0, "n", "a")
    graph.connect("p", 0, "n", "b")
    assert executor.run(graph, targets=["n"]).outputs["n"] == (81,)


def test_seed_feeding_an_int_input(executor):
    graph = Graph()
    graph.add_node("Seed", {"seed": 123}, id="s")
    graph.add_node("MathInt", {"b": 1, "operation": "add"}, id="n")
    graph.connect("s", 0, "n", "a")
    assert executor.run(graph, targets=["n"]).outputs["n"] == (124,)


# -- MathInt -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "operation", "expected"), [
    (6, 7, "add", 13),
    (6, 7, "subtract", -1),
    (6, 7, "multiply", 42),
    (7, 2, "divide", 3),
    (-7, 2, "divide", -4),  # floor division, as Python's //
    (7, -2, "divide", -4),
    (7, 3, "modulo", 1),
    (-7, 3, "modulo", 2),
    (2, 10, "power", 1024),
    (5, 0, "power", 1),
    (-3, 3, "power", -27),
    (6, 7, "min", 6),
    (6, 7, "max", 7),
    (-(2**62), -(2**62), "add", -(2**63)),
])
def test_math_int(executor, a, b, operation, expected):
    result = value(executor, "MathInt", {"operation": operation}, {"a": a, "b": b})
    assert result == expected and type(result) is int


def test_math_int_with_constants_only(executor):
    assert value(executor, "MathInt", {"a": 20, "b": 22, "operation": "add"}) == 42


def test_math_int_default_operation_is_add(executor):
    assert value(executor, "MathInt", {"a": 2, "b": 3}) == 5


@pytest.mark.parametrize("operation", ["divide", "modulo"])
def test_math_int_divide_by_zero_message(executor, operation):
    message = error(executor, "MathInt", {"operation": operation}, {"a": 5, "b": 0})
    assert "cannot divide by zero" in message and "b is 0" in message


def test_math_int_negative_power_is_refused(executor):
    assert "b ≥ 0" in error(executor, "MathInt", {"a": 2, "b": -1, "operation": "power"})


def test_math_int_huge_power_is_refused_instead_of_hanging(executor):
    assert "too large" in error(executor, "MathInt", {"a": 10, "b": 10**9, "operation": "power"})
    assert value(executor, "MathInt", {"a": 1, "b": 10**9, "operation": "power"}) == 1


def test_math_int_unknown_operation_is_refused_before_running(executor):
    message = problems(executor, "MathInt", {"operation": "root"})
    assert "input 'operation'" in message and "not one of the choices" in message


def test_math_int_refuses_a_float_wired_in(executor):
    message = problems(executor, "MathInt", wired={"a": 1.5})
    assert "expects INT but Float gives FLOAT" in message


def test_math_int_result_out_of_range_for_the_next_input_fails_that_node(executor):
    graph = Graph()
    graph.add_node("MathInt", {"a": 0, "b": 5, "operation": "subtract"}, id="m")
    graph.add_node("Seed", id="n")
    graph.connect("m", 0, "n", "seed")
    result = executor.run(graph, targets=["n"])
    assert result.status == "failed"
    assert result.nodes["m"].status == "executed"
    assert result.nodes["n"].error == "input 'seed': -5 is below the minimum 0"


# -- MathFloat ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "operation", "expected"), [
    (1.5, 2.25, "add", 3.75),
    (1.5, 2.25, "subtract", -0.75),
    (1.5, 4.0, "multiply", 6.0),
    (7.0, 2.0, "divide", 3.5),
    (-7.0, 2.0, "divide", -3.5),
    (7.5, 2.0, "modulo", 1.5),
    (2.0, 0.5, "power", math.sqrt(2.0)),
    (2.0, -1.0, "power", 0.5),
    (1.5, -2.0, "min", -2.0),
    (1.5, -2.0, "max", 1.5),
])
def test_math_float(executor, a, b, operation, expected):
    result = value(executor, "MathFloat", {"operation": operation}, {"a": a, "b": b})
    assert result == pytest.approx(expected) and type(result) is float


def test_math_float_gives_float_for_whole_number_constants(executor):
    result = value(executor, "MathFloat", {"a": 2, "b": 3, "operation": "min"})
    assert result == 2.0 and type(result) is float


@pytest.mark.parametrize("operation", ["divide", "modulo"])
def test_math_float_divide_by_zero_message(executor, operation):
    assert "cannot divide by zero" in error(executor, "MathFloat", {"a": 1.0, "b": 0.0, "operation": operation})


def test_math_float_complex_power_is_refused(executor):
    message = error(executor, "MathFloat", {"a": -8.0, "b": 1 / 3, "operation": "power"})
    assert "not a real number" in message


def test_math_float_refuses_an_int_wired_in_use_int_to_float(executor):
    message = problems(executor, "MathFloat", {"operation": "add"}, {"a": 2})
    assert "expects FLOAT but Int gives INT" in message


# -- conversions ---------------------------------------------------------------------------------------
def test_int_to_float(executor):
    result = value(executor, "IntToFloat", wired={"value": 7})
    assert result == 7.0 and type(result) is float


@pytest.mark.parametrize(("given", "rounding", "expected"), [
    (2.4, "round", 2), (2.6, "round", 3), (-2.6, "round", -3),
    (2.7, "floor", 2), (-2.2, "floor", -3),
    (2.2, "ceil", 3), (-2.7, "ceil", -2),
    (2.7, "truncate", 2), (-2.7, "truncate", -2),
    (5.0, "round", 5),
])
def test_float_to_int_rounding(executor, given, rounding, expected):
    result = value(executor, "FloatToInt", {"rounding": rounding}, {"value": given})
    assert result == expected and type(result) is int


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_float_to_int_refuses_non_finite(executor, bad):
    assert "cannot turn" in error(executor, "FloatToInt", {"value": bad, "rounding": "floor"})


def test_int_to_float_to_int_chain(executor):
    graph = Graph()
    graph.add_node("PrimitiveInt", {"value": 5}, id="i")
    graph.add_node("IntToFloat", id="f")
    graph.add_node("MathFloat", {"b": 2.0, "operation": "divide"}, id="d")
    graph.add_node("FloatToInt", {"rounding": "ceil"}, id="n")
    graph.connect("i", 0, "f", "value")
    graph.connect("f", 0, "d", "a")
    graph.connect("d", 0, "n", "value")
    assert executor.run(graph, targets=["n"]).outputs["n"] == (3,)


# -- Compare ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "comparison", "expected"), [
    (1, 1.0, "==", True), (1, 1.5, "==", False),
    (2, 2.5, "!=", True), (2.0, 2, "!=", False),
    (2, 2.5, "<", True), (2.5, 2, "<", False),
    (2, 2.0, "<=", True), (3, 2.5, "<=", False),
    (3, 2.5, ">", True), (2, 2.0, ">", False),
    (2.0, 2, ">=", True), (1.9, 2, ">=", False),
    (-3, -2, "<", True), (10**18, 10**18 + 1, "<", True),
])
def test_compare_mixes_ints_and_floats(executor, a, b, comparison, expected):
    result = value(executor, "Compare", {"comparison": comparison}, {"a": a, "b": b})
    assert result is expected


def test_compare_with_constants(executor):
    assert value(executor, "Compare", {"a": 2.5, "b": 2, "comparison": ">"}) is True
    assert value(executor, "Compare", {"a": 2, "b": 2}) is True  # default comparison is ==


def test_compare_refuses_text(executor):
    message = problems(executor, "Compare", wired={"a": "one"})
    assert "input 'a'" in message and "STRING" in message


# -- logic ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("operation", "table"), [
    ("and", [False, False, False, True]),
    ("or", [False, True, True, True]),
    ("xor", [False, True, True, False]),
    ("nand", [True, True, True, False]),
    ("nor", [True, False, False, False]),
])
def test_boolean_logic_truth_tables(executor, operation, table):
    got = [value(executor, "BooleanLogic", {"operation": operation}, {"a": a, "b": b})
           for a, b in ((False, False), (False, True), (True, False), (True, True))]
    assert got == table
    assert all(type(v) is bool for v in got)


@pytest.mark.parametrize(("given", "expected"), [(True, False), (False, True)])
def test_boolean_not(executor, given, expected):
    assert value(executor, "BooleanNot", wired={"value": given}) is expected


def test_compare_into_logic_into_not(executor):
    graph = Graph()
    graph.add_node("Compare", {"a": 3, "b": 2, "comparison": ">"}, id="cmp")
    graph.add_node("BooleanLogic", {"b": True, "operation": "and"}, id="and")
    graph.add_node("BooleanNot", id="n")
    graph.connect("cmp", 0, "and", "a")
    graph.connect("and", 0, "n", "value")
    assert executor.run(graph, targets=["n"]).outputs["n"] == (False,)


# -- Switch ---------------------------------------------------------------------------------------------
def switch_graph(select, *, with_false=True):
    graph = Graph()
    graph.add_node("Switch", {"select": select}, id="n")
    graph.add_node("PrimitiveString", {"value": "yes"}, id="t")
    graph.connect("t", 0, "n", "on_true")
    if with_false:
        graph.add_node("PrimitiveInt", {"value": 0}, id="f")
        graph.connect("f", 0, "n", "on_false")
    return graph


@pytest.mark.parametrize(("select", "expected"), [(True, "yes"), (False, 0)])
def test_switch_picks_a_branch(executor, select, expected):
    result = executor.run(switch_graph(select), targets=["n"])
    assert result.ok and result.outputs["n"] == (expected,)


def test_switch_selected_branch_not_connected_is_an_error(executor):
    result = executor.run(switch_graph(False, with_false=False), targets=["n"])
    assert result.status == "failed"
    assert result.nodes["n"].error == "ValueError: select is false but on_false is not connected"


def test_switch_unselected_branch_may_be_unconnected(executor):
    result = executor.run(switch_graph(True, with_false=False), targets=["n"])
    assert result.ok and result.outputs["n"] == ("yes",)


def test_switch_select_from_a_comparison_and_flipping_back_is_cached(executor):
    graph = switch_graph(True)
    graph.add_node("Compare", {"a": 1, "b": 2, "comparison": "<"}, id="cmp")
    graph.connect("cmp", 0, "n", "select")
    assert preview_text(executor, graph, "n") == "yes"
    graph.set_input("cmp", "comparison", ">")
    assert executor.run(graph).nodes["preview"].ui["text"] == "0"
    graph.set_input("cmp", "comparison", "<")
    result = executor.run(graph)
    assert result.count("executed") == 0 and result.nodes["preview"].ui["text"] == "yes"


# -- text -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "delimiter", "expected"), [
    ("a cat", "on a mat", " ", "a cat on a mat"),
    ("one", "two", ", ", "one, two"),
    ("x", "", "", "x"),
])
def test_string_concatenate(executor, a, b, delimiter, expected):
    assert value(executor, "StringConcatenate", {"delimiter": delimiter}, {"string_a": a, "string_b": b}) == expected


@pytest.mark.parametrize(("text", "find", "replace", "expected"), [
    ("a red car and a red hat", "red", "blue", "a blue car and a blue hat"),
    ("nothing here", "zzz", "y", "nothing here"),
    ("keep", "", "X", "keep"),
    ("remove me", " me", "", "remove"),
])
def test_string_replace(executor, text, find, replace, expected):
    assert value(executor, "StringReplace", {"find": find, "replace": replace}, {"string": text}) == expected


def test_string_format_fills_slots_with_format_specs(executor):
    result = value(executor, "StringFormat", {"template": "{a:.2f} / {b:04d} / {c} / {d!r}"},
                   {"a": 3.14159, "b": 7, "c": "cat", "d": True})
    assert result == "3.14 / 0007 / cat / True"


def test_string_format_escaped_braces_need_no_inputs(executor):
    assert value(executor, "StringFormat", {"template": "{{a}} is literal"}) == "{a} is literal"


def test_string_format_default_template(executor):
    assert value(executor, "StringFormat", wired={"a": "only a"}) == "only a"


def test_string_format_unknown_field_fails_with_a_message(executor):
    message = error(executor, "StringFormat", {"template": "{a} and {name}"}, {"a": 1})
    assert "{name}" in message and "only {a}, {b}, {c} and {d}" in message


def test_string_format_unconnected_slot_fails_with_a_message(executor):
    message = error(executor, "StringFormat", {"template": "{a} {c}"}, {"a": 1})
    assert message == "the template uses {c} but input c is not connected"


def test_string_format_malformed_template(executor):
    assert "malformed" in error(executor, "StringFormat", {"template": "{a"}, {"a": 1})


def test_string_format_spec_that_does_not_fit_the_value(executor):
    message = error(executor, "StringFormat", {"template": "{a:d}"}, {"a": "text"})
    assert message.startswith("ValueError: cannot fill the template")


def test_string_format_reports_every_problem(executor):
    message = error(executor, "StringFormat", {"template": "{b} {e}"})
    assert "input b is not connected" in message and "{e}" in message


# -- outputs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "text"), [
    (42, "42"), (2.5, "2.5"), (True, "true"), (False, "false"), ("plain text", "plain text"), ("", ""),
])
def test_preview_any_shows_text(executor, given, text):
    graph = Graph()
    graph.add_node(PRIMITIVE_FOR[type(given)], {"value": given}, id="p")
    assert preview_text(executor, graph, "p") == text


def test_preview_any_describes_arrays_by_shape(registry, executor):
    class MakeArray(Node):
        NAME = "MakeArray"
        OUTPUTS = [Output("array", "ARRAY")]

        def run(self, ctx):
            return np.zeros((2, 3))

    registry.register(MakeArray, pack="t")
    graph = Graph()
    graph.add_node("t.MakeArray", id="a")
    assert preview_text(executor, graph, "a") == "ndarray of shape (2, 3)"


def test_preview_any_needs_its_input(executor):
    graph = Graph()
    graph.add_node("PreviewAny", id="preview")
    with pytest.raises(GraphValidationError, match="required input is not connected"):
        executor.run(graph)


def save_graph(text, prefix="nuance"):
    graph = Graph()
    graph.add_node("PrimitiveString", {"value": text}, id="txt")
    graph.add_node("SaveText", {"filename_prefix": prefix}, id="save")
    graph.connect("txt", 0, "save", "text")
    return graph


def test_save_text_writes_files_with_a_counter(executor, out_dir):
    graph = save_graph("first")
    first = executor.run(graph)
    graph.set_input("txt", "value", "second")
    second = executor.run(graph)
    path1, path2 = out_dir / "nuance_00001_.txt", out_dir / "nuance_00002_.txt"
    assert path1.read_text(encoding="utf-8") == "first"
    assert path2.read_text(encoding="utf-8") == "second"
    assert first.files == [str(path1.resolve())] and second.files == [str(path2.resolve())]
    assert second.nodes["save"].ui == {"text": "second", "files": [str(path2.resolve())]}


def test_save_text_never_overwrites_existing_files(executor, out_dir):
    out_dir.mkdir(parents=True)
    (out_dir / "notes_00003_.txt").write_text("keep me", encoding="utf-8")
    result = executor.run(save_graph("new", prefix="notes"))
    assert result.ok
    assert (out_dir / "notes_00003_.txt").read_text(encoding="utf-8") == "keep me"
    assert (out_dir / "notes_00004_.txt").read_text(encoding="utf-8") == "new"


def test_save_text_writes_unicode_and_into_sub_folders(executor, out_dir):
    result = executor.run(save_graph("6 × 7 = 42 ✓\nzweite Zeile", prefix="day1/hello"))
    path = out_dir / "day1" / "hello_00001_.txt"
    assert result.files == [str(path.resolve())]
    assert path.read_text(encoding="utf-8") == "6 × 7 = 42 ✓\nzweite Zeile"


def test_save_text_refuses_a_prefix_outside_the_output_folder(executor, tmp_path):
    result = executor.run(save_graph("x", prefix="../outside"))
    assert result.status == "failed"
    assert "outside the output folder" in result.nodes["save"].error
    assert not list(tmp_path.rglob("outside*"))


def test_save_text_uses_the_default_output_folder(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("NUANCE_DATA_DIR", str(tmp_path / "data"))
    result = Executor(registry).run(save_graph("default place"))
    path = tmp_path / "data" / "output" / "nuance_00001_.txt"
    assert result.files == [str(path.resolve())] and path.read_text(encoding="utf-8") == "default place"


# -- the pack as a whole -----------------------------------------------------------------------------------
BASIC_NODES = {
    "PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean", "Seed",
    "MathInt", "MathFloat", "IntToFloat", "FloatToInt", "Compare", "BooleanLogic", "BooleanNot", "Switch",
    "StringConcatenate", "StringReplace", "StringFormat", "PreviewAny", "SaveText",
}


def test_basic_pack_registers_every_node_under_its_bare_name(registry):
    types = {spec.type for spec in registry}
    assert BASIC_NODES <= types
    assert all(registry.spec(name).pack is None for name in BASIC_NODES)
    assert {name for name in BASIC_NODES if registry.spec(name).output_node} == {"PreviewAny", "SaveText"}


def test_bundled_hello_workflow_runs(registry, executor, out_dir):
    workflow = load_workflow(resource_path("workflows", "hello.json"), registry)
    result = executor.run(workflow.graph)
    assert result.ok
    assert result.nodes["7"].ui == {"text": "Hello, world! 6 × 7 = 42"}
    assert (out_dir / "hello_00001_.txt").read_text(encoding="utf-8") == "Hello, world! 6 × 7 = 42"



@pytest.mark.parametrize(("given", "expected"), [(2.5, 3), (-2.5, -3), (3.5, 4), (2.4999, 2), (-0.5, -1)])
def test_float_to_int_rounds_halves_away_from_zero(executor, given, expected):
    assert value(executor, "FloatToInt", {"value": given, "rounding": "round"}) == expected


def test_math_float_modulo_takes_the_sign_of_b_like_math_int(executor):
    assert value(executor, "MathFloat", {"a": -7.0, "b": 3.0, "operation": "modulo"}) == 2.0
    assert value(executor, "MathInt", {"a": -7, "b": 3, "operation": "modulo"}) == 2
