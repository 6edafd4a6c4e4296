"""Autosave and crash recovery: unsaved tabs are written to the user data folder (never to the
user's own file), a clean close removes them, and after a real crash (a process that dies) the
next start offers them back — unsaved, with their file paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from editor_support import click, header_pos, key, open_window
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from studio.core.document import Document
from studio.core.workflow import save_workflow
from studio.ui import recovery

CTRL = Qt.KeyboardModifier.ControlModifier
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fast_autosave(monkeypatch):
    monkeypatch.setattr(recovery, "AUTOSAVE_MS", 40)


@pytest.fixture
def window(qtbot, registry, fast_autosave):
    yield from open_window(qtbot, registry)


def saved_workflow(registry, path: Path) -> Path:
    doc = Document(registry=registry)
    a = doc.add_node("PrimitiveInt", (0, 0), {"value": 3})
    p = doc.add_node("PreviewAny", (300, 0))
    doc.connect(a, 0, p, "source")
    save_workflow(doc.workflow, path)
    return path


def autosaves() -> list[Path]:
    root = recovery.recovery_root()
    return sorted(root.glob("*/*.json")) if root.is_dir() else []


def test_autosave_writes_unsaved_tabs_aside_and_a_clean_close_removes_them(window, qtbot, registry, tmp_path,
                                                                           monkeypatch):
    mine = saved_workflow(registry, tmp_path / "mine.json")
    original = mine.read_bytes()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(mine), ""))
    key(window.view, Qt.Key.Key_O, CTRL)
    click(window.view, header_pos(window, "1"))
    key(window.view, Qt.Key.Key_Delete)  # an unsaved change
    key(window.view, Qt.Key.Key_T, CTRL)  # a second tab, unchanged: nothing to autosave
    qtbot.waitUntil(lambda: len(autosaves()) == 1, timeout=3000)
    qtbot.wait(150)  # a few more ticks: still one file, and the user's file untouched
    (entry,) = autosaves()
    saved = json.loads(entry.read_text(encoding="utf-8"))
    assert saved["file_path"] == str(mine.resolve()) and saved["name"] == "mine.json"
    assert [n["id"] for n in saved["workflow"]["graph"]["nodes"]] == ["2"]
    assert mine.read_bytes() == original
    assert entry.is_relative_to(recovery.recovery_root()) and not entry.is_relative_to(tmp_path)

    key(window.view, Qt.Key.Key_Tab, CTRL)
    key(window.view, Qt.Key.Key_S, CTRL)  # saved now: nothing left to recover
    qtbot.waitUntil(lambda: not autosaves(), timeout=3000)
    key(window.view, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: len(autosaves()) == 1, timeout=3000)
    window.ask_unsaved = lambda: "discard"
    assert window.close()
    assert not list(recovery.recovery_root().iterdir()), "a clean close leaves nothing behind"


CRASH = textwrap.dedent(
    """
    import os, sys, time
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from studio.ui import recovery
    recovery.AUTOSAVE_MS = 40
    from studio.ui.app import create_window
    window = create_window(sys.argv[1])
    window.show()
    window.activateWindow()
    window.view.setFocus()
    while not window.isActiveWindow():  # shortcuts reach an active window only
        app.processEvents()
    view = window.view
    QTest.keyClick(view.viewport(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(view.viewport(), Qt.Key.Key_Delete)          # an unsaved edit of the user's file
    QTest.keyClick(view.viewport(), Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    view = window.view
    QTest.keyClick(view.viewport(), Qt.Key.Key_Tab)             # and a new node in an untitled tab
    QTest.keyClicks(view.palette_popup.search, "math int")
    QTest.keyClick(view.palette_popup.search, Qt.Key.Key_Return)
    root = recovery.recovery_root()
    deadline = time.monotonic() + 20
    while len(list(root.glob("*/*.json"))) < 2 and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    print(len(list(root.glob("*/*.json"))), flush=True)
    os._exit(3)  # a crash: no close, no clean-up
    """
)


def crash_with_unsaved_work(workflow: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", CRASH, str(workflow)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.split()[-1] == "2", proc.stderr
    assert len(autosaves()) == 2


def test_after_a_crash_the_next_start_restores_the_work_unsaved_with_its_file(qtbot, registry, tmp_path,
                                                                             monkeypatch, fast_autosave):
    from studio.ui.app import create_window
    from studio.ui.window import MainWindow

    mine = saved_workflow(registry, tmp_path / "mine.json")
    original = mine.read_bytes()
    crash_with_unsaved_work(mine)
    asked = []
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, names: asked.append(names) or True)
    window = create_window()
    qtbot.addWidget(window)
    window.ask_unsaved = lambda: "discard"
    assert asked == [["mine.json", "Untitled"]]
    first, second = window.workflow_tabs()
    assert window.tabs.count() == 2, "the restored work replaces the example, it is not added beside it"
    assert first.file_path == mine.resolve() and first.document.workflow.path == mine.resolve()
    assert first.document.dirty and second.document.dirty
    assert len(first.document.graph) == 0
    assert [n.type for n in second.document.graph] == ["MathInt"]
    assert [window.tabs.tabText(i) for i in range(2)] == ["mine.json*", "Untitled*"]
    assert window.isWindowModified()
    assert mine.read_bytes() == original
    # The crashed session's folder is gone; this session already holds the work in its own.
    (folder,) = recovery.recovery_root().iterdir()
    assert len(list(folder.glob("*.json"))) == 2
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.tabs.setCurrentIndex(0)
    key(window.view, Qt.Key.Key_S, CTRL)  # saving writes the restored work to the user's file
    assert json.loads(mine.read_text(encoding="utf-8"))["graph"]["nodes"] == []
    assert window.close()
    assert not list(recovery.recovery_root().iterdir())


def test_discarding_after_a_crash_deletes_the_autosaves(qtbot, registry, tmp_path, monkeypatch, fast_autosave):
    from studio.ui.app import create_window
    from studio.ui.window import MainWindow

    crash_with_unsaved_work(saved_workflow(registry, tmp_path / "mine.json"))
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, names: False)
    window = create_window()
    qtbot.addWidget(window)
    assert window.tabs.count() == 1 and window.tab.example, "nothing restored: the usual first workflow"
    assert not autosaves()
    window.close()


def test_a_running_windows_autosaves_are_never_offered_to_another(window, qtbot, monkeypatch):
    from studio.ui.app import create_window
    from studio.ui.window import MainWindow

    window.document.add_node("PrimitiveInt", (0, 0))
    qtbot.waitUntil(lambda: len(autosaves()) == 1, timeout=3000)
    asked = []
    monkeypatch.setattr(MainWindow, "ask_restore", lambda self, names: asked.append(names) or True)
    other = create_window()
    qtbot.addWidget(other)
    assert not asked and len(autosaves()) == 1
    other.close()
