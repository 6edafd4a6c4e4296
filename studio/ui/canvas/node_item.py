"""How a node looks on the canvas, and which part of it is under the mouse.

Painting reads precomputed geometry and skips detail when zoomed out (level of detail), so a
graph of hundreds of nodes pans smoothly. The item never edits the graph: what the user does
on it goes to the scene, which turns it into document commands.
"""

from __future__ import annotations

import logging
import textwrap
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.core import layout
from studio.core.graph import NodeMode
from studio.core.paths import find_input_file
from studio.ui import api as gui_api
from studio.ui import theme, thumbnails
from studio.ui.canvas import node_geometry as ng
from studio.ui.eta import ProgressClock, format_eta

if TYPE_CHECKING:
    from studio.ui.canvas.scene import CanvasScene
    from studio.ui.canvas.wire_item import WireItem

#: Below this zoom only blocks are drawn; below DETAIL_LOD no widget text or port labels.
BLOCK_LOD = 0.35
DETAIL_LOD = 0.55
#: Run times below this are not worth a badge (primitives, arithmetic).
SHOWN_SECONDS = 0.05
#: Size of the resize grip in the bottom-right corner.
GRIP = 10.0
#: How long a resolved image path is trusted before the disk is asked again (files come and go).
RESOLVE_SECONDS = 2.0

log = logging.getLogger(__name__)

#: Node types whose plugin widget failed to draw: logged once each, not on every repaint.
_failed_widgets: set[str] = set()

#: Items waiting for a thumbnail, by file path: repainted when it has been decoded.
_waiting: dict[str, weakref.WeakSet[NodeItem]] = {}
_listening = False


def _thumbnail_ready(path: str) -> None:
    for item in list(_waiting.pop(path, ())):
        try:
            item.update()
        except RuntimeError:  # the item was deleted with its scene meanwhile
            pass


def _wait_for_thumbnail(item: NodeItem, path: str) -> None:
    global _listening
    if not _listening:
        thumbnails.shared().ready.connect(_thumbnail_ready)
        _listening = True
    _waiting.setdefault(path, weakref.WeakSet()).add(item)


@dataclass
class RunState:
    """What the last run did to a node, for drawing (never saved)."""

    status: str = ""  # queued, running, cached, done, failed, skipped
    progress: float | None = None
    message: str = ""
    seconds: float | None = None


