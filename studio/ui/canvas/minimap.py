"""The minimap: the whole graph in a corner of the canvas, with the visible part outlined.

It is painted by the view in its foreground, not as a widget over the viewport: a widget on top
would stop Qt from scrolling the viewport by copying pixels, and every pan frame would become a
full repaint. The overview is one cached pixmap of node rectangles, rendered again only after a
document event changed the layout (coalesced, on the next turn of the event loop) or the theme
changed; a frame only copies it and draws the visible rectangle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, QSizeF, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap

from studio.core import document_events as ev
from studio.ui import theme

if TYPE_CHECKING:
    from studio.ui.canvas.scene import CanvasScene
    from studio.ui.canvas.view import CanvasView

MAX_WIDTH, MAX_HEIGHT, MIN_SIDE, MARGIN = 200, 140, 48, 12
#: Scene units kept around the graph, so nodes at its edge are not drawn against the frame.
PADDING = 60.0
#: Events after which the overview may look different; value edits and selection do not count.
LAYOUT_EVENTS = (ev.NodeAdded, ev.NodeRemoved, ev.NodeMoved, ev.NodeResized, ev.NodeChanged, ev.GroupAdded,
                 ev.GroupRemoved, ev.GroupChanged, ev.NoteAdded, ev.NoteRemoved, ev.NoteChanged)


class Minimap(QObject):
    """The overview of one view; the view paints it, feeds it mouse presses and tells it of scrolls."""

    def __init__(self, view: CanvasView):
        super().__init__(view)
        self.view = view
        self.enabled = True
        #: How many times the overview was rendered (not painted): tests check it stays cached.
        self.renders = 0
        self._world = QRectF()  # the scene area the overview shows
        self._pixmap: QPixmap | None = None
        self._rect = QRect()  # where it sits, in viewport pixels
        self._shown = False
        self._unsubscribe: Callable[[], None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.rebuild)

    # -- following the document ------------------------------------------------------------------
    def attach(self, scene: CanvasScene) -> None:
        """Mirror ``scene``'s document from now on (a view shows another document)."""
        self.detach()
        self._unsubscribe = scene.document.subscribe(self._on_event)
        self.invalidate()

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._timer.stop()

    def _on_event(self, event: ev.DocumentEvent) -> None:
        if isinstance(event, LAYOUT_EVENTS):
            self.invalidate()

    def invalidate(self) -> None:
        """Render again soon: once for a burst of events (a paste of fifty nodes is one render)."""
        self._timer.start()

    def rebuild(self) -> None:
        """Render the node rectangles of the whole graph into the cached pixmap."""
        self._timer.stop()
        scene = self.view.canvas
        boxes: list[tuple[QRectF, QColor]] = []
        world = QRectF()
        for group in scene.groups.values():
            tint = QColor(group.colour)
            tint.setAlpha(90)  # a tint behind the group's nodes
            boxes.append((group.sceneBoundingRect(), tint))
        for note in scene.notes.values():
            boxes.append((note.sceneBoundingRect(), theme.NOTE_BG))
        for node in scene.nodes.values():
            if node.isVisible():
                boxes.append((node.sceneBoundingRect(), theme.MINIMAP_NODE))
        for rect, _colour in boxes:
            world = world.united(rect)
        self._world = world.adjusted(-PADDING, -PADDING, PADDING, PADDING) if not world.isEmpty() else QRectF()
        self._pixmap = None
        if not self._world.isEmpty():
            self._render(boxes)
        self.follow_view()

    def _render(self, boxes: list[tuple[QRectF, QColor]]) -> None:
        scale = min(MAX_WIDTH / self._world.width(), MAX_HEIGHT / self._world.height())
        width = max(MIN_SIDE, round(self._world.width() * scale))
        height = max(MIN_SIDE, round(self._world.height() * scale))
        ratio = self.view.devicePixelRatioF()
        pixmap = QPixmap(round(width * ratio), round(height * ratio))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(theme.MINIMAP_BACKDROP)
        painter = QPainter(pixmap)
        painter.setPen(QPen(theme.MINIMAP_FRAME, 1))
        painter.drawRect(QRectF(0.5, 0.5, width - 1, height - 1))
        self._rect = QRect(0, 0, width, height)
        for rect, colour in boxes:
            mapped = self._to_map(rect)
            mapped.setSize(mapped.size().expandedTo(QSizeF(1.5, 1.5)))  # a tiny node stays a dot
            painter.fillRect(mapped, colour)
        painter.end()
        self._pixmap = pixmap
        self.renders += 1

    # -- following the view ----------------------------------------------------------------------
    def visible_scene_rect(self) -> QRectF:
        return self.view.mapToScene(self.view.viewport().rect()).boundingRect()

    def follow_view(self) -> None:
        """After a pan, zoom, resize or render: show or hide (with the whole graph in view there is
        nothing to find), keep to the corner, and repaint the outline of what is visible."""
        viewport = self.view.viewport()
        was, old = self._shown, QRect(self._rect)
        graph = self._world.adjusted(PADDING, PADDING, -PADDING, -PADDING)
        roomy = viewport.width() > 3 * MAX_WIDTH // 2 and viewport.height() > 3 * MAX_HEIGHT // 2
        self._shown = (self.enabled and self._pixmap is not None and roomy
                       and not self.visible_scene_rect().contains(graph))
        if self._pixmap is not None:
            size = self._pixmap.deviceIndependentSize().toSize()
            self._rect = QRect(viewport.width() - size.width() - MARGIN, viewport.height() - size.height() - MARGIN,
                               size.width(), size.height())
        if was:
            viewport.update(old)
        if self._shown:
            viewport.update(self._rect)

    def scrolled(self, dx: int, dy: int) -> None:
        """The viewport's pixels were moved by (dx, dy), the map's with them: paint over the copy."""
        if self._shown:  # one rectangle: a second one in the same paint makes every wire there dearer
            self.view.viewport().update(self._rect.united(self._rect.translated(dx, dy)))
        self.follow_view()

    @property
    def shown(self) -> bool:
        return self._shown

    @property
    def rect(self) -> QRect:
        """Where the map is, in viewport pixels (empty while hidden)."""
        return QRect(self._rect) if self._shown else QRect()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self.follow_view()

    # -- mapping ---------------------------------------------------------------------------------
    def _to_map(self, rect: QRectF) -> QRectF:
        sx, sy = self._rect.width() / self._world.width(), self._rect.height() / self._world.height()
        return QRectF((rect.x() - self._world.x()) * sx, (rect.y() - self._world.y()) * sy,
                      rect.width() * sx, rect.height() * sy)

    def from_scene(self, pos: QPointF) -> QPoint:
        """Where a scene point is drawn on the map, in viewport pixels."""
        sx, sy = self._rect.width() / self._world.width(), self._rect.height() / self._world.height()
        return QPoint(round(self._rect.x() + (pos.x() - self._world.x()) * sx),
                      round(self._rect.y() + (pos.y() - self._world.y()) * sy))

    def to_scene(self, pos: QPoint) -> QPointF:
        """The scene point under a viewport pixel of the map (clamped to the map)."""
        x = min(max(pos.x(), self._rect.left()), self._rect.right() + 1) - self._rect.x()
        y = min(max(pos.y(), self._rect.top()), self._rect.bottom() + 1) - self._rect.y()
        return QPointF(self._world.x() + x * self._world.width() / self._rect.width(),
                       self._world.y() + y * self._world.height() / self._rect.height())

    # -- painting and the mouse -------------------------------------------------------------------
    def paint(self, painter: QPainter) -> None:
        """Draw in viewport pixels (the view calls this from its foreground)."""
        if not self._shown or self._pixmap is None:
            return
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.drawPixmap(self._rect.topLeft(), self._pixmap)
        painter.setClipRect(self._rect)
        visible = self._to_map(self.visible_scene_rect()).translated(self._rect.topLeft().toPointF())
        painter.fillRect(visible, theme.MINIMAP_VISIBLE)
        painter.setPen(QPen(theme.SELECTED, 1))
        painter.drawRect(visible.adjusted(0.5, 0.5, -0.5, -0.5))
        painter.restore()

    def contains(self, pos: QPoint) -> bool:
        return self._shown and self._rect.contains(pos)

    def centre_on(self, pos: QPoint) -> None:
        """Move the view so the spot clicked on the map is in the middle of the canvas."""
        self.view.centerOn(self.to_scene(pos))
