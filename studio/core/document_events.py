"""What a document reports when its model changes, so views can mirror it piece by piece.

Events are small and precise: a canvas with 500 nodes must update one node, not rebuild the
scene, when a value changes. They say what changed, never how (an undo and a redo read the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.core.graph import Link


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    pass


@dataclass(frozen=True, slots=True)
class NodeAdded(DocumentEvent):
    node_id: str


@dataclass(frozen=True, slots=True)
class NodeRemoved(DocumentEvent):
    node_id: str


@dataclass(frozen=True, slots=True)
class LinkAdded(DocumentEvent):
    link: Link


@dataclass(frozen=True, slots=True)
class LinkRemoved(DocumentEvent):
    link: Link


@dataclass(frozen=True, slots=True)
class InputChanged(DocumentEvent):
    """A constant (widget) value was set or cleared."""

    node_id: str
    name: str


@dataclass(frozen=True, slots=True)
class NodeMoved(DocumentEvent):
    node_id: str


@dataclass(frozen=True, slots=True)
class NodeResized(DocumentEvent):
    node_id: str


#: What a :class:`NodeChanged` may be about.
TITLE, MODE, COLLAPSED, COLOR, SOCKETS, CONTROLS = "title", "mode", "collapsed", "color", "sockets", "controls"


@dataclass(frozen=True, slots=True)
class NodeChanged(DocumentEvent):
    """A node's title, mode, collapsed state, colour, widget-socket set or seed controls changed."""

    node_id: str
    what: str


@dataclass(frozen=True, slots=True)
class GroupAdded(DocumentEvent):
    group_id: str


@dataclass(frozen=True, slots=True)
class GroupRemoved(DocumentEvent):
    group_id: str


@dataclass(frozen=True, slots=True)
class GroupChanged(DocumentEvent):
    group_id: str


@dataclass(frozen=True, slots=True)
class NoteAdded(DocumentEvent):
    note_id: str


@dataclass(frozen=True, slots=True)
class NoteRemoved(DocumentEvent):
    note_id: str


@dataclass(frozen=True, slots=True)
class NoteChanged(DocumentEvent):
    note_id: str


@dataclass(frozen=True, slots=True)
class ReroutesChanged(DocumentEvent):
    """The bend points of a wire changed."""

    link_id: str


@dataclass(frozen=True, slots=True)
class DirtyChanged(DocumentEvent):
    """The document became different from (or equal to) its saved state."""

    dirty: bool


@dataclass(frozen=True, slots=True)
class HistoryChanged(DocumentEvent):
    """Something was done, undone or redone: undo/redo labels may need refreshing."""


DocumentListener = Callable[[DocumentEvent], None]
