"""The mask editor opened from a Load Image node: painted with real mouse events, saved or cancelled
with real clicks on its buttons; the mask file and the node's ``mask`` input are checked, and the
source picture must come out byte for byte as it went in. Outpaint borders typed in the dialog go to
the chain's ImagePadForOutpaint in the same undo step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from editor_support import LEFT, NO_MOD, double_click, header_pos, key, open_window, vp_point
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QContextMenuEvent, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMenu, QSpinBox

from studio.core.paths import default_input_dir
from studio.ui.mask.dialog import MaskDialog
from studio.ui.mask.storage import load_mask


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[..., 0] = np.arange(80, dtype=np.uint8)[None, :] * 3
    rgb[..., 2] = 200
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path


def open_node_menu(window, qtbot, node_id: str) -> QMenu:
    view = window.view
    spot = vp_point(view, header_pos(window, node_id))
    QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, spot,
                                                              view.viewport().mapToGlobal(spot)))
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
    return QApplication.activePopupWidget()


def click_menu_item(menu: QMenu, text: str) -> None:
    """A real click on the menu entry called ``text``."""
    action = next(a for a in menu.actions() if a.text() == text)
    QTest.mouseClick(menu, LEFT, NO_MOD, menu.actionGeometry(action).center())


def shown_dialog(window, qtbot) -> MaskDialog:
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(MaskDialog)))
    return next(d for d in window.findChildren(MaskDialog) if d.isVisible())


def paint(dialog: MaskDialog, points: list[tuple[float, float]]) -> None:
    """A brush stroke through image pixels ``points``, as mouse events on the editor's viewport."""
    editor = dialog.editor
    viewport = editor.viewport()

    def at(x: float, y: float):
        return editor.mapFromScene(QPointF(x, y))

    QTest.mousePress(viewport, LEFT, NO_MOD, at(*points[0]))
    for x, y in points[1:]:
        local = at(x, y)
        QApplication.sendEvent(viewport, QMouseEvent(QEvent.Type.MouseMove, QPointF(local), QPointF(viewport.mapToGlobal(local)),
                                                     Qt.MouseButton.NoButton, LEFT, NO_MOD))
    QTest.mouseRelease(viewport, LEFT, NO_MOD, at(*points[-1]))


def press_button(dialog: MaskDialog, which: QDialogButtonBox.StandardButton) -> None:
    QTest.mouseClick(dialog.buttons.button(which), LEFT)


def load_image_node(window, picture: Path) -> str:
    node = window.document.add_node("LoadImage", (0, 0), {"image": str(picture)})
    key(window.view, Qt.Key.Key_Home)
    return node


def test_paint_mask_from_the_menu_saves_the_file_and_sets_the_input_in_one_undo_step(window, qtbot, picture):
    doc = window.document
    node = load_image_node(window, picture)
    source = picture.read_bytes()
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    dialog = shown_dialog(window, qtbot)
    assert dialog.editor.model.width == 80 and not dialog.editor.mask_array().any()  # no mask yet, no alpha
    dialog.editor.set_brush(size=10, hardness=1.0)
    paint(dialog, [(10, 30), (40, 30), (70, 30)])
    painted = dialog.editor.mask_array().copy()
    assert painted[30, 15:65].min() == 255 and painted[:15].max() == 0
    before = doc.history_index
    press_button(dialog, QDialogButtonBox.StandardButton.Save)
    qtbot.waitUntil(lambda: not dialog.isVisible())

    saved = default_input_dir() / "photo.mask.png"  # an unsaved workflow: the user's inputs folder
    assert np.array_equal(load_mask(saved), painted)
    assert doc.graph.nodes[node].inputs["mask"] == "photo.mask.png"
    assert doc.history_index == before + 1
    assert picture.read_bytes() == source  # the picture itself is never painted on
    doc.undo()
    assert not doc.graph.nodes[node].inputs.get("mask")
    doc.redo()
    assert doc.graph.nodes[node].inputs["mask"] == "photo.mask.png"


def test_double_click_on_the_picture_reopens_the_mask_and_cancel_changes_nothing(window, qtbot, picture):
    doc = window.document
    node = load_image_node(window, picture)
    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 30:50] = 255
    folder = default_input_dir()
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask, "L").save(folder / "earlier.png")
    doc.set_input(node, "mask", "earlier.png")
    window.scene.nodes[node].update()
    item = window.scene.nodes[node]
    double_click(window.view, item.mapToScene(item.geo.picker.thumb.center()))
    dialog = shown_dialog(window, qtbot)
    assert np.array_equal(dialog.editor.mask_array(), mask)  # the node's mask file, as Load Image reads it
    before, files = doc.history_index, sorted(folder.iterdir())
    paint(dialog, [(5, 5), (75, 55)])
    assert dialog.editor.mask_array()[5, 5] > 0
    press_button(dialog, QDialogButtonBox.StandardButton.Cancel)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert doc.history_index == before and doc.graph.nodes[node].inputs["mask"] == "earlier.png"
    assert sorted(folder.iterdir()) == files and np.array_equal(load_mask(folder / "earlier.png"), mask)


