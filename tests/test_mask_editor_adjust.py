"""Grow / shrink and feather in the mask editor dialog, typed into its spin boxes: previewed live on the
overlay without touching the mask, committed by a real click on Apply as one step of the mask's own
undo (Ctrl+Z in the picture restores it); and the overlay's colour and opacity set from the dialog."""

from __future__ import annotations

import numpy as np
import pytest
from editor_support import LEFT, open_window
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QDialogButtonBox, QPushButton, QSlider, QSpinBox
from test_mask_editor_dialog import click_menu_item, load_image_node, open_node_menu, paint, picture, press_button, shown_dialog

CTRL = Qt.KeyboardModifier.ControlModifier
__all__ = ["picture"]  # the fixture, shared with the dialog's tests


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


@pytest.fixture
def dialog(window, qtbot, picture):
    node = load_image_node(window, picture)
    click_menu_item(open_node_menu(window, qtbot, node), "Paint mask…")
    opened = shown_dialog(window, qtbot)
    opened.editor.set_brush(size=10, hardness=1.0)
    paint(opened, [(40, 30)])  # a disk of radius 5 around (40, 30)
    yield opened
    if opened.isVisible():
        press_button(opened, QDialogButtonBox.StandardButton.Cancel)


def type_into(box: QSpinBox, text: str, qtbot=None) -> None:
    """Type ``text`` over the box's value; with ``qtbot``, wait for the preview it schedules."""
    QTest.mouseDClick(box.lineEdit(), LEFT)
    QTest.keyClick(box, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(box, text)
    if qtbot is not None:
        dialog = box.window()
        qtbot.waitUntil(lambda: not dialog._preview_timer.isActive())


def overlay_alpha(dialog, x: int, y: int) -> int:
    return dialog.editor.canvas.overlay.pixelColor(x, y).alpha()


def test_grow_is_previewed_on_the_overlay_then_applied_as_one_undo_step(dialog, qtbot):
    editor = dialog.editor
    painted = editor.mask_array().copy()
    assert painted[30, 40] == 255 and painted[30, 48] == 0 and overlay_alpha(dialog, 48, 30) == 0
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "6", qtbot)
    assert overlay_alpha(dialog, 48, 30) > 0 and overlay_alpha(dialog, 40, 30) > 0  # grown past the disk
    assert overlay_alpha(dialog, 60, 30) == 0
    assert np.array_equal(editor.mask_array(), painted)  # only a preview: the mask itself is as painted
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "0", qtbot)
    assert editor.canvas.preview is None and overlay_alpha(dialog, 48, 30) == 0  # back to the mask as it is
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "6", qtbot)
    QTest.mouseClick(dialog.findChild(QPushButton, "mask_apply"), LEFT)
    grown = editor.mask_array()
    assert grown[30, 48] == 255 and grown[30, 60] == 0 and grown.sum() > painted.sum()
    assert dialog.findChild(QSpinBox, "mask_grow").value() == 0 and editor.canvas.preview is None
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.mask_array(), painted) and overlay_alpha(dialog, 48, 30) == 0
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(editor.mask_array(), grown)


def test_shrink_and_feather_preview_and_apply(dialog, qtbot):
    editor = dialog.editor
    painted = editor.mask_array().copy()
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "-2", qtbot)
    assert overlay_alpha(dialog, 40, 30) > 0 and overlay_alpha(dialog, 44, 30) == 0  # shrunk inside the disk
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "0", qtbot)
    type_into(dialog.findChild(QSpinBox, "mask_feather"), "3", qtbot)
    assert 0 < overlay_alpha(dialog, 47, 30) < overlay_alpha(dialog, 40, 30)  # a soft edge beyond the disk
    assert np.array_equal(editor.mask_array(), painted)
    QTest.mouseClick(dialog.findChild(QPushButton, "mask_apply"), LEFT)
    soft = editor.mask_array()
    assert 0 < soft[30, 47] < 255 and not np.array_equal(soft, painted)
    QTest.keyClick(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.mask_array(), painted)


def test_overlay_colour_and_opacity(dialog):
    before = dialog.editor.canvas.overlay.pixelColor(40, 30)
    assert before.red() > before.green() and 100 < before.alpha() < 150  # red at half opacity
    combo = dialog.findChild(QComboBox, "mask_colour")
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)  # the next colour: green
    colour = dialog.editor.canvas.overlay.pixelColor(40, 30)
    assert combo.currentText() == "Green" and colour.green() > colour.red()
    slider = dialog.findChild(QSlider, "mask_opacity")
    slider.setFocus()
    QTest.keyClick(slider, Qt.Key.Key_End)
    assert dialog.editor.canvas.overlay.pixelColor(40, 30).alpha() == 255
    QTest.keyClick(slider, Qt.Key.Key_Home)
    assert dialog.editor.canvas.overlay.pixelColor(40, 30).alpha() == 0
    assert dialog.editor.mask_array()[30, 40] == 255  # the mask itself is untouched


def test_enter_in_the_box_applies_and_keeps_the_dialog_open(dialog, qtbot):
    box = dialog.findChild(QSpinBox, "mask_grow")
    type_into(box, "4")  # no wait: Enter applies what was typed at once
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.editor.mask_array()[30, 47] == 255 and box.value() == 0


def test_painting_while_a_preview_shows_previews_the_new_stroke_too(dialog, qtbot):
    type_into(dialog.findChild(QSpinBox, "mask_grow"), "3", qtbot)
    assert overlay_alpha(dialog, 10, 30) == 0
    spot = dialog.editor.mapFromScene(QPointF(10, 30))
    QTest.mousePress(dialog.editor.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, spot)  # a second disk, at the left
    assert dialog.editor.canvas.preview is None and overlay_alpha(dialog, 10, 30) > 0  # the stroke shows as painted
    QTest.mouseRelease(dialog.editor.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, spot)
    assert dialog.editor.mask_array()[30, 16] == 0  # painted as is: radius 5
    assert overlay_alpha(dialog, 16, 30) > 0 and dialog.editor.canvas.preview is not None  # shown grown by 3
