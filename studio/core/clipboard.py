"""Copying part of a workflow as JSON text, and reading such text back.

The text is plain JSON, so it travels through the system clipboard between windows (and into a
chat or an issue). It carries a format marker: pasting foreign text fails with a clear message
instead of doing something odd. A whole workflow file's text pastes too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from studio.core import layout
from studio.core.errors import NuanceError, WorkflowError
from studio.core.graph import GraphNode, Link
from studio.core.registry import NodeRegistry
from studio.core.workflow import FORMAT, FORMAT_VERSION, Workflow, parse_workflow, resolve_workflow, workflow_to_dict

CLIPBOARD_FORMAT = "nuance.clipboard"
CLIPBOARD_VERSION = 1


class ClipboardError(NuanceError):
    """The text cannot be pasted as nodes; says why."""


@dataclass
class Fragment:
    """Nodes, their internal links and layout, groups and notes, still with their original ids."""

    nodes: list[GraphNode] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    node_layout: dict[str, dict[str, Any]] = field(default_factory=dict)
    reroutes: dict[str, list[Any]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def copy_text(workflow: Workflow, node_ids: Iterable[str], group_ids: Iterable[str] = (),
              note_ids: Iterable[str] = ()) -> str:
    """The selected nodes, the links between them, their layout, and the selected groups and notes."""
    chosen = set(node_ids)
    data = workflow_to_dict(workflow)
    nodes = [item for item in data["graph"]["nodes"] if item["id"] in chosen]
    links = [item for item in data["graph"]["links"] if item["from_node"] in chosen and item["to_node"] in chosen]
    ui = workflow.ui
    clip_ui: dict[str, Any] = {}
    node_layout = {nid: copy.deepcopy(layout.node_entry(ui, nid)) for nid in chosen if layout.node_entry(ui, nid)}
    if node_layout:
        clip_ui[layout.NODES] = node_layout
    table = ui.get(layout.REROUTES)
    if isinstance(table, dict):
        points = {link["id"]: copy.deepcopy(table[link["id"]]) for link in links if link["id"] in table}
        if points:
            clip_ui[layout.REROUTES] = points
    for kind, wanted in ((layout.GROUPS, set(group_ids)), (layout.NOTES, set(note_ids))):
        picked = [copy.deepcopy(item) for item in layout.items(ui, kind) if item["id"] in wanted]
        if picked:
            clip_ui[kind] = picked
    clip = {"format": CLIPBOARD_FORMAT, "version": CLIPBOARD_VERSION,
            "graph": {"nodes": nodes, "links": links}, "ui": clip_ui}
    return json.dumps(clip, ensure_ascii=False, indent=1)


def read_text(text: str, registry: NodeRegistry | None = None) -> Fragment:
    """Parse clipboard text (ours, or a whole workflow file); raise ClipboardError saying why not."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ClipboardError("the clipboard does not hold Nuance Studio nodes (it is not JSON)") from None
    if not isinstance(data, dict) or data.get("format") not in (CLIPBOARD_FORMAT, FORMAT):
        raise ClipboardError("the clipboard does not hold Nuance Studio nodes (the text has no "
                             f"\"format\": \"{CLIPBOARD_FORMAT}\" marker)")
    version = data.get("version")
    if data["format"] == CLIPBOARD_FORMAT:
        if isinstance(version, int) and version > CLIPBOARD_VERSION:
            raise ClipboardError(f"these nodes were copied by a newer Nuance Studio (clipboard version {version}); "
                                 "update Nuance Studio to paste them")
        # The node and link entries are those of a workflow file: check them with the same schema.
        data = {"format": FORMAT, "version": FORMAT_VERSION, "graph": data.get("graph"), "ui": data.get("ui", {})}
    try:
        workflow = parse_workflow(data, origin="clipboard")
    except WorkflowError as exc:
        raise ClipboardError(str(exc)) from None
    if registry is not None:
        resolve_workflow(workflow, registry)
    ui = workflow.ui
    set_aside = layout.normalize(ui)
    graph = workflow.graph
    fragment = Fragment(nodes=list(graph.nodes.values()), links=list(graph.links.values()),
                        warnings=[*workflow.warnings, *set_aside])
    layout.auto_layout(graph, ui, registry)
    fragment.node_layout = {nid: copy.deepcopy(layout.node_entry(ui, nid)) for nid in graph.nodes}
    table = ui.get(layout.REROUTES)
    if isinstance(table, dict):
        fragment.reroutes = {lid: copy.deepcopy(table[lid]) for lid in graph.links if isinstance(table.get(lid), list)}
    fragment.groups = copy.deepcopy(layout.items(ui, layout.GROUPS))
    fragment.notes = copy.deepcopy(layout.items(ui, layout.NOTES))
    return fragment
