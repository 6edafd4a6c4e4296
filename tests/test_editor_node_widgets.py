"""Plugin node widgets (studio.ui.api): laid out on their nodes, driven with real mouse events,
applied through the document as one undo step per gesture, and a broken widget never takes the
editor down."""

from __future__ import annotations

import gc
import importlib.util
import logging
from pathlib import Path

import pytest
from editor_support import click, drag, key, move_to, open_window, press, release
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from studio.api import Float, Input, Node, NodePack, Output
from studio.core.document import Document
from studio.plugins import LoadReport, register_pack
from studio.ui import api as gui_api
from studio.ui import theme
from studio.ui.canvas import node_geometry as ng
from studio.ui.canvas import node_item
from studio.ui.canvas.scene import CanvasScene

CTRL = Qt.KeyboardModifier.ControlModifier
LEVELS = "imagetools.Levels"


class Levels(Node):
    """The inputs of Image Tools' Levels node, without its image maths."""

    NAME = "Levels"
    CATEGORY = "testing"
    INPUTS = [
        Input("image", "IMAGE"),
        Float("black", 0.0, min=0.0, max=1.0),
        Float("gamma", 1.0, min=0.1, max=10.0),
        Float("white", 1.0, min=0.0, max=1.0),
        Float("output_black", 0.0, min=0.0, max=1.0),
        Float("output_white", 1.0, min=0.0, max=1.0),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx, image, **settings):
        return image


LEVELS_PACK = NodePack(name="imagetools", nodes=[Levels])


def _load_gui_module():
    """plugins/imagetools/gui.py, as the app loads it but under a name of the tests' own."""
    path = Path(__file__).resolve().parents[1] / "plugins" / "imagetools" / "gui.py"
    spec = importlib.util.spec_from_file_location("_test_imagetools_gui", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMAGETOOLS_GUI = _load_gui_module()


@pytest.fixture
def gui():
    """A fresh registry of node widgets, so nothing registered here reaches other tests."""
    with gui_api.isolated() as extensions:
        yield extensions


@pytest.fixture
def window(qtbot, registry, gui):
    register_pack(registry, LEVELS_PACK, builtin=False, report=LoadReport())
    yield from open_window(qtbot, registry)


@pytest.fixture
def messages(window):
    shown: list[str] = []
    window.scene.message.connect(shown.append)
    return shown


@pytest.fixture(autouse=True)
def _fresh_failure_log(monkeypatch):
    monkeypatch.setattr(node_item, "_failed_widgets", set())


def add_levels(window, **inputs) -> str:
    node_id = window.document.add_node(LEVELS, (0, 0), inputs or None)
    key(window.view, Qt.Key.Key_Home)
    return node_id


def handle(window, node_id: str, name: str) -> QPointF:
    """A Levels handle's centre, in scene coordinates."""
    item = window.scene.nodes[node_id]
    local = item.custom_widget.handle_pos(name, item.geo.custom, item.widget_values())
    return item.mapToScene(local)


def custom_centre(window, node_id: str) -> QPointF:
    item = window.scene.nodes[node_id]
    return item.mapToScene(item.geo.custom.center())


def value(window, node_id: str, name: str) -> float:
    return window.document.graph.nodes[node_id].inputs[name]


def red_pixels(window, node_id: str) -> int:
    """Pixels of the failure colour in the node's custom area, as the viewport shows it."""
    view = window.view
    item = window.scene.nodes[node_id]
    area = view.mapFromScene(item.mapRectToScene(item.geo.custom)).boundingRect()
    image = view.viewport().grab().toImage()
    failed = theme.FAILED
    count = 0
    for x in range(max(0, area.left()), min(image.width(), area.right() + 1)):
        for y in range(max(0, area.top()), min(image.height(), area.bottom() + 1)):
            c = image.pixelColor(x, y)
            if abs(c.red() - failed.red()) < 40 and abs(c.green() - failed.green()) < 40 and abs(c.blue() - failed.blue()) < 40:
                count += 1
    return count


# -- layout ---------------------------------------------------------------------------------------
def test_a_registered_widget_adds_its_area_below_the_widget_rows_and_removing_it_restores_the_node(window, gui):
    node_id = add_levels(window)
    item = window.scene.nodes[node_id]
    plain = item.geo.height
    assert item.geo.custom is None and item.custom_widget is None

    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))  # a plugin enabled while the workflow is open
    widget_height = IMAGETOOLS_GUI.LevelsWidget.HEIGHT
    assert isinstance(item.custom_widget, IMAGETOOLS_GUI.LevelsWidget)
    assert item.geo.height == pytest.approx(plain + widget_height + ng.CUSTOM_MARGIN, abs=1)
    custom = item.geo.custom
    assert custom.height() == widget_height
    assert custom.top() > max(row.rect.bottom() for row in item.geo.widgets)
    assert custom.left() == ng.PAD and custom.right() == pytest.approx(item.geo.width - ng.PAD)

    assert gui.remove_plugin("imagetools") == [LEVELS]  # the plugin disabled
    assert item.geo.custom is None and item.custom_widget is None
    assert item.geo.height == plain