class NodeItem(QGraphicsItem):
    """One node of the document, drawn from its geometry."""

    def __init__(self, canvas: CanvasScene, node_id: str):
        super().__init__()
        self.canvas = canvas
        self.node_id = node_id
        self.wires: set[WireItem] = set()
        self.run = RunState()
        self.clock = ProgressClock()
        self.output_text = ""
        self._was_placeholder = False
        self._picked: tuple[tuple[str, str], float, Path | None] | None = None
        #: The plugin widget drawn in the node's custom area (one instance per node) and why it cannot be.
        self.custom_widget: gui_api.NodeWidget | None = None
        self.custom_error = ""
        self._custom_class: type[gui_api.NodeWidget] | None = None
        self.geo = ng.NodeGeometry(ng.MIN_WIDTH, ng.HEADER, "")
        self._bounds = self.geo.rect
        self._body = QPainterPath()
        self._header = QPainterPath()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(False)
        self.refresh()
        self.sync_pos()

    # -- model → item ----------------------------------------------------------------------------
    @property
    def node(self) -> Any:
        return self.canvas.document.graph.nodes[self.node_id]

    def refresh(self, size: tuple[float, float] | None = None) -> None:
        """Recompute geometry after the node's sockets, title, size or shown text changed
        (``size``: a size being dragged, not yet in the document)."""
        doc = self.canvas.document
        node = self.node
        spec = doc.spec(self.node_id)
        if spec is None:  # a placeholder says why it is one, and which plugin would provide it
            self.output_text = "\n".join(textwrap.wrap(self._description(), 32)[:ng.MAX_TEXT_LINES])
        elif self._was_placeholder:
            self.output_text = ""
        self._was_placeholder = spec is None
        lines = len(self.output_text.splitlines()) if self.output_text else 0
        custom_height = self._sync_custom_widget(node.type if spec is not None else None)
        geo = ng.compute(node, spec, self.links_in(), self.links_out(), doc.ui, lines, size, custom_height)
        self.prepareGeometryChange()
        self.geo = geo
        rect = geo.rect
        self._bounds = rect.adjusted(-12, -3, 12, 3)  # sockets stick out of the body
        self._body = QPainterPath()
        self._body.addRoundedRect(rect, 6, 6)
        self._header = QPainterPath()
        self._header.addRoundedRect(QRectF(0, 0, rect.width(), ng.HEADER), 6, 6)
        if not geo.collapsed:
            self._header.addRect(QRectF(0, ng.HEADER / 2, rect.width(), ng.HEADER / 2))
            self._header.setFillRule(Qt.FillRule.WindingFill)
        mode = node.mode
        self.setOpacity(0.55 if mode is NodeMode.MUTED else 1.0)
        self.setToolTip(self.run.message if self.run.status == "failed" else self._description())
        for wire in self.wires:
            wire.refresh_path()
        self.update()

    def _sync_custom_widget(self, node_type: str | None) -> float:
        """Follow the registry of plugin widgets (a plugin enabled or disabled meanwhile); the
        height the node must make room for, 0 for none."""
        gui = getattr(self.canvas, "gui", None)
        cls = gui.node_widget_class(node_type) if gui is not None and node_type is not None else None
        if cls is not self._custom_class:
            self._custom_class = cls
            self.custom_widget = None
            self.custom_error = ""
            if cls is not None:
                try:
                    self.custom_widget = cls()
                except Exception as exc:  # a plugin's bug must not stop the canvas
                    self.custom_error = _failure(exc)
                    _log_failure(node_type or "", "could not be created")
        if cls is None:
            return 0.0
        try:
            return gui_api.widget_height(cls)
        except ValueError:  # HEIGHT changed after registration
            return gui_api.NodeWidget.HEIGHT

    def widget_values(self) -> Mapping[str, Any]:
        """The node's constant inputs with defaults filled in, read-only: what a plugin widget sees."""
        spec = self.canvas.document.spec(self.node_id)
        values = {inp.name: inp.default for inp in spec.inputs if inp.has_default} if spec is not None else {}
        values.update(self.node.inputs)
        return MappingProxyType(values)

    def links_in(self) -> list[Any]:
        """The links into this node, from its wires (cheap: no scan of the whole graph)."""
        return [wire.link for wire in self.wires if wire.target is self]

    def links_out(self) -> list[Any]:
        return [wire.link for wire in self.wires if wire.source is self]

    def _description(self) -> str:
        doc = self.canvas.document
        spec = doc.spec(self.node_id)
        if spec is not None:
            return spec.description
        registry = doc.registry
        return registry.explain_missing(self.node.type) if registry is not None else f"{self.node.type} is not installed"

    def sync_pos(self) -> None:
        x, y = self.canvas.document.node_pos(self.node_id)
        if self.pos() != QPointF(x, y):
            self.setPos(x, y)

    def refresh_theme(self) -> None:
        """Paint again in the new theme's colours: update() also drops the item's cached pixels."""
        self.update()

    def set_run_state(self, state: RunState) -> None:
        if state.status == "running" and state.progress is not None:
            self.clock.report(state.progress)
        elif state.status != "running" or self.run.status != "running":
            self.clock.reset()
        self.run = state
        self.setToolTip(state.message if state.status == "failed" else self._description())
        self.update()

    def set_output_text(self, text: str) -> None:
        if text != self.output_text:
            self.output_text = text
            self.refresh()

    # -- geometry queries ---------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path

    def input_pos(self, name: str) -> QPointF:
        port = self.geo.inputs.get(name)
        local = port.pos if port is not None else QPointF(0, ng.HEADER / 2)
        return self.mapToScene(local)

    def output_pos(self, index: int) -> QPointF:
        outputs = self.geo.outputs
        local = outputs[index].pos if 0 <= index < len(outputs) else QPointF(self.geo.width, ng.HEADER / 2)
        return self.mapToScene(local)

    def port_at(self, scene_pos: QPointF, generous: bool = False) -> ng.Port | None:
        """The socket under ``scene_pos``: its dot or its label; ``generous`` takes the whole row
        (for dropping a wire, where aiming at a 10-pixel dot would be tiresome)."""
        p = self.mapFromScene(scene_pos)
        geo = self.geo
        if geo.collapsed:
            return None
        half = ng.SOCKET_ROW / 2
        for port in geo.inputs.values():
            if abs(p.y() - port.pos.y()) <= half:
                reach = geo.width / 2 if generous else 14 + QFontMetricsF(theme.fonts()["label"]).horizontalAdvance(port.label)
                if -12 <= p.x() <= reach:
                    return port
        for port in geo.outputs:
            if abs(p.y() - port.pos.y()) <= half:
                reach = geo.width / 2 if generous else 14 + QFontMetricsF(theme.fonts()["label"]).horizontalAdvance(port.label)
                if geo.width - reach <= p.x() <= geo.width + 12:
                    return port
        return None

    def widget_at(self, scene_pos: QPointF) -> ng.WidgetRow | None:
        p = self.mapFromScene(scene_pos)
        return next((w for w in self.geo.widgets if w.rect.contains(p)), None)

    def picker_part_at(self, scene_pos: QPointF) -> str | None:
        """``"choose"`` or ``"paste"`` when ``scene_pos`` is on one of the image picker's buttons."""
        picker = self.geo.picker
        if picker is None or self.geo.collapsed:
            return None
        p = self.mapFromScene(scene_pos)
        return "choose" if picker.choose.contains(p) else "paste" if picker.paste.contains(p) else None

    def picked_path(self) -> Path | None:
        """The file the image picker's input names now, found the way Load Image finds it."""
        picker = self.geo.picker
        if picker is None:
            return None
        doc = self.canvas.document
        value = self.node.inputs.get(picker.name)
        if not isinstance(value, str) or not value.strip():
            return None
        key = (value, str(doc.workflow.base_dir))
        now = time.monotonic()
        if self._picked is None or self._picked[0] != key or now - self._picked[1] > RESOLVE_SECONDS:
            self._picked = (key, now, find_input_file(value, doc.workflow.base_dir))
        return self._picked[2]

    def custom_at(self, scene_pos: QPointF) -> bool:
        """Whether ``scene_pos`` is in the area a plugin's widget draws (and handles presses in)."""
        custom = self.geo.custom
        return custom is not None and not self.geo.collapsed and custom.contains(self.mapFromScene(scene_pos))

    def in_grip(self, scene_pos: QPointF) -> bool:
        """On the bottom-right corner, where dragging resizes the node."""
        if self.geo.collapsed:
            return False
        p = self.mapFromScene(scene_pos)
        return self.geo.width - GRIP <= p.x() <= self.geo.width and self.geo.height - GRIP <= p.y() <= self.geo.height

    def in_header(self, scene_pos: QPointF) -> bool:
        p = self.mapFromScene(scene_pos)
        return 0 <= p.y() <= ng.HEADER and 0 <= p.x() <= self.geo.width

    # -- Qt hooks -----------------------------------------------------------------------------------
    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for wire in self.wires:
                wire.refresh_path()
        elif change == QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged:
            self.setZValue(1 if value else 0)
        return super().itemChange(change, value)

    # -- painting -----------------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        geo = self.geo
        node = self.node
        entry = layout.node_entry(self.canvas.document.ui, self.node_id)
        header_colour = theme.shown_colour(entry["color"]) if isinstance(entry.get("color"), str) else (
            theme.NODE_HEADER if self.canvas.document.spec(self.node_id) is not None else theme.PLACEHOLDER_HEADER)

        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.NODE_BODY)
        painter.drawPath(self._body)
        painter.setBrush(header_colour)
        painter.drawPath(self._header)
        if node.mode is NodeMode.BYPASSED:
            painter.setBrush(theme.BYPASSED_OVERLAY)
            painter.drawPath(self._body)

        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(self._border_pen())
        painter.drawPath(self._body)
        if lod < BLOCK_LOD:
            return

        self._paint_header(painter, node, header_colour)
        self._paint_ports(painter, lod >= DETAIL_LOD)
        if lod >= DETAIL_LOD:
            self._paint_widgets(painter, node.inputs)
            if geo.picker is not None and not geo.collapsed:
                self._paint_picker(painter, geo.picker)
            if geo.custom is not None and not geo.collapsed:
                self._paint_custom(painter, geo.custom)
            if geo.text_rect is not None:
                self._paint_text(painter)
            if not geo.collapsed:
                painter.setPen(QPen(theme.NODE_TEXT_DIM, 1))
                for i in (4.0, 8.0):
                    painter.drawLine(QPointF(geo.width - i - 2, geo.height - 2), QPointF(geo.width - 2, geo.height - i - 2))
        if self.run.status == "running" and self.run.progress is not None and not geo.collapsed:
            bar = QRectF(6, geo.height - 6, (geo.width - 12) * max(0.0, min(1.0, self.run.progress)), 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.RUNNING)
            painter.drawRect(bar)

    def _border_pen(self) -> QPen:
        status = self.run.status
        if status == "failed":
            return QPen(theme.FAILED, 2.5)
        if status == "running":
            return QPen(theme.RUNNING, 2.5)
        if self.isSelected():
            return QPen(theme.SELECTED, 2)
        if status == "cached":
            return QPen(theme.CACHED, 1.5)
        return QPen(theme.NODE_BORDER, 1)

    def _paint_header(self, painter: QPainter, node: Any, fill: QColor) -> None:
        fonts = theme.fonts()
        geo = self.geo
        badge = "" if geo.collapsed else self.badge(node)  # a collapsed node has room for its title only
        painter.setFont(fonts["small"])
        badge_width = QFontMetricsF(fonts["small"]).horizontalAdvance(badge) + 8 if badge else 0.0
        if badge:
            colour = {"failed": theme.FAILED, "cached": theme.CACHED, "running": theme.RUNNING}.get(
                self.run.status, theme.NODE_TEXT_DIM)
            painter.setPen(colour)
            painter.drawText(QRectF(geo.width - badge_width - 6, 0, badge_width, ng.HEADER),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, badge)
        painter.setFont(fonts["title"])
        painter.setPen(theme.text_on(fill))  # a header coloured by the user may be light or dark
        room = geo.width - 20 - badge_width
        title = QFontMetricsF(fonts["title"]).elidedText(geo.title, Qt.TextElideMode.ElideRight, room)
        painter.drawText(QRectF(10, 0, room, ng.HEADER), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)

    def badge(self, node: Any) -> str:
        """The header's status text: progress and time left, run time, cached, failed, muted …"""
        status = self.run.status
        if status == "failed":
            return "failed"
        if status == "cached":
            return "cached"
        if status == "running":
            if self.run.progress is None:
                return "running"
            eta = format_eta(self.clock.eta())
            return f"{self.run.progress:.0%} · {eta}" if eta else f"{self.run.progress:.0%}"
        if status == "done" and self.run.seconds is not None and self.run.seconds >= SHOWN_SECONDS:
            return f"{self.run.seconds:.2f} s"
        if status == "skipped":
            return "skipped"
        if node.mode is NodeMode.MUTED:
            return "muted"
        if node.mode is NodeMode.BYPASSED:
            return "bypassed"
        return ""

    def _paint_ports(self, painter: QPainter, labels: bool) -> None:
        geo = self.geo
        drag = self.canvas.wire_drag
        font = theme.fonts()["label"]
        painter.setFont(font)
        wired_inputs = {link.to_input for link in self.links_in()}
        wired_outputs = {link.from_output for link in self.links_out()}
        for port in (*geo.inputs.values(), *geo.outputs):
            colour = QColor(theme.type_color(port.type))
            if drag is not None and not drag.accepts(self.node_id, port):
                colour.setAlpha(theme.DIM_ALPHA)
            connected = port.key in (wired_inputs if port.is_input else wired_outputs)
            painter.setPen(QPen(colour, 1.5))
            painter.setBrush(colour if connected else theme.WIDGET_BG)
            painter.drawEllipse(port.pos, ng.PORT_RADIUS, ng.PORT_RADIUS)
            if labels and not geo.collapsed:
                text_colour = QColor(theme.NODE_TEXT_DIM)
                if drag is not None and not drag.accepts(self.node_id, port):
                    text_colour.setAlpha(70)
                painter.setPen(text_colour)
                rect = QRectF(12, port.pos.y() - ng.SOCKET_ROW / 2, geo.width - 24, ng.SOCKET_ROW)
                align = Qt.AlignmentFlag.AlignLeft if port.is_input else Qt.AlignmentFlag.AlignRight
                painter.drawText(rect, align | Qt.AlignmentFlag.AlignVCenter, port.label)

    def _paint_widgets(self, painter: QPainter, values: dict[str, Any]) -> None:
        font = theme.fonts()["label"]
        painter.setFont(font)
        fm = QFontMetricsF(font)
        drag = self.canvas.wire_drag
        ui = self.canvas.document.ui
        for row in self.geo.widgets:
            rect = row.rect
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.WIDGET_BG)
            painter.drawRoundedRect(rect, 5, 5)
            if drag is not None and row.kind != ng.CONTROL and drag.accepts_widget(self.node_id, row):
                # A wire may be dropped here: show where its socket will appear.
                colour = theme.type_color(row.inp.type if row.inp is not None else "*")
                painter.setPen(QPen(colour, 1.5))
                painter.setBrush(theme.WIDGET_BG)
                painter.drawEllipse(QPointF(0, rect.center().y()), ng.PORT_RADIUS, ng.PORT_RADIUS)
            if row.kind == ng.CONTROL:
                value = layout.seed_control(ui, self.node_id, row.name)
            else:
                value = values.get(row.name, row.inp.default if row.inp is not None and row.inp.has_default else None)
            if row.kind == ng.MULTILINE:
                self._paint_multiline(painter, rect, row, value)
                continue
            text = ng.format_value(row.kind, value, row.inp)
            inner = rect.adjusted(10, 0, -10, 0)
            if row.kind in (ng.INT, ng.FLOAT, ng.COMBO, ng.CONTROL):
                painter.setPen(theme.NODE_TEXT_DIM)
                painter.drawText(QRectF(rect.left() + 3, rect.top(), 10, rect.height()), Qt.AlignmentFlag.AlignCenter, "‹")
                painter.drawText(QRectF(rect.right() - 13, rect.top(), 10, rect.height()), Qt.AlignmentFlag.AlignCenter, "›")
                inner = rect.adjusted(14, 0, -14, 0)
            if row.kind == ng.TOGGLE:
                value_width = 30.0
            else:
                # The value wins the room; the label gets what is left (and is elided first).
                value_width = min(fm.horizontalAdvance(text) + 2, inner.width() * 0.7)
            label_width = max(0.0, inner.width() - value_width - 8)
            painter.setPen(theme.NODE_TEXT_DIM)
            painter.drawText(QRectF(inner.left(), inner.top(), label_width, inner.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(row.label, Qt.TextElideMode.ElideRight, label_width))
            if row.kind == ng.TOGGLE:
                self._paint_toggle(painter, inner, bool(value))
                continue
            painter.setPen(theme.WIDGET_TEXT)
            painter.drawText(QRectF(inner.right() - value_width, inner.top(), value_width, inner.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(text, Qt.TextElideMode.ElideMiddle, value_width))

    def _paint_toggle(self, painter: QPainter, inner: QRectF, on: bool) -> None:
        pill = QRectF(inner.right() - 26, inner.center().y() - 6, 26, 12)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.TOGGLE_ON if on else theme.TOGGLE_OFF)
        painter.drawRoundedRect(pill, 6, 6)
        painter.setBrush(theme.TOGGLE_KNOB)
        knob = pill.right() - 6 if on else pill.left() + 6
        painter.drawEllipse(QPointF(knob, pill.center().y()), 4.5, 4.5)

    def _paint_picker(self, painter: QPainter, picker: ng.ImagePicker) -> None:
        font = theme.fonts()["label"]
        painter.setFont(font)
        for rect, text in ((picker.choose, "Choose image…"), (picker.paste, "Paste")):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.WIDGET_BG)
            painter.drawRoundedRect(rect, 5, 5)
            painter.setPen(theme.WIDGET_TEXT)
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        frame = picker.thumb
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(theme.WIDGET_BG)
        painter.drawRoundedRect(frame, 4, 4)
        value = self.node.inputs.get(picker.name)
        path = self.picked_path()
        note, colour = "", theme.NODE_TEXT_DIM
        if path is None:
            note = "No image chosen" if not value else f"Not found: {value}"
            colour = theme.NODE_TEXT_DIM if not value else theme.FAILED
        else:
            pixmap = thumbnails.shared().get(str(path))
            if pixmap is not None:
                size = pixmap.size().scaled(frame.size().toSize() - QSize(8, 8), Qt.AspectRatioMode.KeepAspectRatio)
                target = QRectF(0, 0, size.width(), size.height())
                target.moveCenter(frame.center())
                painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
            elif thumbnails.shared().failed(str(path)):
                note, colour = f"Not an image: {path.name}", theme.FAILED
            else:
                note = "Loading…"
                _wait_for_thumbnail(self, str(path))
        if note:
            painter.setPen(colour)
            fm = QFontMetricsF(font)
            painter.drawText(frame, Qt.AlignmentFlag.AlignCenter,
                             fm.elidedText(note, Qt.TextElideMode.ElideMiddle, frame.width() - 12))

    def _paint_custom(self, painter: QPainter, rect: QRectF) -> None:
        """Let the plugin's widget draw its area; if it raises, show why there instead."""
        error = self.custom_error
        widget = self.custom_widget
        if widget is not None and not error:
            painter.save()
            try:
                painter.setClipRect(rect, Qt.ClipOperation.IntersectClip)
                painter.setFont(theme.fonts()["label"])
                widget.paint(painter, QRectF(rect), self.widget_values(), gui_api.WidgetStyle.current())
            except Exception as exc:  # a plugin's bug must not take the editor down
                error = _failure(exc)
                _log_failure(self.node.type, "failed to paint")
            finally:
                painter.restore()
        if not error:
            return
        painter.setPen(QPen(theme.FAILED, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        font = theme.fonts()["small"]
        painter.setFont(font)
        fm = QFontMetricsF(font)
        inner = rect.adjusted(6, 4, -6, -4)
        text = fm.elidedText(f"Widget error: {error}", Qt.TextElideMode.ElideRight, inner.width() * 3)
        painter.drawText(inner, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, text)

    def _paint_multiline(self, painter: QPainter, rect: QRectF, row: ng.WidgetRow, value: Any) -> None:
        text = str(value) if value else ""
        inner = rect.adjusted(6, 4, -6, -4)
        if text:
            painter.setPen(theme.WIDGET_TEXT)
            painter.drawText(inner, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, text)
        else:
            painter.setPen(theme.NODE_TEXT_DIM)
            painter.drawText(inner, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, row.label)

    def _paint_text(self, painter: QPainter) -> None:
        rect = self.geo.text_rect
        assert rect is not None
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(theme.TEXT_BOX_BG))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(theme.WIDGET_TEXT)
        painter.setFont(theme.fonts()["label"])
        fm = QFontMetricsF(theme.fonts()["label"])
        lines = self.output_text.splitlines()[:ng.MAX_TEXT_LINES]
        for i, line in enumerate(lines):
            painter.drawText(QRectF(rect.left() + 6, rect.top() + 4 + i * ng.TEXT_LINE, rect.width() - 12, ng.TEXT_LINE),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(line, Qt.TextElideMode.ElideRight, rect.width() - 12))


def _failure(exc: BaseException) -> str:
    """A plugin widget's exception in a few words, for the node to show."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _log_failure(node_type: str, what: str) -> None:
    """Log the exception being handled, once per node type (paint runs on every repaint)."""
    if node_type in _failed_widgets:
        return
    _failed_widgets.add(node_type)
    log.exception("the node widget of %s %s", node_type, what)
