"""The image viewer: the pictures the last run made, fitted to the panel or at 1:1."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui import theme


class _ImageView(QGraphicsView):
    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setBackgroundBrush(theme.BACKGROUND)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.fitting = True

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
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self.fitting = False
        self.resetTransform()


class ImageViewer(QWidget):
    """Shows output images; with several, steps through them."""

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
        for button in (self.prev_button, self.next_button, self.fit_button, self.one_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(buttons)
        box.addWidget(self.view, 1)
        box.addWidget(self.caption)
        self._update_buttons()

    def _button(self, text: str, tip: str, slot: Callable[[], Any]) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    def show_images(self, paths: list[str]) -> None:
        """Show these files (the newest run's), starting with the first."""
        self.paths = [p for p in paths if Path(p).is_file()]
        self.index = 0
        self._show()

    def show_preview(self, image: QImage, caption: str) -> None:
        """A live picture of work in progress (a sampler's latest step); the next run's images replace it."""
        self.view.item.setPixmap(QPixmap.fromImage(image))
        self.view.scene().setSceneRect(self.view.item.boundingRect())
        if self.view.fitting:
            self.view.fit()
        self.caption.setText(caption)
        self.caption.setToolTip("")

    def step(self, delta: int) -> None:
        if self.paths:
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

    def _update_buttons(self) -> None:
        several = len(self.paths) > 1
        self.prev_button.setEnabled(several)
        self.next_button.setEnabled(several)
        for button in (self.fit_button, self.one_button):
            button.setEnabled(bool(self.paths))
