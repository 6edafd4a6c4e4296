"""The gallery of saved pictures (newest first, lazy thumbnails, restore, reveal) and the viewer's A/B compare."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from editor_support import key, open_window
from PIL import Image, PngImagePlugin
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QDesktopServices, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.core.graph import Graph
from studio.core.workflow import Workflow, workflow_to_dict
from studio.engine import RunOptions
from studio.ui import panels, thumbnails

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def picture(path: Path, colour: tuple[int, int, int], age: float = 0.0, size=(40, 30), chunks=None) -> Path:
    """A PNG in the output folder, ``age`` seconds old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for name, text in (chunks or {}).items():
        info.add_text(name, text)
    Image.new("RGB", size, colour).save(path, pnginfo=info)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def gallery_of(window):
    found = panels.of(window)
    found.gallery_dock.raise_()
    return found.gallery


def click_row(gallery, row: int, mods=Qt.KeyboardModifier.NoModifier, double: bool = False) -> None:
    rect = gallery.list.visualRect(gallery.model.index(row))
    QTest.mouseClick(gallery.list.viewport(), LEFT, mods, rect.center())
    if double:  # QTest's double click is the second click only: the first one comes before it, as with a mouse
        QTest.mouseDClick(gallery.list.viewport(), LEFT, mods, rect.center())


def names(gallery) -> list[str]:
    return [Path(p.path).name for p in gallery.model.pictures]


def test_pictures_newest_first_with_thumbnails_and_runs_add_theirs(window, qtbot):
    out = RunOptions().resolved_output_dir()
    picture(out / "old.png", (255, 0, 0), age=300)
    picture(out / "sub" / "newer.png", (0, 255, 0), age=100)
    gallery = gallery_of(window)
    QTest.mouseClick(gallery.button(gallery.refresh_action), LEFT)
    assert names(gallery) == ["newer.png", "old.png"]
    index = gallery.model.index(0)
    qtbot.waitUntil(lambda: thumbnails.shared().get(str(out / "sub" / "newer.png")) is not None, timeout=3000)
    thumb = gallery.model.data(index, Qt.ItemDataRole.DecorationRole).pixmap(40, 30)
    assert thumb.toImage().pixelColor(5, 5).green() == 255
    # A run that saves a picture puts it first, without a click.
    window.document.add_node("test.Picture", (0, 0), {"width": 20, "height": 10})
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: len(gallery.model.pictures) == 3, timeout=5000)
    assert names(gallery)[0].startswith("picture")


def test_hundreds_of_pictures_open_at_once_and_only_visible_thumbnails_are_decoded(window, qtbot):
    out = RunOptions().resolved_output_dir()
    for i in range(400):
        picture(out / f"p{i:03d}.png", (i % 256, 0, 0), age=1000 - i, size=(8, 8))
    gallery = gallery_of(window)
    before = thumbnails.shared().requested
    started = time.perf_counter()
    QTest.mouseClick(gallery.button(gallery.refresh_action), LEFT)
    QApplication.processEvents()
    assert time.perf_counter() - started < 1.0
    assert len(gallery.model.pictures) == 400 and names(gallery)[0] == "p399.png"
    qtbot.waitUntil(lambda: thumbnails.shared().requested > before, timeout=3000)
    assert thumbnails.shared().requested - before < 200, "thumbnails are decoded as rows are drawn, not all at once"


