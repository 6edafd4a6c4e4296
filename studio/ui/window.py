"""The main window: the canvas, menus and shortcuts, files, runs and the image viewer."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from studio.core import document_events as dev
from studio.core import layout
from studio.core.document import Document
from studio.core.errors import NuanceError, Problem
from studio.core.graph import Graph, NodeMode
from studio.core.registry import NodeRegistry
from studio.core.resources import resource_path
from studio.core.validate import node_label
from studio.core.workflow import FORMAT, Workflow, load_workflow, save_workflow
from studio.engine import events as eev
from studio.engine.executor import RunResult
from studio.ui.canvas import context_menu
from studio.ui.canvas.editing import CanvasEditing
from studio.ui.canvas.node_item import RunState
from studio.ui.canvas.scene import CanvasScene
from studio.ui.canvas.view import CanvasView
from studio.ui.runs import RunController, images_of, preview_image
from studio.ui.viewer import ImageViewer

APP_NAME = "Nuance Studio"
FILE_FILTER = "Workflows (*.json);;All files (*)"
MESSAGE_MS = 10_000


class MainWindow(QMainWindow):
    """One window editing one workflow at a time."""

    #: The workflow shown changed (another file, a new one): panels follow ``self.document``.
    document_changed = Signal(object)

    def __init__(self, registry: NodeRegistry, parent: QWidget | None = None):
        super().__init__(parent)
        self.registry = registry
        self.file_path: Path | None = None
        self._example = False
        self.document = Document(Workflow(Graph()), registry)
        self.scene = CanvasScene(self.document, parent=self)
        self.view = CanvasView(self.scene, self)
        self.editing = CanvasEditing(self.view)
        self.view.context_menu = lambda scene_pos, global_pos: context_menu.show(self.editing, scene_pos, global_pos)
        self.setCentralWidget(self.view)
        self.viewer = ImageViewer(self)
        self.viewer_dock = QDockWidget("Images", self)
        self.viewer_dock.setObjectName("ImagesDock")
        self.viewer_dock.setWidget(self.viewer)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.viewer_dock)
        self.resizeDocks([self.viewer_dock], [320], Qt.Orientation.Horizontal)
        self.runs = RunController(registry, self)
        self.runs.event.connect(self._on_engine_event)
        self.runs.finished.connect(self._on_run_finished)
        self.runs.problems.connect(self._on_problems)
        self.zoom_label = QLabel("100%")
        self.run_label = QLabel("")
        self.statusBar().addPermanentWidget(self.run_label)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.view.zoomed.connect(lambda zoom: self.zoom_label.setText(f"{zoom:.0%}"))
        self.actions_by_name: dict[str, QAction] = {}
        self._watching = False
        self._build_actions()
        self._watch(self.document, self.scene)
        self.resize(1400, 860)
        self._update_title()

    # -- documents -----------------------------------------------------------------------------
    def set_document(self, document: Document, file_path: Path | None, example: bool = False) -> None:
        """Show ``document`` in the canvas (the previous one is dropped: ask first, see maybe_save)."""
        self.runs.cancel()
        self.view.editor.cancel()
        self._unwatch()
        self.scene.close()
        old_scene = self.scene
        self.document = document
        self.file_path = file_path
        self._example = example
        self.scene = CanvasScene(document, parent=self)
        self.view.setScene(self.scene)
        self.scene.host = self.view
        old_scene.deleteLater()
        self._watch(document, self.scene)
        self.viewer.show_images([])
        self._update_title()
        self._update_history_actions()
        self.view.fit()
        self.document_changed.emit(document)

    def _watch(self, document: Document, scene: CanvasScene) -> None:
        self._doc_unsubscribe = document.subscribe(self._on_document_event)
        scene.message.connect(self.show_message)
        self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._doc_unsubscribe()
            self.scene.message.disconnect(self.show_message)

    def _on_document_event(self, event: dev.DocumentEvent) -> None:
        if isinstance(event, dev.DirtyChanged):
            self.setWindowModified(event.dirty)
        elif isinstance(event, dev.HistoryChanged):
            self._update_history_actions()

    def _update_title(self) -> None:
        workflow = self.document.workflow
        if self.file_path is not None:
            name = self.file_path.name
        else:
            name = str(workflow.meta.get("name") or "Untitled")
            if self._example:
                name += " (example)"
        self.setWindowTitle(f"{name}[*] — {APP_NAME}")
        self.setWindowModified(self.document.dirty)

    def _update_history_actions(self) -> None:
        undo, redo = self.actions_by_name["undo"], self.actions_by_name["redo"]
        undo.setEnabled(self.document.can_undo)
        redo.setEnabled(self.document.can_redo)
        undo.setText(f"Undo {self.document.undo_text}".rstrip())
        redo.setText(f"Redo {self.document.redo_text}".rstrip())

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, MESSAGE_MS)

    # -- files -----------------------------------------------------------------------------------
    def new_document(self) -> None:
        if self.maybe_save():
            self.set_document(Document(Workflow(Graph()), self.registry), None)

    def open_file(self, path: str | Path | None = None) -> bool:
        """Open a workflow (ours or a ComfyUI API prompt); False when cancelled or unreadable."""
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Open workflow", self._dialog_dir(), FILE_FILTER)
            if not chosen:
                return False
            path = chosen
        if not self.maybe_save():
            return False
        try:
            workflow = load_workflow(path, self.registry)
        except NuanceError as exc:
            self.warn("Cannot open the workflow", str(exc))
            return False
        # Only our own format is written back to the file it came from; a ComfyUI prompt is saved anew.
        file_path = Path(path).resolve() if workflow.source_format == FORMAT else None
        self.set_document(Document(workflow, self.registry), file_path)
        notes = list(workflow.warnings)
        if workflow.placeholders:
            notes.append(f"{len(workflow.placeholders)} node(s) of types that are not installed are kept as placeholders")
        self.show_message("; ".join(notes) if notes else f"Opened {Path(path).name}")
        return True

    def open_example(self, name: str) -> bool:
        """A bundled example, opened as an untitled copy: saving never overwrites the bundle."""
        path = resource_path("workflows", f"{name}.json")
        try:
            workflow = load_workflow(path, self.registry)
        except NuanceError as exc:
            self.warn("Cannot open the example", str(exc))
            return False
        self.set_document(Document(workflow, self.registry), None, example=True)
        return True

    def save(self) -> bool:
        if self.file_path is None:
            return self.save_as()
        return self._write(self.file_path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            suggested = str(Path(self._dialog_dir()) / f"{self.document.workflow.meta.get('name') or 'workflow'}.json")
            chosen, _ = QFileDialog.getSaveFileName(self, "Save workflow as", suggested, FILE_FILTER)
            if not chosen:
                return False
            path = chosen
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".json")
        return self._write(target)

    def _write(self, target: Path) -> bool:
        try:
            save_workflow(self.document.workflow, target)
        except OSError as exc:
            self.warn("Cannot save the workflow", f"{target}: {exc.strerror or exc}")
            return False
        self.file_path = target.resolve()
        self._example = False
        self.document.set_clean()
        self._update_title()
        self.show_message(f"Saved {target}")
        return True

    def _dialog_dir(self) -> str:
        return str(self.file_path.parent) if self.file_path is not None else str(Path.home())

    def maybe_save(self) -> bool:
        """Before the document is dropped: True when it may go (saved, discarded or unchanged)."""
        if not self.document.dirty:
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def ask_unsaved(self) -> str:
        """Ask what to do with unsaved changes: "save", "discard" or "cancel"."""
        name = self.file_path.name if self.file_path is not None else "this workflow"
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self, APP_NAME, f"Save the changes to {name}?",
                                      buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.runs.shutdown()
        self._unwatch()
        self.scene.close()
        event.accept()

    # -- runs ----------------------------------------------------------------------------------
    def queue_run(self) -> None:
        """Queue a run of the graph as it is now; seeds then move on as their controls say."""
        self.view.editor.commit()
        self.run_label.setText("Queued…")
        handle = self.runs.queue(self.document.workflow, tag=self.document)
        if handle is None:
            self.run_label.setText("")
            return
        self._advance_seeds()

    def cancel_run(self) -> None:
        if self.runs.cancel():
            self.show_message("Cancelling…")

    def _advance_seeds(self) -> None:
        doc = self.document
        nodes = doc.ui.get(layout.NODES)
        if not isinstance(nodes, dict):
            return
        changes: list[tuple[str, str, int]] = []
        for node_id, entry in nodes.items():
            controls = entry.get("controls") if isinstance(entry, dict) else None
            spec = doc.spec(node_id)
            if not isinstance(controls, dict) or spec is None or node_id not in doc.graph.nodes:
                continue
            for name, control in controls.items():
                inp = spec.input_map.get(name)
                if inp is None or doc.graph.link_into(node_id, name) is not None:
                    continue
                low = int(inp.min) if inp.min is not None else 0
                high = int(inp.max) if inp.max is not None else 2**32 - 1
                value = doc.graph.nodes[node_id].inputs.get(name, inp.default)
                value = value if isinstance(value, int) and not isinstance(value, bool) else low
                if control == "increment":
                    changes.append((node_id, name, value + 1 if value < high else low))
                elif control == "randomize":
                    changes.append((node_id, name, random.randint(low, min(high, 2**53))))
        if changes:
            with doc.macro("Seeds after run"):
                for node_id, name, value in changes:
                    doc.set_input(node_id, name, value)
            doc.seal()

    def _on_engine_event(self, tag: object, event: eev.Event) -> None:
        if tag is not self.document:
            return  # a run of a workflow that is no longer open
        scene = self.scene
        if isinstance(event, eev.RunStarted):
            scene.clear_run_states()
            for node_id in event.node_ids:
                scene.set_run_state(node_id, RunState("queued"))
            self.run_label.setText("Running…")
        elif isinstance(event, eev.NodeStarted):
            scene.set_run_state(event.node_id, RunState("running"))
            self.run_label.setText(f"Running {self._label(event.node_id)}")
        elif isinstance(event, eev.NodeProgress):
            fraction = event.value / event.total if event.total else None
            scene.set_run_state(event.node_id, RunState("running", progress=fraction))
            total = f"/{event.total:g}" if event.total else ""
            self.run_label.setText(f"{self._label(event.node_id)} {event.value:g}{total}")
            if event.preview is not None:
                image = preview_image(event.preview)
                if image is not None:
                    self.viewer.show_preview(image, f"{self._label(event.node_id)}: step {event.value:g}{total}")
        elif isinstance(event, eev.NodeCached):
            scene.set_run_state(event.node_id, RunState("cached"))
        elif isinstance(event, eev.NodeFinished):
            scene.set_run_state(event.node_id, RunState("done", seconds=event.seconds))
            self._show_node_output(event.node_id, event.ui)
        elif isinstance(event, eev.NodeFailed):
            scene.set_run_state(event.node_id, RunState("failed", message=event.message))
            self.show_message(f"{self._label(event.node_id)} (node {event.node_id}) failed: {event.message}")
        elif isinstance(event, eev.NodeSkipped):
            quiet = event.reason in ("muted", "bypassed")
            scene.set_run_state(event.node_id, RunState("" if quiet else "skipped", message=event.reason))
        elif isinstance(event, eev.RunCancelled):
            self.run_label.setText("")
            self.show_message(f"Run cancelled after {event.seconds:.1f} s")
            for item in scene.nodes.values():
                if item.run.status in ("queued", "running"):
                    item.set_run_state(RunState())

    def _show_node_output(self, node_id: str, ui: dict[str, Any]) -> None:
        text = ui.get("text")
        if isinstance(text, str) and not ui.get("images"):
            self.scene.set_output_text(node_id, text)

    def _on_run_finished(self, tag: object, result: RunResult | None, error: str) -> None:
        if tag is not self.document:
            return
        self.run_label.setText("")
        if result is None:
            if error:
                self.show_message(f"Run not done: {error}")
            return
        for node_id, record in result.nodes.items():
            if record.ui:
                self._show_node_output(node_id, record.ui)
        images = images_of(result)
        if images:
            self.viewer.show_images(images)
        if result.status == "cancelled":
            return
        counts = {s: result.count(s) for s in ("executed", "cached", "failed")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        if result.ok:
            self.show_message(f"Run finished in {result.seconds:.2f} s ({summary})")
        else:
            first = result.failures[0] if result.failures else None
            where = f": {self._label(first.node_id)} (node {first.node_id}): {first.error}" if first else ""
            self.show_message(f"Run failed{where}")

    def _on_problems(self, problems: list[Problem]) -> None:
        self.scene.clear_run_states()
        for problem in problems:
            if problem.node_id is not None:
                self.scene.set_run_state(problem.node_id, RunState("failed", message=str(problem)))
        first = problems[0] if problems else None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.show_message(f"The graph cannot run: {first}{more}" if first else "The graph cannot run")

    def _label(self, node_id: str) -> str:
        node = self.document.graph.nodes.get(node_id)
        return node_label(node, self.document.spec(node_id)) if node is not None else f"node {node_id}"

    # -- actions -------------------------------------------------------------------------------
    def _action(self, name: str, text: str, slot: Callable[[], Any], shortcuts: tuple[str | QKeySequence, ...] = (),
                canvas: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        if canvas:
            self.view.add_canvas_action(action)
        else:
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)
        self.actions_by_name[name] = action
        return action

    def _build_actions(self) -> None:
        ed = self.editing
        std = QKeySequence.StandardKey
        a = self._action
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(a("new", "&New", self.new_document, (std.New,)))
        file_menu.addAction(a("open", "&Open…", self.open_file, (std.Open,)))
        file_menu.addAction(a("save", "&Save", self.save, (std.Save,)))
        file_menu.addAction(a("save_as", "Save &As…", self.save_as, ("Ctrl+Shift+S",)))
        file_menu.addSeparator()
        file_menu.addAction(a("example", "Open the txt2img &example", lambda: self.maybe_save() and self.open_example("txt2img")))
        file_menu.addSeparator()
        file_menu.addAction(a("quit", "&Quit", self.close, (std.Quit,)))

        edit = menus.addMenu("&Edit")
        edit.addAction(a("undo", "Undo", self.undo, ("Ctrl+Z",)))
        edit.addAction(a("redo", "Redo", self.redo, ("Ctrl+Shift+Z", "Ctrl+Y")))
        edit.addSeparator()
        edit.addAction(a("cut", "Cu&t", ed.cut, ("Ctrl+X",), canvas=True))
        edit.addAction(a("copy", "&Copy", ed.copy, ("Ctrl+C",), canvas=True))
        edit.addAction(a("paste", "&Paste", ed.paste, ("Ctrl+V",), canvas=True))
        edit.addAction(a("duplicate", "&Duplicate", ed.duplicate, ("Ctrl+D",), canvas=True))
        edit.addAction(a("delete", "De&lete", ed.delete, ("Delete", "Backspace"), canvas=True))
        edit.addAction(a("select_all", "Select &all", ed.select_all, ("Ctrl+A",), canvas=True))
        edit.addSeparator()
        edit.addAction(a("rename", "&Rename…", ed.rename, ("F2",), canvas=True))
        edit.addAction(a("collapse", "Collapse / expand", ed.toggle_collapsed, ("Alt+C",), canvas=True))
        edit.addAction(a("mute", "&Mute", lambda: ed.toggle_mode(NodeMode.MUTED), ("Ctrl+M",), canvas=True))
        edit.addAction(a("bypass", "&Bypass", lambda: ed.toggle_mode(NodeMode.BYPASSED), ("Ctrl+B",), canvas=True))
        edit.addAction(a("group", "&Group selection", ed.group_selection, ("Ctrl+G",), canvas=True))
        edit.addAction(a("note", "Add &note", ed.add_note, ("Ctrl+Shift+N",), canvas=True))
        align = edit.addMenu("Ali&gn")
        for edge, text in (("left", "Left edges"), ("right", "Right edges"), ("top", "Top edges"),
                           ("bottom", "Bottom edges"), ("hcenter", "Centres, vertically"),
                           ("vcenter", "Centres, horizontally")):
            align.addAction(a(f"align_{edge}", text, lambda e=edge: ed.align(e)))

        view = menus.addMenu("&View")
        view.addAction(a("fit", "&Fit to view", lambda: self.view.fit(False), ("Home", "F"), canvas=True))
        view.addAction(a("fit_selection", "Fit to &selection", lambda: self.view.fit(True), ("Shift+F",), canvas=True))
        view.addAction(a("zoom_in", "Zoom &in", lambda: self.view.zoom_by(1.25), (std.ZoomIn,)))
        view.addAction(a("zoom_out", "Zoom &out", lambda: self.view.zoom_by(0.8), (std.ZoomOut,)))
        view.addAction(a("zoom_reset", "Actual size", self.view.reset_zoom, ("Ctrl+0",)))
        view.addSeparator()
        view.addAction(self.viewer_dock.toggleViewAction())

        run = menus.addMenu("&Run")
        run_action = a("run", "&Queue run", self.queue_run, ("Ctrl+Return", "Ctrl+Enter"),
                       tip="Run the graph (Ctrl+Enter); runs queue up while one is going")
        cancel_action = a("cancel", "&Cancel run", self.cancel_run, ("Esc",), tip="Stop the run at its next step (Esc)")
        run.addAction(run_action)
        run.addAction(cancel_action)
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("RunToolbar")
        toolbar.addAction(run_action)
        toolbar.addAction(cancel_action)
        self._update_history_actions()

    def undo(self) -> None:
        self.view.editor.commit()
        self.document.undo()

    def redo(self) -> None:
        self.view.editor.commit()
        self.document.redo()
