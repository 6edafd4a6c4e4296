"""Driving the editor the way a user does: real mouse and key events sent to the canvas viewport.

Positions are given in scene coordinates and mapped through the view, so a test says "drag from
this socket to that one" and the events travel the same path as a real mouse's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.api import Int, Node, NodePack, Output, RunContext
from studio.plugins import LoadReport, register_pack

LEFT, MIDDLE = Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton
NO_MOD = Qt.KeyboardModifier.NoModifier


class Slow(Node):
    """Counts slowly, reporting each step: something to cancel."""

    NAME = "Slow"
    CATEGORY = "testing"
    DESCRIPTION = "Counts to steps, a little at a time."
    INPUTS = [Int("steps", 200, min=1, max=10_000)]
    OUTPUTS = [Output("INT", "INT")]
    DETERMINISTIC = False

    def run(self, ctx: RunContext, steps: int) -> int:
        for i in range(steps):
            ctx.progress(i + 1, steps)
            time.sleep(0.01)
        return steps


class Noise(Node):
    """Reports each step with a small RGB preview, as a sampler does."""

    NAME = "Noise"
    CATEGORY = "testing"
    DESCRIPTION = "A few steps, each with a preview picture."
    INPUTS = [Int("steps", 3, min=1, max=100)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx: RunContext, steps: int) -> int:
        import numpy as np

        for i in range(steps):
            ctx.progress(i + 1, steps, np.full((8, 12, 3), 40 * i, dtype=np.uint8))
        return steps


class Picture(Node):
    """Writes a small PNG and shows it, as Save Image does, without the diffusion stack."""

    NAME = "Picture"
    CATEGORY = "testing"
    DESCRIPTION = "A small picture of one colour."
    INPUTS = [Int("width", 40, min=1, max=512), Int("height", 30, min=1, max=512)]
    OUTPUT_NODE = True

    def run(self, ctx: RunContext, width: int, height: int) -> None:
        from PIL import Image

        path = ctx.reserve_output_file("picture", "png")
        Image.new("RGB", (width, height), (200, 40, 40)).save(path)
        ctx.show(images=[str(path)])


TEST_PACK = NodePack(name="test", nodes=[Slow, Noise, Picture])


def open_window(qtbot: Any, registry: Any) -> Any:
    """A main window with the built-in and test nodes, shown and focused; for a ``window`` fixture."""
    from studio.ui import theme
    from studio.ui.window import MainWindow

    register_pack(registry, TEST_PACK, builtin=False, report=LoadReport())
    theme.apply_dark_palette(QApplication.instance())
    win = MainWindow(registry)
    win.ask_unsaved = lambda: "discard"  # tests that care about the prompt replace this
    win.warn = lambda title, text: win.show_message(f"{title}: {text}")
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    win.view.setFocus()
    qtbot.waitUntil(lambda: win.isActiveWindow())
    yield win
    win.ask_unsaved = lambda: "discard"
    win.close()  # stops the run worker and drops the scene's items before Qt deletes the window


def open_preferences(window: Any, qtbot: Any) -> Any:
    """Edit > Preferences by its key (Ctrl+,); returns the dialog, shown."""
    from studio.ui import panels

    window.activateWindow()  # the offscreen platform leaves no window active once a dialog closes
    qtbot.waitUntil(window.isActiveWindow)
    key(window.view, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    dialog = panels.of(window).preferences.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def press_ok(dialog: Any) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    QTest.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)


def multiply_graph(window: Any, a: int = 6, b: int = 7) -> tuple[str, str, str, str]:
    """Setup for run tests: a × b shown by a Preview Any node, fitted in view; returns the ids."""
    doc = window.document
    x = doc.add_node("PrimitiveInt", (0, 0), {"value": a})
    y = doc.add_node("PrimitiveInt", (0, 150), {"value": b})
    m = doc.add_node("MathInt", (300, 0), {"operation": "multiply"})
    p = doc.add_node("PreviewAny", (600, 0))
    doc.connect(x, 0, m, "a")
    doc.connect(y, 0, m, "b")
    doc.connect(m, 0, p, "source")
    key(window.view, Qt.Key.Key_Home)
    return x, y, m, p


def slow_graph(window: Any, steps: int) -> tuple[str, str]:
    """Setup for cancel and queue tests: a Slow counter shown by a Preview Any node, in view."""
    doc = window.document
    slow = doc.add_node("test.Slow", (0, 0), {"steps": steps})
    shown = doc.add_node("PreviewAny", (300, 0))
    doc.connect(slow, 0, shown, "source")
    key(window.view, Qt.Key.Key_Home)
    return slow, shown


def vp_point(view: Any, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def press(view: Any, scene_pos: QPointF, button: Qt.MouseButton = LEFT, mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.mousePress(view.viewport(), button, mods, vp_point(view, scene_pos))


def move_to(view: Any, scene_pos: QPointF | QPoint, buttons: Qt.MouseButton = Qt.MouseButton.NoButton,
            mods: Qt.KeyboardModifier = NO_MOD) -> None:
    """A mouse move carrying the buttons held (QTest.mouseMove does not say which are held)."""
    viewport = view.viewport()
    local = scene_pos if isinstance(scene_pos, QPoint) else vp_point(view, scene_pos)
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(local), QPointF(viewport.mapToGlobal(local)),
                        Qt.MouseButton.NoButton, buttons, mods)
    QApplication.sendEvent(viewport, event)


def release(view: Any, scene_pos: QPointF, button: Qt.MouseButton = LEFT, mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.mouseRelease(view.viewport(), button, mods, vp_point(view, scene_pos))


def drag(view: Any, start: QPointF, end: QPointF, button: Qt.MouseButton = LEFT, steps: int = 6,
         mods: Qt.KeyboardModifier = NO_MOD, before_release: Any = None) -> None:
    """Press at ``start``, move in steps to ``end`` with the button held, release there."""
    press(view, start, button, mods)
    for i in range(1, steps + 1):
        move_to(view, start + (end - start) * (i / steps), button, mods)
    if before_release is not None:
        before_release()
    release(view, end, button, mods)


def key(view: Any, key_code: Qt.Key, mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.keyClick(view.viewport(), key_code, mods)


def click(view: Any, scene_pos: QPointF, button: Qt.MouseButton = LEFT, mods: Qt.KeyboardModifier = NO_MOD) -> None:
    QTest.mouseClick(view.viewport(), button, mods, vp_point(view, scene_pos))


def double_click(view: Any, scene_pos: QPointF) -> None:
    QTest.mouseDClick(view.viewport(), LEFT, NO_MOD, vp_point(view, scene_pos))


def widget_centre(window: Any, node_id: str, name: str) -> QPointF:
    item = window.scene.nodes[node_id]
    row = item.geo.widget_for(name)
    assert row is not None, f"node {node_id} shows no widget {name!r}"
    return item.mapToScene(row.rect.center())


def output_pos(window: Any, node_id: str, index: int = 0) -> QPointF:
    return window.scene.nodes[node_id].output_pos(index)


def input_pos(window: Any, node_id: str, name: str) -> QPointF:
    item = window.scene.nodes[node_id]
    if name in item.geo.inputs:
        return item.input_pos(name)
    return widget_centre(window, node_id, name)


def header_pos(window: Any, node_id: str) -> QPointF:
    item = window.scene.nodes[node_id]
    return item.mapToScene(QPointF(item.geo.width / 2, 12))


def snapshot(window: Any) -> dict[str, Any]:
    import copy

    from studio.core.workflow import workflow_to_dict

    return copy.deepcopy(workflow_to_dict(window.document.workflow))


def data_files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern))