def test_a_collapsed_node_shows_no_widget_area_and_a_saved_size_still_applies(window, gui):
    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))
    node_id = add_levels(window)
    item = window.scene.nodes[node_id]
    natural = item.geo.height
    window.document.set_collapsed([node_id], True)
    assert item.geo.collapsed and item.geo.custom is None
    window.document.set_collapsed([node_id], False)
    window.document.resize_node(node_id, (300, natural + 40))
    assert item.geo.width == 300 and item.geo.height == natural + 40
    assert item.geo.custom.height() == pytest.approx(IMAGETOOLS_GUI.LevelsWidget.HEIGHT + 40)  # the area gets the room


# -- Levels, by mouse ------------------------------------------------------------------------------
def test_dragging_the_white_handle_left_lowers_white_and_one_undo_restores_it(window, gui):
    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))
    node_id = add_levels(window)
    doc = window.document
    steps = doc.history_index
    start = handle(window, node_id, "white")
    span = window.scene.nodes[node_id].geo.custom.width()
    drag(window.view, start, start - QPointF(span * 0.3, 0), steps=8)

    white = value(window, node_id, "white")
    assert 0.6 < white < 0.8
    assert value(window, node_id, "black") == 0.0 and value(window, node_id, "gamma") == 1.0
    assert doc.history_index == steps + 1, "the whole drag is one undo step"
    assert window.scene.interaction is None
    assert doc.graph.nodes[node_id] is not None and doc.node_pos(node_id) == (0.0, 0.0), "the node did not move"

    key(window.view, Qt.Key.Key_Z, CTRL)
    assert value(window, node_id, "white") == 1.0
    assert doc.history_index == steps


def test_dragging_the_midpoint_changes_gamma_the_way_it_is_dragged(window, gui):
    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))
    node_id = add_levels(window)
    span = window.scene.nodes[node_id].geo.custom.width()
    start = handle(window, node_id, "gamma")
    drag(window.view, start, start - QPointF(span * 0.25, 0))
    brighter = value(window, node_id, "gamma")
    assert brighter > 1.5  # midpoint at about a quarter: gamma about 2
    assert handle(window, node_id, "gamma").x() == pytest.approx(start.x() - span * 0.25, abs=3)

    start = handle(window, node_id, "gamma")
    drag(window.view, start, start + QPointF(span * 0.5, 0))
    assert value(window, node_id, "gamma") < 1.0


def test_levels_keeps_black_below_white(window, gui):
    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))
    node_id = add_levels(window, white=0.5)
    span = window.scene.nodes[node_id].geo.custom.width()
    start = handle(window, node_id, "black")
    drag(window.view, start, start + QPointF(span, 0))  # far past the white point
    black, white = value(window, node_id, "black"), value(window, node_id, "white")
    assert white == 0.5 and 0.45 < black < white - 0.01

    widget, rect = IMAGETOOLS_GUI.LevelsWidget(), window.scene.nodes[node_id].geo.custom
    values = {"black": 0.4, "gamma": 1.0, "white": 0.9}
    widget.press(widget.handle_pos("white", rect, values), rect, values)
    changes = widget.drag(QPointF(rect.left() - 50, rect.center().y()), rect, values)
    assert changes["white"] > 0.4 + 0.01


def test_esc_during_a_widget_drag_puts_the_value_back(window, gui):
    IMAGETOOLS_GUI.register_gui(gui.for_plugin("imagetools"))
    node_id = add_levels(window)
    steps = window.document.history_index
    start = handle(window, node_id, "white")
    press(window.view, start)
    move_to(window.view, start - QPointF(60, 0), Qt.MouseButton.LeftButton)
    assert value(window, node_id, "white") < 1.0  # applied live, while dragging
    key(window.view, Qt.Key.Key_Escape)
    release(window.view, start - QPointF(60, 0))
    assert value(window, node_id, "white") == 1.0
    assert window.document.history_index == steps and window.document.can_undo == (steps > 0)


# -- widgets that misbehave ------------------------------------------------------------------------
class PaintFails(gui_api.NodeWidget):
    def paint(self, painter, rect, values, style):
        painter.setPen(style.text)
        raise RuntimeError("no brush today")


class PressFails(gui_api.NodeWidget):
    def press(self, pos, rect, values):
        raise ValueError("bad press")


