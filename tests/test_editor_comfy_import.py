"""A ComfyUI editor-format file opens in the editor looking as it did, and runs from the window."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from editor_support import key, open_window
from PySide6.QtCore import Qt

from studio.core import paths

FIXTURES = Path(__file__).parent / "fixtures" / "comfyui"
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def test_a_comfyui_file_opens_laid_out_as_it_was(window, tmp_path):
    path = tmp_path / "features.json"
    shutil.copy(FIXTURES / "features_v04.json", path)
    assert window.open_file(path)
    scene = window.scene
    assert set(scene.nodes) == {"1", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"}
    assert (scene.nodes["7"].pos().x(), scene.nodes["7"].pos().y()) == (800.0, 0.0)
    assert scene.nodes["4"].geo.collapsed
    assert scene.nodes["12"].geo.title == "Missing: SDXLPromptStyler"
    assert "SDXLPromptStyler" in " ".join(scene.nodes["12"].output_text.split())
    assert {g.group_id if hasattr(g, "group_id") else gid for gid, g in scene.groups.items()} == {"comfy-1", "comfy-2"}
    assert set(scene.notes) == {"comfy-14", "comfy-15"}
    status = window.statusBar().currentMessage()
    assert "sd15/tiny-sd15.safetensors" in status and "SDXLPromptStyler" in status


def test_a_comfyui_file_runs_from_the_window(window, qtbot, tmp_path):
    path = tmp_path / "txt2img.json"
    shutil.copy(FIXTURES / "txt2img_v04.json", path)
    assert window.open_file(path)
    assert window.document.graph.nodes["3"].inputs["steps"] == 12
    assert window.file_path is None  # opened as a new workflow of ours: saving never writes over ComfyUI's file
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not window.runs.busy and not window.run_label.text(), timeout=60_000)
    saved = sorted(paths.default_output_dir().glob("ComfyUI_*.png"))
    assert len(saved) == 1
