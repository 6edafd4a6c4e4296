"""The editable document: undoable commands, exact undo/redo, events, clipboard, connection checks."""

from __future__ import annotations

import copy
import json

import pytest

from studio.core import document_events as ev
from studio.core.clipboard import CLIPBOARD_FORMAT, ClipboardError
from studio.core.document import ConnectionRefused, Document
from studio.core.graph import Graph, NodeMode
from studio.core.resources import resource_path
from studio.core.workflow import Workflow, load_workflow, save_workflow, workflow_to_dict
from studio.engine import Executor


@pytest.fixture
def doc(registry):
    """hello.json (text and arithmetic, with layout) plus a group, a note and a bent wire."""
    workflow = load_workflow(resource_path("workflows", "hello.json"), registry)
    document = Document(workflow, registry)
    document.add_group("Numbers", (0, 0, 300, 300), color="#335577")
    document.add_note("remember the milk", (500, 500))
    first_link = next(iter(document.graph.links))
    document.set_reroutes(first_link, [(100, 100), (120, 140)])
    document.set_clean()
    return document


def snapshot(document):
    return copy.deepcopy(workflow_to_dict(document.workflow))


def ids_of(document, node_type):
    return [n.id for n in document.graph if n.type == node_type]


# Every edit the document offers; each must undo and redo exactly.
EDITS = {
    "add node": lambda d: d.add_node("MathInt", (10, 20)),
    "add node with inputs and title": lambda d: d.add_node("PrimitiveInt", (1, 2), {"value": 5}, title="Five"),
    "remove nodes": lambda d: d.remove(nodes=["4", "2"]),
    "remove all": lambda d: d.remove(nodes=list(d.graph.nodes), groups=["1"], notes=["1"]),
    "connect into a free input": lambda d: d.connect("2", 0, d.add_node("PreviewAny", (0, 0)), "source"),
    "connect replacing a wire": lambda d: d.connect("3", 0, *_wired_input(d)),
    "disconnect": lambda d: d.disconnect(*_wired_input(d)),
    "disconnect a bent wire": lambda d: d.disconnect(_bent(d).to_node, _bent(d).to_input),
    "set input": lambda d: d.set_input("2", "value", 99),
    "set input not there before": lambda d: d.set_input("4", "b_extra", 1),
    "rename": lambda d: d.set_title("2", "Six"),
    "rename back to default": lambda d: d.set_title("1", ""),
    "mute": lambda d: d.set_mode(["2", "3"], NodeMode.MUTED),
    "bypass": lambda d: d.set_mode(["4"], "bypassed"),
    "move": lambda d: d.move_nodes({"1": (5, 5), "2": (7.4, 9.6)}),
    "resize": lambda d: d.resize_node("1", (300, 120)),
    "collapse": lambda d: d.set_collapsed(["1", "2"], True),
    "colour": lambda d: d.set_color(["3"], "#aa3333"),
    "convert widget to input": lambda d: d.show_as_socket("2", "value", True),
    "convert input back to widget (removes its wire)": lambda d: d.show_as_socket(*_wired_input(d), False),
    "seed control": lambda d: d.set_seed_control("2", "value", "randomize"),
    "add group": lambda d: d.add_group("More", (10, 10, 50, 50)),
    "change group": lambda d: d.change_group("1", title="Maths", color=None, bounding=(1, 2, 3, 4)),
    "remove group": lambda d: d.remove(groups=["1"]),
    "add note": lambda d: d.add_note("hi", (1, 1), size=(100, 50), color="#222222"),
    "change note": lambda d: d.change_note("1", text="remember the eggs", pos=(3, 3)),
    "remove note": lambda d: d.remove(notes=["1"]),
    "reroute": lambda d: d.set_reroutes(_bent(d).id, [(1, 1)]),
    "straighten": lambda d: d.set_reroutes(_bent(d).id, []),
    "paste": lambda d: d.paste(d.copy(["2", "3", "4"], groups=["1"], notes=["1"])),
    "duplicate": lambda d: d.duplicate(list(d.graph.nodes)),
    "align left": lambda d: d.align(["1", "4", "5"], "left"),
    "align bottom with sizes": lambda d: d.align(["1", "4"], "bottom", {"1": (200, 80), "4": (240, 120)}),
}


