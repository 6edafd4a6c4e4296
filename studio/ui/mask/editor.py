"""The mask painter: a view of the image with the mask over it, brushes, shapes and shortcuts.

Shortcuts: B brush, E eraser, X swap them, [ ] size, Shift+[ Shift+] hardness, L lasso, P polygon
(click points; Enter or a double-click closes, Esc drops it), R rectangle, O ellipse, G bucket fill
(Alt erases with a shape or the bucket), 1…9 and 0 brush opacity 10%…100%, Ctrl+I invert, Delete
clear, Ctrl+Z / Ctrl+Shift+Z undo / redo, F fit, Ctrl+0 100%.
The wheel zooms at the cursor; the middle button or Space+drag pans. A tablet's pen pressure
scales the brush's size and opacity.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QWidget

from studio.ui.mask.mask_model import MaskModel
from studio.ui.mask.overlay import MaskCanvasItem


class Tool(Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    LASSO = "lasso"
    POLYGON = "polygon"
    RECT = "rect"
    ELLIPSE = "ellipse"
    FILL = "fill"


MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
K = Qt.Key
CTRL, SHIFT, ALT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier


class MaskEditor(QGraphicsView):
    """Paints a :class:`MaskModel` over an image; ``changed`` fires after each committed edit."""

    changed = Signal()
    tool_changed = Signal(str)

    def __init__(self, image: QImage, model: MaskModel | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model or MaskModel(image.width(), image.height())
        self.canvas = MaskCanvasItem(image, self.model)
        scene = QGraphicsScene(self)
        scene.setSceneRect(self.canvas.boundingRect())
        scene.addItem(self.canvas)
        self.setScene(scene)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setMouseTracking(True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.tool = Tool.BRUSH
        self.brush_size = max(4.0, round(min(image.width(), image.height()) / 20))
        self.hardness = 0.8
        self.opacity = 1.0
        self._cursor: QPointF | None = None
        self._points: list[QPointF] = []  # lasso / polygon outline, or the shape's two corners
        self._drawing = False
        self._pan_from: QPointF | None = None
        self._space = False

    # -- settings ----------------------------------------------------------------------------------
    def set_tool(self, tool: Tool) -> None:
        self._cancel_shape()
        self.tool = tool
        self.tool_changed.emit(tool.value)
        self._update_cursor()

    def set_overlay_style(self, colour: QColor, opacity: float) -> None:
        self.canvas.set_style(colour, opacity)

    def set_brush(self, size: float | None = None, hardness: float | None = None, opacity: float | None = None) -> None:
        self._update_cursor()
        if size is not None:
            self.brush_size = min(max(size, 1.0), 2048.0)
        if hardness is not None:
            self.hardness = min(max(hardness, 0.0), 1.0)
        if opacity is not None:
            self.opacity = min(max(opacity, 0.0), 1.0)
        self._update_cursor()

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``factor`` keeping the scene point under ``anchor`` (viewport pixels) in place."""
        factor = min(max(factor, MIN_ZOOM), MAX_ZOOM) / self.zoom()
        point = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        before = self._scene(point)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        moved = self.viewportTransform().map(before) - point  # scroll it back under the anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(moved.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(moved.y()))

    def fit(self) -> None:
        self.fitInView(self.canvas.boundingRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def show_adjustment(self, grow: int = 0, feather: float = 0.0) -> None:
        """Preview grow/shrink and feather over the image without changing the mask."""
        self.canvas.set_preview(self.model.adjusted(grow, feather) if grow or feather else None)

    def apply_adjustment(self, grow: int = 0, feather: float = 0.0) -> None:
        self.canvas.set_preview(None)
        self.model.apply_adjustment(grow, feather)
        self.changed.emit()

    # -- mouse and pen -------------------------------------------------------------------------------
    def _scene(self, pos: QPointF) -> QPointF:
        """Sub-pixel scene position, so a stroke lands where the pixel is drawn even when zoomed in."""
        return self.viewportTransform().inverted()[0].map(pos)

    def _press(self, pos: QPointF, button: Qt.MouseButton, mods: Qt.KeyboardModifier, pressure: float) -> bool:
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = pos
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return True
        if button != Qt.MouseButton.LeftButton:
            return False
        p = self._scene(pos)
        if self.tool is Tool.FILL:
            self.model.fill_region(p.x(), p.y(), erase=bool(mods & ALT))
            self.changed.emit()
            return True
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self._drawing = True
            self.model.begin_stroke(p.x(), p.y(), self.brush_size, self.hardness, self.opacity,
                                    erase=self.tool is Tool.ERASER, pressure=pressure)
        elif self.tool is Tool.POLYGON:
            self._points.append(p)
            self._drawing = True
        else:
            self._points = [p, p] if self.tool in (Tool.RECT, Tool.ELLIPSE) else [p]
            self._drawing = True
        self._update_shape()
        return True

    def _move(self, pos: QPointF, buttons: Qt.MouseButton, pressure: float) -> None:
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            return
        self._update_cursor()
        p = self._scene(pos)
        self._cursor = p
        self._update_cursor()
        if not self._drawing or not buttons & Qt.MouseButton.LeftButton:
            return
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self.model.stroke_to(p.x(), p.y(), pressure)
        elif self.tool is Tool.LASSO:
            self._update_shape()
            self._points.append(p)
            self._update_shape()
        elif self.tool in (Tool.RECT, Tool.ELLIPSE):
            self._update_shape()
            self._points[1] = p
            self._update_shape()

    def _release(self, pos: QPointF, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> None:
        if self._pan_from is not None and button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        if button != Qt.MouseButton.LeftButton or not self._drawing:
            return
        erase = bool(mods & ALT)
        if self.tool in (Tool.BRUSH, Tool.ERASER):
            self.model.end_stroke()
        elif self.tool is Tool.LASSO:
            self._points.append(self._scene(pos))
            self._commit_polygon(erase)
        elif self.tool in (Tool.RECT, Tool.ELLIPSE):
            a, b = self._points[0], self._scene(pos)
            self._cancel_shape()
            fill = self.model.fill_rect if self.tool is Tool.RECT else self.model.fill_ellipse
            fill(a.x(), a.y(), b.x(), b.y(), erase=erase)
        else:
            return  # a polygon goes on until Enter or a double-click
        self._drawing = False
        self.changed.emit()

    def _commit_polygon(self, erase: bool = False) -> None:
        points = [(p.x(), p.y()) for p in self._points]
        self._cancel_shape()
        self._drawing = False
        self.model.fill_polygon(points, erase=erase)
        self.changed.emit()

    def _cancel_shape(self) -> None:
        self._update_shape()
        self._points = []
        self._drawing = False

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self._press(event.position(), event.button(), event.modifiers(), 1.0):
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._move(event.position(), event.buttons(), 1.0)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._release(event.position(), event.button(), event.modifiers())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.tool is Tool.POLYGON:
            p = self._scene(event.position())
            last = self._points[-1] if self._points else None
            if last is None or (self.mapFromScene(last) - event.position().toPoint()).manhattanLength() > 2:
                self._points.append(p)  # the double-click's own point, unless its press already added it
            if len(self._points) >= 3:
                self._commit_polygon(bool(event.modifiers() & ALT))
        else:
            self.mousePressEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        """A pen paints from its own events (pressure included) instead of the mouse events Qt makes of them."""
        if isinstance(event, QTabletEvent):
            kind, pressure = event.type(), max(event.pressure(), 0.05)
            if kind == QEvent.Type.TabletPress:
                self._press(event.position(), event.button(), event.modifiers(), pressure)
            elif kind == QEvent.Type.TabletMove:
                self._move(event.position(), event.buttons(), pressure)
            elif kind == QEvent.Type.TabletRelease:
                self._release(event.position(), event.button(), event.modifiers())
            event.accept()
            return True
        return super().viewportEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom() * 1.25 ** steps, event.position())
            self._cursor = self._scene(event.position())
            self.viewport().update()

    def leaveEvent(self, event: QEvent) -> None:
        self._update_cursor()
        self._cursor = None
        super().leaveEvent(event)

    # -- keys ------------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        ctrl, shift = bool(mods & CTRL), bool(mods & SHIFT)
        tools = {K.Key_B: Tool.BRUSH, K.Key_E: Tool.ERASER, K.Key_L: Tool.LASSO, K.Key_P: Tool.POLYGON,
                 K.Key_R: Tool.RECT, K.Key_O: Tool.ELLIPSE, K.Key_G: Tool.FILL}
        if key == K.Key_Space and not event.isAutoRepeat():
            self._space = True
        elif ctrl and key == K.Key_Z:
            self.model.end_stroke()
            (self.model.redo if shift else self.model.undo)()
            self.changed.emit()
        elif ctrl and key == K.Key_Y:
            self.model.redo()
            self.changed.emit()
        elif ctrl and key == K.Key_I:
            self.model.invert()
            self.changed.emit()
        elif ctrl and key == K.Key_0:
            self.set_zoom(1.0)
        elif ctrl:
            super().keyPressEvent(event)
        elif key in tools:
            self.set_tool(tools[key])
        elif key == K.Key_X:
            self.set_tool(Tool.ERASER if self.tool is Tool.BRUSH else Tool.BRUSH)
        elif K.Key_0 <= key <= K.Key_9:  # brush opacity as in paint programs: 1 = 10% … 9 = 90%, 0 = 100%
            digit = key - K.Key_0
            self.set_brush(opacity=(digit or 10) / 10)
        elif key in (K.Key_BracketLeft, K.Key_BraceLeft, K.Key_BracketRight, K.Key_BraceRight):
            grow = key in (K.Key_BracketRight, K.Key_BraceRight)
            if shift or key in (K.Key_BraceLeft, K.Key_BraceRight):  # Shift+[ arrives as { on many layouts
                self.set_brush(hardness=self.hardness + (0.1 if grow else -0.1))
            else:
                self.set_brush(size=self.brush_size * (1.2 if grow else 1 / 1.2))
        elif key in (K.Key_Delete, K.Key_Backspace):
            self.model.clear()
            self.changed.emit()
        elif key in (K.Key_Return, K.Key_Enter) and self.tool is Tool.POLYGON and len(self._points) >= 3:
            self._commit_polygon(bool(mods & ALT))
        elif key == K.Key_Escape:
            self._cancel_shape()
        elif key in (K.Key_F, K.Key_Home):
            self.fit()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == K.Key_Space and not event.isAutoRepeat():
            self._space = False
        super().keyReleaseEvent(event)

    # -- overlays drawn on top: brush outline and the shape being drawn --------------------------------
    def _cursor_rect(self) -> QRectF:
        r = self.brush_size / 2 + 2 / max(self.zoom(), 1e-6)
        return QRectF(self._cursor.x() - r, self._cursor.y() - r, 2 * r, 2 * r)

    def _update_cursor(self) -> None:
        if self._cursor is not None and self.tool in (Tool.BRUSH, Tool.ERASER):
            self.viewport().update(self.mapFromScene(self._cursor_rect()).boundingRect().adjusted(-2, -2, 2, 2))

    def _shape_rect(self) -> QRectF:
        if not self._points:
            return QRectF()
        return QPolygonF(self._points + ([self._cursor] if self._cursor is not None else [])).boundingRect()

    def _update_shape(self) -> None:
        if self._points:
            self.viewport().update(self.mapFromScene(self._shape_rect()).boundingRect().adjusted(-3, -3, 3, 3))

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        pens = (QPen(QColor(0, 0, 0, 200), 0), QPen(QColor(255, 255, 255, 230), 0, Qt.PenStyle.DashLine))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for pen in pens:
            painter.setPen(pen)
            if self._cursor is not None and self.tool in (Tool.BRUSH, Tool.ERASER) and not self._space:
                r = self.brush_size / 2
                painter.drawEllipse(self._cursor, r, r)
            if len(self._points) >= 2 and self.tool in (Tool.RECT, Tool.ELLIPSE):
                box = QRectF(self._points[0], self._points[1]).normalized()
                painter.drawRect(box) if self.tool is Tool.RECT else painter.drawEllipse(box)
            elif self._points and self.tool in (Tool.LASSO, Tool.POLYGON):
                path = QPainterPath(self._points[0])
                for p in self._points[1:]:
                    path.lineTo(p)
                if self.tool is Tool.POLYGON and self._cursor is not None:
                    path.lineTo(self._cursor)
                painter.drawPath(path)

    def mask_array(self) -> np.ndarray:
        """The committed mask (uint8, 255 = repaint)."""
        return self.model.data
