"""The inspector: the selected node's type, description, inputs (editable, undoable) and last run."""

from __future__ import annotations

import pytest
from editor_support import click, header_pos, key, multiply_graph, open_window
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit

from studio.ui import panels

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def type_into(qtbot, widget: QLineEdit, text: str) -> None:
    """Click into a field, replace its text by typing, press Enter."""
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)
    QTest.keyClick(widget, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(widget, text)
    QTest.keyClick(widget, Qt.Key.Key_Return)


def test_clicking_a_node_shows_its_type_description_and_inputs(window):
    inspector = panels.of(window).inspector
    assert inspector.placeholder.isVisible() and not inspector.title_edit.isVisible()
    x, _, m, _ = multiply_graph(window)
    click(window.view, header_pos(window, m))
    assert inspector.node_id == m
    assert inspector.title_edit.placeholderText() == "Math (Int)"
    assert "MathInt" in inspector.type_label.text()
    assert inspector.description_label.text() == window.document.spec(m).description
    assert inspector.status_label.text() == "Last run: not run yet"
    linked = inspector.rows["a"]
    assert isinstance(linked, QLabel) and linked.text().startswith("← linked from Int") and not linked.isEnabled()
    assert isinstance(inspector.rows["operation"], QComboBox)
    assert inspector.rows["operation"].currentText() == "multiply"
    # Two nodes selected: the inspector says so instead of showing one of them.
    click(window.view, header_pos(window, x), mods=CTRL)
    assert inspector.node_id is None and inspector.placeholder.text().startswith("2 nodes selected")


def test_typed_values_are_document_commands_that_undo(window, qtbot):
    inspector = panels.of(window).inspector
    x, *_ = multiply_graph(window)
    click(window.view, header_pos(window, x))
    field = inspector.rows["value"]
    assert isinstance(field, QLineEdit) and field.text() == "6"
    type_into(qtbot, field, "12")
    assert window.document.graph.nodes[x].inputs["value"] == 12
    assert window.document.undo_text == "Change value"
    # A value the input refuses is reported and not applied.
    type_into(qtbot, field, "twelve")
    assert window.document.graph.nodes[x].inputs["value"] == 12
    assert "whole number" in window.statusBar().currentMessage()
    assert field.text() == "12"
    window.view.setFocus()
    key(window.view, Qt.Key.Key_Z, CTRL)
    assert window.document.graph.nodes[x].inputs["value"] == 6
    assert field.text() == "6", "the inspector follows the document on undo"
    # Renaming in the title field renames the node on the canvas.
    type_into(qtbot, inspector.title_edit, "Width")
    assert window.document.graph.nodes[x].title == "Width"
    assert window.scene.nodes[x].geo.title == "Width"


def test_choosing_from_a_list_and_canvas_edits_show_in_the_inspector(window):
    inspector = panels.of(window).inspector
    _, _, m, p = multiply_graph(window)
    click(window.view, header_pos(window, m))
    combo = inspector.rows["operation"]
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Up)  # multiply → the operation before it
    value = window.document.graph.nodes[m].inputs["operation"]
    assert value != "multiply" and value == combo.currentText()
    window.document.set_input(m, "operation", "add")  # as a canvas widget would
    assert combo.currentText() == "add"
    window.document.disconnect(m, "a")  # the wire goes: the input is a widget again
    assert isinstance(inspector.rows["a"], QLineEdit) and inspector.rows["a"].text() == "0"
    click(window.view, header_pos(window, p))
    window.document.disconnect(p, "source")  # a socket-only input says it is not connected
    assert inspector.rows["source"].text() == "a socket, not connected"


def test_the_last_run_status_and_time_of_the_selected_node(window, qtbot):
    inspector = panels.of(window).inspector
    _, y, m, p = multiply_graph(window)
    click(window.view, header_pos(window, m))
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: window.scene.nodes[p].output_text == "42", timeout=5000)
    qtbot.waitUntil(lambda: inspector.status_label.text().startswith("Last run: ran in "), timeout=3000)
    assert inspector.status_label.text().endswith(" s")
    key(window.view, Qt.Key.Key_Return, CTRL)  # nothing changed: the node's result is reused
    qtbot.waitUntil(lambda: "cached" in inspector.status_label.text(), timeout=5000)
    window.document.set_input(m, "operation", "divide")
    window.document.set_input(y, "value", 0)
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: "failed" in inspector.status_label.text(), timeout=5000)
    assert "cannot divide by zero" in inspector.status_label.text()


def test_typing_left_unconfirmed_goes_to_its_own_node_when_another_is_clicked(window):
    inspector = panels.of(window).inspector
    x, y, *_ = multiply_graph(window)
    click(window.view, header_pos(window, x))
    field = inspector.rows["value"]
    QTest.mouseClick(field, Qt.MouseButton.LeftButton)
    QTest.keyClick(field, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(field, "30")  # no Enter
    click(window.view, header_pos(window, y))
    assert window.document.graph.nodes[x].inputs["value"] == 30
    assert window.document.graph.nodes[y].inputs["value"] == 7
    assert inspector.node_id == y and inspector.rows["value"].text() == "7"
