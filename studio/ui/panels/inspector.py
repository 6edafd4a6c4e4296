"""The inspector: everything about the selected node in one readable column.

A node on the canvas shows its widgets small, and long values elided; the inspector shows the
node's type, what it does, each input at full width (wired ones say where from), and what the
last run did to it. Edits go through Document commands, so they undo like canvas edits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core import document_events as dev
from studio.core import layout
from studio.core.document import Document
from studio.core.validate import node_label
from studio.ui.canvas import node_geometry as ng
from studio.ui.panels.input_editors import InputEditor, choose_editor, make_editor
from studio.ui.panels.run_log import NodeRunLog

EMPTY_TEXT = "Select a node to see what it does and edit its inputs here."


class Inspector(QWidget):
    """Shows the one selected node of the window's current document."""

    def __init__(self, window: QMainWindow, run_log: NodeRunLog, parent: QWidget | None = None):
        super().__init__(parent)
        self.window_ = window
        self.run_log = run_log
        self.document: Document | None = None
        self.node_id: str | None = None
        self.editors: dict[str, InputEditor] = {}
        #: The widget shown for each input: its editor, or a label saying where it is wired from.
        self.rows: dict[str, QWidget] = {}
        self._scene: Any = None
        self._unsubscribe: Any = None
        #: Bumped when the form is rebuilt: a replaced editor losing the focus then commits nothing.
        self._generation = 0

        self.placeholder = QLabel(EMPTY_TEXT, self)
        self.placeholder.setWordWrap(True)
        self.title_edit = QLineEdit(self)
        self.title_edit.setToolTip("The node's title on the canvas (empty: the node type's name)")
        self.title_edit.editingFinished.connect(self._commit_title)
        self.type_label = QLabel(self)
        self.type_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.description_label = QLabel(self)
        self.description_label.setWordWrap(True)
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.form_host = QWidget(self)
        self.form = QFormLayout(self.form_host)
        self.form.setContentsMargins(0, 6, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        content = QWidget(self)
        column = QVBoxLayout(content)
        column.setContentsMargins(8, 8, 8, 8)
        for widget in (self.placeholder, self.title_edit, self.type_label, self.description_label, self.status_label):
            column.addWidget(widget)
        line = QFrame(content)
        line.setFrameShape(QFrame.Shape.HLine)
        column.addWidget(line)
        self._details = [self.title_edit, self.type_label, self.description_label, self.status_label, line, self.form_host]
        column.addWidget(self.form_host)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        run_log.changed.connect(self._on_run_log)
        window.document_changed.connect(lambda _doc: self.follow())
        self.follow()

    # -- following the window ----------------------------------------------------------------------
    def follow(self) -> None:
        """Watch the window's current document and its canvas selection."""
        self._stop_following()
        self.document = self.window_.document
        self._scene = self.window_.scene
        self._scene.selectionChanged.connect(self._selection_changed)
        self._unsubscribe = self.document.subscribe(self._on_document_event)
        self._selection_changed()

    def _stop_following(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._scene is not None:
            try:
                self._scene.selectionChanged.disconnect(self._selection_changed)
            except (RuntimeError, TypeError):  # the scene is already gone
                pass
            self._scene = None

    def _selection_changed(self) -> None:
        try:
            selected = self._scene.selected_node_ids() if self._scene is not None else []
        except RuntimeError:
            selected = []
        self.show_node(selected[0] if len(selected) == 1 else None, len(selected))

    # -- showing a node ----------------------------------------------------------------------------
    def show_node(self, node_id: str | None, selected: int = 1, commit: bool = True) -> None:
        """Show ``node_id`` (None: nothing). ``commit`` first applies typing left in the form; not
        when the document itself asked for the refresh, as it is in the middle of a change then."""
        if commit:
            self.commit_pending()
        doc = self.document
        if doc is None or node_id not in doc.graph.nodes:
            node_id = None
        self.node_id = node_id
        self._clear_form()
        for widget in self._details:
            widget.setVisible(node_id is not None)
        self.placeholder.setVisible(node_id is None)
        if node_id is None:
            self.placeholder.setText(f"{selected} nodes selected. {EMPTY_TEXT}" if selected > 1 else EMPTY_TEXT)
            return
        assert doc is not None
        node = doc.graph.nodes[node_id]
        spec = doc.spec(node_id)
        self.title_edit.setText(node.title or "")
        self.title_edit.setPlaceholderText(ng.node_title(node, spec) if not node.title else "")
        if spec is None:
            self.type_label.setText(f"Type: {node.type} (not installed)")
            self.description_label.setText(f"{self.explain_missing(doc, node.type)}. Until then the node is kept as it is "
                                           "and saved unchanged.")
        else:
            pack = f" — from {spec.pack}" if spec.pack else ""
            self.type_label.setText(f"Type: {spec.type} · {spec.category}{pack}")
            self.description_label.setText(spec.description or "No description.")
        self._show_status()
        self._build_form()

    def explain_missing(self, doc: Document, node_type: str) -> str:
        """Which plugin provides a placeholder's type and what to do (enable, install …), in words."""
        manager = getattr(self.window_, "plugins", None)
        known = doc.workflow.meta.get("plugins")
        try:
            if manager is not None:
                return manager.explain_missing(node_type, known if isinstance(known, dict) else None)
            if doc.registry is not None:
                return doc.registry.explain_missing(node_type)
        except Exception:  # an explanation is a courtesy: the inspector must still show the node
            pass
        return f"The node type {node_type} is not installed"

    def _clear_form(self) -> None:
        self._generation += 1
        # Taken out and deleted later, not now: this may run inside a signal of the widget going away.
        while self.form.rowCount():
            row = self.form.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                widget = item.widget() if item is not None else None
                if widget is not None:
                    widget.hide()
                    widget.deleteLater()
        self.editors.clear()
        self.rows.clear()

    def _build_form(self) -> None:
        doc, node_id = self.document, self.node_id
        assert doc is not None and node_id is not None
        node = doc.graph.nodes[node_id]
        spec = doc.spec(node_id)
        host = self.form_host
        if spec is None:
            for name, value in node.inputs.items():
                self._add_row(name, QLabel(repr(value), host))
            return
        converted = layout.shown_as_socket(doc.ui, node_id)
        for inp in spec.inputs:
            link = doc.graph.link_into(node_id, inp.name)
            kind = ng.widget_kind(inp)
            if link is not None:
                source = doc.graph.nodes.get(link.from_node)
                source_spec = doc.spec(link.from_node)
                known = source_spec is not None and link.from_output < len(source_spec.outputs)
                output = source_spec.outputs[link.from_output].name if known else f"output {link.from_output}"
                where = node_label(source, source_spec) if source is not None else f"node {link.from_node}"
                label = QLabel(f"← linked from {where} · {output}", host)
                label.setWordWrap(True)
                label.setEnabled(False)
                self._add_row(inp.name, label, inp.label)
            elif kind is None or inp.name in converted:
                text = "a socket, not connected" + ("" if inp.required else " (optional)")
                label = QLabel(text, host)
                label.setEnabled(False)
                self._add_row(inp.name, label, inp.label)
            else:
                editor = make_editor(inp, kind, self._committer(node_id, inp.name), self._complain, host)
                editor.set_value(node.inputs.get(inp.name, inp.default if inp.has_default else None))
                self.editors[inp.name] = editor
                self._add_row(inp.name, editor.widget, inp.label)
                if inp.name in layout.SEED_INPUTS and kind == ng.INT:
                    current = layout.seed_control(doc.ui, node_id, inp.name)
                    combo = choose_editor(list(layout.SEED_CONTROLS), current,
                                          lambda control, name=inp.name: self._set_control(name, control), host)
                    combo.setToolTip("What the seed does after each run")
                    self.form.addRow("control after run", combo)

    def _add_row(self, name: str, widget: QWidget, label: str | None = None) -> None:
        self.rows[name] = widget
        self.form.addRow(label or name, widget)

    def _show_status(self) -> None:
        outcome = self.run_log.outcome(self.document, self.node_id) if self.node_id is not None else None
        self.status_label.setText(f"Last run: {outcome.describe()}" if outcome is not None else "Last run: not run yet")

    # -- edits -------------------------------------------------------------------------------------
    def _committer(self, node_id: str, name: str) -> Callable[[Any], None]:
        generation = self._generation

        def commit(value: Any) -> None:
            if generation == self._generation:
                self._commit(node_id, name, value)

        return commit

    def _commit(self, node_id: str, name: str, value: Any) -> None:
        doc = self.document
        if doc is None or node_id not in doc.graph.nodes:
            return
        doc.seal()
        doc.set_input(node_id, name, value)
        doc.seal()

    def _set_control(self, name: str, control: str) -> None:
        if self.document is not None and self.node_id in self.document.graph.nodes:
            self.document.set_seed_control(self.node_id, name, control)

    def _commit_title(self) -> None:
        doc, node_id = self.document, self.node_id
        if doc is None or node_id not in doc.graph.nodes:
            return
        doc.set_title(node_id, self.title_edit.text())

    def _complain(self, text: str) -> None:
        self.window_.show_message(text)

    def commit_pending(self) -> None:
        """Apply what is being typed (before a run: the run should see what the user sees)."""
        for editor in list(self.editors.values()):
            editor.commit_pending()

    # -- the document changed ------------------------------------------------------------------
    def _on_document_event(self, event: dev.DocumentEvent) -> None:
        node_id = self.node_id
        if node_id is None:
            return
        if isinstance(event, dev.InputChanged) and event.node_id == node_id:
            editor = self.editors.get(event.name)
            if editor is not None and self.document is not None:
                spec = self.document.spec(node_id)
                inp = spec.input_map.get(event.name) if spec is not None else None
                default = inp.default if inp is not None and inp.has_default else None
                editor.set_value(self.document.graph.nodes[node_id].inputs.get(event.name, default))
        elif isinstance(event, dev.NodeRemoved) and event.node_id == node_id:
            self.show_node(None, 0, commit=False)
        elif isinstance(event, (dev.LinkAdded, dev.LinkRemoved)) and event.link.to_node == node_id:
            self.show_node(node_id, commit=False)
        elif isinstance(event, dev.NodeChanged) and event.node_id == node_id:
            if event.what == dev.TITLE:
                node = self.document.graph.nodes[node_id] if self.document is not None else None
                if node is not None and not self.title_edit.hasFocus():
                    self.title_edit.setText(node.title or "")
            elif event.what in (dev.SOCKETS, dev.CONTROLS):
                self.show_node(node_id, commit=False)

    def _on_run_log(self, document: object) -> None:
        if document is self.document and self.node_id is not None:
            self._show_status()
