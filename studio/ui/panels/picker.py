"""Choosing the picture of a Load Image node: from the inputs folder, a file dialog or the clipboard.

The node draws the picture and two buttons (see ``node_geometry.IMAGE_FILE_INPUTS``); clicks on
them are caught here, on the canvas viewport, before the canvas starts a drag. A pasted picture
is saved as a PNG in the user's inputs folder, where Load Image finds it by name, so the workflow
stays a small text file. Every choice is one Document command (one undo step).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QImage, QMouseEvent
from PySide6.QtWidgets import QFileDialog, QMenu

from studio.core.paths import default_input_dir
from studio.ui.canvas import node_geometry as ng
from studio.ui.canvas.viewport_filter import CanvasViewportFilter
from studio.ui.panels.gallery import scan

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
FILE_FILTER = "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
#: How many of the newest files in the inputs folders the menu offers.
MENU_FILES = 30


class ImagePicker(CanvasViewportFilter):
    """Handles the image buttons on the nodes of one window's canvas."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() != QEvent.Type.MouseButtonPress or not isinstance(event, QMouseEvent)
                or event.button() != Qt.MouseButton.LeftButton or watched is not self.window_.view.viewport()):
            return False
        view, scene = self.window_.view, self.window_.scene
        scene_pos = view.mapToScene(event.position().toPoint())
        item = scene.node_item_at(scene_pos)
        part = item.picker_part_at(scene_pos) if item is not None else None
        if item is None or part is None:
            return False
        view.editor.commit()
        scene.select(nodes=[item.node_id])
        if part == "paste":
            self.paste_into(item.node_id)
        else:
            picker = item.geo.picker
            assert picker is not None
            corner = item.mapToScene(picker.choose.bottomLeft())
            self.open_menu(item.node_id, view.viewport().mapToGlobal(view.mapFromScene(corner)))
        return True

    # -- choosing ----------------------------------------------------------------------------------
    def _input_name(self, node_id: str) -> str | None:
        node = self.window_.document.graph.nodes.get(node_id)
        return ng.IMAGE_FILE_INPUTS.get(node.type) if node is not None else None

    def folders(self) -> list[Path]:
        """Where Load Image looks for a bare file name: the workflow's inputs folder, then the user's."""
        base = self.window_.document.workflow.base_dir
        return ([base / "inputs"] if base is not None else []) + [default_input_dir()]

    def input_files(self) -> list[tuple[str, Path]]:
        """(name as Load Image takes it, file), newest first, from the inputs folders."""
        found: dict[str, tuple[float, Path]] = {}
        for folder in self.folders():
            for picture in scan(folder):
                path = Path(picture.path)
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    found.setdefault(path.relative_to(folder).as_posix(), (picture.mtime, path))
        ordered = sorted(found.items(), key=lambda item: item[1][0], reverse=True)
        return [(name, path) for name, (_, path) in ordered[:MENU_FILES]]

    def open_menu(self, node_id: str, global_pos: object) -> QMenu:
        name = self._input_name(node_id)
        menu = QMenu(self.window_.view)
        menu.setObjectName("ImagePickerMenu")
        current = self.window_.document.graph.nodes[node_id].inputs.get(name) if name else None
        files = self.input_files()
        for value, _path in files:
            action = menu.addAction(value, lambda v=value: self.set_image(node_id, v))
            action.setCheckable(True)
            action.setChecked(value == current)
        if not files:
            menu.addAction("(the inputs folder has no pictures yet)").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Browse…", lambda: self.browse(node_id))
        menu.addAction("Paste image from the clipboard", lambda: self.paste_into(node_id))
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(global_pos)
        return menu

    def browse(self, node_id: str) -> bool:
        """Pick a file with the system's dialog; files in an inputs folder are stored by name."""
        start = str(self.folders()[0] if self.folders()[0].is_dir() else Path.home())
        chosen, _ = QFileDialog.getOpenFileName(self.window_, "Choose an image", start, FILE_FILTER)
        if not chosen:
            return False
        self.set_image(node_id, self.value_for(Path(chosen)))
        return True

    def value_for(self, path: Path) -> str:
        """What to store for ``path``: a name in an inputs folder, a path relative to the workflow, or
        the absolute path."""
        path = path.resolve()
        for folder in self.folders():
            if path.is_relative_to(folder.resolve()):
                return path.relative_to(folder.resolve()).as_posix()
        base = self.window_.document.workflow.base_dir
        if base is not None and path.is_relative_to(base.resolve()):
            return path.relative_to(base.resolve()).as_posix()
        return str(path)

    def set_image(self, node_id: str, value: str) -> None:
        doc = self.window_.document
        name = self._input_name(node_id)
        if name is None or node_id not in doc.graph.nodes:
            return
        doc.seal()
        doc.set_input(node_id, name, value)
        doc.seal()

    # -- pasting -----------------------------------------------------------------------------------
    def clipboard_image(self) -> QImage | None:
        """The clipboard's picture: image data, or an image file copied in a file manager."""
        clipboard = QGuiApplication.clipboard()
        image = clipboard.image()
        if not image.isNull():
            return image
        mime = clipboard.mimeData()
        for url in mime.urls() if mime is not None else []:
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES:
                image = QImage(url.toLocalFile())
                if not image.isNull():
                    return image
        return None

    def save_pasted(self, image: QImage) -> str | None:
        """Save ``image`` as a new PNG in the user's inputs folder; its name there, or None on failure."""
        folder = default_input_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.window_.show_message(f"Cannot create the inputs folder {folder}: {exc.strerror or exc}")
            return None
        stem = time.strftime("pasted-%Y%m%d-%H%M%S")
        target = folder / f"{stem}.png"
        counter = 1
        while target.exists():
            target = folder / f"{stem}-{counter}.png"
            counter += 1
        if not image.save(str(target), "PNG"):
            self.window_.show_message(f"Cannot save the pasted image in {folder}")
            return None
        return target.name

    def _paste_to_file(self) -> str | None:
        """Save the clipboard's picture in the inputs folder; its name there, or None (the user is told why)."""
        image = self.clipboard_image()
        if image is None:
            self.window_.show_message("The clipboard holds no image to paste")
            return None
        name = self.save_pasted(image)
        if name is not None:
            self.window_.show_message(f"Pasted image saved as {name} in the inputs folder")
        return name

    def paste_into(self, node_id: str) -> bool:
        name = self._paste_to_file()
        if name is None:
            return False
        self.set_image(node_id, name)
        return True

    def paste_into_selection(self) -> bool:
        """Ctrl+Shift+V: into the selected Load Image node, or into a new one at the cursor."""
        scene = self.window_.scene
        targets = [nid for nid in scene.selected_node_ids() if self._input_name(nid) is not None]
        if targets:
            return self.paste_into(targets[0])
        node_type = next(iter(ng.IMAGE_FILE_INPUTS))
        doc = self.window_.document
        if doc.registry is None or doc.registry.spec(node_type) is None:
            self.window_.show_message(f"Cannot paste an image: {node_type} is not installed")
            return False
        name = self._paste_to_file()
        if name is None:
            return False
        at: QPointF = self.window_.view.cursor_scene_pos()
        node_id = doc.add_node(node_type, (at.x(), at.y()), {ng.IMAGE_FILE_INPUTS[node_type]: name})
        scene.select(nodes=[node_id])
        return True
