"""Things on the canvas that are not part of the graph: group frames and notes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.core import layout
from studio.ui import theme

if TYPE_CHECKING:
    from studio.ui.canvas.scene import CanvasScene

GROUP_TITLE = 30.0
GRIP = 14.0
NOTE_SIZE = (220.0, 100.0)


class GroupItem(QGraphicsItem):
    """A titled, coloured frame. Grabbed by its title bar (dragging it moves the nodes inside) or
    by its corner grip (resizing); the inside lets clicks through to the canvas."""

    def __init__(self, canvas: CanvasScene, group_id: str):
        super().__init__()
        self.canvas = canvas
        self.group_id = group_id
        self.rect = QRectF()
        self.title = ""
        self.colour = QColor(theme.GROUP_DEFAULT)
        self.setZValue(-10)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable | QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.refresh()

    def refresh(self) -> None:
        found = layout.find_item(self.canvas.document.ui, layout.GROUPS, self.group_id)
        if found is None:
            return
        item = found[1]
        bounding = item.get("bounding")
        x, y, w, h = [*bounding, 0, 0, 0, 0][:4] if isinstance(bounding, list) else (0, 0, 300, 200)
        self.prepareGeometryChange()
        self.rect = QRectF(0, 0, max(float(w), 80.0), max(float(h), GROUP_TITLE + 10))
        self.title = str(item.get("title", ""))
        self.colour = theme.shown_colour(item["color"]) if isinstance(item.get("color"), str) else QColor(theme.GROUP_DEFAULT)
        self.setPos(float(x), float(y))
        self.update()

    def bounding(self) -> list[float]:
        """Where the frame is now (while dragged, before the document knows)."""
        return [self.pos().x(), self.pos().y(), self.rect.width(), self.rect.height()]

    def grip_rect(self) -> QRectF:
        return QRectF(self.rect.right() - GRIP, self.rect.bottom() - GRIP, GRIP, GRIP)

    def in_grip(self, scene_pos: QPointF) -> bool:
        return self.grip_rect().contains(self.mapFromScene(scene_pos))

    def contained_nodes(self) -> list[str]:
        """Ids of the nodes lying entirely inside the frame: they move with it."""
        frame = self.sceneBoundingRect()
        return [nid for nid, item in self.canvas.nodes.items()
                if frame.contains(item.mapRectToScene(item.geo.rect))]

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(QRectF(0, 0, self.rect.width(), GROUP_TITLE))
        path.addRect(self.grip_rect())
        return path

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        fill = QColor(self.colour)
        fill.setAlpha(55)
        painter.setPen(QPen(theme.SELECTED if self.isSelected() else theme.edge(self.colour, 130), 1.5))
        painter.setBrush(fill)
        painter.drawRoundedRect(self.rect, 6, 6)
        band = QColor(self.colour)
        band.setAlpha(150)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(band)
        painter.drawRoundedRect(QRectF(0, 0, self.rect.width(), GROUP_TITLE), 6, 6)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < 0.2:
            return
        font = theme.fonts()["title"]
        painter.setFont(font)
        painter.setPen(theme.NODE_TEXT)
        room = self.rect.width() - 20
        painter.drawText(QRectF(10, 0, room, GROUP_TITLE), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetricsF(font).elidedText(self.title, Qt.TextElideMode.ElideRight, room))
        painter.setPen(QPen(theme.edge(self.colour, 150), 1))
        grip = self.grip_rect()
        for i in (4, 8, 12):
            painter.drawLine(QPointF(grip.right() - i, grip.bottom() - 2), QPointF(grip.right() - 2, grip.bottom() - i))


class NoteItem(QGraphicsItem):
    """A free text note; double-click to edit it."""

    def __init__(self, canvas: CanvasScene, note_id: str):
        super().__init__()
        self.canvas = canvas
        self.note_id = note_id
        self.text = ""
        self.rect = QRectF(0, 0, *NOTE_SIZE)
        self.colour = QColor(theme.NOTE_BG)
        self.setZValue(-2)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable | QGraphicsItem.GraphicsItemFlag.ItemIsMovable)
        self.refresh()

    def refresh(self) -> None:
        found = layout.find_item(self.canvas.document.ui, layout.NOTES, self.note_id)
        if found is None:
            return
        item: dict[str, Any] = found[1]
        pos = layout.as_point(item.get("pos")) or (0.0, 0.0)
        size = layout.as_point(item.get("size")) or NOTE_SIZE
        self.prepareGeometryChange()
        self.rect = QRectF(0, 0, size[0], size[1])
        self.text = str(item.get("text", ""))
        self.colour = theme.shown_colour(item["color"]) if isinstance(item.get("color"), str) else QColor(theme.NOTE_BG)
        self.setPos(*pos)
        self.update()

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setPen(QPen(theme.SELECTED if self.isSelected() else theme.edge(self.colour, 140), 1.5))
        painter.setBrush(self.colour)
        painter.drawRoundedRect(self.rect, 4, 4)
        if option.levelOfDetailFromTransform(painter.worldTransform()) < 0.35:
            return
        painter.setFont(theme.fonts()["label"])
        painter.setPen(theme.text_on(self.colour))
        painter.drawText(self.rect.adjusted(8, 6, -8, -6),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap, self.text)