def test_the_pictures_transparency_is_the_starting_mask_and_a_saved_workflow_keeps_masks_beside_it(
        window, qtbot, tmp_path):
    doc = window.document
    rgba = np.full((32, 48, 4), 255, np.uint8)
    rgba[8:16, 8:24, 3] = 0  # clear = repaint, as Load Image reads it
    inputs = tmp_path / "work" / "inputs"
    inputs.mkdir(parents=True)
    Image.fromarray(rgba, "RGBA").save(inputs / "clear.png")
    doc.workflow.path = tmp_path / "work" / "flow.json"  # as if saved there
    window.file_path = doc.workflow.path
    node = window.document.add_node("LoadImage", (0, 0), {"image": "clear.png"})
    key(window.view, Qt.Key.Key_Home)
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    dialog = shown_dialog(window, qtbot)
    start = dialog.editor.mask_array()
    assert start[8:16, 8:24].min() == 255 and start.sum() == 255 * 8 * 16
    press_button(dialog, QDialogButtonBox.StandardButton.Save)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert doc.graph.nodes[node].inputs["mask"] == "clear.mask.png"
    assert np.array_equal(load_mask(inputs / "clear.mask.png"), start)


def test_a_node_without_a_picture_says_why_no_editor_opens(window, qtbot):
    node = window.document.add_node("LoadImage", (0, 0), {"image": ""})
    key(window.view, Qt.Key.Key_Home)
    messages: list[str] = []
    window.show_message = messages.append
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    assert not window.findChildren(MaskDialog) and "Choose a picture" in messages[0]


def test_a_mask_that_cannot_be_written_keeps_the_dialog_open_and_the_node_as_it_was(window, qtbot, picture):
    doc = window.document
    node = load_image_node(window, picture)
    folder = default_input_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")  # the inputs folder cannot be made
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    dialog = shown_dialog(window, qtbot)
    paint(dialog, [(40, 30)])
    before = doc.history_index
    press_button(dialog, QDialogButtonBox.StandardButton.Save)
    assert dialog.isVisible() and "Cannot save the mask" in dialog.error.text()
    assert doc.history_index == before and not doc.graph.nodes[node].inputs.get("mask")
    press_button(dialog, QDialogButtonBox.StandardButton.Cancel)


def test_outpaint_borders_typed_in_the_mask_editor_are_shown_and_saved_to_the_pad_node(window, qtbot, picture):
    doc = window.document
    node = load_image_node(window, picture)
    click_menu_item(open_node_menu(window, qtbot, node), "Outpaint")
    (pad,) = [nid for nid, n in doc.graph.nodes.items() if n.type == "ImagePadForOutpaint"]
    assert doc.graph.nodes[pad].inputs["right"] == 32
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    dialog = shown_dialog(window, qtbot)
    assert dialog.padding_item.rect() == QRectF(0, 0, 80 + 32, 60)  # the chain's border, shown at once
    for side, text in (("right", "48"), ("left", "16")):
        box = dialog.findChild(QSpinBox, f"pad_{side}")
        QTest.mouseDClick(box.lineEdit(), LEFT)
        QTest.keyClick(box, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClicks(box, text)
    frame = QRectF(-16, 0, 16 + 80 + 48, 60)
    assert dialog.padding_item.rect() == frame and dialog.editor.sceneRect() == frame
    assert dialog.editor.viewport().rect().contains(dialog.editor.mapFromScene(frame).boundingRect())  # all in view
    before = doc.history_index
    press_button(dialog, QDialogButtonBox.StandardButton.Save)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    values = doc.graph.nodes[pad].inputs
    assert (values["left"], values["top"], values["right"], values["bottom"]) == (16, 0, 48, 0)
    assert doc.graph.nodes[node].inputs["mask"] == "photo.mask.png" and doc.history_index == before + 1
    doc.undo()
    assert (doc.graph.nodes[pad].inputs["left"], doc.graph.nodes[pad].inputs["right"]) == (0, 32)
    assert not doc.graph.nodes[node].inputs.get("mask")
