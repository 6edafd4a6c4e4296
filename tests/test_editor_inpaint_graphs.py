"""One-click inpainting graphs around a Load Image node: a real click on the node's context menu or
the Edit menu inserts the example's chain, wired, laid out to the right, valid, and gone with one undo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from editor_support import key, open_window, snapshot
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu
from test_mask_editor_dialog import click_menu_item, open_node_menu

from studio.core.validate import check_graph
from studio.ui import panels

CTRL = Qt.KeyboardModifier.ControlModifier
COMMON = ["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode", "VAEEncodeForInpaint", "KSampler", "VAEDecode",
          "SaveImage"]
ADDED = {"Inpaint": COMMON, "Inpaint masked area only": [*COMMON, "InpaintCrop", "InpaintStitch"],
         "Outpaint": [*COMMON, "ImagePadForOutpaint"]}


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    rgba = np.full((64, 64, 4), 200, np.uint8)
    rgba[20:40, 20:40, 3] = 0  # a clear square: the area to repaint
    path = tmp_path / "photo.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def added_types(window, before: set[str]) -> list[str]:
    return sorted(window.document.graph.nodes[nid].type for nid in set(window.document.graph.nodes) - before)


@pytest.mark.parametrize("text", list(ADDED))
def test_the_node_menu_builds_the_chain_as_one_undo_step(window, qtbot, picture, text):
    doc, scene = window.document, window.scene
    load = doc.add_node("LoadImage", (0, 0), {"image": str(picture)})
    key(window.view, Qt.Key.Key_Home)
    before, start, nodes = snapshot(window), doc.history_index, set(doc.graph.nodes)
    click_menu_item(open_node_menu(window, qtbot, load), text)
    assert added_types(window, nodes) == sorted(ADDED[text])
    assert doc.history_index == start + 1
    check_graph(doc.graph, window.registry)  # raises when the graph cannot run
    fed = {link.to_node for link in doc.graph.links.values() if link.from_node == load}
    assert fed and fed <= set(doc.graph.nodes) - nodes  # the picture feeds the new chain
    right = scene.nodes[load].sceneBoundingRect().right()
    boxes = [scene.nodes[nid].sceneBoundingRect() for nid in set(doc.graph.nodes) - nodes]
    assert all(box.left() > right for box in boxes)  # laid out to the right of the node
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])  # and apart
    doc.undo()
    assert snapshot(window)["graph"] == before["graph"] and snapshot(window)["ui"]["nodes"] == before["ui"]["nodes"]


def test_the_edit_menu_acts_on_the_selected_load_image_and_reuses_its_checkpoint(window, qtbot, picture):
    doc, scene = window.document, window.scene
    ckpt = doc.add_node("CheckpointLoaderSimple", (0, 300))
    load = doc.add_node("LoadImage", (0, 0), {"image": str(picture)})
    key(window.view, Qt.Key.Key_Home)
    edit = panels.menu(window, "&Edit")

    def click_edit(text: str) -> None:
        edit.popup(window.mapToGlobal(QPoint(10, 10)))
        qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
        click_menu_item(edit, text)

    messages: list[str] = []
    window.show_message = messages.append
    scene.select(nodes=[])
    nodes = set(doc.graph.nodes)
    click_edit("Outpaint")
    assert set(doc.graph.nodes) == nodes and "Select a Load Image node" in messages[-1]

    scene.select(nodes=[load])
    click_edit("Outpaint")
    assert added_types(window, nodes) == sorted(ADDED["Outpaint"][1:])  # no second checkpoint loader
    check_graph(doc.graph, window.registry)
    assert {link.to_node for link in doc.graph.links.values() if link.from_node == ckpt} >= {
        nid for nid in doc.graph.nodes if doc.graph.nodes[nid].type in ("KSampler", "VAEDecode")}
    pad = next(nid for nid in doc.graph.nodes if doc.graph.nodes[nid].type == "ImagePadForOutpaint")
    assert doc.graph.nodes[pad].inputs["right"] > 0  # something to paint
    doc.undo()
    assert set(doc.graph.nodes) == nodes


@pytest.mark.slow
def test_a_built_outpaint_graph_runs_on_the_demo_model(window, qtbot, picture):
    doc = window.document
    load = doc.add_node("LoadImage", (0, 0), {"image": str(picture)})
    key(window.view, Qt.Key.Key_Home)
    click_menu_item(open_node_menu(window, qtbot, load), "Outpaint")
    sampler = next(nid for nid in doc.graph.nodes if doc.graph.nodes[nid].type == "KSampler")
    doc.set_input(sampler, "steps", 4)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keyClick(window.view.viewport(), Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not window.runs.busy and not window.run_label.text(), timeout=60_000)
    assert "Run finished" in window.statusBar().currentMessage()
    with Image.open(window.viewer.current_path) as result:
        assert result.size == (64 + 32, 64)  # the picture, widened on the right