class WantsTooMuch(gui_api.NodeWidget):
    def press(self, pos, rect, values):
        return {"white": 5.0, "no_such_input": 1, "black": 0.25}


def test_a_widget_whose_paint_raises_shows_the_error_and_the_editor_keeps_painting(window, gui, qtbot, caplog):
    gui.add_node_widget(LEVELS, PaintFails, plugin="imagetools")
    node_id = add_levels(window)
    with caplog.at_level(logging.ERROR, logger=node_item.__name__):
        assert red_pixels(window, node_id) > 20
        window.document.set_input(node_id, "gamma", 2.0)  # repaint after a change: still failing, still shown
        assert red_pixels(window, node_id) > 20
        window.view.viewport().repaint()
    assert len([r for r in caplog.records if LEVELS in r.getMessage()]) == 1, "logged once, not on every paint"

    gui.remove_plugin("imagetools")
    gui.add_node_widget(LEVELS, gui_api.NodeWidget, plugin="imagetools")
    assert red_pixels(window, node_id) == 0
    click(window.view, custom_centre(window, node_id))  # the canvas still answers
    assert window.scene.selected_node_ids() == [node_id]


def test_a_widget_whose_press_raises_ends_the_gesture_with_a_message(window, gui, messages):
    gui.add_node_widget(LEVELS, PressFails, plugin="imagetools")
    node_id = add_levels(window)
    steps = window.document.history_index
    spot = custom_centre(window, node_id)
    drag(window.view, spot, spot + QPointF(80, 40))
    assert window.scene.interaction is None
    assert any(LEVELS in text and "bad press" in text for text in messages)
    assert window.document.node_pos(node_id) == (0.0, 0.0), "the press was the widget's: the node did not move"
    assert window.document.history_index == steps


def test_values_a_widget_returns_are_checked_and_bad_ones_refused(window, gui, messages):
    gui.add_node_widget(LEVELS, WantsTooMuch, plugin="imagetools")
    node_id = add_levels(window)
    click(window.view, custom_centre(window, node_id))
    assert value(window, node_id, "white") == 1.0  # out of range: refused
    assert value(window, node_id, "black") == 0.25  # the good one still applies
    assert any("white" in text for text in messages)
    assert any("no_such_input" in text for text in messages)


# -- the registry ----------------------------------------------------------------------------------
def test_the_registry_refuses_what_is_not_a_widget_and_a_second_plugins_widget(gui):
    with pytest.raises(ValueError, match="NodeWidget"):
        gui.add_node_widget(LEVELS, object)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NodeWidget"):
        gui.add_node_widget(LEVELS, IMAGETOOLS_GUI.LevelsWidget())  # an instance, not the class
    assert gui.for_plugin("imagetools").add_node_widget("Levels", IMAGETOOLS_GUI.LevelsWidget) == LEVELS
    with pytest.raises(ValueError, match="imagetools"):
        gui.add_node_widget(LEVELS, gui_api.NodeWidget, plugin="other")
    gui.add_node_widget(LEVELS, gui_api.NodeWidget, plugin="imagetools")  # its own plugin may replace it (reload)
    assert gui.node_widget_class(LEVELS) is gui_api.NodeWidget
    assert gui.remove_plugin("other") == []
    assert gui.remove_plugin("imagetools") == [LEVELS] and gui.node_widget_class(LEVELS) is None


def test_isolated_registries_do_not_leak(gui):
    assert gui_api.shared() is gui
    with gui_api.isolated() as inner:
        inner.add_node_widget(LEVELS, gui_api.NodeWidget)
        assert gui_api.shared() is inner
    assert gui_api.shared() is gui and gui.node_widget_class(LEVELS) is None


def test_a_closed_canvas_stops_listening(qtbot, registry, gui):
    scene = CanvasScene(Document(registry=registry))
    assert gui.listener_count == 1
    scene.close()
    assert gui.listener_count == 0
    gui.add_node_widget(LEVELS, gui_api.NodeWidget)  # nobody left to tell: no error

    forgotten = CanvasScene(Document(registry=registry))
    assert gui.listener_count == 1
    del forgotten
    gc.collect()
    assert gui.listener_count == 0, "the registry holds canvases weakly"


def test_the_widget_style_follows_the_theme(qtbot):
    app = QApplication.instance()
    try:
        theme.apply_theme(app, "light")
        light = gui_api.WidgetStyle.current()
        assert not light.dark and light.background == theme.WIDGET_BG and light.text == theme.WIDGET_TEXT
    finally:
        theme.apply_theme(app, "dark")
    dark = gui_api.WidgetStyle.current()
    assert dark.dark and dark.background != light.background
