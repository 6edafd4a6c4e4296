"""The canvas, driven with real mouse and key events: palette, wiring, editing, navigation, undo."""

from __future__ import annotations

import json

import pytest
from editor_support import (
    LEFT,
    MIDDLE,
    click,
    double_click,
    drag,
    header_pos,
    input_pos,
    key,
    move_to,
    open_window,
    output_pos,
    snapshot,
    vp_point,
    widget_centre,
)
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QWheelEvent
from PySide6.QtTest import QTest

from studio.core.clipboard import CLIPBOARD_FORMAT
from studio.core.graph import NodeMode
from studio.core.types import is_compatible

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def build(window, *nodes):
    """Put nodes on the canvas (setup, not the behaviour under test) and fit them in view."""
    doc = window.document
    ids = [doc.add_node(node_type, pos) for node_type, pos in nodes]
    key(window.view, Qt.Key.Key_Home)
    return ids


def test_tab_opens_the_palette_and_enter_adds_the_node_at_the_cursor(window, qtbot):
    view = window.view
    spot = view.mapToScene(view.viewport().rect().center()) + QPointF(40, 30)
    move_to(view, spot)
    key(view, Qt.Key.Key_Tab)
    palette = view.palette_popup
    assert palette.isVisible()
    QTest.keyClicks(palette.search, "math int")
    assert palette.list.currentItem().data(Qt.ItemDataRole.UserRole) == "MathInt"
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    assert not palette.isVisible()
    (node,) = window.document.graph.nodes.values()
    assert node.type == "MathInt" and node.inputs["operation"] == "add"
    x, y = window.document.node_pos(node.id)
    assert abs(x - spot.x()) <= 2 and abs(y - spot.y()) <= 2
    assert window.scene.selected_node_ids() == [node.id]
    key(view, Qt.Key.Key_Z, CTRL)
    assert len(window.document.graph) == 0 and not window.scene.nodes


def test_palette_searches_descriptions_and_categories_and_escape_closes_it(window):
    view = window.view
    double_click(view, view.mapToScene(view.viewport().rect().center()))
    palette = view.palette_popup
    assert palette.isVisible()
    QTest.keyClicks(palette.search, "transparency")  # only in the Load Image nodes' descriptions
    types = [palette.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(palette.list.count())]
    assert sorted(types) == ["LoadImage", "LoadImageMask"]
    QTest.keyClick(palette.search, Qt.Key.Key_Escape)
    assert not palette.isVisible()
    assert len(window.document.graph) == 0


