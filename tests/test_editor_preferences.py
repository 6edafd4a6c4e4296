"""Preferences (models folders, device, cache size) saved in settings.toml and applied at once,
and View > Refresh model lists (F5)."""

from __future__ import annotations

import tomllib

import pytest
from editor_support import click, header_pos, key, open_preferences, open_window, press_ok
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog

from studio.api import Node, NodePack, Output, RunContext
from studio.core import toml_text
from studio.core.paths import config_dir, data_dir
from studio.models.folders import model_folders
from studio.plugins import LoadReport, register_pack
from studio.ui import panels

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


class DeviceOf(Node):
    """Which device the run was given: what the preferences chose."""

    NAME = "Device"
    OUTPUTS = [Output("STRING", "STRING")]
    DETERMINISTIC = False

    def run(self, ctx: RunContext) -> str:
        return ctx.options.device


@pytest.fixture
def window(qtbot, registry):
    register_pack(registry, NodePack(name="prefs", nodes=[DeviceOf]), builtin=False, report=LoadReport())
    yield from open_window(qtbot, registry)


def test_preferences_are_saved_beside_the_users_own_keys_and_apply_at_once(window, qtbot, monkeypatch, tmp_path):
    settings = config_dir() / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('note = "mine"\n\n[models]\nallow_pickle = false\n\n[custom]\nanswer = 42\n', encoding="utf-8")
    extra = tmp_path / "comfy models"
    (extra / "checkpoints").mkdir(parents=True)
    (extra / "checkpoints" / "mine.safetensors").write_bytes(b"")
    doc = window.document
    loader = doc.add_node("CheckpointLoaderSimple", (0, 0))
    device = doc.add_node("prefs.Device", (0, 250))
    shown = doc.add_node("PreviewAny", (300, 250))
    doc.connect(device, 0, shown, "source")
    key(window.view, Qt.Key.Key_Home)
    click(window.view, header_pos(window, loader))
    inspector = panels.of(window).inspector
    assert "mine.safetensors" not in inspector.editors["ckpt_name"].options

    dialog = open_preferences(window, qtbot)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(extra))
    QTest.mouseClick(dialog.add_button, LEFT)
    assert dialog.extra.count() == 1
    dialog.device.setFocus()
    QTest.keyClick(dialog.device, Qt.Key.Key_Down)  # auto → cpu
    assert dialog.device.currentData() == "cpu"
    QTest.mouseDClick(dialog.cache.lineEdit(), LEFT)
    QTest.keyClick(dialog.cache, Qt.Key.Key_A, CTRL)
    QTest.keyClicks(dialog.cache, "512")
    press_ok(dialog)
    assert not dialog.isVisible()

    saved = tomllib.loads(settings.read_text(encoding="utf-8"))
    assert saved == {"note": "mine", "models": {"allow_pickle": False, "extra_paths": [str(extra)]},
                     "custom": {"answer": 42}, "run": {"device": "cpu", "cache_mb": 512}}
    assert window.runs.device == "cpu" and window.runs.cache_bytes == 512 * 1024 * 1024
    assert extra in model_folders().extra
    assert "mine.safetensors" in inspector.editors["ckpt_name"].options, "the lists follow the new folders at once"
    doc.remove([loader])  # no model to load here: run the rest
    key(window.view, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: window.scene.nodes[shown].output_text == "cpu", timeout=5000)

    # Opened again, the dialog shows what was saved; Cancel changes nothing.
    again = open_preferences(window, qtbot)
    assert again.device.currentData() == "cpu" and again.cache.value() == 512 and again.extra.item(0).text() == str(extra)
    before = settings.read_text(encoding="utf-8")
    QTest.mouseClick(again.buttons.button(QDialogButtonBox.StandardButton.Cancel), LEFT)
    assert settings.read_text(encoding="utf-8") == before


def test_a_broken_settings_file_is_reported_and_never_overwritten(registry, qtbot):
    settings = config_dir() / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text("[models\nbroken", encoding="utf-8")
    window = next(open_window(qtbot, registry))
    assert window.runs.device == "auto"
    dialog = open_preferences(window, qtbot)
    assert dialog.problem.isVisible() and "not valid TOML" in dialog.problem.text()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    QTest.keyClick(dialog, Qt.Key.Key_Escape)
    assert settings.read_text(encoding="utf-8") == "[models\nbroken"
    window.close()


def test_f5_refreshes_model_lists_and_names_the_files_not_found(window):
    checkpoints = data_dir() / "models" / "checkpoints"
    doc = window.document
    loader = doc.add_node("CheckpointLoaderSimple", (0, 0), {"ckpt_name": "gone.safetensors"})
    key(window.view, Qt.Key.Key_Home)
    click(window.view, header_pos(window, loader))
    combo = panels.of(window).inspector.rows["ckpt_name"]
    assert combo.currentText() == "gone.safetensors (missing)"
    checkpoints.mkdir(parents=True)
    (checkpoints / "fresh.safetensors").write_bytes(b"")
    key(window.view, Qt.Key.Key_F5)
    message = window.statusBar().currentMessage()
    assert message.startswith("Model lists refreshed: 1 list, ")
    assert "not found: Load Checkpoint (node 1) names 'gone.safetensors'" in message
    combo = panels.of(window).inspector.rows["ckpt_name"]
    assert combo.findText("fresh.safetensors") >= 0
    assert combo.findText("fresh.safetensors") == 1  # first, under the missing file
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)
    assert doc.graph.nodes[loader].inputs["ckpt_name"] == "fresh.safetensors"
    assert combo.currentText() == "fresh.safetensors" and combo.findText("gone.safetensors (missing)") == -1


def test_toml_writing_round_trips_and_refuses_what_toml_cannot_hold(tmp_path):
    data = {"title": 'a "quoted"\nline\x7f', "n": 3, "x": 1.5, "flag": True, "list": ["a", 2],
            "models": {"extra_paths": ["~/a b"], "deep": {"k": "v"}}, "odd key": {"arr": [{"a": 1}]}}
    text = toml_text.dumps(data)
    assert tomllib.loads(text) == data
    target = tmp_path / "settings.toml"
    toml_text.write(target, data)
    assert tomllib.loads(target.read_text(encoding="utf-8")) == data
    with pytest.raises(toml_text.TomlWriteError):
        toml_text.dumps({"none": None})
    assert not list(tmp_path.glob(".settings.toml.*")), "no temporary file is left behind"
