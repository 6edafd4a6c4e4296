"""The editor's side panels and the actions that go with them, added to a main window.

``install(window)`` is the one call the window makes: the panels then use only its public
names (``document``, ``scene``, ``view``, ``runs``, ``viewer``, ``registry``), which always mean
the workflow shown now, and follow ``document_changed``; the window knows nothing of them.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QToolBar, QWidget

from studio.ui.inpaint_graphs import add_to_edit_menu
from studio.ui.inpaint_picture import inpaint_picture
from studio.ui.mask.dialog import PictureDoubleClick
from studio.ui.panels.gallery import Gallery
from studio.ui.panels.inspector import Inspector
from studio.ui.panels.model_lists import refresh_model_lists
from studio.ui.panels.picker import ImagePicker
from studio.ui.panels.preferences import PreferencesController
from studio.ui.panels.run_log import NodeRunLog
from studio.ui.panels.run_queue import RunQueue


class Panels(QObject):
    """Everything :func:`install` added to one window; find it again with :func:`of`."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.setObjectName("Panels")
        self.window_ = window
        self.run_log = NodeRunLog(window.runs, self)
        self.inspector = Inspector(window, self.run_log)
        self.inspector_dock = self._dock("Inspector", "InspectorDock", self.inspector)
        self.gallery = Gallery(window)
        self.gallery_dock = self._dock("Gallery", "GalleryDock", self.gallery)
        window.tabifyDockWidget(self.inspector_dock, self.gallery_dock)
        self.inspector_dock.raise_()
        viewer_dock = getattr(window, "viewer_dock", None)
        if isinstance(viewer_dock, QDockWidget):
            window.resizeDocks([viewer_dock, self.inspector_dock], [460, 340], Qt.Orientation.Vertical)
        self.queue = RunQueue(window, before_run=self.inspector.commit_pending)
        self.picker = ImagePicker(window)
        self.picture_clicks = PictureDoubleClick(window)
        window.viewer.inpaint_requested.connect(lambda path: inpaint_picture(window, path))  # type: ignore[attr-defined]
        self.preferences = PreferencesController(window)
        self._add_actions()

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        window = self.window_
        dock = QDockWidget(title, window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        # Below the image viewer, in the column it already has: the canvas keeps its width.
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock, Qt.Orientation.Vertical)
        return dock

    def _add_actions(self) -> None:
        window = self.window_
        actions: dict[str, QAction] = getattr(window, "actions_by_name", {})
        run_action = actions.get("run")
        if run_action is not None:
            # Ctrl+Enter now queues a batch; the window's queue_run stays the one-run step the batch uses.
            run_action.triggered.disconnect()
            run_action.triggered.connect(lambda _checked=False: self.queue.queue_batch())
        cancel_action = actions.get("cancel")
        if cancel_action is not None:
            cancel_action.triggered.connect(lambda _checked=False: self.queue.clear())
        toolbar = window.findChild(QToolBar, "RunToolbar")
        if toolbar is not None:
            self.queue.add_to(toolbar)

        def action(name: str, text: str, slot: Any, shortcuts: tuple[str, ...] = (), tip: str = "") -> QAction:
            made = QAction(text, window)
            made.setObjectName(name)
            if shortcuts:
                made.setShortcuts([QKeySequence(s) for s in shortcuts])
                made.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                window.addAction(made)
            if tip:
                made.setStatusTip(tip)
            made.triggered.connect(lambda _checked=False: slot())
            actions[name] = made
            return made

        edit = menu(window, "&Edit")
        edit.addSeparator()
        edit.addAction(action("paste_image", "Paste &image", self.picker.paste_into_selection, ("Ctrl+Shift+V",),
                              tip="Save the clipboard's image in the inputs folder and load it (Ctrl+Shift+V)"))
        add_to_edit_menu(window, edit)
        edit.addSeparator()
        edit.addAction(action("preferences", "Pre&ferences…", self.preferences.open_dialog, ("Ctrl+,",)))
        view = menu(window, "&View")
        view.addSeparator()
        view.addAction(action("refresh_models", "&Refresh model lists", lambda: refresh_model_lists(window), ("F5",),
                              tip="Look again for model files, so new ones can be chosen (F5)"))
        view.addAction(self.inspector_dock.toggleViewAction())
        view.addAction(self.gallery_dock.toggleViewAction())


def menu(window: QMainWindow, title: str) -> QMenu:
    """The window's menu called ``title`` (made when missing)."""
    for act in window.menuBar().actions():
        if act.text() == title and act.menu() is not None:
            return act.menu()
    return window.menuBar().addMenu(title)


def install(window: QMainWindow) -> Panels:
    """Add the inspector, gallery, run queue, image picker, preferences and model refresh to ``window``."""
    return Panels(window)


def of(window: QMainWindow) -> Panels:
    """The panels :func:`install` added to ``window``."""
    found = window.findChild(Panels, "Panels")
    if found is None:
        raise LookupError("panels.install(window) was not called for this window")
    return found
