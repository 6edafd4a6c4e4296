"""An open workflow being edited: the model, its undo history, and who to tell about changes.

Modelled on Orange canvas: every edit is a command that changes only the model; the model
reports each change as a fine-grained event (:mod:`studio.core.document_events`), and views
mirror the model from those events alone. The history here is the source of truth; a Qt undo
stack, if any, only wraps it. Pure Python, so edits are testable and scriptable without a GUI.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from studio.core import clipboard, layout
from studio.core.commands import (
    Command,
    Connect,
    Disconnect,
    InsertItems,
    Macro,
    RemoveItems,
    SetInput,
    SetItemFields,
    SetMode,
    SetNodeFields,
    SetReroutes,
    SetTitle,
)
from studio.core.document_events import DirtyChanged, DocumentEvent, DocumentListener, HistoryChanged
from studio.core.document_model import ABSENT, DocumentModel
from studio.core.errors import NuanceError
from studio.core.graph import Graph, GraphNode, Link, NodeMode
from studio.core.nodedef import NodeSpec
from studio.core.registry import NodeRegistry
from studio.core.validate import link_problem, node_label
from studio.core.workflow import Workflow

log = logging.getLogger(__name__)

ALIGN_EDGES = ("left", "right", "top", "bottom", "hcenter", "vcenter")


class ConnectionRefused(NuanceError):
    """A connection the graph cannot take; the message says why, in plain English."""


@dataclass
class Pasted:
    """Ids of what a paste (or duplicate) created."""

    nodes: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Document:
    """A workflow with undoable edits, change events and a saved/unsaved state."""

    def __init__(self, workflow: Workflow | None = None, registry: NodeRegistry | None = None):
        workflow = workflow if workflow is not None else Workflow(Graph())
        workflow.warnings.extend(layout.normalize(workflow.ui))
        layout.auto_layout(workflow.graph, workflow.ui, registry)
        self.registry = registry
        self.model = DocumentModel(workflow, self._emit)
        self._listeners: list[DocumentListener] = []
        self._history: list[Command] = []
        self._index = 0
        self._clean_index: int | None = 0
        self._macros: list[Macro] = []
        self._sealed = True

    # -- what is being edited -------------------------------------------------------------------
    @property
    def workflow(self) -> Workflow:
        return self.model.workflow

    @property
    def graph(self) -> Graph:
        return self.model.graph

    @property
    def ui(self) -> dict[str, Any]:
        return self.model.ui

    def spec(self, node_id: str) -> NodeSpec | None:
        """The installed node type of a node; None for a placeholder."""
        node = self.graph.nodes.get(node_id)
        if node is None or self.registry is None:
            return None
        return self.registry.spec(node.type)

    def node_pos(self, node_id: str) -> tuple[float, float]:
        return layout.node_pos(self.ui, node_id) or (0.0, 0.0)

    # -- listeners -------------------------------------------------------------------------------
    def subscribe(self, listener: DocumentListener) -> Callable[[], None]:
        """Call ``listener`` with every change; returns a function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: DocumentEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken view must not leave the model half-edited
                log.exception("document listener failed on %r", event)

    # -- history ---------------------------------------------------------------------------------
    def execute(self, command: Command) -> Command:
        """Do ``command`` and record it as one undo step (or as part of the open macro)."""
        was_dirty = self.dirty
        command.redo(self.model)
        if self._macros:
            self._macros[-1].children.append(command)
            return command
        self._push(command)
        self._after_change(was_dirty)
        return command

    def _push(self, command: Command) -> None:
        if self._clean_index is not None and self._clean_index > self._index:
            self._clean_index = None  # the saved state was in the redo part, now gone for good
        del self._history[self._index:]
        top = self._history[-1] if self._history else None
        if (top is not None and not self._sealed and self._clean_index != self._index
                and top.merge(command)):
            return
        self._history.append(command)
        self._index += 1
        self._sealed = False

    def _after_change(self, was_dirty: bool) -> None:
        if self.dirty != was_dirty:
            self._emit(DirtyChanged(self.dirty))
        self._emit(HistoryChanged())

    @contextmanager
    def macro(self, text: str) -> Iterator[Macro]:
        """Group the edits made inside the block into one undo step; all or nothing on error."""
        macro = Macro(text)
        self._macros.append(macro)
        try:
            yield macro
        except BaseException:
            self._macros.pop()
            macro.undo(self.model)
            raise
        self._macros.pop()
        if not macro.children:
            return
        if self._macros:
            self._macros[-1].children.append(macro)
            return
        was_dirty = self.dirty
        self._sealed = True
        self._push(macro)
        self._sealed = True
        self._after_change(was_dirty)

    def seal(self) -> None:
        """Stop the next value edit from merging into the last one (a widget lost focus)."""
        self._sealed = True

    def undo(self) -> bool:
        if not self.can_undo:
            return False
        was_dirty = self.dirty
        self._index -= 1
        self._history[self._index].undo(self.model)
        self._sealed = True
        self._after_change(was_dirty)
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            return False
        was_dirty = self.dirty
        self._history[self._index].redo(self.model)
        self._index += 1
        self._sealed = True
        self._after_change(was_dirty)
        return True

    @property
    def can_undo(self) -> bool:
        return self._index > 0 and not self._macros

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._history) and not self._macros

    @property
    def undo_text(self) -> str:
        return self._history[self._index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._history[self._index].text if self.can_redo else ""

    @property
    def history_index(self) -> int:
        """How many steps of the history are applied."""
        return self._index

    @property
    def dirty(self) -> bool:
        """Whether the document differs from its last saved (or opened) state."""
        return self._clean_index != self._index

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        was_dirty = self.dirty
        self._clean_index = self._index
        self._sealed = True
        if was_dirty:
            self._emit(DirtyChanged(False))

    def mark_unsaved(self) -> None:
        """Say the document differs from its file though nothing was edited here (it was
        restored from an autosave after a crash): closing it then asks before losing it."""
        was_dirty = self.dirty
        self._clean_index = None
        if not was_dirty:
            self._emit(DirtyChanged(True))

    # -- connections ----------------------------------------------------------------------------
    def check_connection(self, from_node: str, from_output: int, to_node: str, to_input: str) -> str | None:
        """Why this wire cannot be made, in plain English ("Steps expects INT but Load Image gives
        IMAGE"); None when it can. Replacing a wire already into the input is allowed."""
        graph = self.graph
        source, target = graph.nodes.get(from_node), graph.nodes.get(to_node)
        if source is None or target is None:
            return f"there is no node {from_node if source is None else to_node}"
        if from_node == to_node:
            return "a node cannot be connected to itself"
        if self.registry is not None:
            for node in (source, target):
                if self.registry.spec(node.type) is None:
                    return (f"{node.title or node.type} is a node type that is not installed ({node.type}), "
                            "so its sockets are unknown")
            problem = link_problem(graph, self.registry, Link("?", from_node, from_output, to_node, to_input))
            if problem is not None:
                return problem.message[:1].upper() + problem.message[1:]
        if to_node in graph.upstream([from_node]):
            return (f"that would make a loop: {self._label(from_node)} already depends on "
                    f"{self._label(to_node)}")
        return None

    def _label(self, node_id: str) -> str:
        return node_label(self.graph.nodes[node_id], self.spec(node_id))

    # -- edits: nodes ---------------------------------------------------------------------------
    def add_node(self, node_type: str, pos: tuple[float, float], inputs: Mapping[str, Any] | None = None,
                 title: str | None = None) -> str:
        """Add a node of ``node_type`` at ``pos`` with its inputs' defaults; returns its id."""
        values: dict[str, Any] = {}
        spec = self.registry.spec(node_type) if self.registry is not None else None
        version = None
        if spec is not None:
            node_type, version = spec.type, spec.version
            values = default_values(spec)
        values.update(inputs or {})
        node_id = layout.fresh_id(self.graph.nodes)
        node = GraphNode(node_id, node_type, values, NodeMode.NORMAL, title, version)
        label = spec.display_name if spec is not None else node_type
        self.execute(InsertItems(f"Add {label}", nodes=[(node, {"pos": _xy(pos)})]))
        return node_id

    def remove(self, nodes: Iterable[str] = (), groups: Iterable[str] = (), notes: Iterable[str] = ()) -> None:
        """Delete nodes (and their wires), groups and notes as one step."""
        node_ids, group_ids, note_ids = list(nodes), list(groups), list(notes)
        if node_ids or group_ids or note_ids:
            self.execute(RemoveItems(node_ids, group_ids, note_ids))

    def connect(self, from_node: str, from_output: int, to_node: str, to_input: str) -> str:
        """Wire an output to an input (replacing the wire already there); returns the link id.

        Raises ConnectionRefused with the reason when the wire is not allowed.
        """
        reason = self.check_connection(from_node, from_output, to_node, to_input)
        if reason is not None:
            raise ConnectionRefused(reason)
        link = Link(layout.fresh_id(self.graph.links), from_node, from_output, to_node, to_input)
        self.execute(Connect(link))
        return link.id

    def disconnect(self, to_node: str, to_input: str) -> bool:
        """Remove the wire into an input; False when there was none."""
        link = self.graph.link_into(to_node, to_input)
        if link is None:
            return False
        self.execute(Disconnect(link.id))
        return True

    def set_input(self, node_id: str, name: str, value: Any) -> None:
        """Set a widget value; repeated edits of one widget make one undo step until :meth:`seal`."""
        if self.graph.nodes[node_id].inputs.get(name, ABSENT) == value:
            return
        self.execute(SetInput(node_id, name, value))

    def set_title(self, node_id: str, title: str | None) -> None:
        """Rename a node; an empty title goes back to the node type's name."""
        title = title.strip() if title else None
        if self.graph.nodes[node_id].title != (title or None):
            self.execute(SetTitle(node_id, title or None))

    def set_mode(self, node_ids: Iterable[str], mode: NodeMode | str) -> None:
        """Normal, muted (not run) or bypassed (inputs passed through)."""
        mode = NodeMode(mode)
        ids = [nid for nid in node_ids if self.graph.nodes[nid].mode is not mode]
        if ids:
            self.execute(SetMode(ids, mode, text=f"{mode.value.capitalize()} nodes"))

    def move_nodes(self, positions: Mapping[str, tuple[float, float]]) -> None:
        changes = {nid: {"pos": _xy(pos)} for nid, pos in positions.items() if _xy(pos) != list(self.node_pos(nid))}
        if changes:
            self.execute(SetNodeFields(changes, text="Move"))

    def resize_node(self, node_id: str, size: tuple[float, float] | None) -> None:
        """Give a node a size (None: its natural size again)."""
        self.execute(SetNodeFields({node_id: {"size": ABSENT if size is None else _xy(size)}}, text="Resize"))

    def set_collapsed(self, node_ids: Iterable[str], collapsed: bool) -> None:
        changes = {nid: {"collapsed": True if collapsed else ABSENT} for nid in node_ids}
        if changes:
            self.execute(SetNodeFields(changes, text="Collapse" if collapsed else "Expand"))

    def set_color(self, node_ids: Iterable[str], color: str | None) -> None:
        changes = {nid: {"color": color if color else ABSENT} for nid in node_ids}
        if changes:
            self.execute(SetNodeFields(changes, text="Colour"))

    def show_as_socket(self, node_id: str, name: str, socket: bool) -> None:
        """Convert a widget into an input socket (and back; a wire into it is removed then)."""
        current = layout.shown_as_socket(self.ui, node_id)
        wanted = current | {name} if socket else current - {name}
        with self.macro("Convert to input" if socket else "Convert to widget"):
            if not socket:
                self.disconnect(node_id, name)
            if wanted != current:
                value = sorted(wanted) if wanted else ABSENT
                self.execute(SetNodeFields({node_id: {"sockets": value}}))

    def set_seed_control(self, node_id: str, name: str, control: str) -> None:
        """What a seed widget does after each run: ``fixed``, ``increment`` or ``randomize``."""
        if control not in layout.SEED_CONTROLS:
            raise ValueError(f"control must be one of {', '.join(layout.SEED_CONTROLS)}, not {control!r}")
        controls = dict(layout.node_entry(self.ui, node_id).get("controls") or {})
        if control == "fixed":
            controls.pop(name, None)
        else:
            controls[name] = control
        self.execute(SetNodeFields({node_id: {"controls": controls or ABSENT}}, text="Control after run"))

    def align(self, node_ids: Sequence[str], edge: str, sizes: Mapping[str, tuple[float, float]] | None = None) -> None:
        """Line nodes up on one edge or centre line; ``sizes`` are the sizes the editor draws."""
        if edge not in ALIGN_EDGES:
            raise ValueError(f"edge must be one of {', '.join(ALIGN_EDGES)}, not {edge!r}")
        if len(node_ids) < 2:
            return
        sizes = sizes or {}
        boxes = {}
        for nid in node_ids:
            x, y = self.node_pos(nid)
            w, h = sizes.get(nid) or _size(layout.node_entry(self.ui, nid).get("size"))
            boxes[nid] = (x, y, w, h)
        if edge in ("left", "right", "hcenter"):
            offset = {"left": 0.0, "right": 1.0, "hcenter": 0.5}[edge]
            lines = [x + w * offset for x, _, w, _ in boxes.values()]
            target = min(lines) if edge == "left" else max(lines) if edge == "right" else sum(lines) / len(lines)
            moved = {nid: (target - w * offset, y) for nid, (x, y, w, h) in boxes.items()}
        else:
            offset = {"top": 0.0, "bottom": 1.0, "vcenter": 0.5}[edge]
            lines = [y + h * offset for _, y, _, h in boxes.values()]
            target = min(lines) if edge == "top" else max(lines) if edge == "bottom" else sum(lines) / len(lines)
            moved = {nid: (x, target - h * offset) for nid, (x, y, w, h) in boxes.items()}
        changes = {nid: {"pos": _xy(pos)} for nid, pos in moved.items() if _xy(pos) != list(self.node_pos(nid))}
        if changes:
            self.execute(SetNodeFields(changes, text="Align"))

    # -- edits: groups, notes, reroutes ------------------------------------------------------------
    def add_group(self, title: str, bounding: tuple[float, float, float, float], color: str | None = None) -> str:
        """A titled, coloured frame around part of the graph; returns its id."""
        group_id = layout.fresh_id(item["id"] for item in layout.items(self.ui, layout.GROUPS))
        item: dict[str, Any] = {"id": group_id, "title": title, "bounding": [round(v) for v in bounding]}
        if color:
            item["color"] = color
        self.execute(InsertItems("Add group", items=[(layout.GROUPS, item)]))
        return group_id

    def change_group(self, group_id: str, **fields: Any) -> None:
        """Set ``title``, ``color`` (None removes it) or ``bounding`` of a group."""
        self._change_item(layout.GROUPS, group_id, fields, {"title", "color", "bounding"}, "Change group")

    def add_note(self, text: str, pos: tuple[float, float], size: tuple[float, float] | None = None,
                 color: str | None = None) -> str:
        """A free-standing text note on the canvas; returns its id."""
        note_id = layout.fresh_id(item["id"] for item in layout.items(self.ui, layout.NOTES))
        item: dict[str, Any] = {"id": note_id, "text": text, "pos": _xy(pos)}
        if size is not None:
            item["size"] = _xy(size)
        if color:
            item["color"] = color
        self.execute(InsertItems("Add note", items=[(layout.NOTES, item)]))
        return note_id

    def change_note(self, note_id: str, **fields: Any) -> None:
        """Set ``text``, ``pos``, ``size`` or ``color`` (None removes size or colour) of a note."""
        self._change_item(layout.NOTES, note_id, fields, {"text", "pos", "size", "color"}, "Change note")

    def _change_item(self, kind: str, item_id: str, fields: dict[str, Any], allowed: set[str], text: str) -> None:
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        values = {}
        for key, value in fields.items():
            if value is None:
                value = ABSENT
            elif key in ("pos", "size"):
                value = _xy(value)
            elif key == "bounding":
                value = [round(v) for v in value]
            if value != self.model.item_field(kind, item_id, key):
                values[key] = value
        if values:
            self.execute(SetItemFields(kind, {item_id: values}, text=text))

    def set_reroutes(self, link_id: str, points: Sequence[tuple[float, float]]) -> None:
        """Replace the bend points a wire passes through (an empty list straightens it)."""
        value = [_xy(p) for p in points] or None
        if value != self.model.reroute_points(link_id):
            self.execute(SetReroutes(link_id, value))

    # -- copy, paste, duplicate -----------------------------------------------------------------
    def copy(self, node_ids: Iterable[str], groups: Iterable[str] = (), notes: Iterable[str] = ()) -> str:
        """JSON text of the selection (nodes, the wires between them, layout, groups, notes)."""
        return clipboard.copy_text(self.workflow, node_ids, groups, notes)

    def paste(self, text: str, at: tuple[float, float] | None = None,
              offset: tuple[float, float] = (30.0, 30.0)) -> Pasted:
        """Insert copied text with fresh ids as one step. ``at`` puts the top-left corner of what is
        pasted there; otherwise it lands ``offset`` from where it was copied.

        Raises ClipboardError when the text is not nodes.
        """
        fragment = clipboard.read_text(text, self.registry)
        corners = [layout.as_point(fragment.node_layout.get(n.id, {}).get("pos")) for n in fragment.nodes]
        corners += [layout.as_point(note.get("pos")) for note in fragment.notes]
        corners += [layout.as_point(group.get("bounding")) for group in fragment.groups]
        known = [c for c in corners if c is not None]
        if at is not None and known:
            dx, dy = at[0] - min(x for x, _ in known), at[1] - min(y for _, y in known)
        else:
            dx, dy = offset

        node_ids = dict.fromkeys(self.graph.nodes)
        new_id: dict[str, str] = {}
        nodes = []
        for node in fragment.nodes:
            new_id[node.id] = fresh = layout.fresh_id(node_ids)
            node_ids[fresh] = None
            entry = copy.deepcopy(fragment.node_layout.get(node.id, {}))
            x, y = layout.as_point(entry.get("pos")) or (0.0, 0.0)
            entry["pos"] = _xy((x + dx, y + dy))
            clone = copy.deepcopy(node)
            clone.id = fresh
            nodes.append((clone, entry))
        link_ids = dict.fromkeys(self.graph.links)
        links = []
        for link in fragment.links:
            fresh = layout.fresh_id(link_ids)
            link_ids[fresh] = None
            points = fragment.reroutes.get(link.id)
            if points:
                points = [_xy((p[0] + dx, p[1] + dy)) for p in (layout.as_point(v) for v in points) if p is not None]
            links.append((Link(fresh, new_id[link.from_node], link.from_output, new_id[link.to_node], link.to_input),
                          points or None))
        result = Pasted(nodes=list(new_id.values()), warnings=fragment.warnings)
        items: list[tuple[str, dict[str, Any]]] = []
        for kind, listed, ids in ((layout.GROUPS, fragment.groups, result.groups),
                                  (layout.NOTES, fragment.notes, result.notes)):
            used = [item["id"] for item in layout.items(self.ui, kind)]
            for item in listed:
                clone = copy.deepcopy(item)
                clone["id"] = layout.fresh_id(used)
                used.append(clone["id"])
                ids.append(clone["id"])
                key = "bounding" if kind == layout.GROUPS else "pos"
                point = layout.as_point(clone.get(key))
                if point is not None:
                    clone[key] = [round(point[0] + dx), round(point[1] + dy), *clone[key][2:]]
                items.append((kind, clone))
        if nodes or items:
            self.execute(InsertItems("Paste", nodes=nodes, links=links, items=items))
        return result

    def duplicate(self, node_ids: Iterable[str], groups: Iterable[str] = (), notes: Iterable[str] = (),
                  offset: tuple[float, float] = (30.0, 30.0)) -> Pasted:
        """Copies of the selection with the wires between them, a little offset, as one step."""
        text = self.copy(node_ids, groups, notes)
        with self.macro("Duplicate"):
            return self.paste(text, offset=offset)


def default_values(spec: NodeSpec) -> dict[str, Any]:
    """The constants a new node starts with: each widget's default (or its first choice)."""
    values: dict[str, Any] = {}
    for inp in spec.inputs:
        if not inp.accepts_constant or inp.type == "*":
            continue
        if inp.has_default:
            values[inp.name] = copy.deepcopy(inp.default)
        elif inp.choices is not None:
            try:
                options = inp.current_choices() or []
            except Exception:  # a plugin's choice list must not stop a node being added
                log.exception("choices of %s.%s failed", spec.type, inp.name)
                options = []
            if options:
                values[inp.name] = options[0]
    return values


def _xy(pos: Sequence[float]) -> list[float]:
    """Positions are stored rounded to whole scene units: files stay readable and diffs small."""
    return [round(float(pos[0])), round(float(pos[1]))]


def _size(value: Any) -> tuple[float, float]:
    point = layout.as_point(value)
    return point if point is not None else (0.0, 0.0)