def test_dragging_between_compatible_ports_connects_and_undo_redo_is_exact(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    before = snapshot(window)
    drag(window.view, output_pos(window, a), input_pos(window, m, "a"))
    link = window.document.graph.link_into(m, "a")
    assert link is not None and link.from_node == a
    assert link.id in window.scene.wires
    assert "a" in window.scene.nodes[m].geo.inputs  # the wired widget became a socket
    after = snapshot(window)
    view = window.view
    key(view, Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before and not window.scene.wires
    key(view, Qt.Key.Key_Z, CTRL | SHIFT)
    assert snapshot(window) == after and len(window.scene.wires) == 1
    key(view, Qt.Key.Key_Z, CTRL)
    key(view, Qt.Key.Key_Y, CTRL)
    assert snapshot(window) == after


def test_incompatible_ports_dim_while_dragging_and_a_refused_drop_says_why(window):
    s, m, p = build(window, ("PrimitiveString", (0, 0)), ("MathInt", (400, 0)), ("PreviewAny", (400, 300)))
    view, scene = window.view, window.scene
    seen = {}

    def look():
        drag_state = scene.wire_drag
        assert drag_state is not None
        seen["math a"] = drag_state.accepts_widget(m, scene.nodes[m].geo.widget_for("a"))
        seen["preview"] = drag_state.accepts(p, scene.nodes[p].geo.inputs["source"])
        seen["own output"] = drag_state.accepts(s, scene.nodes[s].geo.outputs[0])

    before = snapshot(window)
    drag(view, output_pos(window, s), input_pos(window, m, "a"), before_release=look)
    assert seen == {"math a": False, "preview": True, "own output": False}
    assert scene.wire_drag is None
    assert snapshot(window) == before
    assert window.statusBar().currentMessage() == "Cannot connect: A expects INT but String gives STRING"


def test_a_new_wire_into_an_input_replaces_the_old_one(window):
    a, b, m = build(window, ("PrimitiveInt", (0, 0)), ("PrimitiveInt", (0, 200)), ("MathInt", (400, 0)))
    drag(window.view, output_pos(window, a), input_pos(window, m, "a"))
    drag(window.view, output_pos(window, b), input_pos(window, m, "a"))
    links = list(window.document.graph.links.values())
    assert [(lk.from_node, lk.to_input) for lk in links] == [(b, "a")]
    assert len(window.scene.wires) == 1
    key(window.view, Qt.Key.Key_Z, CTRL)
    assert window.document.graph.link_into(m, "a").from_node == a


def test_dropping_a_wire_on_empty_canvas_offers_only_nodes_that_take_it(window):
    (s,) = build(window, ("LoadImage", (0, 0)))
    view = window.view
    target = output_pos(window, s) + QPointF(300, 120)
    drag(view, output_pos(window, s), target)
    palette = view.palette_popup
    assert palette.isVisible()
    registry = window.registry
    listed = [palette.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(palette.list.count())]
    assert "PreviewImage" in listed and "ImageScale" in listed and "PreviewAny" in listed
    assert "MathInt" not in listed and "KSampler" not in listed and "CLIPTextEncode" not in listed
    for node_type in listed:
        assert any(is_compatible("IMAGE", inp.type) for inp in registry.spec(node_type).inputs)
    QTest.keyClicks(palette.search, "preview image")
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    (new,) = [n for n in window.document.graph if n.id != s]
    assert new.type == "PreviewImage"
    assert window.document.graph.link_into(new.id, "images").from_node == s
    key(view, Qt.Key.Key_Z, CTRL)  # adding and wiring was one step
    assert len(window.document.graph) == 1


def test_picking_a_wire_up_from_its_input_and_dropping_it_on_the_canvas_removes_it(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    window.document.connect(a, 0, m, "a")
    end = input_pos(window, m, "a")
    drag(window.view, end, end + QPointF(-150, 200))
    assert not window.document.graph.links
    assert not window.scene.wires
    assert not window.view.palette_popup.isVisible()


def test_move_is_one_undo_step_and_rubber_band_delete_undo_restores_exactly(window):
    a, b, m = build(window, ("PrimitiveInt", (0, 0)), ("PrimitiveInt", (0, 200)), ("MathInt", (400, 0)))
    doc, view = window.document, window.view
    doc.connect(a, 0, m, "a")
    doc.connect(b, 0, m, "b")
    start = doc.history_index
    before = snapshot(window)
    drag(view, header_pos(window, m), header_pos(window, m) + QPointF(100, 50), steps=10)
    assert doc.node_pos(m) == (500, 50)
    assert doc.history_index == start + 1
    key(view, Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before
    assert window.scene.nodes[m].pos() == QPointF(400, 0)

    # Rubber band around the two primitives, then Delete.
    drag(view, QPointF(-60, -60), QPointF(300, 320))
    assert sorted(window.scene.selected_node_ids()) == sorted([a, b])
    key(view, Qt.Key.Key_Delete)
    assert set(doc.graph.nodes) == {m} and not doc.graph.links and not window.scene.wires
    key(view, Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before
    assert len(window.scene.wires) == 2


def test_copy_paste_through_the_system_clipboard_and_duplicate(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    doc, view = window.document, window.view
    doc.connect(a, 0, m, "a")
    click(view, header_pos(window, a))
    click(view, header_pos(window, m), mods=CTRL)
    assert sorted(window.scene.selected_node_ids()) == sorted([a, m])
    key(view, Qt.Key.Key_C, CTRL)
    data = json.loads(QGuiApplication.clipboard().text())
    assert data["format"] == CLIPBOARD_FORMAT and len(data["graph"]["links"]) == 1
    move_to(view, QPointF(100, 400))
    key(view, Qt.Key.Key_V, CTRL)
    pasted = window.scene.selected_node_ids()
    assert len(pasted) == 2 and not set(pasted) & {a, m}
    assert min(doc.node_pos(n)[1] for n in pasted) == 400
    assert any(lk.from_node in pasted and lk.to_node in pasted for lk in doc.graph.links.values())
    key(view, Qt.Key.Key_D, CTRL)
    assert len(doc.graph) == 6 and len(doc.graph.links) == 3
    QGuiApplication.clipboard().setText("not nodes at all")
    key(view, Qt.Key.Key_V, CTRL)
    assert len(doc.graph) == 6
    assert "does not hold Nuance Studio nodes" in window.statusBar().currentMessage()


def test_number_widgets_step_drag_and_take_typed_values(window):
    (m,) = build(window, ("MathInt", (0, 0)))
    doc, view, scene = window.document, window.view, window.scene
    row_rect = scene.nodes[m].geo.widget_for("a").rect
    right_arrow = scene.nodes[m].mapToScene(QPointF(row_rect.right() - 6, row_rect.center().y()))
    click(view, right_arrow)
    click(view, right_arrow)
    assert doc.graph.nodes[m].inputs["a"] == 2
    start = doc.history_index
    centre = widget_centre(window, m, "b")
    drag(view, centre, centre + QPointF(60 / view.zoom, 0), steps=8)
    dragged = doc.graph.nodes[m].inputs["b"]
    assert dragged == 10
    assert doc.history_index == start + 1  # the whole drag is one step
    click(view, centre)
    editor = view.editor.widget
    assert editor is not None and editor.isVisible()
    editor.selectAll()
    QTest.keyClicks(editor, "-7")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    assert doc.graph.nodes[m].inputs["b"] == -7
    click(view, centre)
    QTest.keyClicks(view.editor.widget, "seven")
    QTest.keyClick(view.editor.widget, Qt.Key.Key_Return)
    assert doc.graph.nodes[m].inputs["b"] == -7
    assert "expects a whole number" in window.statusBar().currentMessage()


def test_combo_arrows_cycle_choices_and_a_prompt_box_edits_text(window):
    m, t = build(window, ("MathInt", (0, 0)), ("PrimitiveStringMultiline", (0, 250)))
    doc, view, scene = window.document, window.view, window.scene
    row_rect = scene.nodes[m].geo.widget_for("operation").rect
    click(view, scene.nodes[m].mapToScene(QPointF(row_rect.right() - 6, row_rect.center().y())))
    assert doc.graph.nodes[m].inputs["operation"] == "subtract"
    click(view, widget_centre(window, t, "value"))
    editor = view.editor.widget
    QTest.keyClicks(editor, "a red circle")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    QTest.keyClicks(editor, "on blue")
    QTest.keyClick(editor, Qt.Key.Key_Return, CTRL)
    assert doc.graph.nodes[t].inputs["value"] == "a red circle\non blue"


def test_zoom_keeps_the_point_under_the_cursor_and_panning_moves_the_view(window):
    (a,) = build(window, ("PrimitiveInt", (0, 0)))
    view = window.view
    anchor = vp_point(view, QPointF(100, 40))
    under = view.mapToScene(anchor)
    QTest.mouseMove(view.viewport(), anchor)
    zoom = view.zoom

    wheel = QWheelEvent(QPointF(anchor), QPointF(view.viewport().mapToGlobal(anchor)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QGuiApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom > zoom * 1.3
    after = view.mapToScene(anchor)
    assert abs(after.x() - under.x()) < 2 / view.zoom + 1 and abs(after.y() - under.y()) < 2 / view.zoom + 1

    centre = view.viewport().rect().center()
    before = view.mapToScene(centre)
    QTest.mousePress(view.viewport(), MIDDLE, Qt.KeyboardModifier.NoModifier, centre)
    for step in range(1, 5):
        move_to(view, centre + QPoint(20 * step, 0), MIDDLE)
    QTest.mouseRelease(view.viewport(), MIDDLE, Qt.KeyboardModifier.NoModifier, centre + QPoint(80, 0))
    assert abs((before.x() - view.mapToScene(centre).x()) * view.zoom - 80) <= 2

    QTest.keyPress(view.viewport(), Qt.Key.Key_Space)
    start = view.mapToScene(centre)
    QTest.mousePress(view.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, centre)
    move_to(view, centre + QPoint(0, 60), LEFT)
    QTest.mouseRelease(view.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, centre + QPoint(0, 60))
    QTest.keyRelease(view.viewport(), Qt.Key.Key_Space)
    assert abs((start.y() - view.mapToScene(centre).y()) * view.zoom - 60) <= 2
    assert window.document.node_pos(a) == (0, 0)  # panning moved the view, not the node
    assert not window.scene.selectedItems()

    key(view, Qt.Key.Key_F)
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(window.scene.nodes[a].sceneBoundingRect())


def test_mute_bypass_collapse_rename_from_the_keyboard(window):
    _, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    doc, view = window.document, window.view
    before = snapshot(window)
    click(view, header_pos(window, m))
    key(view, Qt.Key.Key_M, CTRL)
    assert doc.graph.nodes[m].mode is NodeMode.MUTED
    key(view, Qt.Key.Key_B, CTRL)
    assert doc.graph.nodes[m].mode is NodeMode.BYPASSED
    key(view, Qt.Key.Key_C, Qt.KeyboardModifier.AltModifier)
    assert window.scene.nodes[m].geo.collapsed
    key(view, Qt.Key.Key_F2)
    QTest.keyClicks(view.editor.widget, "Sum")
    QTest.keyClick(view.editor.widget, Qt.Key.Key_Return)
    assert doc.graph.nodes[m].title == "Sum"
    for _ in range(4):
        key(view, Qt.Key.Key_Z, CTRL)
    assert snapshot(window) == before


def test_group_frame_around_the_selection_moves_its_nodes(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    doc, view, scene = window.document, window.view, window.scene
    drag(view, QPointF(-60, -60), QPointF(700, 200))
    key(view, Qt.Key.Key_G, CTRL)
    QTest.keyClicks(view.editor.widget, "Maths")
    QTest.keyClick(view.editor.widget, Qt.Key.Key_Return)
    (group_id,) = scene.groups
    group = scene.groups[group_id]
    assert group.title == "Maths"
    title = group.mapToScene(QPointF(group.rect.width() / 2, 10))
    start = doc.history_index
    scene.clearSelection()
    drag(view, title, title + QPointF(0, 100), steps=8)
    assert doc.node_pos(a) == (0, 100) and doc.node_pos(m) == (400, 100)
    assert doc.history_index == start + 1


def test_reroute_points_are_added_moved_and_removed_on_the_wire(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 200)))
    doc, view, scene = window.document, window.view, window.scene
    link_id = doc.connect(a, 0, m, "a")
    wire = scene.wires[link_id]
    middle = wire.path().pointAtPercent(0.5)
    double_click(view, middle)
    assert len(doc.ui["reroutes"][link_id]) == 1
    (point,) = wire.reroutes
    start = doc.history_index
    drag(view, point.pos(), point.pos() + QPointF(0, 150))
    moved = scene.wires[link_id].reroutes[0].pos()
    assert doc.ui["reroutes"][link_id] == [[round(moved.x()), round(moved.y())]]
    assert doc.history_index == start + 1
    path = scene.wires[link_id].path()
    assert any((path.pointAtPercent(t / 100) - moved).manhattanLength() < 3 for t in range(101))
    double_click(view, moved)
    assert "reroutes" not in doc.ui and not scene.wires[link_id].reroutes


def test_the_context_menu_converts_a_widget_to_an_input_socket_and_back(window, qtbot):
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    (m,) = build(window, ("MathInt", (0, 0)))
    doc, view, scene = window.document, window.view, window.scene
    spot = vp_point(view, header_pos(window, m))

    def open_menu():
        event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, spot, view.viewport().mapToGlobal(spot))
        QApplication.sendEvent(view.viewport(), event)
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
        return QApplication.activePopupWidget()

    def trigger(menu, *path):
        for text in path[:-1]:
            menu = next(a for a in menu.actions() if a.text() == text).menu()
        next(a for a in menu.actions() if a.text() == path[-1]).trigger()
        QApplication.activePopupWidget().close()

    trigger(open_menu(), "Convert widget to input", "b")
    assert "b" in scene.nodes[m].geo.inputs and scene.nodes[m].geo.widget_for("b") is None
    assert doc.ui["nodes"][m]["sockets"] == ["b"]
    trigger(open_menu(), "Mode", "Bypassed (inputs pass through)")
    assert doc.graph.nodes[m].mode is NodeMode.BYPASSED
    trigger(open_menu(), "Convert input to widget", "b")
    assert scene.nodes[m].geo.widget_for("b") is not None and "sockets" not in doc.ui["nodes"][m]


def test_notes_are_written_in_place_and_fit_to_selection_frames_them(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (2000, 1500)))
    doc, view, scene = window.document, window.view, window.scene
    move_to(view, view.mapToScene(view.viewport().rect().center()))
    key(view, Qt.Key.Key_N, CTRL | SHIFT)
    QTest.keyClicks(view.editor.widget, "try a lower cfg")
    click(view, header_pos(window, a))  # clicking elsewhere commits the note
    (note,) = doc.ui["notes"]
    assert note["text"] == "try a lower cfg"
    assert scene.notes[note["id"]].text == "try a lower cfg"
    zoom_all = view.zoom
    key(view, Qt.Key.Key_F, SHIFT)
    assert view.zoom > zoom_all
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(scene.nodes[a].sceneBoundingRect())
    assert not visible.contains(scene.nodes[m].sceneBoundingRect())


def test_escape_drops_a_wire_being_dragged(window):
    a, m = build(window, ("PrimitiveInt", (0, 0)), ("MathInt", (400, 0)))
    view, scene = window.view, window.scene
    start, end = output_pos(window, a), input_pos(window, m, "a")
    from editor_support import LEFT, press, release

    press(view, start)
    move_to(view, (start + end) / 2, LEFT)
    assert scene.wire_drag is not None
    key(view, Qt.Key.Key_Escape)
    assert scene.wire_drag is None and scene.interaction is None
    move_to(view, end, LEFT)
    release(view, end)
    assert not window.document.graph.links


def test_nodes_of_uninstalled_types_show_as_placeholders_and_survive(window, tmp_path):
    from studio.core.workflow import FORMAT

    data = {"format": FORMAT, "version": 1, "graph": {
        "nodes": [{"id": "1", "type": "PrimitiveInt", "inputs": {"value": 3}},
                  {"id": "2", "type": "coolpack.Sharpen", "inputs": {"amount": 0.5}, "colour_hint": "x"}],
        "links": [{"id": "1", "from_node": "1", "from_output": 0, "to_node": "2", "to_input": "amount"}]}}
    path = tmp_path / "plugin.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert window.open_file(path)
    item = window.scene.nodes["2"]
    assert item.geo.title == "Missing: coolpack.Sharpen" and "amount" in item.geo.inputs
    assert "1 node(s) of types that are not installed" in window.statusBar().currentMessage()
    drag(window.view, header_pos(window, "2"), header_pos(window, "2") + QPointF(50, 0))
    key(window.view, Qt.Key.Key_S, CTRL)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["graph"]["nodes"][1] == data["graph"]["nodes"][1]
    assert saved["graph"]["links"] == data["graph"]["links"]


def test_dragging_the_corner_grip_resizes_a_node_in_one_step(window):
    (t,) = build(window, ("PrimitiveStringMultiline", (0, 0)))
    doc, view, scene = window.document, window.view, window.scene
    item = scene.nodes[t]
    width, height = item.geo.width, item.geo.height
    box = item.geo.widget_for("value").rect.height()
    corner = item.mapToScene(QPointF(width - 3, height - 3))
    start = doc.history_index
    drag(view, corner, corner + QPointF(80, 120))
    assert doc.history_index == start + 1
    w, h = doc.ui["nodes"][t]["size"]
    assert abs(w - (width + 80)) <= 2 and abs(h - (height + 120)) <= 2
    assert item.geo.widget_for("value").rect.height() > box + 100  # the prompt box took the room
    key(view, Qt.Key.Key_Z, CTRL)
    assert "size" not in doc.ui["nodes"][t] and item.geo.height == height
