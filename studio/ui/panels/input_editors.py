"""Editors for one node input in the inspector: the same kinds as the widgets drawn on nodes.

Each editor only shows a value and reports what the user chose; the inspector turns that into a
document command, so an edit here is undone like an edit on the canvas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QPlainTextEdit, QWidget

from studio.core.errors import InputValueError
from studio.core.nodedef import Input
from studio.ui.canvas import node_geometry as ng

#: Called with the new value (already parsed and checked) when the user commits an edit.
Commit = Callable[[Any], None]
#: Called with a message the user should read (a value out of range, say).
Complain = Callable[[str], None]


class InputEditor:
    """A widget editing one input; ``set_value`` follows the document without reporting back."""

    widget: QWidget

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def commit_pending(self) -> None:
        """Apply typing not yet committed (before a run, so it runs with what the user sees)."""


class LineEditor(InputEditor):
    """Numbers and one-line text, committed on Enter or when the field loses the focus."""

    def __init__(self, inp: Input, kind: str, commit: Commit, complain: Complain, parent: QWidget):
        self.inp, self.kind, self._commit, self._complain = inp, kind, commit, complain
        self.widget = self.edit = QLineEdit(parent)
        self.edit.setToolTip(inp.tooltip)
        self._shown = ""
        self.edit.editingFinished.connect(self.commit_pending)

    def set_value(self, value: Any) -> None:
        self._shown = ng.format_value(self.kind, value, self.inp) if value is not None else ""
        if not self.edit.hasFocus() or not self.edit.isModified():
            self.edit.setText(self._shown)
            self.edit.setModified(False)

    def commit_pending(self) -> None:
        if not self.edit.isModified():
            return
        self.edit.setModified(False)
        text = self.edit.text()
        if self.kind == ng.TEXT:
            self._commit(text)
            return
        try:
            value = self.inp.parse_text(text)
        except InputValueError as exc:
            self._complain(f"{self.inp.label}: {exc}")
            self.edit.setText(self._shown)
            return
        self._commit(value)


class _OnFocusOut(QObject):
    """Calls back when the watched widget loses the focus; owned by that widget."""

    def __init__(self, widget: QWidget, callback: Callable[[], None]):
        super().__init__(widget)
        self._callback = callback
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusOut:
            self._callback()
        return False


class TextBoxEditor(InputEditor):
    """Several lines of text (prompts), committed when the box loses the focus."""

    def __init__(self, inp: Input, commit: Commit, parent: QWidget):
        self._commit = commit
        self.widget = self.edit = QPlainTextEdit(parent)
        self.edit.setToolTip(inp.tooltip)
        self.edit.setFixedHeight(90)
        _OnFocusOut(self.edit, self.commit_pending)
        self._shown = ""

    def set_value(self, value: Any) -> None:
        self._shown = "" if value is None else str(value)
        if not self.edit.hasFocus() and self.edit.toPlainText() != self._shown:
            self.edit.setPlainText(self._shown)

    def commit_pending(self) -> None:
        text = self.edit.toPlainText()
        if text != self._shown:
            self._shown = text
            self._commit(text)


class ComboEditor(InputEditor):
    """A choice from a list; a value that is no longer offered (a deleted model) stays visible."""

    def __init__(self, inp: Input, options: list[Any], commit: Commit, parent: QWidget):
        self._commit = commit
        self.options = options
        self.widget = self.combo = QComboBox(parent)
        self.combo.setToolTip(inp.tooltip)
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.activated.connect(self._chosen)

    def set_value(self, value: Any) -> None:
        self.combo.clear()
        for option in self.options:
            self.combo.addItem(str(option), option)
        if value in self.options:
            self.combo.setCurrentIndex(self.options.index(value))
        else:
            shown = "(nothing chosen)" if value in (None, "") else f"{value} (missing)"
            self.combo.insertItem(0, shown, value)
            self.combo.setCurrentIndex(0)

    def _chosen(self, index: int) -> None:
        value = self.combo.itemData(index)
        if value in self.options:
            self._commit(value)


class ToggleEditor(InputEditor):
    def __init__(self, inp: Input, commit: Commit, parent: QWidget):
        self.widget = self.box = QCheckBox(parent)
        self.box.setToolTip(inp.tooltip)
        self.box.clicked.connect(lambda checked: commit(bool(checked)))

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))


def make_editor(inp: Input, kind: str, commit: Commit, complain: Complain, parent: QWidget) -> InputEditor:
    """The editor for a widget of ``kind`` (see :func:`node_geometry.widget_kind`)."""
    if kind == ng.COMBO:
        try:
            options = inp.current_choices() or []
        except Exception as exc:  # a plugin's list must not break the inspector
            complain(f"{inp.label}: its choices could not be listed ({exc})")
            options = []
        return ComboEditor(inp, options, commit, parent)
    if kind == ng.TOGGLE:
        return ToggleEditor(inp, commit, parent)
    if kind == ng.MULTILINE:
        return TextBoxEditor(inp, commit, parent)
    return LineEditor(inp, kind, commit, complain, parent)


def choose_editor(options: list[str], current: str, on_chosen: Callable[[str], None], parent: QWidget) -> QComboBox:
    """A plain combo for settings that are not inputs (a seed's control after each run)."""
    combo = QComboBox(parent)
    combo.addItems(options)
    combo.setCurrentIndex(options.index(current) if current in options else 0)
    combo.activated.connect(lambda index: on_chosen(options[index]))
    combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return combo
