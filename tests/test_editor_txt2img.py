"""The editor's promise, end to end, with mouse and keyboard alone: build the txt2img graph from an
empty canvas, run it on the bundled demo model and watch it progress, change the seed and see that
only the sampler onwards runs again, then save, close and reopen the work.

Every step is a real mouse or key event sent to the canvas viewport (or to the palette and the
in-place editor it opens); the model is only read, to check what the events did.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from editor_support import click, drag, input_pos, key, move_to, open_window, output_pos, snapshot, widget_centre
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from studio.engine import events as eev

pytestmark = pytest.mark.slow  # runs the demo model (a few seconds)

CTRL = Qt.KeyboardModifier.ControlModifier
#: (palette search, node type, where it goes as a share of the visible canvas): the txt2img graph
#: as an artist lays it out.
NODES = [("load checkpoint", "CheckpointLoaderSimple", (0.02, 0.35)),
         ("clip text encode", "CLIPTextEncode", (0.25, 0.02)),
         ("clip text encode", "CLIPTextEncode", (0.25, 0.38)),
         ("empty latent", "EmptyLatentImage", (0.25, 0.74)),
         ("ksampler", "KSampler", (0.49, 0.10)),
         ("vae decode", "VAEDecode", (0.74, 0.10)),
         ("save image", "SaveImage", (0.74, 0.40))]


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def add_from_palette(window, spot: QPointF, query: str, node_type: str) -> str:
    """Point at ``spot``, press Tab, type, walk the list with Down until ``node_type``, Enter."""
    view = window.view
    move_to(view, spot)
    key(view, Qt.Key.Key_Tab)
    palette = view.palette_popup
    assert palette.isVisible()
    QTest.keyClicks(palette.search, query)
    for _ in range(palette.list.count()):
        if palette.list.currentItem().data(Qt.ItemDataRole.UserRole) == node_type:
            break
        QTest.keyClick(palette.search, Qt.Key.Key_Down)
    assert palette.list.currentItem().data(Qt.ItemDataRole.UserRole) == node_type
    before = set(window.document.graph.nodes)
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    (added,) = set(window.document.graph.nodes) - before
    return added


def type_into_widget(window, node_id: str, name: str, text: str, commit=(Qt.Key.Key_Return, CTRL)) -> None:
    click(window.view, widget_centre(window, node_id, name))
    editor = window.view.editor.widget
    assert editor is not None and editor.isVisible()
    editor.selectAll()
    QTest.keyClicks(editor, text)
    QTest.keyClick(editor, commit[0], commit[1])


def run_and_wait(window, qtbot) -> None:
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not window.runs.busy and not window.run_label.text(), timeout=60_000)


def test_build_run_reseed_rerun_save_and_reopen_txt2img(window, qtbot, tmp_path, monkeypatch):
    view, doc = window.view, window.document
    assert len(doc.graph) == 0
    key(view, Qt.Key.Key_Minus, CTRL)  # zoom out twice: room for the whole graph
    key(view, Qt.Key.Key_Minus, CTRL)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    ids = {}
    for n, (query, node_type, (fx, fy)) in enumerate(NODES):
        spot = QPointF(visible.left() + fx * visible.width(), visible.top() + fy * visible.height())
        ids[n] = add_from_palette(window, spot, query, node_type)
    ckpt, positive, negative, latent, sampler, decode, save = (ids[n] for n in range(7))
    key(view, Qt.Key.Key_Home)  # fit everything in view before wiring

    wires = [(ckpt, 0, sampler, "model"), (ckpt, 1, positive, "clip"), (ckpt, 1, negative, "clip"),
             (positive, 0, sampler, "positive"), (negative, 0, sampler, "negative"),
             (latent, 0, sampler, "latent_image"), (sampler, 0, decode, "samples"), (ckpt, 2, decode, "vae"),
             (decode, 0, save, "images")]
    for source, slot, target, name in wires:
        drag(view, output_pos(window, source, slot), input_pos(window, target, name))
    made = {(link.from_node, link.from_output, link.to_node, link.to_input) for link in doc.graph.links.values()}
    assert made == set(wires)

    type_into_widget(window, positive, "text", "a red circle on a blue background")
    enter = (Qt.Key.Key_Return, Qt.KeyboardModifier.NoModifier)
    type_into_widget(window, sampler, "steps", "6", commit=enter)
    type_into_widget(window, latent, "width", "64", commit=enter)  # the demo model's size
    type_into_widget(window, latent, "height", "64", commit=enter)
    assert doc.graph.nodes[positive].inputs["text"] == "a red circle on a blue background"
    assert doc.graph.nodes[sampler].inputs["steps"] == 6
    assert doc.graph.nodes[ckpt].inputs["ckpt_name"] == "nuance-demo.safetensors"  # the bundled default

    # Run, and watch the sampler report its steps while the window stays live.
    progress: list[float] = []
    window.runs.event.connect(lambda tag, event: progress.append(event.value)
                              if isinstance(event, eev.NodeProgress) and event.node_id == sampler else None)
    run_and_wait(window, qtbot)
    assert progress and max(progress) == 6
    assert "Run finished" in window.statusBar().currentMessage()
    first = window.viewer.current_path
    assert first is not None and Path(first).is_file()
    pixmap = window.viewer.view.item.pixmap()
    assert (pixmap.width(), pixmap.height()) == (64, 64)

    # A new seed from the seed widget's arrow: only the sampler and what follows it run again.
    seed_row = window.scene.nodes[sampler].geo.widget_for("seed").rect
    seed = doc.graph.nodes[sampler].inputs["seed"]
    click(view, window.scene.nodes[sampler].mapToScene(QPointF(seed_row.right() - 6, seed_row.center().y())))
    assert doc.graph.nodes[sampler].inputs["seed"] == seed + 1
    run_and_wait(window, qtbot)
    states = {node_id: window.scene.nodes[node_id].run.status for node_id in ids.values()}
    assert {states[n] for n in (ckpt, positive, negative, latent)} == {"cached"}
    assert {states[n] for n in (sampler, decode, save)} == {"done"}
    second = window.viewer.current_path
    assert second != first and Path(second).is_file()

    # Save, close, reopen: the same graph and layout come back.
    target = tmp_path / "my-txt2img.json"
    monkeypatch.setattr("studio.ui.window.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr("studio.ui.window.QFileDialog.getOpenFileName", lambda *a, **k: (str(target), ""))
    key(view, Qt.Key.Key_S, CTRL)
    assert target.is_file() and not window.document.dirty
    saved = snapshot(window)
    key(window.view, Qt.Key.Key_N, CTRL)
    assert len(window.document.graph) == 0
    key(window.view, Qt.Key.Key_O, CTRL)
    assert window.file_path == target
    reopened = snapshot(window)
    assert reopened["graph"] == saved["graph"]
    assert reopened["ui"]["nodes"] == saved["ui"]["nodes"]
