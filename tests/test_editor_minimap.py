"""The minimap: shown only when the graph does not fit the view, clicked or dragged to move the
view, and rendered again only when the document's layout changes — never for a pan or a zoom."""

from __future__ import annotations

import pytest
from editor_support import LEFT, MIDDLE, NO_MOD, key, move_to, open_window
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def spread_graph(window, qtbot):
    """Nodes far apart (setup), fitted, then shown at 100%: the graph no longer fits."""
    doc = window.document
    ids = [doc.add_node("PrimitiveInt", pos) for pos in ((0, 0), (2600, 0), (0, 1800), (2600, 1800))]
    key(window.view, Qt.Key.Key_Home)
    minimap = window.view.minimap
    qtbot.waitUntil(lambda: minimap.renders > 0)
    assert not minimap.shown, "everything is in view: no map needed"
    key(window.view, Qt.Key.Key_0, CTRL)
    assert minimap.shown
    return ids, minimap


def view_centre(view):
    return view.mapToScene(view.viewport().rect().center())


def test_clicking_and_dragging_on_the_minimap_moves_the_view_there(window, qtbot):
    ids, minimap = spread_graph(window, qtbot)
    view, doc = window.view, window.document
    far = window.scene.nodes[ids[3]].sceneBoundingRect().center()
    before = {n: doc.node_pos(n) for n in ids}
    key(view, Qt.Key.Key_A, CTRL)
    selected = window.scene.selected_node_ids()
    assert len(selected) == 4

    QTest.mouseClick(view.viewport(), LEFT, NO_MOD, minimap.from_scene(far))
    corner = minimap.rect.topLeft()
    per_pixel = minimap.to_scene(corner + QPoint(1, 0)).x() - minimap.to_scene(corner).x()
    assert (view_centre(view) - far).manhattanLength() <= 2 * per_pixel  # as near as a map pixel can say
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(far)

    start = minimap.rect.topLeft() + QPoint(10, 10)
    QTest.mousePress(view.viewport(), LEFT, NO_MOD, start)
    for step in range(1, 5):
        move_to(view, start + QPoint(12 * step, 6 * step), LEFT)
    QTest.mouseRelease(view.viewport(), LEFT, NO_MOD, start + QPoint(48, 24))
    target = minimap.to_scene(start + QPoint(48, 24))
    assert (view_centre(view) - target).manhattanLength() < 2
    assert {n: doc.node_pos(n) for n in ids} == before and not doc.can_redo
    assert window.scene.selected_node_ids() == selected, "a click on the map is not a click on the canvas"
    assert len(doc.graph) == 4


def test_the_minimap_is_rendered_again_only_when_the_layout_changes(window, qtbot):
    _ids, minimap = spread_graph(window, qtbot)
    view = window.view
    renders = minimap.renders
    centre = view.viewport().rect().center()
    QTest.mousePress(view.viewport(), MIDDLE, NO_MOD, centre)
    for step in range(1, 6):
        move_to(view, centre + QPoint(-30 * step, -10 * step), MIDDLE)
        qtbot.wait(1)  # paint
    QTest.mouseRelease(view.viewport(), MIDDLE, NO_MOD, centre + QPoint(-150, -50))
    key(view, Qt.Key.Key_Minus, CTRL)
    qtbot.wait(20)
    assert minimap.renders == renders, "panning and zooming only move the outline"

    key(view, Qt.Key.Key_A, CTRL)
    key(view, Qt.Key.Key_D, CTRL)  # four nodes in one edit: one render
    qtbot.waitUntil(lambda: minimap.renders == renders + 1)
    qtbot.wait(20)
    assert minimap.renders == renders + 1
    key(view, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: minimap.renders == renders + 2)


def test_the_minimap_can_be_turned_off_from_the_view_menu(window, qtbot):
    _ids, minimap = spread_graph(window, qtbot)
    bar = window.menuBar()
    view_action = next(act for act in bar.actions() if act.text() == "&View")
    QTest.mouseClick(bar, LEFT, NO_MOD, bar.actionGeometry(view_action).center())
    menu = view_action.menu()
    qtbot.waitUntil(menu.isVisible)
    QTest.mouseClick(menu, LEFT, NO_MOD, menu.actionGeometry(window.actions_by_name["minimap"]).center())
    assert not minimap.shown
    key(window.view, Qt.Key.Key_T, CTRL)
    window.document.add_node("PrimitiveInt", (0, 0))
    assert not window.view.minimap.enabled
