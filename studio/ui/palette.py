"""The node palette: a search box over every installed node (name, category, description).

It floats over the canvas where it was opened; typing filters, arrows move, Enter adds the node
there, Esc or a click elsewhere closes it. A wire dropped on empty canvas opens it restricted to
the nodes that could take that wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio.core.nodedef import NodeSpec
from studio.ui import theme

MAX_SHOWN = 200


def rank(spec: NodeSpec, words: list[str]) -> int | None:
    """How well a node matches the search words (lower is better); None when it does not."""
    name = spec.display_name.lower()
    type_id = spec.type.lower()
    category = spec.category.lower()
    description = spec.description.lower()
    score = 0
    for word in words:
        if name.startswith(word) or type_id.startswith(word):
            continue
        if word in name or word in type_id:
            score += 1
        elif word in category:
            score += 3
        elif word in description:
            score += 6
        else:
            return None
    return score


def search(specs: Iterable[NodeSpec], text: str) -> list[NodeSpec]:
    words = text.lower().split()
    ranked = []
    for spec in specs:
        score = rank(spec, words)
        if score is not None:
            ranked.append((score, spec.category, spec.display_name.lower(), spec))
    ranked.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in ranked]


class NodePalette(QFrame):
    """A searchable list of node types, shown over the canvas."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("NodePalette")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.restyle()
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search nodes…")
        self.list = QListWidget(self)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        self.description.setMinimumHeight(34)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.setSpacing(4)
        box.addWidget(self.search)
        box.addWidget(self.list, 1)
        box.addWidget(self.description)
        self.resize(380, 340)
        self.hide()
        self._specs: list[NodeSpec] = []
        self._on_chosen: Callable[[str], None] | None = None
        self.search.textChanged.connect(self._refill)
        self.search.installEventFilter(self)
        self.list.currentItemChanged.connect(self._show_description)
        self.list.itemClicked.connect(lambda item: self._choose(item))

    def restyle(self) -> None:
        """Take the colours of the theme shown now (a style sheet does not follow the palette)."""
        self.setStyleSheet(
            f"#NodePalette {{ background: {theme.POPUP_BG.name()}; border: 1px solid {theme.POPUP_BORDER.name()};"
            " border-radius: 6px; }"
            f"QLineEdit {{ background: {theme.EDITOR_BG.name()}; color: {theme.EDITOR_TEXT.name()};"
            f" border: 1px solid {theme.ACCENT.name()}; border-radius: 4px; padding: 4px; }}"
            f"QListWidget {{ background: {theme.POPUP_LIST_BG.name()}; color: {theme.NODE_TEXT.name()}; border: none; }}"
            f"QLabel {{ color: {theme.NODE_TEXT_DIM.name()}; }}")

    def open(self, at: QPoint, specs: Iterable[NodeSpec], on_chosen: Callable[[str], None]) -> None:
        """Show at ``at`` (parent coordinates, kept inside the parent) with these node types."""
        self._specs = list(specs)
        self._on_chosen = on_chosen
        parent = self.parentWidget()
        x = max(0, min(at.x(), parent.width() - self.width()))
        y = max(0, min(at.y(), parent.height() - self.height()))
        self.move(x, y)
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self._refill("")
        self.show()
        self.raise_()
        self.search.setFocus(Qt.FocusReason.PopupFocusReason)

    def close_palette(self) -> None:
        self.hide()
        self._on_chosen = None
        parent = self.parentWidget()
        if parent is not None:
            parent.setFocus()

    def _refill(self, text: str) -> None:
        self.list.clear()
        for spec in search(self._specs, text)[:MAX_SHOWN]:
            item = QListWidgetItem(f"{spec.display_name}    ·  {spec.category}")
            item.setData(Qt.ItemDataRole.UserRole, spec.type)
            item.setToolTip(spec.description)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        else:
            self.description.setText("No node matches.")

    def _show_description(self, item: QListWidgetItem | None) -> None:
        self.description.setText(item.toolTip() if item is not None else "")

    def _choose(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        on_chosen = self._on_chosen
        node_type = item.data(Qt.ItemDataRole.UserRole)
        self.close_palette()
        if on_chosen is not None:
            on_chosen(node_type)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search:
            if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                    and event.key() == Qt.Key.Key_Escape:
                event.accept()  # Esc closes the palette; it must not cancel a run
                return True
            if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
                key = event.key()
                if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                    self._choose(self.list.currentItem())
                    return True
                if key == Qt.Key.Key_Escape:
                    self.close_palette()
                    return True
                if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                    row = self.list.currentRow()
                    delta = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 10, Qt.Key.Key_PageUp: -10}[key]
                    self.list.setCurrentRow(max(0, min(self.list.count() - 1, row + delta)))
                    return True
            if event.type() == QEvent.Type.FocusOut and self.isVisible():
                self.close_palette()
        return super().eventFilter(watched, event)
