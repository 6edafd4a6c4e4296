"""The canvas view: navigation (zoom at the cursor, pan, fit, the minimap), the grid, files dropped
on the canvas, and the popups the scene asks for (node palette, in-place editors, choice menus)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QLineF, QMimeData, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QCursor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsView, QMenu, QWidget

from studio.core.nodedef import NodeSpec
from studio.ui import theme
from studio.ui.canvas.inline_editor import InlineEditor
from studio.ui.canvas.minimap import Minimap
from studio.ui.canvas.scene import CanvasScene
from studio.ui.palette import NodePalette

MIN_ZOOM, MAX_ZOOM = 0.08, 3.0
#: Zoomed out beyond this, the canvas is drawn without antialiasing: much cheaper for hundreds of
#: wires, and at that size the difference does not show.
ANTIALIAS_ZOOM = 0.4
GRID, MAJOR_EVERY = 20.0, 5


class CanvasView(QGraphicsView):
    """Shows a CanvasScene; the scene's popups and editors are opened here, in widget space."""

    #: Emitted after zooming, so the window can show the zoom level.
    zoomed = Signal(float)

    def __init__(self, scene: CanvasScene, parent: QWidget | None = None):
        super().__init__(scene, parent)
        scene.host = self
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom_by anchors itself
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.palette_popup = NodePalette(self)
        self.editor = InlineEditor(self.viewport())
        self._pan_from: QPoint | None = None
        self._space_held = False
        self._last_mouse: QPoint | None = None
        #: Called with (scene position, global position) on a right click; set by the window.
        self.context_menu: Callable[[QPointF, QPoint], None] | None = None
        #: Called with (local files, scene position) when files are dropped here; set by the window.
        self.files_dropped: Callable[[list[Path], QPointF], None] | None = None
        self.minimap = Minimap(self)
        self.minimap.attach(scene)
        self._minimap_drag = False
        theme.changes().changed.connect(self.refresh_theme)

    @property
    def canvas(self) -> CanvasScene:
        scene = self.scene()
        assert isinstance(scene, CanvasScene)
        return scene

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_canvas(self, scene: CanvasScene) -> None:
        """Show another scene (another document) in this view."""
        self.editor.cancel()
        self.setScene(scene)
        scene.host = self
        self.minimap.attach(scene)

    def refresh_theme(self, _name: str = "") -> None:
        """Show the theme chosen now: the scene's items, the cached grid, the minimap and the popups
        were built from the old colours."""
        self.canvas.refresh_theme()
        self.resetCachedContent()
        self.minimap.rebuild()
        self.palette_popup.restyle()
        self.editor.restyle()
        self.viewport().update()

    # -- CanvasHost ------------------------------------------------------------------------------
    def open_palette(self, scene_pos: QPointF, fits: Callable[[NodeSpec], bool] | None,
                     on_chosen: Callable[[str], None]) -> None:
        registry = self.canvas.document.registry
        specs = [s for s in registry if fits is None or fits(s)] if registry is not None else []
        if not specs:
            self.canvas.notify("No installed node can take that wire.")
            return
        self.palette_popup.open(self.mapFromScene(scene_pos), specs, on_chosen)

    def edit_text(self, scene_rect: QRectF, text: str, multiline: bool, on_commit: Callable[[str], None]) -> None:
        rect = self.mapFromScene(scene_rect).boundingRect()
        self.editor.open(rect, text, multiline, on_commit, self.zoom)

    def choose(self, scene_pos: QPointF, options: list[Any], current: Any, on_chosen: Callable[[Any], None]) -> None:
        menu = QMenu(self)
        for option in options:
            action = menu.addAction(str(option))
            action.setCheckable(True)
            action.setChecked(option == current)
            action.setData(option)
        menu.triggered.connect(lambda action: on_chosen(action.data()))
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(self.viewport().mapToGlobal(self.mapFromScene(scene_pos)))

    def open_palette_at_cursor(self) -> None:
        scene_pos = self.cursor_scene_pos()
        canvas = self.canvas

        def add(node_type: str) -> None:
            node_id = canvas.document.add_node(node_type, (scene_pos.x(), scene_pos.y()))
            canvas.select(nodes=[node_id])

        self.open_palette(scene_pos, None, add)

    def cursor_scene_pos(self) -> QPointF:
        """Where the mouse is on the canvas (the view's centre when the mouse is elsewhere)."""
        local = self._last_mouse if self._last_mouse is not None else self.viewport().mapFromGlobal(QCursor.pos())
        if not self.viewport().rect().contains(local):
            local = self.viewport().rect().center()
        return self.mapToScene(local)

    # -- navigation ---------------------------------------------------------------------------
    def zoom_by(self, factor: float, anchor: QPoint | None = None) -> None:
        """Zoom keeping the scene point under ``anchor`` (viewport coordinates; default the centre)."""
        target = max(MIN_ZOOM, min(MAX_ZOOM, self.zoom * factor))
        factor = target / self.zoom
        if math.isclose(factor, 1.0):
            return
        self.editor.commit()
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(anchor)
        self.scale(factor, factor)
        after = self.mapToScene(anchor)
        self.scroll_by_pixels((before.x() - after.x()) * self.zoom, (before.y() - after.y()) * self.zoom)
        self._zoom_changed()

    def scroll_by_pixels(self, dx: float, dy: float) -> None:
        """Move the view over the canvas (positive: the content slides left / up)."""
        hbar, vbar = self.horizontalScrollBar(), self.verticalScrollBar()
        hbar.setValue(hbar.value() + round(dx))
        vbar.setValue(vbar.value() + round(dy))

    def fit(self, selected_only: bool = False) -> None:
        """Show everything (or the selection), never zooming in past 100%."""
        rect = self.canvas.items_rect(selected_only)
        if rect.isEmpty():
            if selected_only:
                self.fit(False)
            return
        rect = rect.adjusted(-40, -40, 40, 40)
        self.editor.commit()
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom > 1.0:
            self.setTransform(self.transform().fromScale(1.0, 1.0))
            self.centerOn(rect.center())
        elif self.zoom < MIN_ZOOM:
            self.setTransform(self.transform().fromScale(MIN_ZOOM, MIN_ZOOM))
            self.centerOn(rect.center())
        self._zoom_changed()

    def reset_zoom(self) -> None:
        centre = self.mapToScene(self.viewport().rect().center())
        self.setTransform(self.transform().fromScale(1.0, 1.0))
        self.centerOn(centre)
        self._zoom_changed()

    def _zoom_changed(self) -> None:
        smooth = self.zoom >= ANTIALIAS_ZOOM
        if bool(self.renderHints() & QPainter.RenderHint.Antialiasing) != smooth:
            self.setRenderHint(QPainter.RenderHint.Antialiasing, smooth)
        self.minimap.follow_view()
        self.zoomed.emit(self.zoom)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.pixelDelta().y()
        if delta:
            self.zoom_by(math.pow(1.0015, delta), event.position().toPoint())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.editor.commit()
        if event.button() == Qt.MouseButton.LeftButton and self.minimap.contains(event.position().toPoint()):
            self._minimap_drag = True
            self.minimap.centre_on(event.position().toPoint())
            event.accept()
            return
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._last_mouse = event.position().toPoint()
        if self._minimap_drag:
            self.minimap.centre_on(self._last_mouse)
            event.accept()
            return
        if self._pan_from is not None:
            now = event.position().toPoint()
            delta = now - self._pan_from
            self._pan_from = now
            self.scroll_by_pixels(-delta.x(), -delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._minimap_drag and event.button() == Qt.MouseButton.LeftButton:
            self._minimap_drag = False
            event.accept()
            return
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space_held else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.minimap.contains(event.position().toPoint()):
            self.minimap.centre_on(event.position().toPoint())  # not a double click on the canvas below
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if self.minimap.contains(event.pos()):
            event.accept()
            return
        if self.context_menu is None or self.canvas.interaction is not None:
            super().contextMenuEvent(event)
            return
        self.context_menu(self.mapToScene(event.pos()), event.globalPos())
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self._last_mouse = None
        super().leaveEvent(event)

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # Tab opens the node palette instead of moving the focus

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Tab and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.open_palette_at_cursor()
            return
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_Escape and self.canvas.cancel_interaction():
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if self._pan_from is None:
                self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            return
        super().keyReleaseEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Escape and self.canvas.interaction is not None:
            event.accept()  # Esc first ends a drag in progress; only then does it cancel a run
            return True
        return super().event(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        self.editor.commit()
        super().scrollContentsBy(dx, dy)
        self.minimap.scrolled(dx, dy)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.minimap.follow_view()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        self.minimap.paint(painter)

    # -- files dropped on the canvas -------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.files_dropped is not None and local_files(event.mimeData()):
            event.acceptProposedAction()
            return
        super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.files_dropped is not None and local_files(event.mimeData()):
            event.acceptProposedAction()
            return
        super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData()) if self.files_dropped is not None else []
        if not files or self.files_dropped is None:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        self.files_dropped(files, self.mapToScene(event.position().toPoint()))

    # -- grid ----------------------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, theme.BACKGROUND)
        zoom = self.zoom
        step = GRID if zoom >= 0.5 else GRID * MAJOR_EVERY
        if zoom * step < 6:
            return
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        minor, major = [], []
        x = left
        while x <= rect.right():
            line = QLineF(x, rect.top(), x, rect.bottom())
            (major if round(x / GRID) % MAJOR_EVERY == 0 else minor).append(line)
            x += step
        y = top
        while y <= rect.bottom():
            line = QLineF(rect.left(), y, rect.right(), y)
            (major if round(y / GRID) % MAJOR_EVERY == 0 else minor).append(line)
            y += step
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        if minor:
            painter.setPen(QPen(theme.GRID_MINOR, 0))
            painter.drawLines(minor)
        painter.setPen(QPen(theme.GRID_MAJOR, 0))
        painter.drawLines(major)

    def add_canvas_action(self, action: QAction) -> None:
        """Actions whose keys act on the canvas only while it has the focus."""
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(action)


def local_files(mime: QMimeData) -> list[Path]:
    """The local files a drag carries (links to web pages and plain text are not files)."""
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
