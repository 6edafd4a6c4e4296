"""Undo commands: each one changes the model only through :class:`DocumentModel` primitives.

A command remembers what it needs to put things back exactly: removed links keep their ids,
nodes and links return to their place in the graph's order, and layout fields that were absent
become absent again. So undo-then-redo leaves ``workflow_to_dict`` unchanged, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.core import layout
from studio.core.document_model import ABSENT, DocumentModel
from studio.core.graph import GraphNode, Link, NodeMode


class Command:
    """One undoable step. ``text`` is what Edit ▸ Undo shows."""

    text: str = ""

    def redo(self, model: DocumentModel) -> None:
        raise NotImplementedError

    def undo(self, model: DocumentModel) -> None:
        raise NotImplementedError

    def merge(self, other: Command) -> bool:
        """Absorb ``other`` (done just after this one) into this step; True when it did."""
        return False


@dataclass
class Macro(Command):
    """Several commands that the user did as one action: one undo step."""

    text: str
    children: list[Command] = field(default_factory=list)

    def redo(self, model: DocumentModel) -> None:
        for child in self.children:
            child.redo(model)

    def undo(self, model: DocumentModel) -> None:
        for child in reversed(self.children):
            child.undo(model)


@dataclass
class InsertItems(Command):
    """Add nodes, the links between them and groups or notes: add node, paste, duplicate."""

    text: str
    nodes: list[tuple[GraphNode, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[Link, list[Any] | None]] = field(default_factory=list)
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def redo(self, model: DocumentModel) -> None:
        for node, entry in self.nodes:
            model.insert_node(node, entry)
        for link, points in self.links:
            model.insert_link(link, points=points)
        for kind, item in self.items:
            model.insert_item(kind, item)

    def undo(self, model: DocumentModel) -> None:
        for kind, item in reversed(self.items):
            model.take_item(kind, item["id"])
        for link, _ in reversed(self.links):
            model.take_link(link.id)
        for node, _ in reversed(self.nodes):
            model.take_node(node.id)


@dataclass
class RemoveItems(Command):
    """Delete nodes (with every link touching them), groups and notes."""

    node_ids: Sequence[str] = ()
    group_ids: Sequence[str] = ()
    note_ids: Sequence[str] = ()
    text: str = "Delete"
    _nodes: list[tuple[GraphNode, dict[str, Any] | None, int]] = field(default_factory=list, repr=False)
    _links: list[tuple[Link, int, list[Any] | None]] = field(default_factory=list, repr=False)
    _items: list[tuple[str, dict[str, Any], int]] = field(default_factory=list, repr=False)

    def redo(self, model: DocumentModel) -> None:
        graph = model.graph
        doomed = set(self.node_ids)
        link_ids = [lid for lid, link in graph.links.items() if link.from_node in doomed or link.to_node in doomed]
        # Take from the back so the indices recorded are the original ones.
        self._links = [model.take_link(lid) for lid in reversed(link_ids)]
        node_ids = [nid for nid in graph.nodes if nid in doomed]
        self._nodes = [model.take_node(nid) for nid in reversed(node_ids)]
        self._items = []
        for kind, ids in ((layout.GROUPS, self.group_ids), (layout.NOTES, self.note_ids)):
            wanted = set(ids)
            present = [item["id"] for item in layout.items(model.ui, kind) if item["id"] in wanted]
            for item_id in reversed(present):
                item, index = model.take_item(kind, item_id)
                self._items.append((kind, item, index))

    def undo(self, model: DocumentModel) -> None:
        for kind, item, index in reversed(self._items):
            model.insert_item(kind, item, index)
        for node, entry, index in reversed(self._nodes):
            model.insert_node(node, entry, index)
        for link, index, points in reversed(self._links):
            model.insert_link(link, index, points)


@dataclass
class Connect(Command):
    """Wire an output to an input; a link already into that input is replaced (and comes back on undo)."""

    link: Link
    text: str = "Connect"
    _replaced: tuple[Link, int, list[Any] | None] | None = field(default=None, repr=False)

    def redo(self, model: DocumentModel) -> None:
        old = model.graph.link_into(self.link.to_node, self.link.to_input)
        self._replaced = None if old is None else model.take_link(old.id)
        model.insert_link(self.link)

    def undo(self, model: DocumentModel) -> None:
        model.take_link(self.link.id)
        if self._replaced is not None:
            model.insert_link(*self._replaced)


@dataclass
class Disconnect(Command):
    link_id: str
    text: str = "Disconnect"
    _taken: tuple[Link, int, list[Any] | None] | None = field(default=None, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._taken = model.take_link(self.link_id)

    def undo(self, model: DocumentModel) -> None:
        assert self._taken is not None
        model.insert_link(*self._taken)


@dataclass
class SetInput(Command):
    """Change a widget value; consecutive edits of the same widget merge into one step."""

    node_id: str
    name: str
    value: Any
    text: str = "Change value"
    _old: Any = field(default=ABSENT, repr=False)
    _recorded: bool = field(default=False, repr=False)

    def redo(self, model: DocumentModel) -> None:
        if not self._recorded:
            self._old = model.graph.nodes[self.node_id].inputs.get(self.name, ABSENT)
            self._recorded = True
        model.set_input(self.node_id, self.name, self.value)

    def undo(self, model: DocumentModel) -> None:
        model.set_input(self.node_id, self.name, self._old)

    def merge(self, other: Command) -> bool:
        if isinstance(other, SetInput) and (other.node_id, other.name) == (self.node_id, self.name):
            self.value = other.value
            return True
        return False


@dataclass
class SetTitle(Command):
    node_id: str
    title: str | None
    text: str = "Rename"
    _old: str | None = field(default=None, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._old = model.graph.nodes[self.node_id].title
        model.set_title(self.node_id, self.title)

    def undo(self, model: DocumentModel) -> None:
        model.set_title(self.node_id, self._old)


@dataclass
class SetMode(Command):
    node_ids: Sequence[str]
    mode: NodeMode
    text: str = "Change mode"
    _old: dict[str, NodeMode] = field(default_factory=dict, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._old = {nid: model.graph.nodes[nid].mode for nid in self.node_ids}
        for nid in self.node_ids:
            model.set_mode(nid, self.mode)

    def undo(self, model: DocumentModel) -> None:
        for nid, mode in self._old.items():
            model.set_mode(nid, mode)


@dataclass
class SetNodeFields(Command):
    """Change layout fields of nodes (``pos``, ``size``, ``collapsed`` …); ABSENT removes a field."""

    changes: Mapping[str, Mapping[str, Any]]
    text: str = "Change layout"
    _old: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._old = {nid: {key: model.node_field(nid, key) for key in fields} for nid, fields in self.changes.items()}
        for nid, fields in self.changes.items():
            for key, value in fields.items():
                model.set_node_field(nid, key, value)

    def undo(self, model: DocumentModel) -> None:
        for nid, fields in self._old.items():
            for key, value in fields.items():
                model.set_node_field(nid, key, value)


@dataclass
class SetItemFields(Command):
    """Change fields of groups or notes (title, colour, bounding, text …); ABSENT removes a field."""

    kind: str
    changes: Mapping[str, Mapping[str, Any]]
    text: str = "Change"
    _old: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._old = {iid: {key: model.item_field(self.kind, iid, key) for key in fields}
                     for iid, fields in self.changes.items()}
        for iid, fields in self.changes.items():
            for key, value in fields.items():
                model.set_item_field(self.kind, iid, key, value)

    def undo(self, model: DocumentModel) -> None:
        for iid, fields in self._old.items():
            for key, value in fields.items():
                model.set_item_field(self.kind, iid, key, value)


@dataclass
class SetReroutes(Command):
    """Replace the bend points of a wire (add, move or remove a reroute point)."""

    link_id: str
    points: list[Any] | None
    text: str = "Reroute wire"
    _old: list[Any] | None = field(default=None, repr=False)

    def redo(self, model: DocumentModel) -> None:
        self._old = model.reroute_points(self.link_id)
        model.set_reroutes(self.link_id, self.points)

    def undo(self, model: DocumentModel) -> None:
        model.set_reroutes(self.link_id, self._old)
