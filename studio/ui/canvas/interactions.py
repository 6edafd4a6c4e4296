"""Mouse gestures in progress, each its own small state object (as in Orange canvas).

The scene hands mouse moves and the release to the current gesture; the gesture turns the
outcome into document commands (or a refusal with its reason). Nothing here changes the graph
while the mouse is still moving, except value drags, whose edits merge into one undo step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsPathItem

from studio.core.document import ConnectionRefused
from studio.core.errors import InputValueError
from studio.core.graph import Link
from studio.core.nodedef import NodeSpec
from studio.core.types import describe_type, is_compatible
from studio.core.validate import node_label
from studio.ui import theme
from studio.ui.canvas import node_geometry as ng
from studio.ui.canvas.wire_item import WIRE_WIDTH, wire_path

if TYPE_CHECKING:
    from studio.ui.canvas.annotations import GroupItem
    from studio.ui.canvas.node_item import NodeItem
    from studio.ui.canvas.scene import CanvasScene

log = logging.getLogger(__name__)

CLICK_DISTANCE = 4.0


class Interaction:
    """A gesture: fed moves until released (or cancelled with Esc)."""

    def move(self, pos: QPointF) -> None:
        pass

    def release(self, pos: QPointF) -> None:
        pass

    def cancel(self) -> None:
        pass


class WireDrag(Interaction):
    """Dragging a new wire from a socket (or one picked up from an input) to another socket.

    While it lasts, ports that could not take the wire are dimmed. Dropped on an incompatible
    socket it is refused with the reason; dropped on empty canvas it opens the node palette
    with only the nodes that could take it.
    """

    def __init__(self, scene: CanvasScene, node_id: str, port: ng.Port, picked: Link | None = None):
        self.scene = scene
        self.doc = scene.document
        self.node_id = node_id
        self.from_output = not port.is_input
        self.port = port
        self.picked = picked
        self.type = port.type
        self._cache: dict[tuple[str, str | int, bool], bool] = {}
        self.temp = QGraphicsPathItem()
        self.temp.setPen(QPen(theme.type_color(self.type), WIRE_WIDTH, Qt.PenStyle.DashLine, Qt.PenCapStyle.RoundCap))
        self.temp.setZValue(5)
        scene.addItem(self.temp)
        if picked is not None:
            wire = scene.wires.get(picked.id)
            if wire is not None:
                wire.setVisible(False)
        self.anchor = scene.nodes[node_id].output_pos(port.key) if self.from_output else scene.nodes[node_id].input_pos(
            str(port.key))
        scene.begin_wire_drag(self)

    # -- what may take the wire (for dimming) ------------------------------------------------------
    def accepts(self, node_id: str, port: ng.Port) -> bool:
        key = (node_id, port.key, port.is_input)
        if key not in self._cache:
            self._cache[key] = self._accepts(node_id, port.is_input, port.type)
        return self._cache[key]

    def accepts_widget(self, node_id: str, row: ng.WidgetRow) -> bool:
        return row.inp is not None and self._accepts(node_id, True, row.inp.type)

    def _accepts(self, node_id: str, is_input: bool, type_name: str) -> bool:
        if node_id == self.node_id:
            return False
        if self.from_output:
            return is_input and is_compatible(self.type, type_name)
        return not is_input and is_compatible(type_name, self.type)

    # -- gesture ------------------------------------------------------------------------------
    def move(self, pos: QPointF) -> None:
        start, end = (self.anchor, pos) if self.from_output else (pos, self.anchor)
        self.temp.setPath(wire_path(start, end))

    def cancel(self) -> None:
        self._finish()

    def _finish(self) -> None:
        scene = self.scene
        if self.temp.scene() is not None:
            scene.removeItem(self.temp)
        if self.picked is not None and self.picked.id in scene.wires:
            scene.wires[self.picked.id].setVisible(True)
        scene.end_wire_drag(self)

    def release(self, pos: QPointF) -> None:
        self._finish()
        target = self.scene.node_item_at(pos)
        if target is None:
            self._dropped_on_canvas(pos)
            return
        try:
            if self.from_output:
                self._drop_on_input(target, pos)
            else:
                self._drop_on_output(target, pos)
        except ConnectionRefused as exc:
            self.scene.notify(f"Cannot connect: {exc}")

    def _source(self) -> tuple[str, int]:
        """The output end of the wire being dragged."""
        return self.node_id, int(self.port.key)

    def _drop_on_input(self, target: NodeItem, pos: QPointF) -> None:
        from_node, from_output = self._source()
        port = target.port_at(pos, generous=True)
        name = str(port.key) if port is not None and port.is_input else None
        if name is None:
            row = target.widget_at(pos)
            if row is not None and row.kind != ng.CONTROL:
                name = row.name
        if name is None:
            name = self._best_input(target.node_id)
        if name is None:
            label = node_label(self.doc.graph.nodes[target.node_id], self.doc.spec(target.node_id))
            raise ConnectionRefused(f"{label} has no input that takes {describe_type(self.type)}")
        picked = self.picked
        if picked is not None and (picked.to_node, picked.to_input) == (target.node_id, name):
            return  # put back where it was
        reason = self.doc.check_connection(from_node, from_output, target.node_id, name)
        if reason is not None:
            raise ConnectionRefused(reason)
        with self.doc.macro("Connect"):
            if picked is not None:
                self.doc.disconnect(picked.to_node, picked.to_input)
            self.doc.connect(from_node, from_output, target.node_id, name)

    def _best_input(self, node_id: str) -> str | None:
        """For a wire dropped on a node's body: its first free input that takes the type, else any."""
        spec = self.doc.spec(node_id)
        if spec is None or node_id == self.node_id:
            return None
        fitting = [inp.name for inp in spec.inputs if is_compatible(self.type, inp.type)]
        free = [name for name in fitting if self.doc.graph.link_into(node_id, name) is None]
        return (free or fitting or [None])[0]

    def _drop_on_output(self, target: NodeItem, pos: QPointF) -> None:
        port = target.port_at(pos, generous=True)
        index = int(port.key) if port is not None and not port.is_input else None
        if index is None:
            spec = self.doc.spec(target.node_id)
            outputs = spec.outputs if spec is not None else ()
            index = next((i for i, out in enumerate(outputs) if is_compatible(out.type, self.type)), None)
        if index is None:
            label = node_label(self.doc.graph.nodes[target.node_id], self.doc.spec(target.node_id))
            raise ConnectionRefused(f"{label} has no output of type {describe_type(self.type)}")
        self.doc.connect(target.node_id, index, self.node_id, str(self.port.key))

    def _dropped_on_canvas(self, pos: QPointF) -> None:
        if self.picked is not None:
            self.doc.disconnect(self.picked.to_node, self.picked.to_input)
            return
        wire_type = self.type
        if self.from_output:
            def fits(spec: NodeSpec) -> bool:
                return any(is_compatible(wire_type, inp.type) for inp in spec.inputs)
        else:
            def fits(spec: NodeSpec) -> bool:
                return any(is_compatible(out.type, wire_type) for out in spec.outputs)
        self.scene.host.open_palette(pos, fits, lambda node_type: self._add_and_connect(node_type, pos))

    def _add_and_connect(self, node_type: str, pos: QPointF) -> None:
        spec = self.doc.registry.spec(node_type) if self.doc.registry is not None else None
        label = spec.display_name if spec is not None else node_type
        try:
            with self.doc.macro(f"Add {label}"):
                if self.from_output:
                    node_id = self.doc.add_node(node_type, (pos.x(), pos.y() - ng.HEADER))
                    name = self._best_input(node_id)
                    if name is not None:
                        self.doc.connect(*self._source(), node_id, name)
                else:
                    node_id = self.doc.add_node(node_type, (pos.x() - ng.MIN_WIDTH, pos.y() - ng.HEADER))
                    outputs = spec.outputs if spec is not None else ()
                    index = next((i for i, out in enumerate(outputs) if is_compatible(out.type, self.type)), None)
                    if index is not None:
                        self.doc.connect(node_id, index, self.node_id, str(self.port.key))
        except ConnectionRefused as exc:
            self.scene.notify(f"Cannot connect: {exc}")


