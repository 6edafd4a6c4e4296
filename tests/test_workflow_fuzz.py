"""Property tests: no JSON value, however odd, makes loading fail with anything but WorkflowError.

A workflow file comes from anywhere (a download, a PNG's text chunk, a hand edit). Whatever it
holds, ``parse_workflow`` either gives a Workflow or a WorkflowError a user can read; and once
parsed, resolving and validating it report problems instead of raising.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from studio.core.errors import WorkflowError
from studio.core.resources import resource_path
from studio.core.validate import validate
from studio.core.workflow import Workflow, parse_workflow, resolve_workflow, workflow_to_dict

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

HELLO = json.loads(resource_path("workflows", "hello.json").read_text(encoding="utf-8"))

# Strings a workflow really uses, so mutations often stay close to meaningful graphs.
NAMES = ["1", "2", "3", "4", "5", "6", "7", "99", "", "a", "b", "source", "value", "text", "operation",
         "multiply", "format", "version", "graph", "nodes", "links", "id", "type", "inputs", "mode",
         "muted", "bypassed", "normal", "class_type", "PreviewAny", "MathInt", "PrimitiveFloat", "Seed",
         "StringFormat", "Switch", "somepack.Unknown", "nuance.workflow", "{a}", "{z}", "{"]
# Values at the edges of what JSON can hold and Python reads.
EDGE = [0, 1, -1, 2, 0.0, 1.0, 2.0, -0.0, 0.5, 2**63, -(2**63) - 1, 2**64, 10**400, -(10**400), 1e308,
        math.inf, -math.inf, math.nan, True, False, None, "", "true"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
    st.sampled_from(NAMES), st.sampled_from(EDGE),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)),
    max_leaves=30,
)
# Mutations mostly swap one value for another plain value, which keeps the rest of the file intact.
replacements = st.one_of(scalars, json_values)


def assert_parses_or_refuses(data, registry):
    try:
        workflow = parse_workflow(data, origin="fuzz.json")
    except WorkflowError as exc:
        assert str(exc).startswith("fuzz.json")
        return None
    assert isinstance(workflow, Workflow)
    resolve_workflow(workflow, registry)
    problems = validate(workflow.graph, registry)
    assert isinstance(problems, list)
    for problem in problems:
        assert problem.message
        assert problem.node_id is None or problem.node_id in workflow.graph.nodes
    # Whatever loaded can be written back as JSON.
    json.dumps(workflow_to_dict(workflow))
    return workflow


def _paths(value, prefix=()):
    """Every place in a JSON value that a mutation may replace (the root excluded)."""
    found = []
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return found
    for key, child in items:
        found.append((*prefix, key))
        found.extend(_paths(child, (*prefix, key)))
    return found


def _replace(value, path, new):
    target = value
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new


def _delete(value, path):
    target = value
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]


@FUZZ
@given(data=json_values)
@example(data={"format": "nuance.workflow", "version": 1, "graph": {"nodes": [], "links": []}})
@example(data={"1": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
@example(data={"1": {"class_type": "PrimitiveFloat", "inputs": {"value": 10**400}},
               "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
def test_any_json_parses_or_raises_workflow_error(registry, data):
    assert_parses_or_refuses(data, registry)


@FUZZ
@given(
    mutations=st.lists(st.tuples(st.integers(min_value=0), st.booleans(), replacements), min_size=1, max_size=4),
)
@example(mutations=[(_paths(HELLO).index(("graph", "links", 0, "from_output")), False, 0.0)])
@example(mutations=[(_paths(HELLO).index(("graph", "nodes", 1, "inputs", "value")), False, 10**400)])
def test_mutated_workflow_parses_or_raises_workflow_error(registry, mutations):
    data = copy.deepcopy(HELLO)
    for index, delete, replacement in mutations:
        paths = _paths(data)
        if not paths:
            break
        path = paths[index % len(paths)]
        if delete:
            _delete(data, path)
        else:
            _replace(data, path, copy.deepcopy(replacement))
    assert_parses_or_refuses(data, registry)


def _hello_as_comfy_api():
    prompt = {}
    for node in HELLO["graph"]["nodes"]:
        prompt[node["id"]] = {"class_type": node["type"], "inputs": dict(node.get("inputs", {}))}
    for lk in HELLO["graph"]["links"]:
        prompt[lk["to_node"]]["inputs"][lk["to_input"]] = [lk["from_node"], lk["from_output"]]
    return prompt


COMFY = _hello_as_comfy_api()


@FUZZ
@given(
    mutations=st.lists(st.tuples(st.integers(min_value=0), st.booleans(), replacements), min_size=1, max_size=4),
)
def test_mutated_comfyui_prompt_parses_or_raises_workflow_error(registry, mutations):
    data = copy.deepcopy(COMFY)
    for index, delete, replacement in mutations:
        paths = _paths(data)
        if not paths:
            break
        path = paths[index % len(paths)]
        if delete:
            _delete(data, path)
        else:
            _replace(data, path, copy.deepcopy(replacement))
    assert_parses_or_refuses(data, registry)


def test_unmutated_sources_are_valid(registry):
    # The mutation tests start from graphs that load cleanly, so a failure there is the mutation's doing.
    for data in (HELLO, COMFY):
        workflow = assert_parses_or_refuses(copy.deepcopy(data), registry)
        assert workflow is not None
        assert workflow.warnings == [] and workflow.placeholders == []
        assert validate(workflow.graph, registry) == []


@pytest.mark.parametrize("depth", [50, 900])
def test_deeply_nested_values_are_refused_or_accepted_cleanly(registry, depth):
    nested = []
    for _ in range(depth):
        nested = [nested]
    data = copy.deepcopy(HELLO)
    data["graph"]["nodes"][0]["inputs"]["value"] = nested
    data["ui"] = {"deep": nested}
    assert_parses_or_refuses(data, registry)


def test_file_nested_too_deeply_for_json_is_a_workflow_error(tmp_path):
    from studio.core.workflow import load_workflow

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    assert str(path) in str(info.value)
