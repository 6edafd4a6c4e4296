"""Listening to the mouse on the canvas of the tab shown now, for features that add clicks to
nodes without changing the scene's own event handling (Load Image's buttons, its picture)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow, QWidget


class CanvasViewportFilter(QObject):
    """An event filter that follows the window's current canvas viewport across tab switches;
    subclasses implement ``eventFilter``."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window_ = window
        self._viewport: QWidget | None = None
        window.document_changed.connect(lambda _doc: self._watch_view())  # type: ignore[attr-defined]
        self._watch_view()

    def _watch_view(self) -> None:
        viewport = self.window_.view.viewport()  # type: ignore[attr-defined]
        if viewport is not self._viewport:
            if self._viewport is not None:
                try:
                    self._viewport.removeEventFilter(self)
                except RuntimeError:  # the tab's view is already gone
                    pass
            viewport.installEventFilter(self)
            self._viewport = viewport
