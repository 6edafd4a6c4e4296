"""Files in the editor: new, open, save, save as, the unsaved-changes title and prompt, start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from editor_support import drag, header_pos, key, open_window, snapshot
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from studio.core.workflow import load_workflow, workflow_to_dict

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def test_save_as_then_open_round_trips_graph_and_layout(window, qtbot, tmp_path, monkeypatch, registry):
    assert window.open_example("hello")
    doc = window.document
    drag(window.view, header_pos(window, "4"), header_pos(window, "4") + QPointF(40, 60))
    doc.add_group("Inputs", (0, 0, 250, 400), color="#335577")
    doc.set_collapsed(["7"], True)
    assert window.isWindowModified() and "[*]" in window.windowTitle()
    target = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    key(window.view, Qt.Key.Key_S, CTRL | SHIFT)
    assert target.is_file()
    assert not window.isWindowModified()
    assert window.windowTitle().startswith("mine.json")
    saved = snapshot(window)
    assert json.loads(target.read_text(encoding="utf-8")) == saved
    assert load_workflow(target, registry).ui["nodes"]["4"]["pos"] == list(doc.node_pos("4"))

    doc.set_input("2", "value", 9)
    assert window.isWindowModified()
    key(window.view, Qt.Key.Key_S, CTRL)  # plain save writes to the same file, no dialog
    assert json.loads(target.read_text(encoding="utf-8"))["graph"]["nodes"][1]["inputs"]["value"] == 9

    other = open_window(qtbot, registry)
    second = next(other)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    key(second.view, Qt.Key.Key_O, CTRL)
    assert workflow_to_dict(second.document.workflow) == snapshot(window)
    assert set(second.scene.groups) == {"1"} and second.scene.nodes["7"].geo.collapsed
    assert not second.isWindowModified()
    second.close()


def test_unsaved_changes_are_asked_about_before_they_are_lost(window):
    doc = window.document
    doc.add_node("PrimitiveInt", (0, 0))
    asked = []
    window.ask_unsaved = lambda: asked.append(True) or "cancel"
    key(window.view, Qt.Key.Key_N, CTRL)
    assert asked and len(doc.graph) == 1 and window.document is doc
    window.ask_unsaved = lambda: "discard"
    key(window.view, Qt.Key.Key_N, CTRL)
    assert window.document is not doc and len(window.document.graph) == 0
    assert not window.isWindowModified() and window.windowTitle().startswith("Untitled")


def test_closing_with_unsaved_changes_can_be_refused(window):
    window.document.add_node("PrimitiveInt", (0, 0))
    window.ask_unsaved = lambda: "cancel"
    assert not window.close()
    assert window.isVisible()
    window.ask_unsaved = lambda: "discard"
    assert window.close()


def test_examples_open_as_untitled_copies_with_a_layout(window, monkeypatch, tmp_path):
    assert window.open_example("inpaint")  # saved without any layout
    doc = window.document
    xs = {nid: doc.node_pos(nid)[0] for nid in doc.graph.nodes}
    assert len(set(xs.values())) > 2, "nodes are spread over columns by depth"
    for link in doc.graph.links.values():
        assert xs[link.from_node] < xs[link.to_node]
    assert window.windowTitle() == f"{doc.workflow.meta['name']} (example)[*] — Nuance Studio"
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    key(window.view, Qt.Key.Key_S, CTRL)
    assert asked, "saving an example asks where: the bundled file is never overwritten"


def test_a_comfyui_prompt_opens_and_is_saved_to_a_new_file(window, tmp_path, monkeypatch):
    prompt = {"1": {"class_type": "PrimitiveInt", "inputs": {"value": 2}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt), encoding="utf-8")
    assert window.open_file(path)
    assert len(window.scene.wires) == 1
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    key(window.view, Qt.Key.Key_S, CTRL)
    assert asked and json.loads(path.read_text(encoding="utf-8")) == prompt


def test_an_unreadable_file_is_reported_and_the_current_workflow_kept(window, tmp_path):
    window.document.add_node("PrimitiveInt", (0, 0))
    doc = window.document
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json", encoding="utf-8")
    assert not window.open_file(bad)
    assert window.document is doc
    assert "not valid JSON" in window.statusBar().currentMessage()


def test_first_start_opens_txt2img_without_importing_torch():
    code = (
        "import json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from studio.ui.app import create_window\n"
        "w = create_window()\n"
        "print(json.dumps({'title': w.windowTitle(), 'nodes': sorted(n.type for n in w.document.graph),"
        " 'heavy': [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]}))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert "KSampler" in out["nodes"] and "CheckpointLoaderSimple" in out["nodes"]
    assert out["title"].startswith("Text to image (example)")


def test_nuance_gui_and_bare_nuance_open_the_editor(monkeypatch):
    import studio.ui.app
    from studio.cli import main

    calls = []
    monkeypatch.setattr(studio.ui.app, "main", lambda argv: calls.append(list(argv)) or 0)
    assert main([]) == 0
    assert main(["gui", "hello"]) == 0
    assert calls == [[], ["hello"]]


def test_a_bundled_example_named_on_the_command_line_opens_as_an_untitled_copy(qtbot, monkeypatch):
    from studio.ui.app import create_window
    from studio.ui.window import MainWindow

    monkeypatch.setattr(MainWindow, "warn", lambda self, title, text: self.show_message(f"{title}: {text}"))

    window = create_window("hello")
    qtbot.addWidget(window)
    assert window.file_path is None and len(window.document.graph) == 7
    assert window.windowTitle().startswith(f"{window.document.workflow.meta['name']} (example)")
    missing = create_window("no-such-workflow.json")
    qtbot.addWidget(missing)
    assert "no such file" in missing.statusBar().currentMessage()
