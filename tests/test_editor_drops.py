"""Files dropped on the canvas or the window, and pictures opened from the menu: workflows open in
tabs, pictures become Load Image nodes where they fell, and a PNG that carries a workflow asks.

Drops are real Qt drag events (enter, move, drop) carrying file URLs, sent to the canvas viewport
or to another part of the window, as the platform delivers them at the end of a drag.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from editor_support import key, open_window
from PIL import Image, PngImagePlugin
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget

from studio.core.document import Document
from studio.core.paths import find_input_file
from studio.core.workflow import workflow_to_dict

CTRL = Qt.KeyboardModifier.ControlModifier
NONE, NO_MOD, COPY = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.DropAction.CopyAction


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def drop(widget: QWidget, paths: list[Path], pos: QPoint) -> bool:
    """Drag ``paths`` onto ``widget`` at ``pos`` and let go; whether the drop was taken."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(pos, COPY, mime, NONE, NO_MOD)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDragMoveEvent(pos, COPY, mime, NONE, NO_MOD))
    event = QDropEvent(QPointF(pos), COPY, mime, NONE, NO_MOD)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def picture(path: Path, chunks: dict[str, tuple[str, str]] | None = None) -> Path:
    """A small picture; ``chunks`` maps a PNG text keyword to (kind, text), kind tEXt, zTXt or iTXt."""
    info = PngImagePlugin.PngInfo()
    for keyword, (kind, text) in (chunks or {}).items():
        if kind == "iTXt":
            info.add_itxt(keyword, text)
        else:
            info.add_text(keyword, text, zip=kind == "zTXt")
    Image.new("RGB", (24, 16), (200, 80, 40)).save(path, pnginfo=info if chunks else None)
    return path


def ours(registry, name: str = "From a picture") -> str:
    doc = Document(registry=registry)
    a = doc.add_node("PrimitiveInt", (40, 80), {"value": 11})
    p = doc.add_node("PreviewAny", (400, 80))
    doc.connect(a, 0, p, "source")
    doc.workflow.meta["name"] = name
    return json.dumps(workflow_to_dict(doc.workflow))


COMFY_PROMPT = json.dumps({"7": {"class_type": "PrimitiveInt", "inputs": {"value": 4}},
                           "9": {"class_type": "MathInt", "inputs": {"a": ["7", 0], "b": 2, "operation": "add"}}})


def centre(window) -> QPoint:
    return window.view.viewport().rect().center()


def test_a_dropped_picture_becomes_a_load_image_node_where_it_fell(window, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (20, 20), (10, 120, 200)).save(photo)
    spot = centre(window) + QPoint(-80, 40)
    assert drop(window.view.viewport(), [photo], spot)
    (node,) = window.document.graph
    assert node.type == "LoadImage" and node.inputs["image"] == str(photo.resolve())
    assert find_input_file(node.inputs["image"], None) == photo.resolve(), "Load Image finds it by that path"
    where = window.view.mapToScene(spot)
    x, y = window.document.node_pos(node.id)
    assert abs(x - where.x()) <= 1 and abs(y - where.y()) <= 1
    assert window.scene.selected_node_ids() == [node.id]

    plain = picture(tmp_path / "plain.png")  # a PNG without a workflow is just a picture: no question
    window.ask_png_drop = lambda path: pytest.fail("asked about a PNG that carries no workflow")
    assert drop(window.view.viewport(), [plain, photo], centre(window))
    assert sorted(n.inputs["image"] for n in window.document.graph)[1:] == sorted(
        [str(photo.resolve()), str(plain.resolve())])
    key(window.view, Qt.Key.Key_Z, CTRL)  # the two dropped together are one step
    assert len(window.document.graph) == 1


def test_a_png_that_carries_a_workflow_asks_whether_to_open_it_or_use_the_picture(window, registry, tmp_path):
    png = picture(tmp_path / "render.png", {"nuance": ("zTXt", ours(registry)), "prompt": ("tEXt", COMFY_PROMPT)})
    window.document.add_node("MathInt", (0, 0))
    doc = window.document
    answers = []
    window.ask_png_drop = lambda path: answers.append(path) or "cancel"
    assert drop(window.view.viewport(), [png], centre(window))
    assert answers == [png] and len(doc.graph) == 1 and window.tabs.count() == 1

    window.ask_png_drop = lambda path: "image"
    drop(window.view.viewport(), [png], centre(window))
    assert [n.type for n in doc.graph] == ["MathInt", "LoadImage"] and window.tabs.count() == 1

    window.ask_png_drop = lambda path: "workflow"
    drop(window.view.viewport(), [png], centre(window))
    assert window.tabs.count() == 2 and window.document is not doc
    opened = window.document
    assert sorted(n.type for n in opened.graph) == ["PreviewAny", "PrimitiveInt"], "our chunk, not ComfyUI's"
    assert opened.node_pos("1") == (40, 80) and len(opened.graph.links) == 1
    assert window.file_path is None, "saving never writes over the picture"
    assert window.windowTitle().startswith("From a picture")


def test_workflows_dropped_anywhere_on_the_window_open_in_tabs(window, registry, tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text(ours(registry, "Mine"), encoding="utf-8")
    api = tmp_path / "api.json"
    api.write_text(COMFY_PROMPT, encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello", encoding="utf-8")
    assert drop(window.tabs.tabBar(), [mine, api, notes], QPoint(5, 5))  # not on the canvas
    assert window.tabs.count() == 2  # the untouched first tab took the first workflow
    first, second = window.workflow_tabs()
    assert first.file_path == mine.resolve() and len(first.document.graph) == 2
    assert second.file_path is None and sorted(n.type for n in second.document.graph) == ["MathInt", "PrimitiveInt"]
    assert len(second.document.graph.links) == 1
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    drop(window.view.viewport(), [notes], centre(window))
    assert any("Cannot use notes.txt" in m for m in messages)


def test_open_reads_a_pictures_workflow_and_says_when_it_has_none(window, registry, tmp_path, monkeypatch):
    only_comfy = picture(tmp_path / "comfy.png", {"prompt": ("iTXt", COMFY_PROMPT), "workflow": ("tEXt", "{}")})
    bare = picture(tmp_path / "bare.png")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(only_comfy), ""))
    key(window.view, Qt.Key.Key_O, CTRL)
    doc = window.document
    assert sorted(n.type for n in doc.graph) == ["MathInt", "PrimitiveInt"] and window.file_path is None

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bare), ""))
    key(window.view, Qt.Key.Key_O, CTRL)
    assert window.document is doc and window.tabs.count() == 1
    message = window.statusBar().currentMessage()
    assert "bare.png" in message and "carries no workflow" in message

    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    window.document.add_node("PrimitiveInt", (0, 300))
    before = only_comfy.read_bytes()
    key(window.view, Qt.Key.Key_S, CTRL)
    assert asked and only_comfy.read_bytes() == before