def _wired_input(d):
    link = next(link for link in d.graph.links.values() if link.to_input in ("a", "b"))
    return link.to_node, link.to_input


def _bent(d):
    return d.graph.links[next(iter(d.ui["reroutes"]))]


@pytest.mark.parametrize("name", list(EDITS))
def test_undo_then_redo_restores_the_model_exactly(doc, name):
    before = snapshot(doc)
    start = doc.history_index
    EDITS[name](doc)
    after = snapshot(doc)
    assert after != before, "the edit changed nothing, so the test would prove nothing"
    steps = doc.history_index - start
    assert steps == (2 if name.startswith("connect into") else 1), "one user action is one undo step"
    for _ in range(steps):
        doc.undo()
    assert snapshot(doc) == before
    for _ in range(steps):
        doc.redo()
    assert not doc.can_redo
    assert snapshot(doc) == after
    doc.undo()
    doc.redo()
    assert snapshot(doc) == after


def test_removing_nodes_restores_their_links_with_the_same_ids_and_order(doc):
    links_before = list(doc.graph.links.values())
    nodes_before = list(doc.graph.nodes)
    doc.remove(nodes=["4"])
    assert "4" not in doc.graph.nodes
    assert all("4" not in (lk.from_node, lk.to_node) for lk in doc.graph.links.values())
    doc.undo()
    assert list(doc.graph.links.values()) == links_before
    assert list(doc.graph.nodes) == nodes_before


def test_events_are_fine_grained_and_mirror_undo(doc):
    seen = []
    doc.subscribe(seen.append)
    touching = [lk for lk in doc.graph.links.values() if "4" in (lk.from_node, lk.to_node)]
    assert touching
    doc.remove(nodes=["4"])
    removed_links = [e.link for e in seen if isinstance(e, ev.LinkRemoved)]
    assert sorted(lk.id for lk in removed_links) == sorted(lk.id for lk in touching)
    assert [e.node_id for e in seen if isinstance(e, ev.NodeRemoved)] == ["4"]
    assert ev.DirtyChanged(True) in seen and ev.HistoryChanged() in seen
    seen.clear()
    doc.undo()
    assert [e.node_id for e in seen if isinstance(e, ev.NodeAdded)] == ["4"]
    assert sorted(e.link.id for e in seen if isinstance(e, ev.LinkAdded)) == sorted(lk.id for lk in touching)
    # A node must exist before a link to it is announced.
    kinds = [type(e) for e in seen]
    assert kinds.index(ev.NodeAdded) < kinds.index(ev.LinkAdded)
    assert ev.DirtyChanged(False) in seen

    seen.clear()
    doc.set_input("2", "value", 3)
    doc.move_nodes({"2": (1, 1)})
    doc.set_title("2", "T")
    doc.set_mode(["2"], "muted")
    doc.set_collapsed(["2"], True)
    doc.set_color(["2"], "#123456")
    doc.resize_node("2", (10, 10))
    doc.change_group("1", title="G")
    doc.change_note("1", text="N")
    doc.set_reroutes(_bent(doc).id, [])
    assert [e for e in seen if not isinstance(e, (ev.HistoryChanged, ev.DirtyChanged))] == [
        ev.InputChanged("2", "value"), ev.NodeMoved("2"), ev.NodeChanged("2", "title"),
        ev.NodeChanged("2", "mode"), ev.NodeChanged("2", "collapsed"), ev.NodeChanged("2", "color"),
        ev.NodeResized("2"), ev.GroupChanged("1"), ev.NoteChanged("1"), ev.ReroutesChanged(_first_link_id(doc)),
    ]


def _first_link_id(d):
    return next(iter(d.graph.links))


def test_connect_replaces_the_wire_into_an_input_and_undo_brings_it_back(doc):
    node, name = _wired_input(doc)
    old = doc.graph.link_into(node, name)
    new_id = doc.connect("3", 0, node, name)
    assert doc.graph.link_into(node, name).from_node == "3"
    assert old.id not in doc.graph.links
    doc.undo()
    assert doc.graph.link_into(node, name) == old
    assert new_id not in doc.graph.links