def test_show_in_viewer_restore_the_workflow_and_reveal_the_file(window, qtbot, monkeypatch, registry):
    out = RunOptions().resolved_output_dir()
    graph = Graph()
    graph.add_node("PrimitiveInt", {"value": 41}, id="1")
    graph.add_node("PreviewAny", id="2")
    carried = json.dumps(workflow_to_dict(Workflow(graph)))
    picture(out / "made.png", (0, 0, 255), age=10, chunks={"nuance": carried})
    picture(out / "plain.png", (255, 255, 0), age=20)
    gallery = gallery_of(window)
    QTest.mouseClick(gallery.button(gallery.refresh_action), LEFT)
    assert names(gallery) == ["made.png", "plain.png"]

    click_row(gallery, 1, double=True)
    assert window.viewer.current_path == str(out / "plain.png")

    opened: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    click_row(gallery, 1)
    QTest.mouseClick(gallery.button(gallery.reveal_action), LEFT)
    assert opened == [str(out)]

    QTest.mouseClick(gallery.button(gallery.restore_action), LEFT)
    assert "carries no workflow" in window.statusBar().currentMessage()
    click_row(gallery, 0)
    QTest.mouseClick(gallery.button(gallery.restore_action), LEFT)
    nodes = window.document.graph.nodes
    assert {n.type for n in nodes.values()} == {"PrimitiveInt", "PreviewAny"} and nodes["1"].inputs["value"] == 41
    assert set(window.scene.nodes) == {"1", "2"}


def drag_in(widget, start: QPoint, end: QPoint, steps: int = 5) -> None:
    QTest.mousePress(widget, LEFT, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        point = QPointF(start + (end - start) * (i / steps))
        QApplication.sendEvent(widget, QMouseEvent(QEvent.Type.MouseMove, point, QPointF(widget.mapToGlobal(point)),
                                                   Qt.MouseButton.NoButton, LEFT, Qt.KeyboardModifier.NoModifier))
    QTest.mouseRelease(widget, LEFT, Qt.KeyboardModifier.NoModifier, end)


def test_viewer_compares_two_pictures_with_a_split_line_to_drag(window, qtbot):
    out = RunOptions().resolved_output_dir()
    picture(out / "a.png", (250, 0, 0), age=20, size=(200, 100))
    picture(out / "b.png", (0, 0, 250), age=10, size=(200, 100))
    gallery = gallery_of(window)
    QTest.mouseClick(gallery.button(gallery.refresh_action), LEFT)
    click_row(gallery, 0)
    click_row(gallery, 1, mods=CTRL)
    QTest.mouseClick(gallery.button(gallery.show_action), LEFT)
    viewer = window.viewer
    assert len(viewer.paths) == 2 and viewer.compare_button.isEnabled()
    canvas_width = window.view.width()

    QTest.mouseClick(viewer.compare_button, LEFT)
    assert viewer.comparing and viewer.a_combo.isVisible() and viewer.b_combo.isVisible()
    assert window.view.width() == canvas_width, "comparing does not take width from the canvas"
    assert not viewer.next_button.isEnabled()
    viewport = viewer.view.viewport()

    def colour_at(fraction: float):
        rect = viewer.view.compare.boundingRect()
        spot = viewer.view.mapFromScene(QPointF(rect.width() * fraction, rect.height() / 2))
        return viewport.grab().toImage().pixelColor(spot)

    assert colour_at(0.3).blue() > 200 and colour_at(0.7).red() > 200  # A (newest, b.png) left, B right
    line = QPoint(round(viewer.view.split_x()), viewport.height() // 2)
    target = viewer.view.mapFromScene(QPointF(viewer.view.compare.boundingRect().width() * 0.2, 50))
    drag_in(viewport, line, QPoint(target.x(), line.y()))
    assert abs(viewer.view.compare.split - 0.2) < 0.03
    assert colour_at(0.3).red() > 200, "right of the line, B shows"

    viewer.b_combo.setFocus()
    QTest.keyClick(viewer.b_combo, Qt.Key.Key_Up)  # B: the first picture too
    assert viewer.b_combo.currentIndex() == 0 and colour_at(0.5).blue() > 200
    QTest.mouseClick(viewer.one_button, LEFT)
    assert viewer.view.transform().m11() == 1.0
    QTest.mouseClick(viewer.compare_button, LEFT)
    assert not viewer.comparing and viewer.view.item.isVisible() and viewer.next_button.isEnabled()
