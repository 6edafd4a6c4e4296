"""One open workflow per tab: its document, the scene mirroring it and the view showing it.

Each tab keeps its own view, so switching tabs keeps where each canvas was panned and zoomed,
and a run of one workflow can update its canvas while another is shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.core import document_events as dev
from studio.core.document import Document
from studio.ui.canvas.editing import CanvasEditing
from studio.ui.canvas.scene import CanvasScene
from studio.ui.canvas.view import CanvasView


class WorkflowTab(QWidget):
    """The page of one workflow in the window's tab widget."""

    #: The document became saved or unsaved (the tab's ``*`` and the window title follow).
    dirty_changed = Signal(object)
    #: Something was done, undone or redone in this tab's document.
    history_changed = Signal(object)
    #: A message for the status bar from this tab's canvas (a refused connection's reason, say).
    message = Signal(str)

    def __init__(self, document: Document, file_path: Path | None, example: bool = False,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.document = document
        self.file_path = file_path
        self.example = example
        #: Names this tab's recovery file; stays the same when the tab shows another document.
        self.recovery_key = uuid.uuid4().hex[:12]
        #: Counts changes, so autosave writes a tab again only when it changed since it last wrote.
        self.revision = 0
        self.scene = CanvasScene(document, parent=self)
        self.view = CanvasView(self.scene, self)
        self.editing = CanvasEditing(self.view)
        self.scene.message.connect(self.message)
        self._fit_pending = False
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.view)
        self._unsubscribe: Callable[[], None] | None = document.subscribe(self._on_event)

    @property
    def name(self) -> str:
        """What the tab and the window title call the workflow."""
        if self.file_path is not None:
            return self.file_path.name
        name = str(self.document.workflow.meta.get("name") or "Untitled")
        return f"{name} (example)" if self.example else name

    @property
    def untouched(self) -> bool:
        """Never saved and never edited: opening a file may take its place instead of a new tab."""
        doc = self.document
        return self.file_path is None and not doc.dirty and not doc.can_undo and not doc.can_redo

    def replace(self, document: Document, file_path: Path | None, example: bool = False) -> None:
        """Show another document in this tab (the old one is dropped: the window asked first)."""
        self._stop_listening()
        old = self.scene
        old.close()
        self.document = document
        self.file_path = file_path
        self.example = example
        self.revision += 1
        self.scene = CanvasScene(document, parent=self)
        self.view.set_canvas(self.scene)
        self.scene.message.connect(self.message)
        old.deleteLater()
        self._unsubscribe = document.subscribe(self._on_event)

    def fit_when_shown(self) -> None:
        """Fit the view to the graph now, or when the tab is shown (a hidden one has no size yet)."""
        if self.isVisible():
            self.view.fit()
        else:
            self._fit_pending = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._fit_pending:
            self.view.fit()
            # The window may still settle its layout (docks, toolbars): refit on each resize until
            # the event loop turns, then leave the view to the user.
            QTimer.singleShot(0, self._end_pending_fit)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_pending and self.isVisible():
            self.view.fit()

    def _end_pending_fit(self) -> None:
        self._fit_pending = False

    def shut(self) -> None:
        """Stop mirroring the document and drop the canvas items now (safe to call twice)."""
        self._stop_listening()
        self.view.editor.cancel()
        self.view.minimap.detach()
        self.scene.close()

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: dev.DocumentEvent) -> None:
        if isinstance(event, dev.DirtyChanged):
            self.dirty_changed.emit(self)
        elif isinstance(event, dev.HistoryChanged):
            self.revision += 1
            self.history_changed.emit(self)
