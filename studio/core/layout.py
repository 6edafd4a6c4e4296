"""The workflow's ``ui`` section: where the editor keeps layout, and nothing the engine reads.

The section is free-form in the file schema; this module is the one place that knows its shape
(every key optional, unknown keys kept as they are)::

    "ui": {
      "nodes":    {"<node id>": {"pos": [x, y], "size": [w, h], "collapsed": true, "color": "#4a3b6b",
                                 "sockets": ["steps"], "controls": {"seed": "randomize"}}},
      "groups":   [{"id": "1", "title": "Prompt", "color": "#3f5f7f", "bounding": [x, y, w, h]}],
      "notes":    [{"id": "1", "text": "…", "pos": [x, y], "size": [w, h], "color": "#…"}],
      "reroutes": {"<link id>": [[x, y], …]}
    }

``sockets`` lists the widget inputs shown as sockets ("convert widget to input"); ``controls``
holds what a seed widget does after each run. Groups use litegraph's ``bounding`` so files from
that world read naturally. Empty containers are left out, so an unlaid-out file stays small.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from studio.core.graph import Graph
from studio.core.registry import NodeRegistry
from studio.core.types import WIDGET_TYPES, type_members

NODES, GROUPS, NOTES, REROUTES = "nodes", "groups", "notes", "reroutes"
#: Containers of listed items with ids (groups, notes), kept in drawing order.
ITEM_KINDS = (GROUPS, NOTES)
SEED_CONTROLS = ("fixed", "increment", "randomize")
#: Widget inputs that get a control-after-run combo (ComfyUI's names for seeds).
SEED_INPUTS = frozenset({"seed", "noise_seed"})

#: Sizes the auto layout assumes (the editor draws nodes about this big).
NODE_WIDTH, COLUMN_GAP, ROW_GAP, HEADER, ROW = 240, 80, 40, 30, 24


def node_entry(ui: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The layout of one node (read only; empty when it has none)."""
    nodes = ui.get(NODES)
    entry = nodes.get(node_id) if isinstance(nodes, dict) else None
    return entry if isinstance(entry, dict) else {}


def node_pos(ui: dict[str, Any], node_id: str) -> tuple[float, float] | None:
    """Where a node sits, or None when the layout does not say (or says it badly)."""
    return as_point(node_entry(ui, node_id).get("pos"))


def as_point(value: Any) -> tuple[float, float] | None:
    if (isinstance(value, (list, tuple)) and len(value) >= 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2])):
        return float(value[0]), float(value[1])
    return None


