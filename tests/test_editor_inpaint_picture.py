""""Inpaint this…" from the image viewer's button and the gallery's context menu, with real clicks: a Load
Image node naming the file (absolute path) and the Inpaint chain around it come in one undo step, the
graph validates, and the mask editor opens on the new node (closed here with its Cancel button)."""

from __future__ import annotations

from pathlib import Path

import pytest
from editor_support import LEFT, NO_MOD, open_window
from PIL import Image
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMenu
from test_editor_gallery import gallery_of
from test_editor_inpaint_graphs import ADDED, added_types
from test_mask_editor_dialog import click_menu_item, press_button, shown_dialog

from studio.core.validate import check_graph
from studio.engine import RunOptions


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def output_picture(name: str = "made.png") -> Path:
    out = RunOptions().resolved_output_dir()
    out.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (30, 140, 90)).save(out / name)
    return out / name


def check_inpaint_graph(window, qtbot, picture: Path, nodes_before: set[str], history_before: int) -> None:
    doc = window.document
    (load,) = [nid for nid in set(doc.graph.nodes) - nodes_before if doc.graph.nodes[nid].type == "LoadImage"]
    assert doc.graph.nodes[load].inputs["image"] == str(picture.resolve())
    assert added_types(window, nodes_before) == sorted(["LoadImage", *ADDED["Inpaint"]])
    assert {link.to_node for link in doc.graph.links.values() if link.from_node == load}  # the picture feeds the chain
    check_graph(doc.graph, window.registry)  # raises when the graph cannot run
    assert doc.history_index == history_before + 1  # the node and its chain: one undo step
    dialog = shown_dialog(window, qtbot)
    assert dialog.node_id == load and dialog.image_path == picture.resolve()
    assert dialog.editor.model.width == 64 and dialog.editor.model.height == 48
    press_button(dialog, QDialogButtonBox.StandardButton.Cancel)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert doc.history_index == history_before + 1 and not doc.graph.nodes[load].inputs.get("mask")
    doc.undo()
    assert set(doc.graph.nodes) == nodes_before


def test_inpaint_from_the_viewer_button(window, qtbot):
    picture = output_picture()
    doc = window.document
    kept = doc.add_node("LoadImage", (0, 0), {"image": ""})  # an existing node: the new ones go below it
    viewer = window.viewer
    assert not viewer.inpaint_button.isEnabled()  # nothing shown yet
    viewer.show_images([str(picture)])
    assert viewer.inpaint_button.isEnabled()
    nodes, history = set(doc.graph.nodes), doc.history_index
    QTest.mouseClick(viewer.inpaint_button, LEFT)
    boxes = [window.scene.nodes[nid].sceneBoundingRect() for nid in set(doc.graph.nodes) - nodes]
    assert not any(box.intersects(window.scene.nodes[kept].sceneBoundingRect()) for box in boxes)  # placed apart
    check_inpaint_graph(window, qtbot, picture, nodes, history)
    assert kept in doc.graph.nodes


def test_inpaint_from_the_gallery_context_menu(window, qtbot):
    picture = output_picture("gallery.png")
    gallery = gallery_of(window)
    QTest.mouseClick(gallery.button(gallery.refresh_action), LEFT)
    assert [p.path for p in gallery.model.pictures] == [str(picture)]
    doc = window.document
    nodes, history = set(doc.graph.nodes), doc.history_index
    viewport = gallery.list.viewport()
    spot = gallery.list.visualRect(gallery.model.index(0)).center()
    QApplication.sendEvent(viewport, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, spot, viewport.mapToGlobal(spot)))
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
    click_menu_item(QApplication.activePopupWidget(), "Inpaint this…")
    check_inpaint_graph(window, qtbot, picture, nodes, history)


def test_a_picture_gone_from_disk_is_reported(window, qtbot):
    picture = output_picture("gone.png")
    window.viewer.show_images([str(picture)])
    picture.unlink()
    messages: list[str] = []
    window.show_message = messages.append
    nodes = set(window.document.graph.nodes)
    QTest.mouseClick(window.viewer.inpaint_button, LEFT, NO_MOD)
    assert set(window.document.graph.nodes) == nodes and "not found" in messages[0]
