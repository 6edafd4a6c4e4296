"""Typing a value, a title or a note in place, over the canvas.

One real widget at a time, placed over the spot being edited, instead of a widget per node: a
graph of hundreds of nodes then costs nothing until the user actually types. Enter (or, for
text boxes, clicking elsewhere) commits; Esc cancels.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QWidget

from studio.ui import theme


def editor_style() -> str:
    """The editor's look in the theme shown now (a style sheet, so it stands out from the node)."""
    return (f"background: {theme.EDITOR_BG.name()}; color: {theme.EDITOR_TEXT.name()}; "
            f"border: 1px solid {theme.ACCENT.name()}; border-radius: 3px; "
            f"selection-background-color: {theme.ACCENT.name()}; selection-color: #ffffff;")


class InlineEditor(QObject):
    """Owns the one editor widget on a canvas view's viewport."""

    def __init__(self, viewport: QWidget):
        super().__init__(viewport)
        self.viewport = viewport
        self.widget: QLineEdit | QPlainTextEdit | None = None
        self._on_commit: Callable[[str], None] | None = None

    @property
    def active(self) -> bool:
        return self.widget is not None

    def open(self, rect: QRect, text: str, multiline: bool, on_commit: Callable[[str], None], zoom: float) -> None:
        self.commit()
        widget: QLineEdit | QPlainTextEdit
        if multiline:
            widget = QPlainTextEdit(self.viewport)
            widget.setPlainText(text)
            widget.selectAll()
        else:
            widget = QLineEdit(self.viewport)
            widget.setText(text)
            widget.selectAll()
        font = QFont(widget.font())
        font.setPointSizeF(max(7.0, min(20.0, 9.0 * zoom)))
        widget.setFont(font)
        widget.setStyleSheet(editor_style())
        widget.setGeometry(rect.adjusted(0, 0, 0, 0) if multiline else rect.adjusted(0, -2, 0, 2))
        widget.installEventFilter(self)
        self.widget = widget
        self._on_commit = on_commit
        widget.show()
        widget.setFocus(Qt.FocusReason.OtherFocusReason)

    def restyle(self) -> None:
        """Follow a theme change while an editor is open."""
        if self.widget is not None:
            self.widget.setStyleSheet(editor_style())

    def text(self) -> str:
        widget = self.widget
        if isinstance(widget, QPlainTextEdit):
            return widget.toPlainText()
        return widget.text() if widget is not None else ""

    def commit(self) -> None:
        """Apply what was typed and close (nothing happens when no editor is open)."""
        if self.widget is None:
            return
        text, on_commit = self.text(), self._on_commit
        self._close()
        if on_commit is not None:
            on_commit(text)

    def cancel(self) -> None:
        self._close()

    def _close(self) -> None:
        widget, self.widget = self.widget, None
        self._on_commit = None
        if widget is not None:
            widget.removeEventFilter(self)
            widget.hide()
            widget.deleteLater()
            self.viewport.parentWidget().setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self.widget:
            return False
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            # Keys the editor needs must not trigger the window's shortcuts (Esc cancels a run, Delete
            # deletes nodes, Ctrl+Enter runs): while typing, they belong to the text.
            event.accept()
            return True
        if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key == Qt.Key.Key_Escape:
                self.cancel()
                return True
            enter = key in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            multiline = isinstance(self.widget, QPlainTextEdit)
            if enter and (not multiline or event.modifiers() & Qt.KeyboardModifier.ControlModifier):
                self.commit()
                return True
        if kind == QEvent.Type.FocusOut:
            self.commit()
        return False