def test_connection_check_explains_in_plain_english(registry):
    d = Document(registry=registry)
    load = d.add_node("LoadImage", (0, 0))
    sampler = d.add_node("KSampler", (300, 0))
    text = d.add_node("PrimitiveString", (0, 200))
    a = d.add_node("MathInt", (0, 300))
    b = d.add_node("MathInt", (300, 300))
    assert d.check_connection(load, 0, sampler, "steps") == "Steps expects INT but Load Image gives IMAGE"
    assert d.check_connection(text, 0, a, "a") == "A expects INT but String gives STRING"
    assert d.check_connection(a, 0, a, "b") == "a node cannot be connected to itself"
    d.connect(a, 0, b, "a")
    assert d.check_connection(b, 0, a, "a") == "that would make a loop: Math (Int) already depends on Math (Int)"
    assert "no such input" in d.check_connection(a, 0, b, "nope")
    assert "has no output slot 3" in d.check_connection(a, 3, b, "b")
    with pytest.raises(ConnectionRefused, match="Steps expects INT but Load Image gives IMAGE"):
        d.connect(load, 0, sampler, "steps")
    assert d.history_index == 6  # the refused wire left no step behind
    d.graph.add_node("somepack.Missing", id="99")
    assert "not installed" in d.check_connection("99", 0, b, "b")


def test_new_nodes_get_their_widget_defaults(registry):
    d = Document(registry=registry)
    node_id = d.add_node("KSampler", (0, 0))
    node = d.graph.nodes[node_id]
    assert node.inputs["steps"] == 20 and node.inputs["sampler_name"] == "euler"
    assert node.version == registry.spec("KSampler").version
    assert "model" not in node.inputs  # sockets have no constant


def test_value_edits_of_one_widget_merge_until_sealed(doc):
    start = doc.history_index
    doc.set_input("2", "value", 1)
    doc.set_input("2", "value", 2)
    doc.set_input("2", "value", 3)
    assert doc.history_index == start + 1
    doc.seal()
    doc.set_input("2", "value", 4)
    doc.set_input("3", "value", 5)
    assert doc.history_index == start + 3
    doc.undo()
    doc.undo()
    assert doc.graph.nodes["2"].inputs["value"] == 3
    doc.undo()
    assert doc.graph.nodes["2"].inputs["value"] == 6


def test_saved_state_and_dirty_flag(doc):
    changes = []
    doc.subscribe(lambda e: changes.append(e.dirty) if isinstance(e, ev.DirtyChanged) else None)
    assert not doc.dirty
    doc.set_input("2", "value", 1)
    assert doc.dirty
    doc.undo()
    assert not doc.dirty
    doc.redo()
    doc.set_clean()
    saved = doc.history_index
    doc.set_input("2", "value", 2)  # must not merge into the saved step
    assert doc.dirty and doc.history_index == saved + 1
    doc.undo()
    assert not doc.dirty
    doc.undo()
    assert doc.dirty
    doc.set_title("1", "Other branch")  # the saved state is gone from the history now
    while doc.can_undo:
        doc.undo()
        assert doc.dirty
    assert changes == [True, False, True, False, True, False, True]


def test_a_macro_is_one_step_and_all_or_nothing(doc):
    before = snapshot(doc)
    start = doc.history_index
    with doc.macro("Tidy"):
        doc.move_nodes({"1": (0, 0)})
        doc.set_title("1", "A")
    assert doc.history_index == start + 1 and doc.undo_text == "Tidy"
    doc.undo()
    assert snapshot(doc) == before
    with pytest.raises(KeyError), doc.macro("Broken"):
        doc.set_title("1", "B")
        doc.set_title("nope", "C")
    assert snapshot(doc) == before
    assert doc.history_index == start and doc.undo_text != "Broken"


