"""Checking a graph before it runs, and ordering what must run.

One pass finds every problem (not just the first), each naming the node id, node type and input,
and produces the run order with every constant already converted to its input's type. The
engine uses that result directly, so validation and execution cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from studio.core.errors import GraphValidationError, InputValueError, Problem
from studio.core.graph import Graph, GraphNode, Link, NodeMode
from studio.core.nodedef import NodeSpec
from studio.core.registry import NodeRegistry
from studio.core.types import connection_problem


@dataclass
class CheckedGraph:
    """A graph that passed validation: what runs, in which order, with typed constants."""

    graph: Graph
    targets: list[str]
    order: list[str]
    specs: dict[str, NodeSpec]
    constants: dict[str, dict[str, Any]]
    links_into: dict[str, dict[str, Link]]


def output_nodes(graph: Graph, registry: NodeRegistry) -> list[str]:
    """Ids of the installed output nodes that are not muted: what a plain run is for."""
    result = []
    for node in graph.nodes.values():
        spec = registry.spec(node.type)
        if spec is not None and spec.output_node and node.mode is not NodeMode.MUTED:
            result.append(node.id)
    return result


def node_label(node: GraphNode, spec: NodeSpec | None) -> str:
    """The name a user knows a node by: its title, else the node type's display name."""
    if node.title:
        return node.title
    return spec.display_name if spec is not None else node.type


def input_label(name: str, spec: NodeSpec | None) -> str:
    inp = spec.input_map.get(name) if spec is not None else None
    label = inp.label if inp is not None else name.replace("_", " ")
    return label[:1].upper() + label[1:]


def link_problem(graph: Graph, registry: NodeRegistry, link: Link) -> Problem | None:
    """Why ``link`` cannot carry a value, or None; shared by the validator and the editor."""
    target = graph.nodes.get(link.to_node)
    source = graph.nodes.get(link.from_node)
    if target is None or source is None:
        missing = link.to_node if target is None else link.from_node
        return Problem(f"link {link.id} refers to node {missing!r}, which does not exist")
    t_spec = registry.spec(target.type)
    s_spec = registry.spec(source.type)
    if t_spec is None or s_spec is None:
        return None  # the unknown node is reported on its own
    inp = t_spec.input_map.get(link.to_input)
    if inp is None:
        names = ", ".join(t_spec.input_map) or "none"
        return Problem(f"there is no such input (inputs: {names}); the link from node {source.id} cannot connect",
                       target.id, target.type, link.to_input)
    if link.from_output >= len(s_spec.outputs):
        count = len(s_spec.outputs)
        return Problem(
            f"node {source.id} ({source.type}) has no output slot {link.from_output} "
            f"(it has {count} output{'s' if count != 1 else ''})",
            target.id, target.type, link.to_input,
        )
    out = s_spec.outputs[link.from_output]
    reason = connection_problem(
        out.type, inp.type,
        input_label=input_label(link.to_input, t_spec),
        output_label=node_label(source, s_spec),
    )
    if reason is None:
        return None
    return Problem(reason, target.id, target.type, link.to_input)


