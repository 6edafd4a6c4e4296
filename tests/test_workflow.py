"""Workflow files: reading, writing, placeholders, ComfyUI prompts, migration, and bad files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from studio.api import Int, Node, Output, String
from studio.core.errors import WorkflowError
from studio.core.graph import Graph, NodeMode
from studio.core.resources import resource_path
from studio.core.validate import validate
from studio.core.workflow import (
    FORMAT,
    FORMAT_VERSION,
    Workflow,
    load_workflow,
    parse_workflow,
    resolve_workflow,
    save_workflow,
    workflow_to_dict,
)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "resources" / "schema" / "workflow.schema.json").read_text(encoding="utf-8"))
BUNDLED = sorted((ROOT / "resources" / "workflows").glob("*.json"))


def doc(nodes, links=(), **extra):
    return {"format": FORMAT, "version": FORMAT_VERSION, "graph": {"nodes": list(nodes), "links": list(links)}, **extra}


def link(link_id, from_node, to_node, to_input, from_output=0):
    return {"id": link_id, "from_node": from_node, "from_output": from_output, "to_node": to_node, "to_input": to_input}


def write(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def semantics(graph):
    """Everything about a graph that a run depends on, in comparable form."""
    nodes = {n.id: (n.type, n.inputs, n.mode, n.title, n.version, n.extra) for n in graph}
    links = {(lk.id, lk.from_node, lk.from_output, lk.to_node, lk.to_input) for lk in graph.links.values()}
    return nodes, links


# -- round trip ------------------------------------------------------------------------------
def test_bundled_hello_is_saved_exactly_as_read(registry, tmp_path):
    original = json.loads(resource_path("workflows", "hello.json").read_text(encoding="utf-8"))
    workflow = load_workflow(resource_path("workflows", "hello.json"), registry)
    saved = save_workflow(workflow, tmp_path / "out" / "hello.json")
    assert json.loads(saved.read_text(encoding="utf-8")) == original


def test_round_trip_keeps_graph_ui_and_meta(registry, tmp_path):
    graph = Graph()
    a = graph.add_node("PrimitiveInt", {"value": 6}, title="Six")
    b = graph.add_node("PrimitiveInt", {"value": 7}, mode="muted")
    m = graph.add_node("MathInt", {"operation": "multiply"}, mode=NodeMode.BYPASSED, extra={"color": "#f00"})
    p = graph.add_node("PreviewAny")
    graph.connect(a.id, 0, m.id, "a")
    graph.connect(b.id, 0, m.id, "b")
    graph.connect(m.id, 0, p.id, "source")
    ui = {"nodes": {a.id: {"pos": [10, 20], "size": [200, 80]}}, "groups": [{"title": "Maths", "bounding": [0, 0, 400, 300]}],
          "viewport": {"zoom": 1.5, "offset": [-3, 4]}}
    meta = {"name": "Product", "description": "ünïcödé ✓", "app": "test"}
    workflow = Workflow(graph, ui=ui, meta=meta)
    resolve_workflow(workflow, registry)
    path = save_workflow(workflow, tmp_path / "product.json")
    assert workflow.path == path.resolve()
    loaded = load_workflow(path, registry)
    assert semantics(loaded.graph) == semantics(graph)
    assert loaded.ui == ui
    assert loaded.meta == meta
    assert loaded.path == path.resolve()
    assert loaded.base_dir == tmp_path.resolve()
    assert loaded.warnings == [] and loaded.placeholders == []
    assert loaded.graph.nodes[b.id].mode is NodeMode.MUTED
    assert loaded.graph.nodes[m.id].mode is NodeMode.BYPASSED
    assert loaded.graph.nodes[m.id].extra == {"color": "#f00"}
    assert loaded.graph.nodes[a.id].title == "Six"
    # And once more: saving what was loaded writes the same file.
    again = save_workflow(loaded, tmp_path / "again.json")
    assert json.loads(again.read_text(encoding="utf-8")) == json.loads(path.read_text(encoding="utf-8"))


def test_saved_file_validates_against_the_schema(registry, tmp_path):
    workflow = load_workflow(resource_path("workflows", "hello.json"), registry)
    workflow.graph.add_node("otherpack.Mystery", {"x": 1}, mode="bypassed", title=None, extra={"widgets": [1, 2]})
    workflow.graph.set_mode("4", "muted")
    path = save_workflow(workflow, tmp_path / "w.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["format"] == FORMAT and data["version"] == FORMAT_VERSION


def test_schema_rejects_what_the_loader_rejects():
    # Guard for the schema itself: it must be strict enough to catch a broken link.
    bad = doc([{"id": "1", "type": "PrimitiveInt"}], [{"id": "1", "from_node": "1"}])
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(bad))


def test_save_is_atomic_and_leaves_no_temporary_files(registry, tmp_path):
    workflow = load_workflow(resource_path("workflows", "hello.json"), registry)
    target = tmp_path / "w.json"
    target.write_text("old content", encoding="utf-8")
    save_workflow(workflow, target)
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]
    assert json.loads(target.read_text(encoding="utf-8"))["format"] == FORMAT


def test_headless_graph_does_not_need_ui(registry):
    workflow = load_workflow(doc([{"id": "1", "type": "PreviewAny", "inputs": {"source": 3}}]), registry)
    assert workflow.ui == {} and workflow.meta == {}
    data = workflow_to_dict(workflow)
    assert "ui" not in data and "meta" not in data
    assert validate(workflow.graph, registry) == []


# -- placeholders ----------------------------------------------------------------------------
def test_unknown_node_types_survive_load_and_save_unchanged(registry, tmp_path):
    unknown = {
        "id": "9",
        "type": "somepack.FancySampler",
        "version": 3,
        "mode": "bypassed",
        "title": "Fancy",
        "inputs": {"steps": 25, "nested": {"a": [1, 2, {"b": None}]}, "flag": True},
        "widgets_values": [1, "two", 3.5],
        "properties": {"Node name for S&R": "FancySampler"},
    }
    data = doc(
        [{"id": "1", "type": "PrimitiveInt", "inputs": {"value": 2}}, copy.deepcopy(unknown),
         {"id": "2", "type": "PreviewAny", "inputs": {}}],
        [link("1", "1", "9", "steps"), link("2", "9", "2", "source", from_output=2)],
    )
    path = write(tmp_path / "in.json", data)
    workflow = load_workflow(path, registry)
    assert workflow.placeholders == ["9"]
    assert workflow.warnings == []
    node = workflow.graph.nodes["9"]
    assert node.type == "somepack.FancySampler"
    assert node.extra == {"widgets_values": [1, "two", 3.5], "properties": {"Node name for S&R": "FancySampler"}}
    out = json.loads(save_workflow(workflow, tmp_path / "out.json").read_text(encoding="utf-8"))
    (saved,) = [n for n in out["graph"]["nodes"] if n["id"] == "9"]
    assert saved == unknown
    # Links to and from the placeholder are kept too.
    assert {json.dumps(lk, sort_keys=True) for lk in out["graph"]["links"]} == {
        json.dumps(lk, sort_keys=True) for lk in data["graph"]["links"]}


def test_placeholder_is_reported_when_a_run_needs_it(registry):
    workflow = load_workflow(doc(
        [{"id": "1", "type": "somepack.Thing"}, {"id": "2", "type": "PreviewAny"}],
        [link("1", "1", "2", "source")]), registry)
    assert workflow.placeholders == ["1"]
    problems = validate(workflow.graph, registry)
    assert [(p.node_id, p.node_type) for p in problems] == [("1", "somepack.Thing")]


def test_placeholder_resolves_once_its_plugin_is_installed(registry):
    data = doc([{"id": "1", "type": "late.Blur", "version": 1, "inputs": {"radius": 3}}])
    workflow = parse_workflow(data)
    resolve_workflow(workflow, registry)
    assert workflow.placeholders == ["1"]

    class Blur(Node):
        NAME = "Blur"
        INPUTS = [Int("radius", 1)]
        OUTPUTS = [Output("radius", "INT")]

    registry.register(Blur, pack="late")
    resolve_workflow(workflow, registry)
    assert workflow.placeholders == []


# -- ComfyUI formats -------------------------------------------------------------------------
COMFY_API = {
    "4": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
    "5": {"class_type": "MathInt", "inputs": {"a": ["4", 0], "b": 2, "operation": "add"}, "_meta": {"title": "Sum"}},
    "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
}


def test_comfyui_api_prompt_loads(registry, tmp_path):
    workflow = load_workflow(write(tmp_path / "prompt.json", COMFY_API), registry)
    assert workflow.source_format == "comfyui-api"
    graph = workflow.graph
    assert set(graph.nodes) == {"4", "5", "6"}
    assert graph.nodes["5"].type == "MathInt"
    assert graph.nodes["5"].inputs == {"b": 2, "operation": "add"}
    assert graph.nodes["5"].title == "Sum"
    assert graph.nodes["4"].inputs == {"value": 3}
    into_a = graph.link_into("5", "a")
    assert (into_a.from_node, into_a.from_output) == ("4", 0)
    into_source = graph.link_into("6", "source")
    assert (into_source.from_node, into_source.from_output) == ("5", 0)
    assert len(graph.links) == 2
    assert workflow.warnings == []
    assert validate(graph, registry) == []


def test_comfyui_api_prompt_with_integer_link_ids_and_saved_as_nuance(registry, tmp_path):
    prompt = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "hi"}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": [1, 0]}}}
    workflow = load_workflow(prompt, registry)
    assert workflow.graph.link_into("2", "source").from_node == "1"
    path = save_workflow(workflow, tmp_path / "converted.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert semantics(load_workflow(path, registry).graph) == semantics(workflow.graph)


def test_comfyui_api_unknown_class_types_are_placeholders(registry):
    prompt = {"3": {"class_type": "KSamplerAdvancedXYZ", "inputs": {"seed": 1}},
              "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}}}
    workflow = load_workflow(prompt, registry)
    assert workflow.placeholders == ["3"]


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ({"3": {"class_type": "", "inputs": {}}}, "node 3: class_type"),
        ({"3": {"class_type": 5, "inputs": {}}}, "node 3: class_type"),
        ({"3": {"class_type": "PreviewAny", "inputs": [1, 2]}}, "node 3: inputs must be an object"),
    ],
)
def test_bad_comfyui_api_prompt(prompt, fragment):
    with pytest.raises(WorkflowError) as info:
        parse_workflow(prompt, origin="prompt.json")
    assert str(info.value).startswith("prompt.json: ")
    assert fragment in str(info.value)


def test_comfyui_ui_format_is_read_and_a_dangling_link_reported(tmp_path):
    ui_format = {
        "last_node_id": 9, "last_link_id": 9,
        "nodes": [{"id": 3, "type": "KSampler", "pos": [0, 0], "widgets_values": [1, "fixed", 20],
                   "inputs": [{"name": "model", "type": "MODEL", "link": 1}]}],
        "links": [[1, 4, 0, 3, 0, "MODEL"]], "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }
    path = write(tmp_path / "comfy_ui.json", ui_format)
    workflow = load_workflow(path)
    assert workflow.source_format == "comfyui-ui" and list(workflow.graph.nodes) == ["3"]
    assert len(workflow.graph.links) == 0
    assert any("link 1" in w and "4" in w for w in workflow.warnings), workflow.warnings

def test_newer_format_version_is_refused(tmp_path):
    data = doc([])
    data["version"] = FORMAT_VERSION + 1
    path = write(tmp_path / "future.json", data)
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message
    assert "newer" in message
    assert str(FORMAT_VERSION + 1) in message
    assert "update" in message.lower()


def test_newer_format_version_written_as_a_float_is_refused_too():
    # JSON Schema counts 2.0 as an integer, so it passes the schema: the version check must see it too.
    data = doc([])
    data["version"] = float(FORMAT_VERSION + 1)
    with pytest.raises(WorkflowError, match="newer"):
        parse_workflow(data)


def test_other_format_is_refused():
    with pytest.raises(WorkflowError, match=r"not a Nuance Studio workflow.*'other\.app'"):
        parse_workflow({"format": "other.app", "version": 1, "graph": {}}, origin="x.json")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(path) in str(info.value) and "no such file" in str(info.value)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(WorkflowError) as info:
        load_workflow(tmp_path)
    assert str(tmp_path) in str(info.value) and "folder" in str(info.value)


def test_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "nuance.workflow",\n  "version": 1,,\n}', encoding="utf-8")
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "line 2" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "image.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(path) in str(info.value) and "UTF-8" in str(info.value)


def test_utf8_with_bom_is_fine(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc([])).encode("utf-8"))
    assert len(load_workflow(path).graph) == 0


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ([1, 2, 3], ["JSON object", "list"]),
        ("workflow", ["JSON object", "str"]),
        ({}, ["not a workflow"]),
        ({"hello": "world"}, ["not a workflow"]),
        ({"format": FORMAT, "version": 1}, ["'graph' is a required property"]),
        ({"format": FORMAT, "graph": {"nodes": [], "links": []}}, ["'version' is a required property"]),
        (doc([{"id": "1"}]), ["graph.nodes[0]", "'type'"]),
        (doc([{"id": 1, "type": "PrimitiveInt"}]), ["graph.nodes[0].id"]),
        (doc([{"id": "1", "type": "PrimitiveInt", "mode": "asleep"}]), ["graph.nodes[0].mode"]),
        (doc([{"id": "1", "type": "PrimitiveInt", "inputs": [1]}]), ["graph.nodes[0].inputs"]),
        (doc([], [{"id": "1", "from_node": "1", "from_output": -1, "to_node": "2", "to_input": "a"}]),
         ["graph.links[0].from_output"]),
        ({"format": FORMAT, "version": 1, "graph": {"nodes": {}, "links": []}}, ["graph.nodes"]),
        ({**doc([]), "ui": []}, ["ui"]),
    ],
)
def test_wrong_structure_names_the_file_and_the_place(tmp_path, data, fragments):
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_several_structure_errors_are_counted():
    data = doc([{"id": "1"}, {"type": "X"}, {"id": 3, "type": "Y"}])
    with pytest.raises(WorkflowError, match=r"and 2 more problems"):
        parse_workflow(data)


def test_duplicate_node_ids(tmp_path):
    path = write(tmp_path / "dup.json", doc([{"id": "1", "type": "PrimitiveInt"}, {"id": "1", "type": "PreviewAny"}]))
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message and "graph.nodes[1]" in message and "'1'" in message and "twice" in message


def test_duplicate_link_ids(tmp_path):
    nodes = [{"id": "1", "type": "PrimitiveInt"}, {"id": "2", "type": "MathInt"}]
    path = write(tmp_path / "dup.json", doc(nodes, [link("L", "1", "2", "a"), link("L", "1", "2", "b")]))
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message and "graph.links[1]" in message and "'L'" in message and "twice" in message


def test_integral_float_output_slot_is_not_an_unexpected_error():
    # JSON Schema accepts 0.0 as an integer; the loader must either take it as slot 0 or refuse it
    # with a WorkflowError, never let a GraphError/ValueError escape.
    data = doc([{"id": "1", "type": "PrimitiveInt"}, {"id": "2", "type": "PreviewAny"}],
               [link("1", "1", "2", "source", from_output=0.0)])
    try:
        workflow = parse_workflow(data)
    except WorkflowError:
        return
    assert workflow.graph.link_into("2", "source").from_output == 0


# -- dangling and doubled links --------------------------------------------------------------
def test_dangling_links_are_dropped_with_a_warning(registry):
    data = doc(
        [{"id": "1", "type": "PrimitiveInt"}, {"id": "2", "type": "PreviewAny"}],
        [link("1", "1", "2", "source"), link("2", "77", "2", "other"), link("3", "1", "88", "a")],
    )
    workflow = load_workflow(data, registry)
    assert set(workflow.graph.links) == {"1"}
    assert len(workflow.warnings) == 2
    assert "graph.links[1]" in workflow.warnings[0] and "'77'" in workflow.warnings[0]
    assert "graph.links[2]" in workflow.warnings[1] and "'88'" in workflow.warnings[1]
    assert validate(workflow.graph, registry) == []


def test_dangling_comfyui_link_is_dropped_with_a_warning(registry):
    prompt = {"6": {"class_type": "PreviewAny", "inputs": {"source": ["404", 0]}}}
    workflow = load_workflow(prompt, registry)
    assert workflow.graph.links == {}
    assert len(workflow.warnings) == 1 and "'404'" in workflow.warnings[0] and "node 6" in workflow.warnings[0]
    # The input is now simply unconnected, which validation reports on its own.
    problem, = validate(workflow.graph, registry)
    assert (problem.node_id, problem.input) == ("6", "source")


def test_two_links_into_one_input_keep_the_last_with_a_warning():
    data = doc(
        [{"id": "1", "type": "PrimitiveInt"}, {"id": "2", "type": "PrimitiveInt"}, {"id": "3", "type": "MathInt"}],
        [link("a", "1", "3", "a"), link("b", "2", "3", "a")],
    )
    workflow = parse_workflow(data)
    assert list(workflow.graph.links) == ["b"]
    assert workflow.graph.link_into("3", "a").from_node == "2"
    assert len(workflow.warnings) == 1 and "two links" in workflow.warnings[0]


# -- node versions, renamed inputs, aliases ----------------------------------------------------
class Resize(Node):
    """Version 2 renamed ``old_size`` to ``size`` and ``pixels`` to ``image``, and made ``scale`` a percentage."""

    NAME = "Resize"
    VERSION = 2
    RENAMED_INPUTS = {"old_size": "size", "pixels": "image"}
    ALIASES = ("ResizeLegacy",)
    INPUTS = [Int("size", 512), Int("scale", 100), String("image", "")]
    OUTPUTS = [Output("STRING", "STRING")]
    calls: list = []

    @classmethod
    def migrate(cls, from_version, inputs):
        cls.calls.append((from_version, dict(inputs)))
        if from_version < 2 and "scale" in inputs:
            inputs = {**inputs, "scale": int(inputs["scale"] * 100)}
        return inputs


@pytest.fixture
def resize_registry(registry):
    Resize.calls = []
    registry.register(Resize, pack="img")
    return registry


def test_old_node_version_is_migrated(resize_registry):
    data = doc(
        [{"id": "1", "type": "PrimitiveString", "inputs": {"value": "x.png"}},
         {"id": "2", "type": "img.Resize", "version": 1, "inputs": {"old_size": 256, "scale": 2}},
         {"id": "3", "type": "PreviewAny"}],
        [link("10", "1", "2", "pixels"), link("11", "2", "3", "source")],
    )
    workflow = load_workflow(data, resize_registry)
    node = workflow.graph.nodes["2"]
    assert node.inputs == {"size": 256, "scale": 200}
    assert node.version == 2
    assert Resize.calls and Resize.calls[0][0] == 1
    # The link into the renamed input follows it, keeping its id.
    assert workflow.graph.link_into("2", "pixels") is None
    moved = workflow.graph.link_into("2", "image")
    assert (moved.id, moved.from_node) == ("10", "1")
    assert workflow.warnings == []
    assert validate(workflow.graph, resize_registry) == []
    saved = workflow_to_dict(workflow)
    (saved_node,) = [n for n in saved["graph"]["nodes"] if n["id"] == "2"]
    assert saved_node["version"] == 2 and saved_node["inputs"] == {"size": 256, "scale": 200}


def test_node_without_a_saved_version_counts_as_version_1(resize_registry):
    workflow = load_workflow(doc([{"id": "2", "type": "img.Resize", "inputs": {"scale": 3}}]), resize_registry)
    assert workflow.graph.nodes["2"].inputs == {"scale": 300}
    assert workflow.graph.nodes["2"].version == 2


def test_current_node_version_is_not_migrated(resize_registry):
    workflow = load_workflow(doc([{"id": "2", "type": "img.Resize", "version": 2, "inputs": {"scale": 3}}]),
                             resize_registry)
    assert workflow.graph.nodes["2"].inputs == {"scale": 3}
    assert Resize.calls == []


def test_renamed_input_does_not_overwrite_the_new_name(resize_registry):
    workflow = load_workflow(
        doc([{"id": "2", "type": "img.Resize", "version": 2, "inputs": {"old_size": 1, "size": 64}}]), resize_registry)
    assert workflow.graph.nodes["2"].inputs["size"] == 64


def test_newer_node_version_is_kept_with_a_warning(resize_registry):
    workflow = load_workflow(doc([{"id": "2", "type": "img.Resize", "version": 5, "inputs": {"scale": 3}}]),
                             resize_registry)
    node = workflow.graph.nodes["2"]
    assert node.version == 5
    assert node.inputs == {"scale": 3}
    assert len(workflow.warnings) == 1
    assert "node 2" in workflow.warnings[0] and "newer" in workflow.warnings[0]


def test_failing_migrate_keeps_the_saved_values_with_a_warning(registry):
    class Fragile(Node):
        NAME = "Fragile"
        VERSION = 3
        INPUTS = [Int("x", 0)]
        OUTPUTS = [Output("x", "INT")]

        @classmethod
        def migrate(cls, from_version, inputs):
            raise KeyError("nope")

    registry.register(Fragile, pack="p")
    workflow = load_workflow(doc([{"id": "1", "type": "p.Fragile", "version": 1, "inputs": {"x": 4}}]), registry)
    assert workflow.graph.nodes["1"].inputs == {"x": 4}
    assert len(workflow.warnings) == 1
    assert "node 1" in workflow.warnings[0] and "migrate" in workflow.warnings[0]


def test_aliases_are_canonicalised_on_resolve(resize_registry, tmp_path):
    data = doc([{"id": "1", "type": "ResizeLegacy", "version": 2, "inputs": {"size": 32}}])
    workflow = parse_workflow(data)
    assert workflow.graph.nodes["1"].type == "ResizeLegacy"
    resolve_workflow(workflow, resize_registry)
    assert workflow.graph.nodes["1"].type == "img.Resize"
    assert workflow.placeholders == []
    saved = json.loads(save_workflow(workflow, tmp_path / "w.json").read_text(encoding="utf-8"))
    assert saved["graph"]["nodes"][0]["type"] == "img.Resize"


def test_resolve_bumps_the_graph_revision(registry):
    workflow = parse_workflow(doc([{"id": "1", "type": "PrimitiveInt"}]))
    before = workflow.graph.revision
    resolve_workflow(workflow, registry)
    assert workflow.graph.revision > before


# -- bundled workflows -----------------------------------------------------------------------
def test_there_are_bundled_workflows():
    assert BUNDLED, "resources/workflows/ holds no workflows"


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_workflow_loads_and_validates(registry, path):
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(path.read_text(encoding="utf-8")))
    workflow = load_workflow(path, registry)
    assert workflow.placeholders == []
    assert workflow.warnings == []
    assert len(workflow.graph) > 0
    assert validate(workflow.graph, registry) == []  # the examples use the bundled demo model
