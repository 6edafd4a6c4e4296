"""Wires: bezier curves from an output to an input, through the wire's reroute points."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem

from studio.core import layout
from studio.core.graph import Link
from studio.ui import theme

if TYPE_CHECKING:
    from studio.ui.canvas.scene import CanvasScene

WIRE_WIDTH = 2.5


def wire_path(start: QPointF, end: QPointF, via: Sequence[QPointF] = ()) -> QPainterPath:
    """A smooth curve leaving the output to the right and entering the input from the left."""
    path = QPainterPath(start)
    stops = [start, *via, end]
    for a, b in itertools.pairwise(stops):
        reach = max(abs(b.x() - a.x()) * 0.5, min(80.0, abs(b.y() - a.y()) * 0.5 + 30))
        path.cubicTo(QPointF(a.x() + reach, a.y()), QPointF(b.x() - reach, b.y()), b)
    return path


class WireItem(QGraphicsPathItem):
    """A link of the document, following its two nodes as they move.

    Painted by Qt's own path item (no Python ``paint``): with hundreds of wires on screen, a
    Python call per wire per frame would cost more than drawing them.
    """

    def __init__(self, canvas: CanvasScene, link: Link):
        super().__init__()
        self.canvas = canvas
        self.link = link
        self.source = canvas.nodes[link.from_node]
        self.target = canvas.nodes[link.to_node]
        self.source.wires.add(self)
        self.target.wires.add(self)
        self.reroutes: list[RerouteItem] = []
        self.setZValue(-1)
        self.setAcceptHoverEvents(False)
        self.refresh_theme(reroutes=False)
        self.sync_reroutes()

    def refresh_theme(self, reroutes: bool = True) -> None:
        """Take the pen of the theme shown now (Qt keeps the pen; it is not read at paint time)."""
        colour = self._colour()
        self.setPen(QPen(colour, WIRE_WIDTH, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        if reroutes:
            for item in self.reroutes:
                item.set_colour(colour)

    def _colour(self) -> QColor:
        spec = self.canvas.document.spec(self.link.from_node)
        if spec is not None and self.link.from_output < len(spec.outputs):
            return theme.type_color(spec.outputs[self.link.from_output].type)
        return theme.type_color("*")

    def sync_reroutes(self) -> None:
        """Rebuild the reroute handles from the document (after an edit, undo or redo)."""
        scene = self.scene() or self.canvas
        for item in self.reroutes:
            scene.removeItem(item)
        self.reroutes = []
        for index, (x, y) in enumerate(layout.reroutes(self.canvas.document.ui, self.link.id)):
            item = RerouteItem(self, index, self.pen().color())
            item.setPos(x, y)
            self.canvas.addItem(item)
            self.reroutes.append(item)
        self.refresh_path()

    def refresh_path(self) -> None:
        start = self.source.output_pos(self.link.from_output)
        end = self.target.input_pos(self.link.to_input)
        self.setPath(wire_path(start, end, [r.pos() for r in self.reroutes]))

    def detach(self) -> None:
        self.source.wires.discard(self)
        self.target.wires.discard(self)
        for item in self.reroutes:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.reroutes = []

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())


class RerouteItem(QGraphicsEllipseItem):
    """A point a wire passes through; drag it to route the wire, double-click it to remove it."""

    RADIUS = 5.0

    def __init__(self, wire: WireItem, index: int, colour: QColor):
        r = self.RADIUS
        super().__init__(QRectF(-r, -r, 2 * r, 2 * r))
        self.wire = wire
        self.index = index
        self.set_colour(colour)
        self.setZValue(-0.5)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)

    def set_colour(self, colour: QColor) -> None:
        self.setBrush(colour)
        self.setPen(QPen(theme.NODE_BORDER, 1))

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            self.wire.refresh_path()
        return super().itemChange(change, value)
