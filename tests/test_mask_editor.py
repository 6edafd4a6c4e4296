"""The mask editor driven by real mouse and key events on its viewport."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QInputDevice, QMouseEvent, QPointingDevice, QTabletEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.ui.mask.editor import MaskEditor, Tool
from studio.ui.mask.storage import load_mask, mask_path_for, save_mask

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def editor(qtbot) -> MaskEditor:
    image = QImage(200, 150, QImage.Format.Format_RGB32)
    image.fill(QColor(90, 120, 160))
    view = MaskEditor(image)
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    view.set_zoom(1.0)
    view.centerOn(100, 75)
    return view


def vp(view: MaskEditor, x: float, y: float) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def move(view: MaskEditor, x: float, y: float, buttons: Qt.MouseButton = LEFT) -> None:
    local = vp(view, x, y)
    viewport = view.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(local), QPointF(viewport.mapToGlobal(local)),
                        Qt.MouseButton.NoButton, buttons, NO_MOD)
    QApplication.sendEvent(viewport, event)


def stroke(view: MaskEditor, points: list[tuple[float, float]], mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.mousePress(view.viewport(), LEFT, mods, vp(view, *points[0]))
    for x, y in points[1:]:
        move(view, x, y)
    QTest.mouseRelease(view.viewport(), LEFT, mods, vp(view, *points[-1]))


def key(view: MaskEditor, code: Qt.Key, mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.keyClick(view, code, mods)


def disk(view: MaskEditor, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:view.model.height, 0:view.model.width] + 0.5
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


def test_hard_dab_paints_the_disk_under_the_cursor(editor: MaskEditor) -> None:
    editor.set_brush(size=30, hardness=1.0, opacity=1.0)
    stroke(editor, [(100, 75)])
    centre = editor._scene(QPointF(vp(editor, 100, 75)))  # where the event's whole viewport pixel lands
    mask = editor.mask_array()
    assert (mask[disk(editor, centre.x(), centre.y(), 14.5)] == 255).all()
    assert (mask[~disk(editor, centre.x(), centre.y(), 15.5)] == 0).all()
    assert editor.canvas.overlay.pixelColor(100, 75).alpha() > 0  # the overlay followed


def test_eraser_undo_and_redo_by_shortcuts(editor: MaskEditor) -> None:
    editor.set_brush(size=20, hardness=1.0)
    stroke(editor, [(40, 75), (80, 75), (160, 75)])
    painted = editor.mask_array().copy()
    assert painted[75, 40:160].min() == 255
    key(editor, Qt.Key.Key_E)
    assert editor.tool is Tool.ERASER
    stroke(editor, [(100, 60), (100, 90)])
    assert editor.mask_array()[75, 100] == 0 and editor.mask_array()[75, 60] == 255
    key(editor, Qt.Key.Key_X)
    assert editor.tool is Tool.BRUSH
    key(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.mask_array(), painted)
    key(editor, Qt.Key.Key_Z, CTRL | SHIFT)
    assert editor.mask_array()[75, 100] == 0


def test_lasso_fills_the_outline_and_invert_and_clear(editor: MaskEditor) -> None:
    key(editor, Qt.Key.Key_L)
    stroke(editor, [(20, 20), (120, 20), (120, 120), (20, 120)])
    mask = editor.mask_array()
    assert mask[70, 70] == 255 and mask[20:120, 20:120].mean() > 250 and mask[130:, :].max() == 0
    key(editor, Qt.Key.Key_I, CTRL)
    assert editor.mask_array()[70, 70] == 0 and editor.mask_array()[140, 190] == 255
    key(editor, Qt.Key.Key_Delete)
    assert not editor.mask_array().any()


def test_polygon_closes_with_enter_and_shapes(editor: MaskEditor) -> None:
    key(editor, Qt.Key.Key_P)
    for x, y in [(10, 10), (90, 10), (10, 90)]:
        QTest.mouseClick(editor.viewport(), LEFT, NO_MOD, vp(editor, x, y))
    assert not editor.mask_array().any()  # still open
    key(editor, Qt.Key.Key_Return)
    assert editor.mask_array()[20, 20] == 255 and editor.mask_array()[80, 80] == 0
    key(editor, Qt.Key.Key_R)
    stroke(editor, [(150, 100), (170, 110), (190, 140)])
    assert editor.mask_array()[100:140, 150:190].min() == 255
    key(editor, Qt.Key.Key_O)
    stroke(editor, [(100, 40), (140, 80)])
    assert editor.mask_array()[60, 120] == 255 and editor.mask_array()[41, 101] == 0


def test_brush_size_and_hardness_keys(editor: MaskEditor) -> None:
    size, hardness = editor.brush_size, editor.hardness
    key(editor, Qt.Key.Key_BracketRight)
    assert editor.brush_size > size
    key(editor, Qt.Key.Key_BracketLeft)
    key(editor, Qt.Key.Key_BracketLeft)
    assert editor.brush_size < size
    key(editor, Qt.Key.Key_BracketLeft, SHIFT)
    assert editor.hardness < hardness


def test_feather_preview_leaves_the_mask_until_applied(editor: MaskEditor) -> None:
    key(editor, Qt.Key.Key_R)
    stroke(editor, [(50, 50), (150, 100)])
    before = editor.mask_array().copy()
    editor.show_adjustment(feather=5)
    assert np.array_equal(editor.mask_array(), before)
    edge = editor.canvas.overlay.pixelColor(49, 75).alpha()
    assert 0 < edge < editor.canvas.overlay.pixelColor(100, 75).alpha()  # a soft edge is shown
    editor.apply_adjustment(feather=5)
    assert 0 < editor.mask_array()[75, 49] < 255
    key(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.mask_array(), before)


def test_zoomed_in_strokes_land_on_single_pixels(editor: MaskEditor) -> None:
    editor.set_zoom(16.0)
    editor.centerOn(100, 75)
    editor.set_brush(size=1, hardness=1.0)
    stroke(editor, [(100.5, 75.5)])
    assert editor.mask_array()[75, 100] == 255 and editor.mask_array().sum() == 255


def test_mask_saved_and_loaded_back_exactly(editor: MaskEditor, tmp_path: Path) -> None:
    editor.set_brush(size=25, hardness=0.3, opacity=0.7)
    stroke(editor, [(30, 30), (170, 120)])
    path = save_mask(editor.mask_array(), mask_path_for(Path("photo.jpg"), None))
    assert path.name == "photo.mask.png" and path.parent.name == "input"
    assert np.array_equal(load_mask(path), editor.mask_array())


def tablet(view: MaskEditor, kind: QEvent.Type, x: float, y: float, pressure: float) -> None:
    device = QPointingDevice("pen", 1, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                             QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    local = QPointF(vp(view, x, y))
    held = Qt.MouseButton.NoButton if kind == QEvent.Type.TabletRelease else LEFT
    event = QTabletEvent(kind, device, local, QPointF(view.viewport().mapToGlobal(local.toPoint())), pressure,
                         0.0, 0.0, 0.0, 0.0, 0.0, NO_MOD, LEFT, held)
    QApplication.sendEvent(view.viewport(), event)


def test_pen_pressure_scales_size_and_opacity(editor: MaskEditor) -> None:
    editor.set_brush(size=40, hardness=1.0)
    tablet(editor, QEvent.Type.TabletPress, 60, 75, 0.5)
    tablet(editor, QEvent.Type.TabletRelease, 60, 75, 0.5)
    light = editor.mask_array()
    assert light.max() == 128  # half pressure: half opacity
    assert light[75, 60 + 12] == 0 and light[75, 60 + 8] == 128  # and half the radius


def test_wheel_zooms_at_the_cursor_and_space_drag_pans(editor: MaskEditor) -> None:
    editor.set_zoom(4.0)
    editor.centerOn(120, 80)
    anchor = vp(editor, 150, 100)
    wheel = QWheelEvent(QPointF(anchor), QPointF(editor.viewport().mapToGlobal(anchor)), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, NO_MOD, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(editor.viewport(), wheel)
    assert editor.zoom() == pytest.approx(4 * 1.25 ** 2)
    under = editor._scene(QPointF(anchor))
    assert abs(under.x() - 150) < 1 and abs(under.y() - 100) < 1  # the point under the cursor stayed
    QTest.keyPress(editor, Qt.Key.Key_Space)
    start = editor._scene(QPointF(editor.viewport().rect().center()))
    centre = editor.viewport().rect().center()
    QTest.mousePress(editor.viewport(), LEFT, NO_MOD, centre)
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(centre + QPoint(-40, 0)),
                        QPointF(editor.viewport().mapToGlobal(centre + QPoint(-40, 0))), Qt.MouseButton.NoButton, LEFT, NO_MOD)
    QApplication.sendEvent(editor.viewport(), event)
    QTest.mouseRelease(editor.viewport(), LEFT, NO_MOD, centre + QPoint(-40, 0))
    QTest.keyRelease(editor, Qt.Key.Key_Space)
    moved = editor._scene(QPointF(editor.viewport().rect().center()))
    assert moved.x() - start.x() == pytest.approx(40 / editor.zoom(), abs=1)
    assert not editor.mask_array().any()  # panning never paints


def test_polygon_closes_with_a_double_click_and_alt_erases(editor: MaskEditor) -> None:
    editor.model.fill_rect(0, 0, 200, 150)
    key(editor, Qt.Key.Key_P)
    for x, y in [(10, 10), (90, 10)]:
        QTest.mouseClick(editor.viewport(), LEFT, Qt.KeyboardModifier.AltModifier, vp(editor, x, y))
    QTest.mouseDClick(editor.viewport(), LEFT, Qt.KeyboardModifier.AltModifier, vp(editor, 10, 90))
    assert editor.mask_array()[20, 20] == 0 and editor.mask_array()[80, 80] == 255


def test_bucket_fill_fills_a_painted_outline_with_one_click_and_alt_erases(editor: MaskEditor) -> None:
    editor.set_brush(size=6, hardness=1.0)
    ring = [(100 + 40 * np.cos(a), 75 + 40 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 60)]
    stroke(editor, ring)  # a closed outline drawn by hand
    outline = editor.mask_array().copy()
    assert outline[75, 100] == 0
    key(editor, Qt.Key.Key_G)
    assert editor.tool is Tool.FILL
    QTest.mouseClick(editor.viewport(), LEFT, NO_MOD, vp(editor, 100, 75))
    filled = editor.mask_array()
    assert (filled[disk(editor, 100, 75, 34)] == 255).all()  # the inside, to the ring
    assert filled[5, 5] == 0 and filled[140, 190] == 0  # the outside stays
    key(editor, Qt.Key.Key_Z, CTRL)
    assert np.array_equal(editor.mask_array(), outline)
    QTest.mouseClick(editor.viewport(), LEFT, Qt.KeyboardModifier.AltModifier, vp(editor, 100, 75 - 40))
    erased = editor.mask_array()
    assert erased[75 - 40, 100] == 0 and erased.max() < 255  # the ring's solid core, all joined, is gone
    assert (erased <= outline).all()  # (only its anti-aliased rim, which has other values, is left)


def test_number_keys_set_the_brush_opacity_and_a_stroke_never_exceeds_it(editor: MaskEditor) -> None:
    editor.set_brush(size=20, hardness=1.0)
    key(editor, Qt.Key.Key_4)
    assert editor.opacity == pytest.approx(0.4)
    stroke(editor, [(60, 75), (100, 75), (60, 75)])  # overlapping segments of one stroke
    assert editor.mask_array()[75, 80] == pytest.approx(0.4 * 255, abs=1)
    key(editor, Qt.Key.Key_0)
    assert editor.opacity == 1.0