def test_copy_is_marked_json_and_paste_makes_fresh_ids_offset(doc):
    text = doc.copy(["2", "3", "4"])
    data = json.loads(text)
    assert data["format"] == CLIPBOARD_FORMAT
    assert {n["id"] for n in data["graph"]["nodes"]} == {"2", "3", "4"}
    assert all(lk["from_node"] in {"2", "3", "4"} and lk["to_node"] in {"2", "3", "4"} for lk in data["graph"]["links"])
    count = len(doc.graph)
    pasted = doc.paste(text)
    assert len(doc.graph) == count + 3
    assert not set(pasted.nodes) & {"2", "3", "4"}
    for old, new in zip(["2", "3", "4"], pasted.nodes):
        ox, oy = doc.node_pos(old)
        assert doc.node_pos(new) == (ox + 30, oy + 30)
        assert doc.graph.nodes[new].inputs == doc.graph.nodes[old].inputs
    internal = [lk for lk in doc.graph.links.values() if lk.to_node in pasted.nodes]
    assert len(internal) == len(data["graph"]["links"])
    assert all(lk.from_node in pasted.nodes for lk in internal)
    pasted_at = doc.paste(text, at=(1000, 2000))
    corner = (min(doc.node_pos(n)[0] for n in pasted_at.nodes), min(doc.node_pos(n)[1] for n in pasted_at.nodes))
    assert corner == (1000, 2000)


@pytest.mark.parametrize("text", ["hello there", "[1, 2]", '{"format": "something.else"}', '{"nodes": []}'])
def test_pasting_foreign_text_fails_clearly(doc, text):
    before = snapshot(doc)
    start = doc.history_index
    with pytest.raises(ClipboardError, match="does not hold Nuance Studio nodes"):
        doc.paste(text)
    assert snapshot(doc) == before and doc.history_index == start


def test_pasting_a_bad_fragment_names_the_problem(doc):
    bad = json.dumps({"format": CLIPBOARD_FORMAT, "version": 1, "graph": {"nodes": [{"id": "1"}], "links": []}})
    with pytest.raises(ClipboardError, match="type"):
        doc.paste(bad)


def test_a_whole_workflow_file_pastes_too(doc):
    text = resource_path("workflows", "hello.json").read_text(encoding="utf-8")
    pasted = doc.paste(text, at=(0, 800))
    assert len(pasted.nodes) == 7


def test_workflows_without_layout_get_columns_by_depth(registry):
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 6})
    b = graph.add_node("PrimitiveInt", {"value": 7})
    m = graph.add_node("MathInt", {"operation": "multiply"})
    p = graph.add_node("PreviewAny")
    graph.connect(a.id, 0, m.id, "a")
    graph.connect(b.id, 0, m.id, "b")
    graph.connect(m.id, 0, p.id, "source")
    d = Document(Workflow(graph), registry)
    xs = {n: d.node_pos(n)[0] for n in (a.id, b.id, m.id, p.id)}
    assert xs[a.id] == xs[b.id] < xs[m.id] < xs[p.id]
    assert d.node_pos(a.id)[1] != d.node_pos(b.id)[1]
    assert not d.dirty


def test_layout_is_ignored_headless_and_the_file_round_trips(doc, registry, tmp_path):
    doc.set_collapsed(["5"], True)
    doc.show_as_socket("2", "value", True)
    path = save_workflow(doc.workflow, tmp_path / "edited.json")
    loaded = load_workflow(path, registry)
    assert workflow_to_dict(loaded) == workflow_to_dict(doc.workflow)
    result = Executor(registry).run(loaded.graph)
    assert result.ok


def test_align_uses_the_sizes_the_editor_draws(registry):
    d = Document(registry=registry)
    a = d.add_node("PrimitiveInt", (0, 0))
    b = d.add_node("PrimitiveInt", (100, 50))
    d.align([a, b], "right", {a: (200, 60), b: (100, 60)})
    assert d.node_pos(a)[0] + 200 == d.node_pos(b)[0] + 100
    d.align([a, b], "vcenter", {a: (200, 60), b: (100, 100)})
    assert d.node_pos(a)[1] + 30 == d.node_pos(b)[1] + 50


def test_a_layout_of_the_wrong_shape_is_kept_aside_not_lost(registry):
    graph = Graph()
    graph.add_node("PrimitiveInt", id="1")
    workflow = Workflow(graph, ui={"groups": {"odd": True}, "nodes": [1, 2], "viewport": {"zoom": 2}})
    d = Document(workflow, registry)
    assert d.ui["unreadable"] == {"groups": {"odd": True}, "nodes": [1, 2]}
    assert d.ui["viewport"] == {"zoom": 2}
    assert any("'groups'" in w for w in workflow.warnings)
    group = d.add_group("G", (0, 0, 10, 10))
    assert d.ui["groups"][0]["id"] == group and d.node_pos("1") is not None
