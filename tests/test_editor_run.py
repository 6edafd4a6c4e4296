"""Running graphs from the editor: Ctrl+Enter, live node states, outputs, cancel, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from editor_support import click, drag, header_pos, input_pos, key, multiply_graph, open_window, output_pos, slow_graph
from PySide6.QtCore import QPointF, Qt

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def run(window, qtbot, timeout=5000):
    """Press Ctrl+Enter and wait until the run is over (the window stays responsive meanwhile)."""
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not window.runs.busy and not window.run_label.text(), timeout=timeout)


def test_ctrl_enter_runs_the_graph_and_shows_its_output_then_marks_cached_nodes(window, qtbot):
    x, y, m, p = multiply_graph(window)
    run(window, qtbot)
    scene = window.scene
    assert scene.nodes[p].output_text == "42"
    assert scene.nodes[m].run.status == "done"
    assert "Run finished" in window.statusBar().currentMessage()
    # A changed value re-runs exactly what depends on it; the rest is marked cached.
    window.document.set_input(y, "value", 8)
    run(window, qtbot)
    assert scene.nodes[p].output_text == "48"
    assert scene.nodes[x].run.status == "cached"
    assert scene.nodes[m].run.status == "done"


def test_output_images_appear_in_the_viewer(window, qtbot):
    doc = window.document
    doc.add_node("test.Picture", (0, 0), {"width": 40, "height": 30})
    run(window, qtbot)
    viewer = window.viewer
    assert viewer.current_path is not None and Path(viewer.current_path).is_file()
    pixmap = viewer.view.item.pixmap()
    assert (pixmap.width(), pixmap.height()) == (40, 30)
    assert "40×30" in viewer.caption.text()
    viewer.one_button.click()
    assert viewer.view.transform().m11() == 1.0


def test_escape_cancels_a_run_and_the_app_keeps_working(window, qtbot):
    doc = window.document
    slow, shown = slow_graph(window, 500)
    key(window.view, Qt.Key.Key_Return, CTRL)
    item = window.scene.nodes[slow]
    qtbot.waitUntil(lambda: item.run.status == "running" and (item.run.progress or 0) > 0, timeout=5000)
    key(window.view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=3000)
    qtbot.waitUntil(lambda: "cancelled" in window.statusBar().currentMessage(), timeout=3000)
    assert item.run.status == ""
    assert window.scene.nodes[shown].output_text == ""
    doc.set_input(slow, "steps", 3)
    run(window, qtbot)
    assert window.scene.nodes[shown].output_text == "3"


def test_a_failing_node_turns_red_with_its_message_and_others_still_work(window, qtbot):
    _, y, m, p = multiply_graph(window)
    doc = window.document
    doc.set_input(m, "operation", "divide")
    doc.set_input(y, "value", 0)
    run(window, qtbot)
    item = window.scene.nodes[m]
    assert item.run.status == "failed"
    assert item.toolTip() == "ValueError: cannot divide by zero (b is 0)"
    assert "cannot divide by zero" in window.statusBar().currentMessage()
    assert window.scene.nodes[p].run.status == "skipped"
    doc.set_input(y, "value", 3)
    run(window, qtbot)
    assert item.run.status == "done" and window.scene.nodes[p].output_text == "2"


def test_a_graph_that_cannot_run_shows_the_problem_on_its_node(window, qtbot):
    doc = window.document
    m = doc.add_node("MathInt", (0, 0))
    p = doc.add_node("PreviewAny", (300, 0))
    key(window.view, Qt.Key.Key_Home)
    drag(window.view, output_pos(window, m), input_pos(window, p, "source"))
    doc.disconnect(p, "source")
    key(window.view, Qt.Key.Key_Return, CTRL)
    assert window.scene.nodes[p].run.status == "failed"
    assert "required input is not connected" in window.scene.nodes[p].toolTip()
    assert "cannot run" in window.statusBar().currentMessage()
    assert not window.runs.busy


def test_seed_control_increments_after_each_run(window, qtbot):
    doc = window.document
    seed = doc.add_node("Seed", (0, 0), {"seed": 5})
    shown = doc.add_node("PreviewAny", (300, 0))
    doc.connect(seed, 0, shown, "source")
    key(window.view, Qt.Key.Key_Home)
    scene = window.scene
    item = scene.nodes[seed]
    row = item.geo.widgets[1]
    assert row.kind == "control"
    click(window.view, item.mapToScene(QPointF(row.rect.right() - 6, row.rect.center().y())))
    assert doc.ui["nodes"][seed]["controls"] == {"seed": "increment"}
    run(window, qtbot)
    assert scene.nodes[shown].output_text == "5"
    assert doc.graph.nodes[seed].inputs["seed"] == 6
    run(window, qtbot)
    assert scene.nodes[shown].output_text == "6"


def test_runs_never_block_editing(window, qtbot):
    doc = window.document
    slow = doc.add_node("test.Slow", (0, 0), {"steps": 60})
    doc.add_node("PreviewAny", (300, 0))
    doc.connect(slow, 0, "2", "source")
    key(window.view, Qt.Key.Key_Home)
    key(window.view, Qt.Key.Key_Return, CTRL)
    start = header_pos(window, "2")
    drag(window.view, start, start + QPointF(0, 80))
    assert window.runs.busy, "the edit happened while the run was still going"
    assert doc.node_pos("2") == (300, 80)
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=5000)


def test_a_node_reporting_previews_shows_them_live_in_the_viewer(window, qtbot):
    doc = window.document
    noise = doc.add_node("test.Noise", (0, 0), {"steps": 3})
    shown = doc.add_node("PreviewAny", (300, 0))
    doc.connect(noise, 0, shown, "source")
    run(window, qtbot)
    pixmap = window.viewer.view.item.pixmap()
    assert (pixmap.width(), pixmap.height()) == (12, 8)
    assert pixmap.toImage().pixelColor(0, 0).red() == 80  # the last step's preview
    assert window.viewer.caption.text() == "Noise: step 3/3"
