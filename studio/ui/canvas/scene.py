"""The canvas scene: mirrors a Document through its events and turns mouse gestures into commands.

The scene never edits the graph itself. Items are created, moved and removed only in answer to
document events, so an undo or a redo updates the canvas the same way the original edit did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsSceneMouseEvent

from studio.core import document_events as ev
from studio.core import layout
from studio.core.document import Document
from studio.core.errors import InputValueError
from studio.core.nodedef import NodeSpec
from studio.ui import api as gui_api
from studio.ui.canvas import node_geometry as ng
from studio.ui.canvas.annotations import GROUP_TITLE, GroupItem, NoteItem
from studio.ui.canvas.interactions import GroupResize, Interaction, NodeResize, NodeWidgetGesture, ValueDrag, WireDrag
from studio.ui.canvas.node_item import NodeItem, RunState
from studio.ui.canvas.wire_item import RerouteItem, WireItem

SCENE_EXTENT = 200_000.0


class CanvasHost(Protocol):
    """What the scene asks of its view: popups and in-place editors, which live in widget space."""

    def open_palette(self, scene_pos: QPointF, fits: Callable[[NodeSpec], bool] | None,
                     on_chosen: Callable[[str], None]) -> None: ...

    def edit_text(self, scene_rect: QRectF, text: str, multiline: bool, on_commit: Callable[[str], None]) -> None: ...

    def choose(self, scene_pos: QPointF, options: list[Any], current: Any, on_chosen: Callable[[Any], None]) -> None: ...


class CanvasScene(QGraphicsScene):
    """Items for every node, wire, group and note of one document."""

    #: A message for the status bar (a refused connection's reason, say).
    message = Signal(str)

    def __init__(self, document: Document, host: CanvasHost | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.document = document
        self.host: Any = host
        self.nodes: dict[str, NodeItem] = {}
        self.wires: dict[str, WireItem] = {}
        self.groups: dict[str, GroupItem] = {}
        self.notes: dict[str, NoteItem] = {}
        self.wire_drag: WireDrag | None = None
        self.interaction: Interaction | None = None
        self._move_start: dict[QGraphicsItem, QPointF] = {}
        self._carried: dict[str, QPointF] = {}
        self._building = False
        #: Plugin node widgets, read when a node lays out; the canvas re-lays out when they change.
        self.gui = gui_api.shared()
        # Nothing moves often enough to pay for a BSP index, and dragging would keep rebuilding it.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setSceneRect(-SCENE_EXTENT, -SCENE_EXTENT, 2 * SCENE_EXTENT, 2 * SCENE_EXTENT)
        for item in layout.items(document.ui, layout.GROUPS):
            self._add_group(item["id"])
        for item in layout.items(document.ui, layout.NOTES):
            self._add_note(item["id"])
        self._building = True
        for node_id in document.graph.nodes:
            self._add_node(node_id)
        for link in document.graph.links.values():
            self._add_wire(link)
        self._building = False
        for item in self.nodes.values():  # once, now that every wire is known
            item.refresh()
        self._unsubscribe = document.subscribe(self._on_event)
        self._gui_unsubscribe = self.gui.subscribe(self._on_gui_changed)

    def close(self) -> None:
        """Stop mirroring the document and drop every item, now, while Python is in a state to
        answer the items' callbacks (not later, from the garbage collector)."""
        self.cancel_interaction()  # a gesture may hold an undo step open
        self._unsubscribe()
        self._gui_unsubscribe()
        self.interaction = None
        self.wire_drag = None
        self._move_start = {}
        self._carried = {}
        self.clear()
        for table in (self.nodes, self.wires, self.groups, self.notes):
            table.clear()

    def notify(self, text: str) -> None:
        self.message.emit(text)

    def refresh_theme(self) -> None:
        """Repaint every item in the theme shown now: wires keep their pen, groups and notes their
        shown colour, and nodes their cached pixels, so each is told."""
        for node in self.nodes.values():
            node.refresh_theme()
        for wire in self.wires.values():
            wire.refresh_theme()
        for table in (self.groups, self.notes):
            for item in table.values():
                item.refresh()

    def _on_gui_changed(self) -> None:
        """A plugin's node widgets came or went: nodes of its types re-layout with or without them."""
        if isinstance(self.interaction, NodeWidgetGesture):
            self.cancel_interaction()
        for item in self.nodes.values():
            item.refresh()

    # -- document → items ----------------------------------------------------------------------
    def _on_event(self, event: ev.DocumentEvent) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _add_node(self, node_id: str) -> None:
        item = NodeItem(self, node_id)
        self.nodes[node_id] = item
        self.addItem(item)

    def _remove_node(self, event: ev.NodeRemoved) -> None:
        item = self.nodes.pop(event.node_id, None)
        if item is not None:
            self.removeItem(item)

    def _add_wire(self, link: Any) -> None:
        if link.from_node not in self.nodes or link.to_node not in self.nodes:
            return
        wire = WireItem(self, link)
        self.wires[link.id] = wire
        self.addItem(wire)
        if not self._building:
            self.nodes[link.to_node].refresh()  # an input wired now shows as a socket
            self.nodes[link.from_node].refresh()

    def _remove_wire(self, event: ev.LinkRemoved) -> None:
        wire = self.wires.pop(event.link.id, None)
        if wire is None:
            return
        wire.detach()
        self.removeItem(wire)
        for node_id in (event.link.to_node, event.link.from_node):
            if node_id in self.nodes:
                self.nodes[node_id].refresh()

    def _add_group(self, group_id: str) -> None:
        item = GroupItem(self, group_id)
        self.groups[group_id] = item
        self.addItem(item)

    def _add_note(self, note_id: str) -> None:
        item = NoteItem(self, note_id)
        self.notes[note_id] = item
        self.addItem(item)

    def _remove_from(self, table: dict[str, Any], key: str) -> None:
        item = table.pop(key, None)
        if item is not None:
            self.removeItem(item)

    # -- queries ---------------------------------------------------------------------------------
    def node_item_at(self, pos: QPointF) -> NodeItem | None:
        """The topmost node under ``pos`` (ports stick out a little; they count)."""
        best: NodeItem | None = None
        for item in self.nodes.values():
            if item.isVisible() and item.sceneBoundingRect().contains(pos):
                if best is None or item.zValue() > best.zValue():
                    best = item
        return best

    def selected_node_ids(self) -> list[str]:
        return [nid for nid, item in self.nodes.items() if item.isSelected()]

    def selected_group_ids(self) -> list[str]:
        return [gid for gid, item in self.groups.items() if item.isSelected()]

    def selected_note_ids(self) -> list[str]:
        return [nid for nid, item in self.notes.items() if item.isSelected()]

    def select(self, nodes: Iterable[str] = (), groups: Iterable[str] = (), notes: Iterable[str] = ()) -> None:
        self.clearSelection()
        for table, ids in ((self.nodes, nodes), (self.groups, groups), (self.notes, notes)):
            for key in ids:
                if key in table:
                    table[key].setSelected(True)

    def node_sizes(self, node_ids: Iterable[str]) -> dict[str, tuple[float, float]]:
        return {nid: (self.nodes[nid].geo.width, self.nodes[nid].geo.height) for nid in node_ids if nid in self.nodes}

    def items_rect(self, selected_only: bool = False) -> QRectF:
        rect = QRectF()
        for table in (self.nodes, self.groups, self.notes):
            for item in table.values():
                if not selected_only or item.isSelected():
                    rect = rect.united(item.sceneBoundingRect())
        return rect

    # -- run state --------------------------------------------------------------------------------
    def set_run_state(self, node_id: str, state: RunState) -> None:
        if node_id in self.nodes:
            self.nodes[node_id].set_run_state(state)

    def clear_run_states(self) -> None:
        for item in self.nodes.values():
            if item.run.status:
                item.set_run_state(RunState())

    def set_output_text(self, node_id: str, text: str) -> None:
        if node_id in self.nodes:
            self.nodes[node_id].set_output_text(text)

    # -- wire drags (for dimming) -------------------------------------------------------------
    def begin_wire_drag(self, drag: WireDrag) -> None:
        self.wire_drag = drag
        for item in self.nodes.values():
            item.update()

    def end_wire_drag(self, drag: WireDrag) -> None:
        if self.wire_drag is drag:
            self.wire_drag = None
            for item in self.nodes.values():
                item.update()

    # -- mouse ---------------------------------------------------------------------------------
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.interaction is not None:
            event.accept()
            return
        pos = event.scenePos()
        if event.button() == Qt.MouseButton.LeftButton and self._press(pos, event.modifiers()):
            event.accept()
            return
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self._remember_positions()

    def _press(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        """Start a gesture on a socket, a widget or a group's grip; False to let Qt select/move."""
        item = self.node_item_at(pos)
        if item is not None:
            if item.in_grip(pos):
                self.interaction = NodeResize(self, item, pos)
                return True
            port = item.port_at(pos)
            if port is not None:
                self._start_wire(item, port, pos)
                return True
            row = item.widget_at(pos)
            if row is not None:
                if not item.isSelected() and not modifiers & Qt.KeyboardModifier.ControlModifier:
                    self.select(nodes=[item.node_id])
                self._press_widget(item, row, pos)
                return True
            if item.custom_at(pos):
                if not item.isSelected() and not modifiers & Qt.KeyboardModifier.ControlModifier:
                    self.select(nodes=[item.node_id])
                gesture = NodeWidgetGesture(self, item, pos)
                if gesture.active:
                    self.interaction = gesture
                return True
            return False
        for group in self.groups.values():
            if group.in_grip(pos):
                self.interaction = GroupResize(self, group, pos)
                return True
        return False

    def _start_wire(self, item: NodeItem, port: ng.Port, pos: QPointF) -> None:
        if port.is_input:
            link = self.document.graph.link_into(item.node_id, str(port.key))
            source = self.nodes.get(link.from_node) if link is not None else None
            if link is not None and source is not None and link.from_output < len(source.geo.outputs):
                drag = WireDrag(self, link.from_node, source.geo.outputs[link.from_output], picked=link)
                drag.move(pos)
                self.interaction = drag
                return
        drag = WireDrag(self, item.node_id, port)
        drag.move(pos)
        self.interaction = drag

    def _press_widget(self, item: NodeItem, row: ng.WidgetRow, pos: QPointF) -> None:
        doc = self.document
        node_id = item.node_id
        inp = row.inp
        assert inp is not None
        value = doc.graph.nodes[node_id].inputs.get(row.name, inp.default if inp.has_default else None)
        local_x = item.mapFromScene(pos).x()
        step = -1 if local_x < row.rect.left() + 16 else 1 if local_x > row.rect.right() - 16 else 0
        if row.kind in (ng.INT, ng.FLOAT):
            self.interaction = ValueDrag(self, item, row, pos)
        elif row.kind == ng.TOGGLE:
            doc.seal()
            doc.set_input(node_id, row.name, not bool(value))
            doc.seal()
        elif row.kind in (ng.COMBO, ng.CONTROL):
            if row.kind == ng.CONTROL:
                options: list[Any] = list(layout.SEED_CONTROLS)
                current: Any = layout.seed_control(doc.ui, node_id, row.name)

                def apply(choice: Any) -> None:
                    doc.set_seed_control(node_id, row.name, str(choice))
            else:
                options = inp.current_choices() or []  # asked afresh: model files appear without a restart
                current = value

                def apply(choice: Any) -> None:
                    doc.seal()
                    doc.set_input(node_id, row.name, choice)
                    doc.seal()
            if step and options:
                index = options.index(current) if current in options else -1
                apply(options[(index + step) % len(options)])
            elif options:
                self.host.choose(pos, options, current, apply)
            else:
                self.notify(f"{row.label}: nothing to choose from")
        else:
            self.edit_widget(item, row)

    def edit_widget(self, item: NodeItem, row: ng.WidgetRow) -> None:
        """Type a widget's value in place; the value is checked against its input's type and range."""
        inp = row.inp
        assert inp is not None
        node_id = item.node_id
        value = self.document.graph.nodes[node_id].inputs.get(row.name, inp.default if inp.has_default else "")
        text = "" if value is None else str(value)

        def commit(new_text: str) -> None:
            if node_id not in self.document.graph.nodes:
                return
            try:
                new_value = new_text if row.kind in (ng.TEXT, ng.MULTILINE) else inp.parse_text(new_text)
            except InputValueError as exc:
                self.notify(f"{row.label}: {exc}")
                return
            self.document.seal()
            self.document.set_input(node_id, row.name, new_value)
            self.document.seal()

        rect = item.mapRectToScene(row.rect)
        self.host.edit_text(rect, text, row.kind == ng.MULTILINE, commit)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.interaction is not None:
            self.interaction.move(event.scenePos())
            event.accept()
            return
        super().mouseMoveEvent(event)
        if self._carried and event.buttons() & Qt.MouseButton.LeftButton:
            self._carry_group_contents()

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.interaction is not None:
            interaction, self.interaction = self.interaction, None
            interaction.release(event.scenePos())
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and self._move_start:
            self._commit_moves()

    def cancel_interaction(self) -> bool:
        """Esc during a gesture: drop it, leaving the document as it was."""
        if self.interaction is None:
            return False
        interaction, self.interaction = self.interaction, None
        interaction.cancel()
        return True

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        pos = event.scenePos()
        if event.button() != Qt.MouseButton.LeftButton or self.interaction is not None:
            super().mouseDoubleClickEvent(event)
            return
        event.accept()
        item = self.node_item_at(pos)
        if item is not None:
            if item.in_header(pos):
                self.rename_node(item.node_id)
            return
        for group in self.groups.values():
            local = group.mapFromScene(pos)
            if 0 <= local.y() <= GROUP_TITLE and 0 <= local.x() <= group.rect.width():
                self.rename_group(group.group_id)
                return
        for note in self.notes.values():
            if note.sceneBoundingRect().contains(pos):
                self.edit_note(note.note_id)
                return
        for hit in self.items(pos):
            if isinstance(hit, RerouteItem):
                self._remove_reroute(hit)
                return
            if isinstance(hit, WireItem):
                self.add_reroute(hit, pos)
                return
        self.host.open_palette(pos, None, lambda node_type: self.add_node_at(node_type, pos))

    def add_node_at(self, node_type: str, pos: QPointF) -> None:
        node_id = self.document.add_node(node_type, (pos.x(), pos.y()))
        self.select(nodes=[node_id])

    # -- renaming and notes ---------------------------------------------------------------------
    def rename_node(self, node_id: str) -> None:
        item = self.nodes[node_id]
        rect = item.mapRectToScene(QRectF(4, 2, item.geo.width - 8, ng.HEADER - 4))
        self.host.edit_text(rect, item.geo.title, False, lambda text: self.document.set_title(node_id, text))

    def rename_group(self, group_id: str) -> None:
        group = self.groups[group_id]
        rect = group.mapRectToScene(QRectF(4, 2, group.rect.width() - 8, GROUP_TITLE - 4))
        self.host.edit_text(rect, group.title, False, lambda text: self.document.change_group(group_id, title=text))

    def edit_note(self, note_id: str) -> None:
        note = self.notes[note_id]
        self.host.edit_text(note.sceneBoundingRect(), note.text, True,
                            lambda text: self.document.change_note(note_id, text=text))

    # -- reroutes --------------------------------------------------------------------------------
    def add_reroute(self, wire: WireItem, pos: QPointF) -> None:
        points = [(p.pos().x(), p.pos().y()) for p in wire.reroutes]
        start = wire.source.output_pos(wire.link.from_output)
        # Insert the point in order along the wire: after the stops that lie left of it.
        index = sum(1 for x, _ in points if x < pos.x()) if pos.x() >= start.x() else len(points)
        points.insert(index, (pos.x(), pos.y()))
        self.document.set_reroutes(wire.link.id, points)

    def _remove_reroute(self, point: RerouteItem) -> None:
        wire = point.wire
        points = [(p.pos().x(), p.pos().y()) for p in wire.reroutes if p is not point]
        self.document.set_reroutes(wire.link.id, points)

    # -- moving ---------------------------------------------------------------------------------------
    def _remember_positions(self) -> None:
        self._move_start = {item: item.pos() for item in self.selectedItems()
                            if item.flags() & QGraphicsItem.GraphicsItemFlag.ItemIsMovable}
        self._carried = {}
        for item in self._move_start:
            if isinstance(item, GroupItem):
                for node_id in item.contained_nodes():
                    node_item = self.nodes[node_id]
                    if node_item not in self._move_start:
                        self._carried[node_id] = node_item.pos()

    def _carry_group_contents(self) -> None:
        """Nodes inside a dragged group travel with it."""
        group = next((g for g in self._move_start if isinstance(g, GroupItem)), None)
        if group is None:
            return
        delta = group.pos() - self._move_start[group]
        for node_id, start in self._carried.items():
            if node_id in self.nodes:
                self.nodes[node_id].setPos(start + delta)

    def _commit_moves(self) -> None:
        """One undo step for the whole drag, whatever moved."""
        starts, self._move_start = self._move_start, {}
        carried, self._carried = self._carried, {}
        nodes: dict[str, tuple[float, float]] = {}
        groups: dict[str, list[float]] = {}
        notes: dict[str, tuple[float, float]] = {}
        reroutes: dict[str, WireItem] = {}
        for item, start in starts.items():
            if item.scene() is not self or item.pos() == start:
                continue
            if isinstance(item, NodeItem):
                nodes[item.node_id] = (item.pos().x(), item.pos().y())
            elif isinstance(item, GroupItem):
                groups[item.group_id] = item.bounding()
            elif isinstance(item, NoteItem):
                notes[item.note_id] = (item.pos().x(), item.pos().y())
            elif isinstance(item, RerouteItem):
                reroutes[item.wire.link.id] = item.wire
        for node_id in carried:
            if node_id in self.nodes:
                pos = self.nodes[node_id].pos()
                nodes[node_id] = (pos.x(), pos.y())
        if not (nodes or groups or notes or reroutes):
            return
        doc = self.document
        with doc.macro("Move"):
            doc.move_nodes(nodes)
            for group_id, bounding in groups.items():
                doc.change_group(group_id, bounding=bounding)
            for note_id, pos in notes.items():
                doc.change_note(note_id, pos=pos)
            for link_id, wire in reroutes.items():
                doc.set_reroutes(link_id, [(p.pos().x(), p.pos().y()) for p in wire.reroutes])
        # Rounding in the model may differ from where the mouse left things: follow the model.
        for node_id in nodes:
            if node_id in self.nodes:
                self.nodes[node_id].sync_pos()


def _node_event(method: str) -> Callable[[CanvasScene, Any], None]:
    def handle(scene: CanvasScene, event: Any) -> None:
        item = scene.nodes.get(event.node_id)
        if item is not None:
            getattr(item, method)()
    return handle


def _item_event(table: str) -> Callable[[CanvasScene, Any], None]:
    def handle(scene: CanvasScene, event: Any) -> None:
        key = event.group_id if table == "groups" else event.note_id
        item = getattr(scene, table).get(key)
        if item is not None:
            item.refresh()
    return handle


def _reroutes_changed(scene: CanvasScene, event: ev.ReroutesChanged) -> None:
    wire = scene.wires.get(event.link_id)
    if wire is not None:
        wire.sync_reroutes()


_HANDLERS: dict[type, Callable[[CanvasScene, Any], None]] = {
    ev.NodeAdded: lambda s, e: s._add_node(e.node_id),
    ev.NodeRemoved: CanvasScene._remove_node,
    ev.LinkAdded: lambda s, e: s._add_wire(e.link),
    ev.LinkRemoved: CanvasScene._remove_wire,
    ev.InputChanged: _node_event("update"),
    ev.NodeMoved: _node_event("sync_pos"),
    ev.NodeResized: _node_event("refresh"),
    ev.NodeChanged: _node_event("refresh"),
    ev.GroupAdded: lambda s, e: s._add_group(e.group_id),
    ev.GroupRemoved: lambda s, e: s._remove_from(s.groups, e.group_id),
    ev.GroupChanged: _item_event("groups"),
    ev.NoteAdded: lambda s, e: s._add_note(e.note_id),
    ev.NoteRemoved: lambda s, e: s._remove_from(s.notes, e.note_id),
    ev.NoteChanged: _item_event("notes"),
    ev.ReroutesChanged: _reroutes_changed,
}
