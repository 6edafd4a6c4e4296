"""The gallery: every picture in the output folder, this session's and earlier ones, newest first.

Only file names and dates are read up front; a thumbnail is decoded (off the GUI thread) when
its row is first drawn, so a folder of thousands of pictures opens at once and scrolls smoothly.
Each picture can be shown in the viewer, or give back the workflow it carries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QMainWindow,
    QMenu,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.engine import RunOptions
from studio.ui import theme, thumbnails
from studio.ui.inpaint_picture import TEXT as INPAINT_TEXT
from studio.ui.inpaint_picture import TIP as INPAINT_TIP
from studio.ui.inpaint_picture import inpaint_picture
from studio.ui.runs import images_of

ICON = 96
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PathRole = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class Picture:
    path: str
    mtime: float


def scan(folder: Path) -> list[Picture]:
    """Pictures under ``folder`` (sub-folders too: prefixes may name them), newest first."""
    found: list[Picture] = []
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        stack.append(entry.path)
                elif entry.name.lower().endswith(SUFFIXES):
                    found.append(Picture(entry.path, entry.stat().st_mtime))
            except OSError:
                continue
    found.sort(key=lambda p: (p.mtime, p.path), reverse=True)
    return found


class GalleryModel(QAbstractListModel):
    """Pictures as rows; a row's thumbnail is asked for only when the view draws it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.pictures: list[Picture] = []
        self._rows: dict[str, int] = {}
        self._placeholder = QPixmap(ICON, ICON)
        self._placeholder.fill(theme.PLACEHOLDER_ICON)
        theme.changes().changed.connect(self._theme_changed)
        thumbnails.shared().ready.connect(self._thumbnail_ready)

    def set_pictures(self, pictures: list[Picture]) -> None:
        self.beginResetModel()
        self.pictures = pictures
        self._rows = {p.path: i for i, p in enumerate(pictures)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.pictures)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.pictures):
            return None
        picture = self.pictures[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(picture.path).name
        if role == Qt.ItemDataRole.DecorationRole:
            # An icon, not the pixmap: the view then scales it into the grid cell, keeping its shape.
            return QIcon(thumbnails.shared().get(picture.path) or self._placeholder)
        if role == Qt.ItemDataRole.ToolTipRole:
            return picture.path
        if role == PathRole:
            return picture.path
        return None

    def _theme_changed(self, _name: str) -> None:
        """The grey square shown while a thumbnail loads follows the theme."""
        self._placeholder.fill(theme.PLACEHOLDER_ICON)
        if self.pictures:
            self.dataChanged.emit(self.index(0), self.index(len(self.pictures) - 1), [Qt.ItemDataRole.DecorationRole])

    def _thumbnail_ready(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class Gallery(QWidget):
    """The gallery panel of one window."""

    def __init__(self, window: QMainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.window_ = window
        self.model = GalleryModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setGridSize(QSize(ICON + 16, ICON + 26))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setLayoutMode(QListView.LayoutMode.Batched)
        self.list.setBatchSize(200)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.doubleClicked.connect(lambda _index: self.show_in_viewer())
        self.count_label = QLabel(self)
        self.count_label.setMinimumWidth(10)

        # A tool bar, not a row of buttons: when the panel is narrow it folds them behind "»" instead of
        # making the whole dock column (and so the canvas) give up width.
        self.toolbar = QToolBar(self)
        self.show_action = self._action("Show", "Show the selected pictures in the viewer (double-click)", self.show_in_viewer)
        self.restore_action = self._action("Restore workflow", "Open the workflow this picture was made with",
                                           self.restore_workflow)
        self.reveal_action = self._action("Reveal", "Open the folder holding this picture", self.reveal)
        self.refresh_action = self._action("Refresh", "Look at the output folder again", self.refresh)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.toolbar)
        box.addWidget(self.list, 1)
        box.addWidget(self.count_label)
        window.runs.finished.connect(self._run_finished)
        self.refresh()

    def _action(self, text: str, tip: str, slot: Any) -> QAction:
        action = self.toolbar.addAction(text)
        action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def button(self, action: QAction) -> QWidget:
        """The tool bar's button for ``action`` (tests click it)."""
        return self.toolbar.widgetForAction(action)

    @property
    def folder(self) -> Path:
        """The output folder runs save into (as the runs themselves resolve it)."""
        return RunOptions().resolved_output_dir()

    def refresh(self) -> None:
        """Read the output folder again, keeping the selection where the pictures still exist."""
        chosen = set(self.selected_paths())
        self.model.set_pictures(scan(self.folder))
        self.list.doItemsLayout()  # the newest rows now; the rest are laid out in batches meanwhile
        selection = self.list.selectionModel()
        for row, picture in enumerate(self.model.pictures):
            if picture.path in chosen:
                selection.select(self.model.index(row), selection.SelectionFlag.Select)
        count = len(self.model.pictures)
        self.count_label.setText(f"{count} picture{'s' if count != 1 else ''} in {self.folder}")
        self.count_label.setToolTip(str(self.folder))

    def _run_finished(self, _tag: object, result: Any, _error: str) -> None:
        if result is not None and (result.files or images_of(result)):
            self.refresh()

    # -- what the selection can do -----------------------------------------------------------------
    def selected_paths(self) -> list[str]:
        rows = sorted(index.row() for index in self.list.selectionModel().selectedIndexes())
        return [self.model.pictures[row].path for row in rows if row < len(self.model.pictures)]

    def _current_path(self) -> str | None:
        paths = self.selected_paths()
        if paths:
            return paths[0]
        index = self.list.currentIndex()
        return self.model.pictures[index.row()].path if index.isValid() else None

    def show_in_viewer(self) -> None:
        paths = self.selected_paths() or ([p] if (p := self._current_path()) else [])
        if not paths:
            return
        self.window_.viewer.show_images(paths)
        dock = getattr(self.window_, "viewer_dock", None)
        if dock is not None:
            dock.show()
            dock.raise_()

    def restore_workflow(self) -> bool:
        """Open the workflow the picture carries, as File > Open does with a PNG (in a tab of its own);
        a picture without one is reported by the window."""
        path = self._current_path()
        return path is not None and bool(self.window_.open_file(path))

    def reveal(self) -> None:
        path = self._current_path()
        folder = Path(path).parent if path is not None else self.folder
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def inpaint(self) -> None:
        """Inpaint the picture: a Load Image node for it with an Inpaint graph, and the mask editor on it."""
        path = self._current_path()
        if path is not None:
            inpaint_picture(self.window_, path)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.list.indexAt(pos)
        if not index.isValid():
            return
        if not self.list.selectionModel().isSelected(index):
            self.list.setCurrentIndex(index)
        menu = QMenu(self)
        menu.addAction("Show in viewer", self.show_in_viewer)
        menu.addAction("Restore workflow", self.restore_workflow)
        menu.addAction("Reveal file", self.reveal)
        menu.addAction(INPAINT_TEXT, self.inpaint).setStatusTip(INPAINT_TIP)
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(self.list.viewport().mapToGlobal(pos))
