"""The editable model under a document: the workflow, changed only through small primitives.

Each primitive makes one change to the graph or its ``ui`` section and reports it as one event.
Undo commands are built from these primitives alone, which is what lets the canvas mirror every
edit, undo and redo without ever touching the graph itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from studio.core import layout
from studio.core.document_events import (
    DocumentEvent,
    GroupAdded,
    GroupChanged,
    GroupRemoved,
    InputChanged,
    LinkAdded,
    LinkRemoved,
    NodeAdded,
    NodeChanged,
    NodeMoved,
    NodeRemoved,
    NodeResized,
    NoteAdded,
    NoteChanged,
    NoteRemoved,
    ReroutesChanged,
)
from studio.core.graph import Graph, GraphError, GraphNode, Link, NodeMode
from studio.core.workflow import Workflow


class _Absent:
    """Marks a key that is not there: setting a field to ABSENT removes it."""

    def __repr__(self) -> str:
        return "ABSENT"

    def __copy__(self) -> _Absent:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Absent:
        return self  # a copied command must still recognise it by identity


ABSENT: Any = _Absent()

_ITEM_EVENTS = {
    layout.GROUPS: (GroupAdded, GroupRemoved, GroupChanged),
    layout.NOTES: (NoteAdded, NoteRemoved, NoteChanged),
}


class DocumentModel:
    """A workflow plus the primitives that change it, each reporting one event."""

    def __init__(self, workflow: Workflow, emit: Callable[[DocumentEvent], None]):
        self.workflow = workflow
        self._emit = emit

    @property
    def graph(self) -> Graph:
        return self.workflow.graph

    @property
    def ui(self) -> dict[str, Any]:
        return self.workflow.ui

    # -- nodes ---------------------------------------------------------------------------------
    def insert_node(self, node: GraphNode, entry: dict[str, Any] | None, index: int | None = None) -> None:
        """Add a node (a copy: the caller keeps its snapshot for the next redo) and its layout."""
        self.graph.restore_node(copy.deepcopy(node), index)
        if entry is not None:
            self.ui.setdefault(layout.NODES, {})[node.id] = copy.deepcopy(entry)
        self._emit(NodeAdded(node.id))

    def take_node(self, node_id: str) -> tuple[GraphNode, dict[str, Any] | None, int]:
        """Remove a node that no link touches any more; returns what :meth:`insert_node` takes back."""
        graph = self.graph
        if graph.links_into(node_id) or graph.links_from(node_id):
            raise GraphError(f"node {node_id} still has links; remove them first")
        index = graph.node_index(node_id)
        node = graph.nodes[node_id]
        graph.remove_node(node_id)
        entry = self._pop(layout.NODES, node_id)
        self._emit(NodeRemoved(node_id))
        return node, entry, index

    def set_input(self, node_id: str, name: str, value: Any) -> None:
        node = self.graph.nodes[node_id]
        if value is ABSENT:
            node.inputs.pop(name, None)
            self.graph.revision += 1
        else:
            self.graph.set_input(node_id, name, copy.deepcopy(value))
        self._emit(InputChanged(node_id, name))

    def set_title(self, node_id: str, title: str | None) -> None:
        self.graph.nodes[node_id].title = title
        self.graph.revision += 1
        self._emit(NodeChanged(node_id, "title"))

    def set_mode(self, node_id: str, mode: NodeMode) -> None:
        self.graph.set_mode(node_id, mode)
        self._emit(NodeChanged(node_id, "mode"))

    def node_field(self, node_id: str, key: str) -> Any:
        """A layout field of a node (``pos``, ``size``, ``collapsed`` …), or ABSENT."""
        return copy.deepcopy(layout.node_entry(self.ui, node_id).get(key, ABSENT))

    def set_node_field(self, node_id: str, key: str, value: Any) -> None:
        """Set (or, with ABSENT, remove) one layout field of a node and report it."""
        if node_id not in self.graph.nodes:
            raise GraphError(f"no node with id {node_id!r}")
        nodes = self.ui.setdefault(layout.NODES, {})
        entry = nodes.get(node_id)
        if not isinstance(entry, dict):
            entry = nodes[node_id] = {}
        if value is ABSENT:
            entry.pop(key, None)
            if not entry:
                self._pop(layout.NODES, node_id)
        else:
            entry[key] = copy.deepcopy(value)
        if key == "pos":
            self._emit(NodeMoved(node_id))
        elif key == "size":
            self._emit(NodeResized(node_id))
        else:
            self._emit(NodeChanged(node_id, key))

    # -- links ---------------------------------------------------------------------------------
    def insert_link(self, link: Link, index: int | None = None, points: list[Any] | None = None) -> None:
        """Add a link into a free input, with its bend points if it had any."""
        self.graph.restore_link(link, index)
        if points:
            self.ui.setdefault(layout.REROUTES, {})[link.id] = copy.deepcopy(points)
        self._emit(LinkAdded(link))

    def take_link(self, link_id: str) -> tuple[Link, int, list[Any] | None]:
        """Remove a link and its bend points; returns what :meth:`insert_link` takes back."""
        index = self.graph.link_index(link_id)
        link = self.graph.remove_link(link_id)
        points = self._pop(layout.REROUTES, link_id)
        self._emit(LinkRemoved(link))
        return link, index, points

    def set_reroutes(self, link_id: str, points: list[Any] | None) -> None:
        if link_id not in self.graph.links:
            raise GraphError(f"no link with id {link_id!r}")
        if points:
            self.ui.setdefault(layout.REROUTES, {})[link_id] = copy.deepcopy(points)
        else:
            self._pop(layout.REROUTES, link_id)
        self._emit(ReroutesChanged(link_id))

    def reroute_points(self, link_id: str) -> list[Any] | None:
        table = self.ui.get(layout.REROUTES)
        points = table.get(link_id) if isinstance(table, dict) else None
        return copy.deepcopy(points) if points else None

    # -- groups and notes ----------------------------------------------------------------------
    def insert_item(self, kind: str, item: dict[str, Any], index: int | None = None) -> None:
        listed = self.ui.setdefault(kind, [])
        listed.insert(len(listed) if index is None else index, copy.deepcopy(item))
        self._emit(_ITEM_EVENTS[kind][0](item["id"]))

    def take_item(self, kind: str, item_id: str) -> tuple[dict[str, Any], int]:
        found = layout.find_item(self.ui, kind, item_id)
        if found is None:
            raise GraphError(f"no {kind[:-1]} with id {item_id!r}")
        index, item = found
        del self.ui[kind][index]
        if not self.ui[kind]:
            del self.ui[kind]
        self._emit(_ITEM_EVENTS[kind][1](item_id))
        return item, index

    def item_field(self, kind: str, item_id: str, key: str) -> Any:
        found = layout.find_item(self.ui, kind, item_id)
        if found is None:
            raise GraphError(f"no {kind[:-1]} with id {item_id!r}")
        return copy.deepcopy(found[1].get(key, ABSENT))

    def set_item_field(self, kind: str, item_id: str, key: str, value: Any) -> None:
        found = layout.find_item(self.ui, kind, item_id)
        if found is None:
            raise GraphError(f"no {kind[:-1]} with id {item_id!r}")
        if value is ABSENT:
            found[1].pop(key, None)
        else:
            found[1][key] = copy.deepcopy(value)
        self._emit(_ITEM_EVENTS[kind][2](item_id))

    # -- helpers -------------------------------------------------------------------------------
    def _pop(self, container: str, key: str) -> Any:
        """Remove ``ui[container][key]`` and the container once empty (files stay small)."""
        table = self.ui.get(container)
        if not isinstance(table, dict) or key not in table:
            return None
        value = table.pop(key)
        if not table:
            del self.ui[container]
        return value