class ValueDrag(Interaction):
    """Pressing on a number widget: drag sideways to change it, click an arrow to step it, or
    click its middle to type a value. All the changes of one drag are one undo step."""

    PIXELS_PER_STEP = 6.0

    def __init__(self, scene: CanvasScene, item: NodeItem, row: ng.WidgetRow, pos: QPointF):
        self.scene = scene
        self.doc = scene.document
        self.item = item
        self.row = row
        self.press = pos
        self.dragged = False
        assert row.inp is not None
        self.start = self.doc.graph.nodes[item.node_id].inputs.get(row.name, row.inp.default)
        self.doc.seal()

    def move(self, pos: QPointF) -> None:
        dx = pos.x() - self.press.x()
        if not self.dragged and abs(dx) < CLICK_DISTANCE:
            return
        self.dragged = True
        steps = math.trunc(dx / self.PIXELS_PER_STEP)
        self._set(self.start, steps)

    def release(self, pos: QPointF) -> None:
        if not self.dragged:
            local = self.item.mapFromScene(pos)
            rect = self.row.rect
            if local.x() < rect.left() + 16:
                self._set(self.start, -1)
            elif local.x() > rect.right() - 16:
                self._set(self.start, 1)
            else:
                self.scene.edit_widget(self.item, self.row)
        self.doc.seal()

    def _set(self, start: Any, steps: int) -> None:
        inp = self.row.inp
        assert inp is not None
        step = inp.step or (1 if self.row.kind == ng.INT else 0.01)
        base = start if isinstance(start, (int, float)) and not isinstance(start, bool) else 0
        value = base + steps * step
        if inp.min is not None:
            value = max(value, inp.min)
        if inp.max is not None:
            value = min(value, inp.max)
        value = round(value) if self.row.kind == ng.INT else round(float(value), 10)
        self.doc.set_input(self.item.node_id, self.row.name, value)


