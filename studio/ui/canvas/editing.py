"""Edits on the canvas selection (delete, copy, paste, duplicate, group, mute …) as document calls.

Menus, shortcuts and the context menu all come here, so each edit is written once and is always
one undo step.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QGuiApplication

from studio.core.clipboard import ClipboardError
from studio.core.document import Document
from studio.core.graph import NodeMode
from studio.ui.canvas.scene import CanvasScene
from studio.ui.canvas.view import CanvasView

GROUP_MARGIN = 30.0


class CanvasEditing:
    """What the Edit menu does to the current canvas."""

    def __init__(self, view: CanvasView):
        self.view = view

    @property
    def scene(self) -> CanvasScene:
        """The view's scene now (opening a file gives the view a new one)."""
        return self.view.canvas

    @property
    def document(self) -> Document:
        return self.view.canvas.document

    def _targets(self) -> list[str]:
        return self.scene.selected_node_ids()

    def delete(self) -> None:
        scene = self.scene
        self.document.remove(scene.selected_node_ids(), scene.selected_group_ids(), scene.selected_note_ids())

    def copy(self) -> bool:
        scene = self.scene
        nodes, groups, notes = scene.selected_node_ids(), scene.selected_group_ids(), scene.selected_note_ids()
        if not (nodes or groups or notes):
            scene.notify("Nothing selected to copy.")
            return False
        QGuiApplication.clipboard().setText(self.document.copy(nodes, groups, notes))
        count = len(nodes)
        scene.notify(f"Copied {count} node{'s' if count != 1 else ''}.")
        return True

    def cut(self) -> None:
        if self.copy():
            with self.document.macro("Cut"):
                self.delete()

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        scene = self.scene
        if not text.strip():
            scene.notify("The clipboard is empty.")
            return
        at = self.view.cursor_scene_pos()
        try:
            pasted = self.document.paste(text, at=(at.x(), at.y()))
        except ClipboardError as exc:
            scene.notify(f"Cannot paste: {exc}")
            return
        scene.select(pasted.nodes, pasted.groups, pasted.notes)
        if pasted.warnings:
            scene.notify("; ".join(pasted.warnings))

    def duplicate(self) -> None:
        scene = self.scene
        nodes, groups, notes = scene.selected_node_ids(), scene.selected_group_ids(), scene.selected_note_ids()
        if nodes or groups or notes:
            pasted = self.document.duplicate(nodes, groups, notes)
            scene.select(pasted.nodes, pasted.groups, pasted.notes)

    def select_all(self) -> None:
        scene = self.scene
        scene.select(scene.nodes, scene.groups, scene.notes)

    def toggle_mode(self, mode: NodeMode) -> None:
        """Mute or bypass the selection; if all of it already is, back to normal."""
        ids = self._targets()
        if not ids:
            return
        graph = self.document.graph
        already = all(graph.nodes[n].mode is mode for n in ids)
        self.document.set_mode(ids, NodeMode.NORMAL if already else mode)

    def toggle_collapsed(self) -> None:
        ids = self._targets()
        if ids:
            collapsed = all(self.scene.nodes[n].geo.collapsed for n in ids)
            self.document.set_collapsed(ids, not collapsed)

    def rename(self) -> None:
        scene = self.scene
        if len(scene.selected_node_ids()) == 1:
            scene.rename_node(scene.selected_node_ids()[0])
        elif len(scene.selected_group_ids()) == 1:
            scene.rename_group(scene.selected_group_ids()[0])
        elif len(scene.selected_note_ids()) == 1:
            scene.edit_note(scene.selected_note_ids()[0])

    def set_color(self, colour: str | None) -> None:
        scene = self.scene
        with self.document.macro("Colour"):
            self.document.set_color(scene.selected_node_ids(), colour)
            for group_id in scene.selected_group_ids():
                self.document.change_group(group_id, color=colour)
            for note_id in scene.selected_note_ids():
                self.document.change_note(note_id, color=colour)

    def group_selection(self) -> None:
        """A frame around the selected nodes (or an empty one at the cursor), named at once."""
        scene = self.scene
        ids = scene.selected_node_ids()
        if ids:
            rect = QRectF()
            for node_id in ids:
                item = scene.nodes[node_id]
                rect = rect.united(item.mapRectToScene(item.geo.rect))
            rect = rect.adjusted(-GROUP_MARGIN, -GROUP_MARGIN - 30, GROUP_MARGIN, GROUP_MARGIN)
        else:
            at = self.view.cursor_scene_pos()
            rect = QRectF(at.x(), at.y(), 400, 300)
        group_id = self.document.add_group("Group", (rect.x(), rect.y(), rect.width(), rect.height()))
        scene.select(groups=[group_id])
        scene.rename_group(group_id)

    def add_note(self) -> None:
        at = self.view.cursor_scene_pos()
        note_id = self.document.add_note("", (at.x(), at.y()))
        self.scene.select(notes=[note_id])
        self.scene.edit_note(note_id)

    def align(self, edge: str) -> None:
        ids = self._targets()
        if len(ids) > 1:
            self.document.align(ids, edge, self.scene.node_sizes(ids))
