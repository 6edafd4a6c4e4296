"""Checking a graph before it runs (every problem, located), and the graph model's invariants."""

from __future__ import annotations

import pytest

from studio.api import MISSING, Input, Int, Node, Output
from studio.core.errors import GraphValidationError, Problem
from studio.core.graph import Graph, GraphError, NodeMode
from studio.core.validate import check_graph, output_nodes, validate


class LoadImage(Node):
    NAME = "LoadImage"
    DISPLAY_NAME = "Load Image"
    INPUTS = [Input("image", "STRING", default="cat.png")]
    OUTPUTS = [Output("IMAGE", "IMAGE"), Output("MASK", "MASK")]


class Sampler(Node):
    NAME = "Sampler"
    INPUTS = [Int("steps", MISSING, min=1, max=150), Input("image", "IMAGE"), Input("mask", "MASK", optional=True)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]


@pytest.fixture
def reg(registry):
    registry.register(LoadImage, pack="t")
    registry.register(Sampler, pack="t")
    return registry


def only(problems):
    assert len(problems) == 1, problems
    return problems[0]


def preview_of(graph, node_id, slot=0):
    """Add a PreviewAny fed by ``node_id`` (so the node is needed by a run)."""
    preview = graph.add_node("PreviewAny")
    graph.connect(node_id, slot, preview.id, "source")
    return preview


