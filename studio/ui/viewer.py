"""The image viewer: the pictures the last run made, fitted to the panel or at 1:1, and an A/B
compare of two of them with a split line to drag across."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QStyleOptionGraphicsItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui import theme

#: How near (in screen pixels) to the split line a press grabs it.
SPLIT_GRAB = 8


class CompareItem(QGraphicsItem):
    """Picture A left of the split line, picture B (stretched to A's size) right of it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = QPixmap()
        self.b = QPixmap()
        #: Where the line is, as a fraction of the width.
        self.split = 0.5

    def set_pictures(self, a: QPixmap, b: QPixmap) -> None:
        self.prepareGeometryChange()
        self.a, self.b = a, b
        self.update()

    def set_split(self, fraction: float) -> None:
        self.split = max(0.0, min(1.0, fraction))
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.a.width(), self.a.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        rect = self.boundingRect()
        if rect.isEmpty():
            return
        x = rect.width() * self.split
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(QRectF(0, 0, x, rect.height()), self.a, QRectF(0, 0, x, rect.height()))
        if not self.b.isNull():
            sx = self.b.width() / rect.width()
            sy = self.b.height() / rect.height()
            painter.drawPixmap(QRectF(x, 0, rect.width() - x, rect.height()), self.b,
                               QRectF(x * sx, 0, (rect.width() - x) * sx, rect.height() * sy))
        pen = QPen(QColor("#ffffff"), 2)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawLine(QPointF(x, 0), QPointF(x, rect.height()))


class _ImageView(QGraphicsView):
    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.compare = CompareItem()
        self.compare.setVisible(False)
        self.scene().addItem(self.compare)
        self.setBackgroundBrush(theme.BACKGROUND)
        theme.changes().changed.connect(self.refresh_theme)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setMouseTracking(True)
        self.fitting = True
        self._dragging_split = False

    def refresh_theme(self, _name: str = "") -> None:
        """The brush is kept by the view, so a theme change has to set it again."""
        self.setBackgroundBrush(theme.BACKGROUND)

    @property
    def comparing(self) -> bool:
        return self.compare.isVisible()

    def shown_item(self) -> QGraphicsItem:
        return self.compare if self.comparing else self.item

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.fitting = False
        factor = math.pow(1.0015, event.angleDelta().y())
        if 0.02 < self.transform().m11() * factor < 40:
            self.scale(factor, factor)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.fitting:
            self.fit()

    def fit(self) -> None:
        self.fitting = True
        item = self.shown_item()
        if not item.boundingRect().isEmpty():
            self.fitInView(item, Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self.fitting = False
        self.resetTransform()

    # -- the split line ----------------------------------------------------------------------------
    def split_x(self) -> float:
        """The split line's x in viewport pixels."""
        rect = self.compare.boundingRect()
        return self.mapFromScene(QPointF(rect.width() * self.compare.split, 0)).x()

    def _near_split(self, event: QMouseEvent) -> bool:
        return self.comparing and abs(event.position().x() - self.split_x()) <= SPLIT_GRAB

    def _move_split(self, event: QMouseEvent) -> None:
        width = self.compare.boundingRect().width()
        if width > 0:
            self.compare.set_split(self.mapToScene(event.position().toPoint()).x() / width)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._near_split(event):
            self._dragging_split = True
            self._move_split(event)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            self._move_split(event)
            event.accept()
            return
        if self.comparing and not event.buttons():
            near = self._near_split(event)
            self.viewport().setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_split = False
            event.accept()
            return
        super().mouseReleaseEvent(event)


class ImageViewer(QWidget):
    """Shows output images; with several, steps through them or compares two side by side."""

    #: "Inpaint…" was clicked: the shown picture's file.
    inpaint_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.paths: list[str] = []
        self.index = 0
        self.view = _ImageView(self)
        self.caption = QLabel("Run a graph with Save Image or Preview Image to see its pictures here.", self)
        self.caption.setWordWrap(True)
        buttons = QHBoxLayout()
        self.prev_button = self._button("◀", "Previous image", lambda: self.step(-1))
        self.next_button = self._button("▶", "Next image", lambda: self.step(1))
        self.fit_button = self._button("Fit", "Fit the image to the panel", self.view.fit)
        self.one_button = self._button("1:1", "Show the image at its actual size", self.view.actual_size)
        self.compare_button = self._button("A|B", "Compare two images with a split line to drag", self._compare_toggled)
        self.compare_button.setCheckable(True)
        self.inpaint_button = self._button("Inpaint…", "Inpaint this picture: add it to the workflow with an Inpaint "
                                           "graph and paint the area to repaint", self._inpaint)
        for button in (self.prev_button, self.next_button, self.fit_button, self.one_button, self.compare_button,
                       self.inpaint_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        # On a row of their own, so comparing never widens the panel (and narrows the canvas).
        self.compare_row = QWidget(self)
        pickers = QHBoxLayout(self.compare_row)
        pickers.setContentsMargins(0, 0, 0, 0)
        self.a_combo = QComboBox(self.compare_row)
        self.b_combo = QComboBox(self.compare_row)
        for label, combo in (("A", self.a_combo), ("B", self.b_combo)):
            combo.setToolTip(f"Picture {label}: shown {'left' if label == 'A' else 'right'} of the split line")
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(4)
            combo.activated.connect(lambda _index: self._show_compare())
            pickers.addWidget(QLabel(label, self.compare_row))
            pickers.addWidget(combo, 1)
        self.compare_row.setVisible(False)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(buttons)
        box.addWidget(self.compare_row)
        box.addWidget(self.view, 1)
        box.addWidget(self.caption)
        self._update_buttons()

    def _button(self, text: str, tip: str, slot: Callable[[], Any]) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def show_images(self, paths: list[str]) -> None:
        """Show these files (the newest run's), starting with the first."""
        self.paths = [p for p in paths if Path(p).is_file()]
        self.index = 0
        self.set_compare(False)

    def show_preview(self, image: QImage, caption: str) -> None:
        """A live picture of work in progress (a sampler's latest step); the next run's images replace it."""
        self._show_mode(False)
        self.view.item.setPixmap(QPixmap.fromImage(image))
        self.view.scene().setSceneRect(self.view.item.boundingRect())
        if self.view.fitting:
            self.view.fit()
        self.caption.setText(caption)
        self.caption.setToolTip("")
        self.inpaint_button.setEnabled(False)  # a preview has no file

    def step(self, delta: int) -> None:
        if self.paths and not self.comparing:
            self.index = (self.index + delta) % len(self.paths)
            self._show()

    def _show(self) -> None:
        if not self.paths:
            self.view.item.setPixmap(QPixmap())
            self._update_buttons()
            return
        path = self.paths[self.index]
        pixmap = QPixmap(path)
        self.view.item.setPixmap(pixmap)
        self.view.scene().setSceneRect(self.view.item.boundingRect())
        if self.view.fitting:
            self.view.fit()
        count = f"{self.index + 1}/{len(self.paths)}  " if len(self.paths) > 1 else ""
        self.caption.setText(f"{count}{Path(path).name} — {pixmap.width()}×{pixmap.height()}")
        self.caption.setToolTip(path)
        self._update_buttons()

    @property
    def current_path(self) -> str | None:
        return self.paths[self.index] if self.paths else None

    def _inpaint(self) -> None:
        if self.current_path is not None and not self.comparing:
            self.inpaint_requested.emit(self.current_path)

    # -- A/B compare -------------------------------------------------------------------------------
    @property
    def comparing(self) -> bool:
        return self.view.comparing

    def set_compare(self, on: bool, a: int | None = None, b: int | None = None) -> None:
        """Compare picture ``a`` with ``b`` (indexes into ``paths``; default: the current one and the next)."""
        on = on and len(self.paths) >= 2
        if on:
            names = [f"{i + 1}. {Path(p).name}" for i, p in enumerate(self.paths)]
            for combo, chosen in ((self.a_combo, self.index if a is None else a),
                                  (self.b_combo, (self.index + 1) % len(self.paths) if b is None else b)):
                combo.clear()
                combo.addItems(names)
                combo.setCurrentIndex(chosen % len(self.paths))
        self._show_mode(on)
        if on:
            self.view.compare.set_split(0.5)
            self._show_compare()
        else:
            self._show()

    def _show_mode(self, comparing: bool) -> None:
        self.compare_button.setChecked(comparing)
        self.compare_row.setVisible(comparing)
        self.view.item.setVisible(not comparing)
        self.view.compare.setVisible(comparing)
        self._update_buttons()

    def _compare_toggled(self) -> None:
        self.set_compare(self.compare_button.isChecked())

    def _show_compare(self) -> None:
        a_path, b_path = self.paths[self.a_combo.currentIndex()], self.paths[self.b_combo.currentIndex()]
        a, b = QPixmap(a_path), QPixmap(b_path)
        self.view.compare.set_pictures(a, b)
        self.view.scene().setSceneRect(self.view.compare.boundingRect())
        if self.view.fitting:
            self.view.fit()
        note = "" if a.size() == b.size() else f" (B is {b.width()}×{b.height()}, stretched to A's size)"
        self.caption.setText(f"A: {Path(a_path).name} | B: {Path(b_path).name}{note} — drag the line to compare")
        self.caption.setToolTip(f"A: {a_path}\nB: {b_path}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        several = len(self.paths) > 1
        self.prev_button.setEnabled(several and not self.comparing)
        self.next_button.setEnabled(several and not self.comparing)
        self.compare_button.setEnabled(several)
        for button in (self.fit_button, self.one_button):
            button.setEnabled(bool(self.paths))
        self.inpaint_button.setEnabled(bool(self.paths) and not self.comparing)