def items(ui: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The groups or notes that have an id (entries another tool wrote badly are kept, not shown)."""
    listed = ui.get(kind)
    if not isinstance(listed, list):
        return []
    return [item for item in listed if isinstance(item, dict) and isinstance(item.get("id"), str)]


def find_item(ui: dict[str, Any], kind: str, item_id: str) -> tuple[int, dict[str, Any]] | None:
    """Index in the stored list and the entry of a group or note, or None."""
    listed = ui.get(kind)
    if isinstance(listed, list):
        for index, item in enumerate(listed):
            if isinstance(item, dict) and item.get("id") == item_id:
                return index, item
    return None


def reroutes(ui: dict[str, Any], link_id: str) -> list[tuple[float, float]]:
    """The bend points of a wire, in order from its output to its input."""
    table = ui.get(REROUTES)
    points = table.get(link_id) if isinstance(table, dict) else None
    if not isinstance(points, list):
        return []
    return [p for p in (as_point(v) for v in points) if p is not None]


def shown_as_socket(ui: dict[str, Any], node_id: str) -> frozenset[str]:
    """Widget inputs the user turned into sockets."""
    names = node_entry(ui, node_id).get("sockets")
    return frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) else frozenset()


def seed_control(ui: dict[str, Any], node_id: str, input_name: str) -> str:
    """What happens to a seed widget after each run: ``fixed`` unless the layout says otherwise."""
    controls = node_entry(ui, node_id).get("controls")
    value = controls.get(input_name) if isinstance(controls, dict) else None
    return value if value in SEED_CONTROLS else "fixed"


def normalize(ui: dict[str, Any]) -> list[str]:
    """Give groups and notes ids and drop empty containers, so later edits can be undone exactly.

    A container of the wrong shape (written by another tool) is kept under ``unreadable`` rather
    than dropped or overwritten; returns what was set aside, for the user to read.
    """
    notes = []
    for key, shape in ((NODES, dict), (REROUTES, dict), (GROUPS, list), (NOTES, list)):
        if key in ui and not isinstance(ui[key], shape):
            ui.setdefault("unreadable", {})[key] = ui.pop(key)
            notes.append(f"the layout's {key!r} entry has an unexpected shape; it was kept aside, unused")
    for kind in ITEM_KINDS:
        listed = ui.get(kind)
        if not isinstance(listed, list):
            continue
        used = {item["id"] for item in listed if isinstance(item, dict) and isinstance(item.get("id"), str)}
        for item in listed:
            if isinstance(item, dict) and not isinstance(item.get("id"), str):
                item["id"] = fresh_id(used)
                used.add(item["id"])
    for key in (NODES, REROUTES, *ITEM_KINDS):
        if key in ui and not ui[key]:
            del ui[key]
    return notes


def fresh_id(used: Iterable[str], start: int = 1) -> str:
    """The smallest whole-number id from ``start`` that is not in ``used``."""
    taken = set(used)
    n = start
    while str(n) in taken:
        n += 1
    return str(n)


# -- automatic layout --------------------------------------------------------------------------
def estimate_height(graph: Graph, registry: NodeRegistry | None, node_id: str) -> float:
    """Roughly how tall the editor draws a node: one row per socket pair plus one per widget."""
    node = graph.nodes[node_id]
    spec = registry.spec(node.type) if registry is not None else None
    if spec is None:
        return HEADER + ROW * 2
    sockets = widgets = 0
    for inp in spec.inputs:
        members = type_members(inp.type)
        if members is not None and members & WIDGET_TYPES:
            widgets += 4 if inp.multiline else 1
        else:
            sockets += 1
    return HEADER + ROW * (max(sockets, len(spec.outputs)) + widgets) + 10


def auto_layout(graph: Graph, ui: dict[str, Any], registry: NodeRegistry | None = None) -> list[str]:
    """Place the nodes that have no position: columns by depth, in value-flow order.

    Example workflows (and ComfyUI API prompts) often come without layout; a column per step
    of the data flow reads left to right the way the graph runs. Nodes already placed stay put;
    the new ones go below them. Returns the ids placed.
    """
    missing = [node_id for node_id in graph.nodes if node_pos(ui, node_id) is None]
    if not missing:
        return []
    wanted = set(missing)
    feeding: dict[str, list[str]] = {node_id: [] for node_id in missing}
    for link in graph.links.values():
        if link.to_node in wanted and link.from_node in wanted:
            feeding[link.to_node].append(link.from_node)
    depth = _depths(missing, feeding)
    columns: dict[int, list[str]] = {}
    for node_id in missing:
        columns.setdefault(depth[node_id], []).append(node_id)
    top = 0.0
    placed = [p for p in (node_pos(ui, n) for n in graph.nodes if n not in wanted) if p is not None]
    if placed:
        top = max(y for _, y in placed) + 200
    left = min((x for x, _ in placed), default=0.0)
    centre: dict[str, float] = {}
    nodes_ui = ui.setdefault(NODES, {})
    for column in sorted(columns):
        ids = columns[column]
        # Order a column by where its inputs come from, so wires cross less.
        ids.sort(key=lambda n: sum(centre.get(p, 0.0) for p in feeding[n]) / max(len(feeding[n]), 1))
        y = top
        for node_id in ids:
            height = estimate_height(graph, registry, node_id)
            entry = nodes_ui.get(node_id)
            if not isinstance(entry, dict):
                entry = nodes_ui[node_id] = {}
            entry["pos"] = [round(left + column * (NODE_WIDTH + COLUMN_GAP)), round(y)]
            centre[node_id] = y + height / 2
            y += height + ROW_GAP
    return missing


def _depths(order: list[str], feeding: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source, by Kahn's algorithm; nodes caught in a cycle go one column further."""
    consumers: dict[str, list[str]] = {n: [] for n in order}
    pending = {n: len(feeding[n]) for n in order}
    for node_id, parents in feeding.items():
        for parent in parents:
            consumers[parent].append(node_id)
    depth = {n: 0 for n in order}
    ready = [n for n in order if pending[n] == 0]
    done: set[str] = set()
    while ready:
        node_id = ready.pop()
        done.add(node_id)
        for consumer in consumers[node_id]:
            depth[consumer] = max(depth[consumer], depth[node_id] + 1)
            pending[consumer] -= 1
            if pending[consumer] == 0:
                ready.append(consumer)
    deepest = max(depth.values(), default=0)
    for node_id in order:
        if node_id not in done:
            depth[node_id] = max(depth[node_id], deepest + 1)
    return depth
