"""The image picker on Load Image nodes: the picture on the node, choosing a file, pasting the clipboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from editor_support import click, key, open_window
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

from studio.core.paths import default_input_dir, find_input_file
from studio.ui import thumbnails

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def load_image_node(window, value: str = "") -> str:
    node_id = window.document.add_node("LoadImage", (0, 0), {"image": value})
    key(window.view, Qt.Key.Key_Home)
    return node_id


def button(window, node_id: str, part: str) -> QPointF:
    item = window.scene.nodes[node_id]
    picker = item.geo.picker
    assert picker is not None, "a Load Image node shows the picker"
    return item.mapToScene((picker.choose if part == "choose" else picker.paste).center())


def clipboard_picture(colour: str = "#20a040") -> QImage:
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    QGuiApplication.clipboard().setImage(image)
    return image


def thumbnail_shown(window, node_id: str) -> bool:
    path = window.scene.nodes[node_id].picked_path()
    return path is not None and thumbnails.shared().get(str(path)) is not None


def test_choose_a_picture_from_the_inputs_folder_on_the_node(window, qtbot):
    inputs = default_input_dir()
    inputs.mkdir(parents=True)
    Image.new("RGB", (30, 20), (200, 10, 10)).save(inputs / "cat.png")
    Image.new("RGB", (30, 20), (10, 10, 200)).save(inputs / "dog.png")
    node_id = load_image_node(window)
    item = window.scene.nodes[node_id]
    assert item.picked_path() is None
    click(window.view, button(window, node_id, "choose"))
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu) and menu.objectName() == "ImagePickerMenu"
    (dog,) = [a for a in menu.actions() if a.text() == "dog.png"]
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(dog).center())
    doc = window.document
    assert doc.graph.nodes[node_id].inputs["image"] == "dog.png"
    assert item.picked_path() == inputs / "dog.png"
    qtbot.waitUntil(lambda: thumbnail_shown(window, node_id), timeout=3000)
    assert thumbnails.shared().get(str(inputs / "dog.png")).toImage().pixelColor(2, 2).blue() == 200
    window.activateWindow()  # the offscreen platform leaves no window active once a popup closes
    qtbot.waitUntil(window.isActiveWindow)
    key(window.view, Qt.Key.Key_Z, CTRL)  # one command: undone in one step
    assert doc.graph.nodes[node_id].inputs["image"] == ""


def test_browse_stores_a_file_outside_the_inputs_folder_by_its_path(window, monkeypatch, tmp_path):
    elsewhere = tmp_path / "photos" / "me.jpg"
    elsewhere.parent.mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(elsewhere)
    node_id = load_image_node(window)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(elsewhere), ""))
    click(window.view, button(window, node_id, "choose"))
    menu = QApplication.activePopupWidget()
    (browse,) = [a for a in menu.actions() if a.text() == "Browse…"]
    QTest.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(browse).center())
    assert window.document.graph.nodes[node_id].inputs["image"] == str(elsewhere.resolve())


def test_paste_button_saves_the_clipboard_picture_in_the_inputs_folder(window, qtbot):
    node_id = load_image_node(window)
    clipboard_picture("#20a040")
    click(window.view, button(window, node_id, "paste"))
    name = window.document.graph.nodes[node_id].inputs["image"]
    assert name.startswith("pasted-") and name.endswith(".png")
    saved = default_input_dir() / name
    assert saved.is_file() and QImage(str(saved)).pixelColor(3, 3) == QColor("#20a040")
    assert find_input_file(name, None) == saved, "Load Image finds the pasted picture by its name"
    qtbot.waitUntil(lambda: thumbnail_shown(window, node_id), timeout=3000)
    assert "Pasted image saved" in window.statusBar().currentMessage()
    # A second paste never overwrites the first picture.
    clipboard_picture("#a02040")
    click(window.view, button(window, node_id, "paste"))
    second = window.document.graph.nodes[node_id].inputs["image"]
    assert second != name and (default_input_dir() / name).is_file()


def test_ctrl_shift_v_pastes_into_the_selected_node_or_makes_a_load_image_node(window):
    doc = window.document
    QGuiApplication.clipboard().clear()
    key(window.view, Qt.Key.Key_V, CTRL | SHIFT)
    assert "no image" in window.statusBar().currentMessage() and len(doc.graph) == 0
    clipboard_picture()
    key(window.view, Qt.Key.Key_V, CTRL | SHIFT)
    (node,) = doc.graph.nodes.values()
    assert node.type == "LoadImage" and (default_input_dir() / node.inputs["image"]).is_file()
    assert window.scene.selected_node_ids() == [node.id]
    clipboard_picture("#102030")
    key(window.view, Qt.Key.Key_V, CTRL | SHIFT)  # the new node is selected: this paste goes into it
    assert len(doc.graph) == 1 and doc.graph.nodes[node.id].inputs["image"] != ""
    doc.undo()
    doc.undo()
    assert len(doc.graph) == 0


def test_a_missing_file_is_said_on_the_node_and_a_typed_path_still_works(window, tmp_path):
    node_id = load_image_node(window, "nowhere.png")
    item = window.scene.nodes[node_id]
    assert item.picked_path() is None
    picture = tmp_path / "typed.png"
    Image.new("RGB", (8, 8)).save(picture)
    window.document.set_input(node_id, "image", str(picture))
    assert item.picked_path() == Path(picture)
