"""The main window: workflows in tabs, menus and shortcuts, files (recent, dropped, autosaved), runs
and the image viewer."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from studio.core import layout
from studio.core.document import Document
from studio.core.errors import NuanceError, Problem
from studio.core.graph import Graph, NodeMode
from studio.core.png_text import is_png, load_png_workflow
from studio.core.registry import NodeRegistry
from studio.core.resources import resource_path
from studio.core.validate import node_label
from studio.core.workflow import FORMAT, Workflow, load_workflow, save_workflow
from studio.engine import events as eev
from studio.engine.executor import RunResult
from studio.ui import drops, panels, recent, recovery
from studio.ui.canvas import context_menu
from studio.ui.canvas.editing import CanvasEditing
from studio.ui.canvas.node_item import RunState
from studio.ui.canvas.scene import CanvasScene
from studio.ui.canvas.view import CanvasView, local_files
from studio.ui.plugin_gui import PluginGui, placeholder_notes
from studio.ui.runs import RunController, images_of, preview_image
from studio.ui.tabs import WorkflowTab
from studio.ui.viewer import ImageViewer

if TYPE_CHECKING:
    from studio.plugins.manager import PluginManager

APP_NAME = "Nuance Studio"
FILE_FILTER = "Workflows and pictures (*.json *.png);;Workflows (*.json);;Pictures that carry a workflow (*.png);;All files (*)"
SAVE_FILTER = "Workflows (*.json);;All files (*)"
MESSAGE_MS = 10_000


class MainWindow(QMainWindow):
    """The editor window: workflows in tabs, each on its own canvas; menus, files, runs, the viewer.

    ``document``, ``scene``, ``view``, ``editing`` and ``file_path`` always mean the current tab's,
    and ``document_changed`` is emitted whenever that changes (another file, another tab).
    """

    #: The workflow shown changed (another file, a new one, another tab): panels follow ``self.document``.
    document_changed = Signal(object)

    def __init__(self, registry: NodeRegistry, parent: QWidget | None = None, *, plugins: PluginManager | None = None):
        super().__init__(parent)
        if plugins is not None and plugins.registry is not registry:
            raise ValueError("MainWindow: the registry must be the plugin manager's (plugins.registry)")
        self.registry = registry
        #: The plugin manager (None: the nodes were registered by hand, as in most tests).
        self.plugins = plugins
        self.plugin_gui: PluginGui | None = None
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("WorkflowTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.tabBar().setFocusPolicy(Qt.FocusPolicy.NoFocus)  # clicking a tab leaves the keys to its canvas
        self.setCentralWidget(self.tabs)
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
        self.actions_by_name: dict[str, QAction] = {}
        self._canvas_actions: list[QAction] = []
        self._shown_tab: WorkflowTab | None = None
        self.recent = recent.RecentFiles()
        self.autosave = recovery.Autosave(self.workflow_tabs, self)
        self.autosave.failed.connect(self.show_message)
        self._build_actions()
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.tabs.tabCloseRequested.connect(lambda index: self.close_tab(self.tabs.widget(index)))
        self._add_tab(WorkflowTab(Document(Workflow(Graph()), registry), None))
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        self._update_title()
        panels.install(self)
        if plugins is not None:  # after the panels: it refreshes the inspector when plugins change
            self.plugin_gui = PluginGui(self, plugins)
        self.actions_by_name["plugin_manager"].setEnabled(plugins is not None)

    # -- the tab shown ---------------------------------------------------------------------------
    @property
    def tab(self) -> WorkflowTab:
        """The current tab; the names below are its."""
        tab = self.tabs.currentWidget()
        assert isinstance(tab, WorkflowTab)
        return tab

    @property
    def document(self) -> Document:
        return self.tab.document

    @property
    def scene(self) -> CanvasScene:
        return self.tab.scene

    @property
    def view(self) -> CanvasView:
        return self.tab.view

    @property
    def editing(self) -> CanvasEditing:
        return self.tab.editing

    @property
    def file_path(self) -> Path | None:
        return self.tab.file_path

    @file_path.setter
    def file_path(self, value: Path | None) -> None:
        self.tab.file_path = value
        self._refresh_tab(self.tab)

    def workflow_tabs(self) -> list[WorkflowTab]:
        """Every open workflow, in tab order."""
        return [tab for i in range(self.tabs.count()) if isinstance(tab := self.tabs.widget(i), WorkflowTab)]

    def _add_tab(self, tab: WorkflowTab) -> WorkflowTab:
        view = tab.view
        for action in self._canvas_actions:
            view.add_canvas_action(action)
        view.context_menu = lambda scene_pos, global_pos: context_menu.show(tab.editing, scene_pos, global_pos)
        view.files_dropped = lambda paths, scene_pos: drops.drop_files(self, paths, scene_pos)
        view.zoomed.connect(lambda zoom: self.zoom_label.setText(f"{zoom:.0%}") if view is self.view else None)
        view.minimap.set_enabled(self.actions_by_name["minimap"].isChecked())
        tab.message.connect(self.show_message)
        tab.dirty_changed.connect(self._refresh_tab)
        tab.history_changed.connect(lambda changed: self._update_history_actions() if changed is self.tab else None)
        self.tabs.setCurrentIndex(self.tabs.addTab(tab, ""))
        self._refresh_tab(tab)
        return tab

    def _on_tab_changed(self, index: int) -> None:
        if index < 0:
            return
        tab = self.tab
        previous, self._shown_tab = self._shown_tab, tab
        if previous is not None and previous is not tab and self.tabs.indexOf(previous) >= 0:
            previous.view.editor.commit()
        self.zoom_label.setText(f"{tab.view.zoom:.0%}")
        self._update_title()
        self._update_history_actions()
        tab.view.setFocus()
        self.document_changed.emit(tab.document)

    def _refresh_tab(self, tab: WorkflowTab) -> None:
        index = self.tabs.indexOf(tab)
        if index < 0:
            return
        self.tabs.setTabText(index, tab.name.replace("&", "&&") + ("*" if tab.document.dirty else ""))
        self.tabs.setTabToolTip(index, str(tab.file_path) if tab.file_path is not None else tab.name)
        if tab is self.tab:
            self._update_title()

    def _tab_of(self, document: object) -> WorkflowTab | None:
        return next((tab for tab in self.workflow_tabs() if tab.document is document), None)

    # -- documents -----------------------------------------------------------------------------
    def set_document(self, document: Document, file_path: Path | None, example: bool = False) -> None:
        """Show ``document`` in the current tab (the one there is dropped: ask first, see maybe_save)."""
        self.runs.cancel()
        tab = self.tab
        tab.replace(document, file_path, example)
        self.viewer.show_images([])
        self._refresh_tab(tab)
        self._update_history_actions()
        tab.fit_when_shown()
        self.document_changed.emit(document)

    def show_workflow(self, document: Document, file_path: Path | None, example: bool = False) -> WorkflowTab:
        """Show ``document`` in a new tab, or in the current one when that was never touched."""
        if self.tab.untouched:
            self.set_document(document, file_path, example)
            return self.tab
        tab = self._add_tab(WorkflowTab(document, file_path, example))
        tab.fit_when_shown()
        return tab

    def new_tab(self) -> WorkflowTab:
        """An empty workflow in a tab of its own."""
        tab = self._add_tab(WorkflowTab(Document(Workflow(Graph()), self.registry), None))
        tab.view.setFocus()
        return tab

    def close_tab(self, tab: QWidget | None = None) -> bool:
        """Close a tab (the current one by default), asking about its unsaved changes first.
        The last tab is not removed: it is emptied instead, so the window always shows a canvas."""
        tab = self.tab if tab is None else tab
        if not isinstance(tab, WorkflowTab):
            return False
        if tab.document.dirty:
            self.tabs.setCurrentWidget(tab)
            if not self.maybe_save():
                return False
        tab.view.editor.commit()
        self.autosave.forget(tab)
        if self.tabs.count() == 1:
            self.set_document(Document(Workflow(Graph()), self.registry), None)
            return True
        self.tabs.removeTab(self.tabs.indexOf(tab))
        tab.shut()
        tab.deleteLater()
        return True

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.tab.name}[*] — {APP_NAME}")
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
        """Open a workflow (ours, a ComfyUI API prompt, or the one a PNG carries) in a tab of its own;
        False when cancelled or unreadable."""
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Open workflow", self._dialog_dir(), FILE_FILTER)
            if not chosen:
                return False
            path = chosen
        path = Path(path)
        already = next((tab for tab in self.workflow_tabs() if tab.file_path == path.resolve()), None)
        if already is not None:
            self.tabs.setCurrentWidget(already)
            self.show_message(f"{path.name} is open already")
            return True
        picture = path.suffix.lower() == ".png" or is_png(path)
        try:
            workflow = load_png_workflow(path, self.registry) if picture else load_workflow(path, self.registry)
        except NuanceError as exc:
            self.warn("Cannot open the workflow", str(exc))
            return False
        # Only our own workflow files are written back to; a ComfyUI prompt or a picture's workflow is saved anew.
        file_path = path.resolve() if workflow.source_format == FORMAT and not picture else None
        self.show_workflow(Document(workflow, self.registry), file_path)
        self.recent.add(path)
        notes = [*workflow.warnings, *placeholder_notes(self.plugins, workflow)]
        self.show_message("; ".join(notes) if notes else f"Opened {path.name}")
        return True

    def open_recent(self, path: Path) -> bool:
        """Open a file from File > Open Recent; one that is gone leaves the list, with a word why."""
        if not path.is_file():
            self.recent.remove(path)
            self.show_message(f"{path} no longer exists; removed it from the recent files")
            return False
        return self.open_file(path)

    def open_example(self, name: str) -> bool:
        """A bundled example, opened as an untitled copy: saving never overwrites the bundle."""
        path = resource_path("workflows", f"{name}.json")
        try:
            workflow = load_workflow(path, self.registry)
        except NuanceError as exc:
            self.warn("Cannot open the example", str(exc))
            return False
        self.show_workflow(Document(workflow, self.registry), None, example=True)
        notes = placeholder_notes(self.plugins, workflow)
        if notes:
            self.show_message("; ".join(notes))
        return True

    def save(self) -> bool:
        if self.file_path is None:
            return self.save_as()
        return self._write(self.file_path)

    def save_as(self, path: str | Path | None = None) -> bool:
        target = self._json_target(path, "Save workflow as", f"{self.document.workflow.meta.get('name') or 'workflow'}.json")
        return target is not None and self._write(target)

    def _json_target(self, path: str | Path | None, title: str, suggested_name: str) -> Path | None:
        """Where to write a JSON file: ``path``, else what the user picks (None when they cancel);
        ``.json`` is added to a name without an extension."""
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, title, str(Path(self._dialog_dir()) / suggested_name), SAVE_FILTER)
            if not chosen:
                return None
            path = chosen
        target = Path(path)
        return target if target.suffix else target.with_suffix(".json")

    def _write(self, target: Path) -> bool:
        tab = self.tab
        self.record_plugins(tab.document.workflow)
        try:
            save_workflow(tab.document.workflow, target)
        except OSError as exc:
            self.warn("Cannot save the workflow", f"{target}: {exc.strerror or exc}")
            return False
        tab.file_path = target.resolve()
        tab.example = False
        tab.document.set_clean()
        self.autosave.forget(tab)
        self.recent.add(target)
        self._refresh_tab(tab)
        self.show_message(f"Saved {target}")
        return True

    def export_comfy_api(self, path: str | Path | None = None) -> bool:
        """File > Export > ComfyUI API format: the prompt as JSON, baked mask pictures beside it."""
        import json

        from studio.core.comfy_export import build_comfy_export

        stem = self.file_path.stem if self.file_path is not None else (self.document.workflow.meta.get("name") or "workflow")
        target = self._json_target(path, "Export as ComfyUI API format", f"{stem}_api.json")
        if target is None:
            return False
        self.view.editor.commit()  # a value still being typed belongs in the export
        try:
            result = build_comfy_export(self.document.workflow, self.registry, files_dir=target.parent)
            target.write_text(json.dumps(result.prompt, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except NuanceError as exc:
            self.warn("Cannot export to ComfyUI", str(exc))
            return False
        except OSError as exc:
            self.warn("Cannot export to ComfyUI", f"{exc.filename or target}: {exc.strerror or exc}")
            return False
        written = f"Exported {target} (ComfyUI API format)"
        if result.files:
            names = ", ".join(p.name for p in result.files)
            written += f" and the masked picture{'s' if len(result.files) > 1 else ''} {names} beside it: copy " \
                       f"{'them' if len(result.files) > 1 else 'it'} into ComfyUI's input folder"
        left_out = [note for note in result.notes if "left out" in note]
        self.show_message("; ".join([written, *left_out]))
        return True

    def record_plugins(self, workflow: Workflow) -> None:
        """Write which plugins the graph's nodes come from into ``meta.plugins`` (version, where to get
        them), so a machine without one can say what is missing; kept from before for plugins absent here."""
        if self.plugins is None:
            return
        previous = workflow.meta.get("plugins")
        used = self.plugins.used_plugins((node.type for node in workflow.graph.nodes.values()),
                                         previous if isinstance(previous, dict) else None)
        if used:
            workflow.meta["plugins"] = used
        else:
            workflow.meta.pop("plugins", None)

    def open_plugin_manager(self) -> Any:
        """Plugins > Plugin Manager: the dialog, shown (None when this window has no plugin manager)."""
        if self.plugin_gui is None:
            self.show_message("Plugins are not managed in this window")
            return None
        return self.plugin_gui.open_manager()

    def _dialog_dir(self) -> str:
        return str(self.file_path.parent) if self.file_path is not None else str(Path.home())

    def maybe_save(self) -> bool:
        """Before the current tab's document is dropped: True when it may go (saved, discarded or unchanged)."""
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

    def ask_png_drop(self, path: Path) -> str:
        """A dropped picture carries a workflow: "workflow" (open it), "image" (load the picture) or "cancel"."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                          f"{path.name} carries the workflow that made it. Open that workflow, or use the picture "
                          "in a Load Image node?", QMessageBox.StandardButton.Cancel, self)
        workflow = box.addButton("Open its workflow", QMessageBox.ButtonRole.AcceptRole)
        image = box.addButton("Use the picture", QMessageBox.ButtonRole.ActionRole)
        box.setDefaultButton(workflow)
        box.exec()
        return {workflow: "workflow", image: "image"}.get(box.clickedButton(), "cancel")

    def ask_restore(self, names: list[str]) -> bool:
        """After a crash: True to restore the autosaved workflows named, False to discard them."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME,
                          "Nuance Studio did not close properly last time. Restore the unsaved work?\n\n"
                          + "\n".join(f"• {name}" for name in names), QMessageBox.StandardButton.NoButton, self)
        restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(restore)
        box.exec()
        return box.clickedButton() is restore

    def restore_crashed(self) -> int:
        """Offer back what sessions that crashed had autosaved; returns how many tabs came back.

        Restored tabs keep their file path and come back unsaved: the work is newer than the file.
        """
        orphans = recovery.find_orphans()
        entries = [entry for orphan in orphans for entry in orphan.entries]
        unreadable = [name for orphan in orphans for name in orphan.unreadable]
        restored, problems = 0, []
        if entries and self.ask_restore([entry.name for entry in entries]):
            for entry in entries:
                try:
                    workflow = load_workflow(entry.data, self.registry)
                except NuanceError as exc:
                    problems.append(f"{entry.name}: {exc}")
                    continue
                workflow.path = entry.file_path
                document = Document(workflow, self.registry)
                document.mark_unsaved()
                self.show_workflow(document, entry.file_path, entry.example)
                restored += 1
            self.autosave.save_now()  # safe in this session's folder before the crashed one goes
        for orphan in orphans:
            orphan.discard()
        if unreadable or problems:
            self.warn("Some autosaved work could not be restored",
                      "\n".join([*problems, *(f"{name}: not a readable autosave" for name in unreadable)]))
        elif restored:
            self.show_message(f"Restored {restored} workflow{'s' if restored != 1 else ''} from the last session")
        return restored

    def warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def closeEvent(self, event: QCloseEvent) -> None:
        for tab in self.workflow_tabs():
            if tab.document.dirty:
                self.tabs.setCurrentWidget(tab)
                if not self.maybe_save():
                    event.ignore()
                    return
        self.runs.shutdown()
        if self.plugin_gui is not None:
            self.plugin_gui.close()
        self.autosave.end()  # a clean close: nothing to recover
        for tab in self.workflow_tabs():
            tab.shut()
        event.accept()

    # -- drops -----------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            drops.drop_files(self, files, None)

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
        tab = self._tab_of(tag)
        if tab is None:
            return  # a run of a workflow that is no longer open
        scene, label = tab.scene, lambda node_id: self._label(node_id, tab.document)
        if isinstance(event, eev.RunStarted):
            scene.clear_run_states()
            for node_id in event.node_ids:
                scene.set_run_state(node_id, RunState("queued"))
            self.run_label.setText("Running…")
        elif isinstance(event, eev.NodeStarted):
            scene.set_run_state(event.node_id, RunState("running"))
            self.run_label.setText(f"Running {label(event.node_id)}")
        elif isinstance(event, eev.NodeProgress):
            fraction = event.value / event.total if event.total else None
            scene.set_run_state(event.node_id, RunState("running", progress=fraction))
            total = f"/{event.total:g}" if event.total else ""
            self.run_label.setText(f"{label(event.node_id)} {event.value:g}{total}")
            if event.preview is not None:
                image = preview_image(event.preview)
                if image is not None:
                    self.viewer.show_preview(image, f"{label(event.node_id)}: step {event.value:g}{total}")
        elif isinstance(event, eev.NodeCached):
            scene.set_run_state(event.node_id, RunState("cached"))
        elif isinstance(event, eev.NodeFinished):
            scene.set_run_state(event.node_id, RunState("done", seconds=event.seconds))
            self._show_node_output(event.node_id, event.ui, scene)
        elif isinstance(event, eev.NodeFailed):
            scene.set_run_state(event.node_id, RunState("failed", message=event.message))
            self.show_message(f"{label(event.node_id)} (node {event.node_id}) failed: {event.message}")
        elif isinstance(event, eev.NodeSkipped):
            quiet = event.reason in ("muted", "bypassed")
            scene.set_run_state(event.node_id, RunState("" if quiet else "skipped", message=event.reason))
        elif isinstance(event, eev.RunCancelled):
            self.run_label.setText("")
            self.show_message(f"Run cancelled after {event.seconds:.1f} s")
            for item in scene.nodes.values():
                if item.run.status in ("queued", "running"):
                    item.set_run_state(RunState())

    def _show_node_output(self, node_id: str, ui: dict[str, Any], scene: CanvasScene) -> None:
        text = ui.get("text")
        if isinstance(text, str) and not ui.get("images"):
            scene.set_output_text(node_id, text)

    def _on_run_finished(self, tag: object, result: RunResult | None, error: str) -> None:
        tab = self._tab_of(tag)
        if tab is None:
            return
        self.run_label.setText("")
        if result is None:
            if error:
                self.show_message(f"Run not done: {error}")
            return
        for node_id, record in result.nodes.items():
            if record.ui:
                self._show_node_output(node_id, record.ui, tab.scene)
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
            where = f": {self._label(first.node_id, tab.document)} (node {first.node_id}): {first.error}" if first else ""
            self.show_message(f"Run failed{where}")

    def _on_problems(self, problems: list[Problem]) -> None:
        self.scene.clear_run_states()
        for problem in problems:
            if problem.node_id is not None:
                self.scene.set_run_state(problem.node_id, RunState("failed", message=str(problem)))
        first = problems[0] if problems else None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        self.show_message(f"The graph cannot run: {first}{more}" if first else "The graph cannot run")

    def _label(self, node_id: str, document: Document | None = None) -> str:
        doc = self.document if document is None else document
        node = doc.graph.nodes.get(node_id)
        return node_label(node, doc.spec(node_id)) if node is not None else f"node {node_id}"

    # -- actions -------------------------------------------------------------------------------
    def _action(self, name: str, text: str, slot: Callable[[], Any], shortcuts: tuple[str | QKeySequence, ...] = (),
                canvas: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        if canvas:  # added to every tab's view as it is made
            self._canvas_actions.append(action)
            for tab in self.workflow_tabs():
                tab.view.add_canvas_action(action)
        else:
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)
        self.actions_by_name[name] = action
        return action

    def _build_actions(self) -> None:
        # Edits go through lambdas: ``self.editing`` is the current tab's, looked up when triggered.
        def ed(method: str, *args: Any) -> Callable[[], Any]:
            return lambda: getattr(self.editing, method)(*args)

        std = QKeySequence.StandardKey
        a = self._action
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(a("new", "&New", self.new_document, (std.New,)))
        file_menu.addAction(a("new_tab", "New &tab", self.new_tab, ("Ctrl+T",)))
        file_menu.addAction(a("open", "&Open…", self.open_file, (std.Open,)))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(lambda: recent.fill_menu(self.recent_menu, self.recent, self.open_recent))
        recent.fill_menu(self.recent_menu, self.recent, self.open_recent)
        file_menu.addAction(a("save", "&Save", self.save, (std.Save,)))
        file_menu.addAction(a("save_as", "Save &As…", self.save_as, ("Ctrl+Shift+S",)))
        export_menu = file_menu.addMenu("&Export")
        export_menu.addAction(a("export_comfy_api", "ComfyUI &API format…", self.export_comfy_api,
                                tip="Write the graph as a ComfyUI API-format prompt (core ComfyUI nodes only)"))
        file_menu.addAction(a("close_tab", "&Close tab", self.close_tab, ("Ctrl+W",)))
        file_menu.addSeparator()
        file_menu.addAction(a("example", "Open the txt2img &example", lambda: self.open_example("txt2img")))
        file_menu.addSeparator()
        file_menu.addAction(a("quit", "&Quit", self.close, (std.Quit,)))

        edit = menus.addMenu("&Edit")
        edit.addAction(a("undo", "Undo", self.undo, ("Ctrl+Z",)))
        edit.addAction(a("redo", "Redo", self.redo, ("Ctrl+Shift+Z", "Ctrl+Y")))
        edit.addSeparator()
        edit.addAction(a("cut", "Cu&t", ed("cut"), ("Ctrl+X",), canvas=True))
        edit.addAction(a("copy", "&Copy", ed("copy"), ("Ctrl+C",), canvas=True))
        edit.addAction(a("paste", "&Paste", ed("paste"), ("Ctrl+V",), canvas=True))
        edit.addAction(a("duplicate", "&Duplicate", ed("duplicate"), ("Ctrl+D",), canvas=True))
        edit.addAction(a("delete", "De&lete", ed("delete"), ("Delete", "Backspace"), canvas=True))
        edit.addAction(a("select_all", "Select &all", ed("select_all"), ("Ctrl+A",), canvas=True))
        edit.addSeparator()
        edit.addAction(a("rename", "&Rename…", ed("rename"), ("F2",), canvas=True))
        edit.addAction(a("collapse", "Collapse / expand", ed("toggle_collapsed"), ("Alt+C",), canvas=True))
        edit.addAction(a("mute", "&Mute", ed("toggle_mode", NodeMode.MUTED), ("Ctrl+M",), canvas=True))
        edit.addAction(a("bypass", "&Bypass", ed("toggle_mode", NodeMode.BYPASSED), ("Ctrl+B",), canvas=True))
        edit.addAction(a("group", "&Group selection", ed("group_selection"), ("Ctrl+G",), canvas=True))
        edit.addAction(a("note", "Add &note", ed("add_note"), ("Ctrl+Shift+N",), canvas=True))
        align = edit.addMenu("Ali&gn")
        for edge, text in (("left", "Left edges"), ("right", "Right edges"), ("top", "Top edges"),
                           ("bottom", "Bottom edges"), ("hcenter", "Centres, vertically"),
                           ("vcenter", "Centres, horizontally")):
            align.addAction(a(f"align_{edge}", text, ed("align", edge)))

        view = menus.addMenu("&View")
        view.addAction(a("fit", "&Fit to view", lambda: self.view.fit(False), ("Home", "F"), canvas=True))
        view.addAction(a("fit_selection", "Fit to &selection", lambda: self.view.fit(True), ("Shift+F",), canvas=True))
        view.addAction(a("zoom_in", "Zoom &in", lambda: self.view.zoom_by(1.25), (std.ZoomIn,)))
        view.addAction(a("zoom_out", "Zoom &out", lambda: self.view.zoom_by(0.8), (std.ZoomOut,)))
        view.addAction(a("zoom_reset", "Actual size", lambda: self.view.reset_zoom(), ("Ctrl+0",)))
        minimap = a("minimap", "&Minimap", lambda: None,
                    tip="A map of the whole graph in the canvas corner, shown when the graph does not fit")
        minimap.setCheckable(True)
        minimap.setChecked(True)
        minimap.toggled.connect(lambda on: [tab.view.minimap.set_enabled(on) for tab in self.workflow_tabs()])
        view.addAction(minimap)
        view.addSeparator()
        view.addAction(a("next_tab", "Next tab", lambda: self._step_tab(1), ("Ctrl+Tab", "Ctrl+PgDown")))
        view.addAction(a("previous_tab", "Previous tab", lambda: self._step_tab(-1), ("Ctrl+Shift+Tab", "Ctrl+PgUp")))
        view.addSeparator()
        view.addAction(self.viewer_dock.toggleViewAction())

        run = menus.addMenu("&Run")
        run_action = a("run", "&Queue run", self.queue_run, ("Ctrl+Return", "Ctrl+Enter"),
                       tip="Run the graph (Ctrl+Enter); runs queue up while one is going")
        cancel_action = a("cancel", "&Cancel run", self.cancel_run, ("Esc",), tip="Stop the run at its next step (Esc)")
        run.addAction(run_action)
        run.addAction(cancel_action)
        plugins_menu = menus.addMenu("&Plugins")
        plugins_menu.addAction(a("plugin_manager", "Plugin &Manager…", self.open_plugin_manager,
                                 tip="Install, update, enable, disable and reload node plugins"))
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("RunToolbar")
        toolbar.addAction(run_action)
        toolbar.addAction(cancel_action)

    def _step_tab(self, step: int) -> None:
        count = self.tabs.count()
        if count > 1:
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % count)

    def undo(self) -> None:
        self.view.editor.commit()
        self.document.undo()

    def redo(self) -> None:
        self.view.editor.commit()
        self.document.redo()