class _GestureCancelled(Exception):
    """Thrown into a gesture's open macro to undo what it changed."""


class NodeWidgetGesture(Interaction):
    """Pressing in a plugin's node widget area (studio.ui.api.NodeWidget).

    The widget's press, drag and release return input changes; each is checked as a typed-in
    value would be (a bad one is refused with a message, the others still apply) and the whole
    gesture is one undo step. A widget that raises ends the gesture, keeping what it applied;
    Esc undoes it. ``active`` is False once the gesture is over (already after a failed press).
    """

    def __init__(self, scene: CanvasScene, item: NodeItem, pos: QPointF):
        self.scene = scene
        self.doc = scene.document
        self.item = item
        self.node_id = item.node_id
        self.node_type = item.node.type
        self.widget = item.custom_widget
        self.active = self.widget is not None
        self._macro: AbstractContextManager[Any] | None = None
        if self.widget is None:
            scene.notify(f"The {self.node_type} widget is not working: {item.custom_error or 'it could not be created'}")
            return
        self._call("press", pos)

    def move(self, pos: QPointF) -> None:
        self._call("drag", pos)

    def release(self, pos: QPointF) -> None:
        self._call("release", pos)
        self._finish()

    def cancel(self) -> None:
        self.active = False
        macro, self._macro = self._macro, None
        if macro is not None:
            macro.__exit__(_GestureCancelled, _GestureCancelled(), None)  # the macro undoes its edits
        if self.scene.interaction is self:
            self.scene.interaction = None

    def _call(self, method: str, scene_pos: QPointF) -> None:
        item = self.item
        if not self.active:
            return
        if self.node_id not in self.doc.graph.nodes or item.custom_widget is not self.widget or item.geo.custom is None:
            self._finish()  # the node was deleted or its plugin disabled meanwhile
            return
        rect = QRectF(item.geo.custom)
        try:
            changes = getattr(self.widget, method)(item.mapFromScene(scene_pos), rect, item.widget_values())
        except Exception as exc:  # a plugin's bug ends its gesture, never the editor
            log.exception("the node widget of %s failed in %s()", self.node_type, method)
            self.scene.notify(f"The {self.node_type} widget failed: {type(exc).__name__}: {exc}")
            self._finish()
            return
        if changes:
            self._apply(changes)

    def _apply(self, changes: Any) -> None:
        if not isinstance(changes, Mapping):
            self.scene.notify(f"The {self.node_type} widget returned {type(changes).__name__}, not a mapping of input changes")
            return
        spec = self.doc.spec(self.node_id)
        inputs = {inp.name: inp for inp in spec.inputs} if spec is not None else {}
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            inp = inputs.get(name)
            if inp is None or ng.widget_kind(inp) is None:
                self.scene.notify(f"The {self.node_type} widget tried to set {name!r}, which is not a value input of the node")
                continue
            try:
                checked[name] = inp.coerce(value)
            except InputValueError as exc:
                self.scene.notify(f"{inp.label}: {exc} (from the {self.node_type} widget)")
        current = self.doc.graph.nodes[self.node_id].inputs
        checked = {name: value for name, value in checked.items() if name not in current or current[name] != value}
        if not checked:
            return
        if self._macro is None:
            self._macro = self.doc.macro(f"Change {node_label(self.doc.graph.nodes[self.node_id], spec)}")
            self._macro.__enter__()
        for name, value in checked.items():
            self.doc.set_input(self.node_id, name, value)

    def _finish(self) -> None:
        self.active = False
        macro, self._macro = self._macro, None
        if macro is not None:
            macro.__exit__(None, None, None)  # one undo step for the whole gesture
        if self.scene.interaction is self:
            self.scene.interaction = None