# -- a valid graph -----------------------------------------------------------------------------
def test_valid_graph_has_no_problems_and_an_order(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt", {"value": 6})
    b = g.add_node("PrimitiveFloat", {"value": 2})
    m = g.add_node("MathInt", {"operation": "multiply"})
    g.connect(a.id, 0, m.id, "a")
    p = preview_of(g, m.id)
    p2 = preview_of(g, b.id)
    assert validate(g, reg) == []
    checked = check_graph(g, reg)
    assert set(checked.targets) == {p.id, p2.id}
    assert set(checked.order) == {a.id, b.id, m.id, p.id, p2.id}
    assert checked.order.index(a.id) < checked.order.index(m.id) < checked.order.index(p.id)
    # Constants are converted to the input's type, and defaults filled in.
    assert checked.constants[b.id] == {"value": 2.0}
    assert type(checked.constants[b.id]["value"]) is float
    assert checked.constants[m.id] == {"b": 0, "operation": "multiply"}
    assert checked.specs[m.id].type == "MathInt"


def test_only_what_the_targets_need_is_checked(reg):
    g = Graph()
    good = g.add_node("PrimitiveInt", {"value": 1})
    p_good = preview_of(g, good.id)
    bad = g.add_node("MathInt", {"a": "not a number"})
    p_bad = preview_of(g, bad.id)
    assert validate(g, reg, [p_good.id]) == []
    checked = check_graph(g, reg, [p_good.id])
    assert set(checked.order) == {good.id, p_good.id}
    problem = only(validate(g, reg, [p_bad.id]))
    assert problem.node_id == bad.id
    assert only(validate(g, reg)) == problem


# -- missing inputs --------------------------------------------------------------------------
def test_missing_required_input(reg):
    g = Graph()
    p = g.add_node("PreviewAny")
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (p.id, "PreviewAny", "source")
    assert "required input is not connected" in problem.message


def test_missing_required_inputs_are_all_reported(reg):
    g = Graph()
    s = g.add_node("t.Sampler")
    preview_of(g, s.id)
    problems = validate(g, reg)
    assert {(p.node_id, p.node_type, p.input) for p in problems} == {
        (s.id, "t.Sampler", "steps"), (s.id, "t.Sampler", "image")}
    by_input = {p.input: p.message for p in problems}
    # A widget input can be typed in; an IMAGE can only be connected.
    assert by_input["steps"] == "required input is not connected and has no value"
    assert by_input["image"] == "required input is not connected"


def test_optional_input_may_stay_empty_and_a_constant_fills_a_required_one(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    s = g.add_node("t.Sampler", {"steps": 20})
    g.connect(load.id, 0, s.id, "image")
    preview_of(g, s.id)
    assert validate(g, reg) == []


def test_a_link_satisfies_a_required_input_without_a_constant(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    steps = g.add_node("PrimitiveInt", {"value": 30})
    s = g.add_node("t.Sampler")
    g.connect(load.id, 0, s.id, "image")
    g.connect(steps.id, 0, s.id, "steps")
    preview_of(g, s.id)
    assert validate(g, reg) == []
    assert "steps" not in check_graph(g, reg).constants[s.id]


# -- links -----------------------------------------------------------------------------------
def test_type_mismatch_on_a_link_reads_in_plain_english(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    s = g.add_node("t.Sampler")
    g.connect(load.id, 0, s.id, "image")
    g.connect(load.id, 0, s.id, "steps")
    preview_of(g, s.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (s.id, "t.Sampler", "steps")
    assert problem.message == "Steps expects INT but Load Image gives IMAGE"


def test_type_mismatch_uses_the_source_node_title(reg):
    g = Graph()
    name = g.add_node("PrimitiveString", {"value": "x"}, title="Name")
    m = g.add_node("MathInt")
    g.connect(name.id, 0, m.id, "b")
    preview_of(g, m.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (m.id, "MathInt", "b")
    assert problem.message == "B expects INT but Name gives STRING"


def test_second_output_slot_type_is_checked(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    s = g.add_node("t.Sampler", {"steps": 5})
    g.connect(load.id, 0, s.id, "image")
    g.connect(load.id, 1, s.id, "mask")
    preview_of(g, s.id)
    assert validate(g, reg) == []
    g.connect(load.id, 1, s.id, "image")  # MASK into IMAGE
    problem = only(validate(g, reg))
    assert problem.input == "image"
    assert problem.message == "Image expects IMAGE but Load Image gives MASK"


def test_link_to_a_nonexistent_input(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    g.connect(a.id, 0, m.id, "c")
    preview_of(g, m.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (m.id, "MathInt", "c")
    assert "no such input" in problem.message
    assert "a, b, operation" in problem.message
    assert f"node {a.id}" in problem.message


def test_output_slot_out_of_range(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    g.connect(a.id, 1, m.id, "a")
    preview_of(g, m.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (m.id, "MathInt", "a")
    assert f"node {a.id} (PrimitiveInt) has no output slot 1 (it has 1 output)" in problem.message


def test_output_slot_out_of_range_counts_outputs(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    p = preview_of(g, load.id, slot=2)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.input) == (p.id, "source")
    assert "no output slot 2 (it has 2 outputs)" in problem.message


def test_node_without_outputs_cannot_feed_anything(reg):
    g = Graph()
    first = g.add_node("PreviewAny", {"source": 1})
    second = preview_of(g, first.id)
    problem = only(validate(g, reg, [second.id]))
    assert problem.node_id == second.id
    assert "has no output slot 0 (it has 0 outputs)" in problem.message


# -- unknown node types ----------------------------------------------------------------------
def test_unknown_node_type_needed_by_an_output(reg):
    g = Graph()
    u = g.add_node("otherpack.Mystery")
    preview_of(g, u.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (u.id, "otherpack.Mystery", None)
    assert "unknown node type 'otherpack.Mystery'" in problem.message
    assert "install" in problem.message


def test_unknown_node_type_that_no_output_needs_is_fine(reg):
    g = Graph()
    g.add_node("otherpack.Mystery", {"anything": [1, 2]})
    lone = g.add_node("otherpack.Other")
    a = g.add_node("PrimitiveInt")
    g.connect(a.id, 0, lone.id, "x")  # even wired to, as long as nothing needs it
    preview_of(g, a.id)
    assert validate(g, reg) == []


def test_unknown_output_node_is_not_a_target(reg):
    # Without its class we cannot know it is an output node: the graph has nothing to run.
    g = Graph()
    g.add_node("otherpack.SaveSomething")
    problem = only(validate(g, reg))
    assert problem.node_id is None
    assert "no output node" in problem.message


def test_unknown_node_requested_explicitly(reg):
    g = Graph()
    u = g.add_node("otherpack.SaveSomething")
    problem = only(validate(g, reg, [u.id]))
    assert (problem.node_id, problem.node_type) == (u.id, "otherpack.SaveSomething")


# -- constants -------------------------------------------------------------------------------
def test_constant_out_of_range(reg):
    g = Graph()
    s = g.add_node("Seed", {"seed": -1})
    preview_of(g, s.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (s.id, "Seed", "seed")
    assert problem.message == "-1 is below the minimum 0"


def test_constant_of_the_wrong_type(reg):
    g = Graph()
    m = g.add_node("MathInt", {"a": "six", "b": 2.5})
    preview_of(g, m.id)
    problems = validate(g, reg)
    assert {(p.node_id, p.node_type, p.input) for p in problems} == {(m.id, "MathInt", "a"), (m.id, "MathInt", "b")}
    assert all("whole number" in p.message for p in problems)


def test_constant_not_among_the_choices(reg):
    g = Graph()
    m = g.add_node("MathInt", {"operation": "sqrt"})
    preview_of(g, m.id)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (m.id, "MathInt", "operation")
    assert "'sqrt' is not one of the choices" in problem.message
    assert "'add'" in problem.message


def test_constant_for_a_linked_input_is_ignored(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt", {"a": "stale value"})
    g.connect(a.id, 0, m.id, "a")
    preview_of(g, m.id)
    assert validate(g, reg) == []


# -- cycles ----------------------------------------------------------------------------------
def test_cycle_is_reported_with_its_nodes(reg):
    g = Graph()
    x = g.add_node("MathInt")
    y = g.add_node("MathInt")
    z = g.add_node("MathFloat")
    to_float = g.add_node("IntToFloat")
    g.connect(x.id, 0, y.id, "a")
    g.connect(y.id, 0, x.id, "a")
    g.connect(y.id, 0, to_float.id, "value")
    g.connect(to_float.id, 0, z.id, "a")
    preview_of(g, z.id)
    problem = only(validate(g, reg))
    assert "cycle" in problem.message
    assert f"{x.id} (MathInt)" in problem.message and f"{y.id} (MathInt)" in problem.message
    # Only the loop is listed, not what hangs off it.
    assert f"{z.id} (MathFloat)" not in problem.message
    assert f"{to_float.id} (IntToFloat)" not in problem.message
    assert problem.node_id in (x.id, y.id)
    assert problem.node_type == "MathInt"
    assert problem.input == "a"


def test_longer_cycle_lists_every_member(reg):
    g = Graph()
    nodes = [g.add_node("MathInt") for _ in range(4)]
    for src, dst in zip(nodes, nodes[1:] + nodes[:1]):
        g.connect(src.id, 0, dst.id, "b")
    preview_of(g, nodes[0].id)
    problem = only(validate(g, reg))
    cycle = problem.message.split("cycle: ", 1)[1].split(";", 1)[0]
    steps = [s.strip() for s in cycle.split("→")]
    assert steps[0] == steps[-1]
    assert sorted(steps[:-1]) == sorted(f"{n.id} (MathInt)" for n in nodes)


def test_self_loop_is_a_cycle(reg):
    g = Graph()
    m = g.add_node("MathInt")
    g.connect(m.id, 0, m.id, "a")
    preview_of(g, m.id)
    problem = only(validate(g, reg))
    assert "cycle" in problem.message
    assert (problem.node_id, problem.input) == (m.id, "a")


# -- targets ---------------------------------------------------------------------------------
def test_no_output_node(reg):
    g = Graph()
    g.add_node("PrimitiveInt")
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.node_type, problem.input) == (None, None, None)
    assert "no output node" in problem.message


def test_empty_graph_has_no_output_node(reg):
    assert "no output node" in only(validate(Graph(), reg)).message


def test_unknown_target_id(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    preview_of(g, a.id)
    problem = only(validate(g, reg, ["99"]))
    assert problem.node_id is None
    assert "'99'" in problem.message


def test_any_node_may_be_a_target(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    checked = check_graph(g, reg, [a.id])
    assert checked.targets == [a.id] and checked.order == [a.id]


def test_check_graph_raises_with_every_problem(reg):
    g = Graph()
    s = g.add_node("Seed", {"seed": -5})
    m = g.add_node("MathInt", {"operation": "sqrt"})
    g.connect(s.id, 0, m.id, "a")
    preview_of(g, m.id)
    g.add_node("PreviewAny")
    with pytest.raises(GraphValidationError) as info:
        check_graph(g, reg)
    problems = info.value.problems
    assert len(problems) == 3
    assert all(isinstance(p, Problem) for p in problems)
    text = str(info.value)
    assert "3 problems" in text
    assert f"node {s.id} (Seed), input 'seed'" in text
    assert "'sqrt'" in text


def test_problem_str_locates_the_problem():
    assert str(Problem("bad", "3", "KSampler", "steps")) == "node 3 (KSampler), input 'steps': bad"
    assert str(Problem("bad", "3")) == "node 3: bad"
    assert str(Problem("bad")) == "bad"
    assert "1 problem)" in str(GraphValidationError([Problem("bad")]))


# -- modes -----------------------------------------------------------------------------------
def test_muted_output_node_is_not_a_target(reg):
    g = Graph()
    a = g.add_node("PrimitiveInt")
    p = preview_of(g, a.id)
    g.set_mode(p.id, NodeMode.MUTED)
    assert output_nodes(g, reg) == []
    assert "no output node" in only(validate(g, reg)).message
    # Asked for explicitly, a muted node is skipped rather than run.
    assert check_graph(g, reg, [p.id]).order == []


def test_muted_node_needs_no_inputs(reg):
    g = Graph()
    s = g.add_node("t.Sampler", {"steps": 0}, mode="muted")
    p = preview_of(g, s.id)
    assert validate(g, reg) == []
    g.set_mode(s.id, "normal")
    problems = validate(g, reg)
    assert {(q.node_id, q.input) for q in problems} == {(s.id, "steps"), (s.id, "image")}
    assert p.id not in {q.node_id for q in problems}


def test_bypassed_node_needs_no_required_inputs(reg):
    g = Graph()
    load = g.add_node("t.LoadImage")
    s = g.add_node("t.Sampler", mode=NodeMode.BYPASSED)
    g.connect(load.id, 0, s.id, "image")
    preview_of(g, s.id)
    assert validate(g, reg) == []
    g.set_mode(s.id, NodeMode.NORMAL)
    problem = only(validate(g, reg))
    assert (problem.node_id, problem.input) == (s.id, "steps")


def test_bypassed_output_node_is_still_a_target(reg):
    g = Graph()
    p = g.add_node("PreviewAny", mode="bypassed")
    assert output_nodes(g, reg) == [p.id]
    assert validate(g, reg) == []


# -- the graph model -------------------------------------------------------------------------
def test_one_link_per_input_new_replaces_old():
    g = Graph()
    a = g.add_node("PrimitiveInt")
    b = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    first = g.connect(a.id, 0, m.id, "a")
    second = g.connect(b.id, 0, m.id, "a")
    assert g.link_into(m.id, "a") == second
    assert first.id not in g.links
    assert g.links_into(m.id) == [second]
    assert g.links_from(a.id) == []


def test_different_inputs_keep_their_own_links():
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    g.connect(a.id, 0, m.id, "a")
    g.connect(a.id, 0, m.id, "b")
    assert len(g.links) == 2
    assert len(g.links_from(a.id)) == 2


def test_remove_node_removes_its_links():
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    p = g.add_node("PreviewAny")
    into = g.connect(a.id, 0, m.id, "a")
    out = g.connect(m.id, 0, p.id, "source")
    other = g.connect(a.id, 0, p.id, "extra")
    removed = g.remove_node(m.id)
    assert {link.id for link in removed} == {into.id, out.id}
    assert m.id not in g.nodes
    assert list(g.links) == [other.id]
    assert g.link_into(p.id, "source") is None
    # The input is free again.
    g.connect(a.id, 0, p.id, "source")
    assert g.link_into(p.id, "source").from_node == a.id


def test_disconnect():
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    link = g.connect(a.id, 0, m.id, "a")
    assert g.disconnect(m.id, "a") == link
    assert g.disconnect(m.id, "a") is None
    assert g.links == {}


def test_graph_edits_that_would_break_it_are_refused():
    g = Graph()
    a = g.add_node("PrimitiveInt", id="7")
    with pytest.raises(GraphError, match="'7'"):
        g.add_node("PrimitiveInt", id="7")
    with pytest.raises(GraphError, match="'99'"):
        g.connect(a.id, 0, "99", "x")
    with pytest.raises(GraphError, match="'99'"):
        g.connect("99", 0, a.id, "x")
    with pytest.raises(GraphError):
        g.connect(a.id, -1, a.id, "x")
    with pytest.raises(GraphError):
        g.connect(a.id, True, a.id, "x")
    link = g.connect(a.id, 0, a.id, "x", id="L")
    with pytest.raises(GraphError, match="'L'"):
        g.connect(a.id, 0, a.id, "y", id="L")
    assert g.links == {"L": link}
    with pytest.raises(GraphError):
        g.remove_node("99")
    with pytest.raises(GraphError):
        g.set_input("99", "x", 1)
    with pytest.raises(ValueError):
        g.set_mode(a.id, "asleep")


def test_new_node_ids_are_fresh_integers():
    g = Graph()
    assert g.add_node("A").id == "1"
    g.add_node("B", id="2")
    assert g.add_node("C").id == "3"
    assert len({n.id for n in g}) == 3 == len(g)


def test_upstream_and_copy():
    g = Graph()
    a = g.add_node("PrimitiveInt")
    m = g.add_node("MathInt")
    unrelated = g.add_node("PrimitiveInt")
    g.connect(a.id, 0, m.id, "a")
    assert g.upstream([m.id]) == {a.id, m.id}
    assert g.upstream(["nope"]) == set()
    snapshot = g.copy()
    g.set_input(a.id, "value", 5)
    g.remove_node(unrelated.id)
    assert snapshot.nodes[a.id].inputs == {}
    assert unrelated.id in snapshot.nodes
    assert snapshot.link_into(m.id, "a") is not None


def test_revision_changes_on_every_edit():
    g = Graph()
    seen = [g.revision]
    a = g.add_node("PrimitiveInt")
    seen.append(g.revision)
    g.set_input(a.id, "value", 1)
    seen.append(g.revision)
    g.set_mode(a.id, "muted")
    seen.append(g.revision)
    assert len(set(seen)) == len(seen)