def check_graph(graph: Graph, registry: NodeRegistry, targets: Iterable[str] | None = None) -> CheckedGraph:
    """Validate what ``targets`` (default: every output node) need; raise GraphValidationError."""
    problems: list[Problem] = []
    if targets is None:
        target_list = output_nodes(graph, registry)
        if not target_list:
            problems.append(Problem(
                "the workflow has no output node (such as SaveImage, PreviewImage or PreviewAny), "
                "so there is nothing to run"))
    else:
        target_list = []
        for node_id in targets:
            if node_id not in graph.nodes:
                problems.append(Problem(f"there is no node with id {node_id!r} to run"))
            elif graph.nodes[node_id].mode is not NodeMode.MUTED:
                target_list.append(node_id)
    needed = graph.upstream(target_list)

    links_into: dict[str, dict[str, Link]] = {node_id: {} for node_id in needed}
    for link in graph.links.values():
        if link.to_node in links_into:
            links_into[link.to_node][link.to_input] = link

    specs: dict[str, NodeSpec] = {}
    constants: dict[str, dict[str, Any]] = {}
    for node_id in needed:
        node = graph.nodes[node_id]
        spec = registry.spec(node.type)
        if spec is None:
            problems.append(Problem(
                f"unknown node type {node.type!r}: {registry.explain_missing(node.type)}", node.id, node.type))
            continue
        specs[node_id] = spec
        if node.mode is NodeMode.MUTED:
            continue
        wired = links_into[node_id]
        for link in wired.values():
            problem = link_problem(graph, registry, link)
            if problem is not None:
                problems.append(problem)
        values: dict[str, Any] = {}
        for inp in spec.inputs:
            if inp.name in wired:
                continue
            if inp.name in node.inputs:
                try:
                    values[inp.name] = inp.coerce(node.inputs[inp.name])
                except InputValueError as exc:
                    problems.append(Problem(str(exc), node.id, node.type, inp.name))
            elif inp.has_default:
                values[inp.name] = inp.default
            elif inp.required and node.mode is NodeMode.NORMAL:
                problems.append(Problem(
                    "required input is not connected" + ("" if not inp.accepts_constant else " and has no value"),
                    node.id, node.type, inp.name))
        constants[node_id] = values

    order, cycle_problem = _topological_order(graph, needed, links_into)
    if cycle_problem is not None:
        problems.append(cycle_problem)
    if problems:
        raise GraphValidationError(problems)
    return CheckedGraph(graph, target_list, order, specs, constants, links_into)


def validate(graph: Graph, registry: NodeRegistry, targets: Iterable[str] | None = None) -> list[Problem]:
    """Every problem that would stop a run of ``targets``; an empty list when it can run."""
    try:
        check_graph(graph, registry, targets)
    except GraphValidationError as exc:
        return exc.problems
    return []


def _topological_order(graph: Graph, needed: set[str],
                       links_into: dict[str, dict[str, Link]]) -> tuple[list[str], Problem | None]:
    """Kahn's algorithm in the graph's node order, so runs are deterministic."""
    pending = {node_id: 0 for node_id in needed}
    consumers: dict[str, list[str]] = {node_id: [] for node_id in needed}
    for node_id, wired in links_into.items():
        for link in wired.values():
            if link.from_node in pending:
                pending[node_id] += 1
                consumers[link.from_node].append(node_id)
    ready = [node_id for node_id in graph.nodes if node_id in pending and pending[node_id] == 0]
    ready.reverse()
    order: list[str] = []
    while ready:
        node_id = ready.pop()
        order.append(node_id)
        for consumer in consumers[node_id]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                ready.append(consumer)
    if len(order) == len(needed):
        return order, None
    stuck = {node_id for node_id, count in pending.items() if count > 0}
    return order, _cycle_problem(graph, stuck, links_into)


def _cycle_problem(graph: Graph, stuck: set[str], links_into: dict[str, dict[str, Link]]) -> Problem:
    # Every stuck node has a stuck predecessor, so walking backwards must revisit a node.
    start = next(node_id for node_id in graph.nodes if node_id in stuck)
    path: list[tuple[str, Link]] = []
    seen: dict[str, int] = {}
    node_id = start
    while node_id not in seen:
        seen[node_id] = len(path)
        link = next(link for link in links_into[node_id].values() if link.from_node in stuck)
        path.append((node_id, link))
        node_id = link.from_node
    loop = path[seen[node_id]:]
    # Show it in the direction values flow: producer → consumer.
    names = [f"{n} ({graph.nodes[n].type})" for n, _ in reversed(loop)]
    first_id, first_link = loop[-1]
    node = graph.nodes[first_id]
    return Problem(
        "is part of a cycle: " + " → ".join([*names, names[0]]) + "; a node cannot depend on its own output",
        node.id, node.type, first_link.to_input,
    )

