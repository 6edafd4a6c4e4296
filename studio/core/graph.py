"""The graph model: nodes with stable string ids, links as objects, constants, modes.

The model holds graph semantics only; positions, sizes, groups and colours belong to the
workflow's UI section. It knows nothing of the registry, so a graph with node types that are not
installed is still a graph (their nodes are placeholders until a plugin provides them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeMode(StrEnum):
    """How the engine treats a node: run it, leave it out, or pass its inputs through."""

    NORMAL = "normal"
    MUTED = "muted"
    BYPASSED = "bypassed"


@dataclass
class GraphNode:
    """One node placed in a graph.

    ``inputs`` holds constant (widget) values by input name; a link into an input takes
    precedence over a constant of the same name. ``extra`` keeps fields of the saved node that
    this version does not know, so they survive a load and a save.
    """

    id: str
    type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    mode: NodeMode = NodeMode.NORMAL
    title: str | None = None
    version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Which of the standard fields the file spelled out, so a save writes them back the same way.
    loaded_keys: frozenset[str] = frozenset()

    def label(self) -> str:
        """How messages name this node: ``node 3 (KSampler)``."""
        return f"node {self.id} ({self.type})"


@dataclass(frozen=True)
class Link:
    """A wire from output slot ``from_output`` of one node to a named input of another."""

    id: str
    from_node: str
    from_output: int
    to_node: str
    to_input: str


class GraphError(ValueError):
    """An edit that would make the graph inconsistent (unknown node, taken id)."""


class Graph:
    """Nodes and links, with the invariant of at most one link into each input."""

    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.links: dict[str, Link] = {}
        self._into: dict[tuple[str, str], str] = {}
        self._next_id = 1
        self.revision = 0

    # -- nodes -------------------------------------------------------------------------------
    def new_node_id(self) -> str:
        """A fresh id: the next integer not in use (ComfyUI-style ids read well in messages)."""
        while str(self._next_id) in self.nodes:
            self._next_id += 1
        return str(self._next_id)

    def add_node(self, type: str, inputs: dict[str, Any] | None = None, *, id: str | None = None,
                 mode: NodeMode | str = NodeMode.NORMAL, title: str | None = None,
                 version: int | None = None, extra: dict[str, Any] | None = None) -> GraphNode:
        node_id = self.new_node_id() if id is None else str(id)
        if node_id in self.nodes:
            raise GraphError(f"a node with id {node_id!r} already exists")
        node = GraphNode(node_id, type, dict(inputs or {}), NodeMode(mode), title, version, dict(extra or {}))
        self.nodes[node_id] = node
        self.revision += 1
        return node

    def remove_node(self, node_id: str) -> list[Link]:
        """Remove a node and every link touching it; returns those links (for undo)."""
        self._node(node_id)
        removed = [link for link in self.links.values() if node_id in (link.from_node, link.to_node)]
        for link in removed:
            self.remove_link(link.id)
        del self.nodes[node_id]
        self.revision += 1
        return removed

    def restore_node(self, node: GraphNode, index: int | None = None) -> None:
        """Put back a node exactly as it was (undo), at position ``index`` in the node order.

        The order matters: it is the order of the saved file and the executor's tie-break, so an
        undone removal must leave the graph as it was, not with the node moved to the end.
        """
        if node.id in self.nodes:
            raise GraphError(f"a node with id {node.id!r} already exists")
        self.nodes[node.id] = node
        if index is not None and index < len(self.nodes) - 1:
            _move_last_to(self.nodes, index)
        self.revision += 1

    def node_index(self, node_id: str) -> int:
        """Position of a node in the graph's order (what :meth:`restore_node` takes back)."""
        self._node(node_id)
        return list(self.nodes).index(node_id)

    def set_input(self, node_id: str, name: str, value: Any) -> None:
        self._node(node_id).inputs[name] = value
        self.revision += 1

    def set_mode(self, node_id: str, mode: NodeMode | str) -> None:
        self._node(node_id).mode = NodeMode(mode)
        self.revision += 1

    def _node(self, node_id: str) -> GraphNode:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"no node with id {node_id!r}") from None

    # -- links -------------------------------------------------------------------------------
    def connect(self, from_node: str, from_output: int, to_node: str, to_input: str,
                *, id: str | None = None) -> Link:
        """Wire an output to an input, replacing any link already into that input."""
        self._node(from_node)
        self._node(to_node)
        if not isinstance(from_output, int) or isinstance(from_output, bool) or from_output < 0:
            raise GraphError(f"output slot must be a non-negative integer, got {from_output!r}")
        link_id = self._new_link_id() if id is None else str(id)
        if link_id in self.links:
            raise GraphError(f"a link with id {link_id!r} already exists")
        old = self._into.get((to_node, to_input))
        if old is not None:
            self.remove_link(old)
        link = Link(link_id, from_node, from_output, to_node, to_input)
        self.links[link_id] = link
        self._into[(to_node, to_input)] = link_id
        self.revision += 1
        return link

    def restore_link(self, link: Link, index: int | None = None) -> None:
        """Put back a removed link with its id at position ``index`` in the link order (undo).

        Unlike :meth:`connect` this never replaces: the input must be free, as it was before.
        """
        self._node(link.from_node)
        self._node(link.to_node)
        if link.id in self.links:
            raise GraphError(f"a link with id {link.id!r} already exists")
        if (link.to_node, link.to_input) in self._into:
            raise GraphError(f"input {link.to_input!r} of node {link.to_node} is already connected")
        self.links[link.id] = link
        self._into[(link.to_node, link.to_input)] = link.id
        if index is not None and index < len(self.links) - 1:
            _move_last_to(self.links, index)
        self.revision += 1

    def link_index(self, link_id: str) -> int:
        """Position of a link in the graph's order (what :meth:`restore_link` takes back)."""
        return list(self.links).index(link_id)

    def _new_link_id(self) -> str:
        n = len(self.links) + 1
        while str(n) in self.links:
            n += 1
        return str(n)

    def remove_link(self, link_id: str) -> Link:
        link = self.links.pop(link_id)
        del self._into[(link.to_node, link.to_input)]
        self.revision += 1
        return link

    def disconnect(self, to_node: str, to_input: str) -> Link | None:
        link_id = self._into.get((to_node, to_input))
        return None if link_id is None else self.remove_link(link_id)

    def link_into(self, node_id: str, input_name: str) -> Link | None:
        """The link feeding ``input_name`` of ``node_id``, if any."""
        link_id = self._into.get((node_id, input_name))
        return None if link_id is None else self.links[link_id]

    def links_into(self, node_id: str) -> list[Link]:
        return [link for link in self.links.values() if link.to_node == node_id]

    def links_from(self, node_id: str) -> list[Link]:
        return [link for link in self.links.values() if link.from_node == node_id]

    # -- whole graph -------------------------------------------------------------------------
    def upstream(self, node_ids: Iterable[str]) -> set[str]:
        """The given nodes and all their ancestors (through links), ignoring missing ids."""
        feeding: dict[str, list[str]] = {}
        for link in self.links.values():
            feeding.setdefault(link.to_node, []).append(link.from_node)
        seen: set[str] = set()
        stack = [n for n in node_ids if n in self.nodes]
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.extend(n for n in feeding.get(node_id, ()) if n not in seen and n in self.nodes)
        return seen

    def copy(self) -> Graph:
        """A deep copy: a snapshot the engine can run while the editor keeps changing."""
        return copy.deepcopy(self)

    def __iter__(self) -> Iterator[GraphNode]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)


def _move_last_to(items: dict[str, Any], index: int) -> None:
    """Move the last entry of an insertion-ordered dict to ``index``, keeping the others' order."""
    entries = list(items.items())
    entries.insert(max(index, 0), entries.pop())
    items.clear()
    items.update(entries)