class GroupResize(Interaction):
    """Dragging a group's corner grip; the document hears of it once, on release."""

    def __init__(self, scene: CanvasScene, group: GroupItem, pos: QPointF):
        self.scene = scene
        self.group = group
        self.press = pos
        self.size = (group.rect.width(), group.rect.height())

    def move(self, pos: QPointF) -> None:
        w = max(80.0, self.size[0] + pos.x() - self.press.x())
        h = max(50.0, self.size[1] + pos.y() - self.press.y())
        self.group.prepareGeometryChange()
        self.group.rect.setWidth(w)
        self.group.rect.setHeight(h)
        self.group.update()

    def release(self, pos: QPointF) -> None:
        self.move(pos)
        self.scene.document.change_group(self.group.group_id, bounding=self.group.bounding())

    def cancel(self) -> None:
        self.group.refresh()



class NodeResize(Interaction):
    """Dragging a node's corner grip: the node follows live, the document hears of it on release."""

    def __init__(self, scene: CanvasScene, item: NodeItem, pos: QPointF):
        self.scene = scene
        self.item = item
        self.press = pos
        self.start = (item.geo.width, item.geo.height)
        self.size = self.start

    def move(self, pos: QPointF) -> None:
        self.size = (max(ng.MIN_WIDTH, self.start[0] + pos.x() - self.press.x()),
                     max(ng.HEADER, self.start[1] + pos.y() - self.press.y()))
        self.item.refresh(self.size)

    def release(self, pos: QPointF) -> None:
        self.move(pos)
        width, height = self.item.geo.width, self.item.geo.height  # never below what the content needs
        if (round(width), round(height)) != (round(self.start[0]), round(self.start[1])):
            self.scene.document.resize_node(self.item.node_id, (width, height))
        else:
            self.item.refresh()

    def cancel(self) -> None:
        self.item.refresh()
