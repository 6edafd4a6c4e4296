"""Several workflows in tabs, copy and paste between tabs and windows, and File > Open Recent —
driven with real key presses and mouse clicks on the canvas, the tab bar and the menus."""

from __future__ import annotations

import json

import pytest
from editor_support import LEFT, click, header_pos, key, move_to, open_window
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog, QMenu, QTabBar

from studio.core.document import Document
from studio.core.workflow import load_workflow, save_workflow
from studio.ui import recent

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


def workflow_file(registry, path, *node_types):
    """A saved workflow of the given nodes in a row (test data; the tests open it as a user does)."""
    doc = Document(registry=registry)
    for i, node_type in enumerate(node_types):
        doc.add_node(node_type, (i * 300, 0))
    save_workflow(doc.workflow, path)
    return path


def tab_bar(window) -> QTabBar:
    return window.tabs.tabBar()


def click_tab(window, index: int) -> None:
    QTest.mouseClick(tab_bar(window), LEFT, Qt.KeyboardModifier.NoModifier, tab_bar(window).tabRect(index).center())


def tab_texts(window) -> list[str]:
    return [window.tabs.tabText(i) for i in range(window.tabs.count())]


def choose_open(monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def test_tabs_keep_their_own_workflow_and_the_title_follows_the_current_one(window, qtbot):
    first = window.document
    first.add_node("PrimitiveInt", (0, 0))
    shown = []
    window.document_changed.connect(shown.append)
    key(window.view, Qt.Key.Key_T, CTRL)
    assert window.tabs.count() == 2 and window.document is not first and len(window.document.graph) == 0
    assert shown == [window.document]
    assert window.windowTitle().startswith("Untitled[*]") and not window.isWindowModified()
    assert tab_texts(window) == ["Untitled*", "Untitled"]
    assert window.view.hasFocus(), "a new tab's canvas takes the keys"

    click_tab(window, 0)
    assert window.document is first and shown[-1] is first
    assert window.isWindowModified()
    key(window.view, Qt.Key.Key_Tab, CTRL)  # next tab, wrapping around
    assert window.tabs.currentIndex() == 1
    key(window.view, Qt.Key.Key_Z, CTRL)  # undo acts on the tab shown: nothing to undo here
    click_tab(window, 0)
    assert len(first.graph) == 1
    key(window.view, Qt.Key.Key_Z, CTRL)
    assert len(first.graph) == 0 and not window.isWindowModified() and tab_texts(window)[0] == "Untitled"


def test_closing_a_tab_asks_about_its_unsaved_changes(window):
    key(window.view, Qt.Key.Key_T, CTRL)
    second = window.document
    second.add_node("PrimitiveInt", (0, 0))
    asked = []
    window.ask_unsaved = lambda: asked.append(window.document) or "cancel"
    key(window.view, Qt.Key.Key_W, CTRL)
    assert asked == [second] and window.tabs.count() == 2 and window.document is second

    window.ask_unsaved = lambda: asked.append(window.document) or "discard"
    close_button = tab_bar(window).tabButton(1, QTabBar.ButtonPosition.RightSide)
    QTest.mouseClick(close_button, LEFT)
    assert window.tabs.count() == 1 and window.document is not second and len(asked) == 2

    key(window.view, Qt.Key.Key_W, CTRL)  # the last tab is emptied, not removed
    assert window.tabs.count() == 1 and len(asked) == 2, "an unchanged workflow closes without asking"


def test_closing_the_window_asks_for_each_unsaved_tab(window):
    window.document.add_node("PrimitiveInt", (0, 0))
    key(window.view, Qt.Key.Key_T, CTRL)
    window.document.add_node("MathInt", (0, 0))
    key(window.view, Qt.Key.Key_T, CTRL)  # this one stays unchanged: nothing to ask
    asked = []
    answers = ["discard", "cancel"]
    window.ask_unsaved = lambda: asked.append(window.tabs.currentIndex()) or answers[len(asked) - 1]
    assert not window.close()
    assert asked == [0, 1] and window.isVisible() and window.tabs.count() == 3
    window.ask_unsaved = lambda: "discard"


def test_open_uses_a_new_tab_unless_the_current_one_is_untouched(window, registry, tmp_path, monkeypatch):
    first = workflow_file(registry, tmp_path / "first.json", "PrimitiveInt")
    second = workflow_file(registry, tmp_path / "second.json", "MathInt", "PreviewAny")
    choose_open(monkeypatch, first)
    key(window.view, Qt.Key.Key_O, CTRL)
    assert window.tabs.count() == 1 and window.file_path == first.resolve()  # the empty untitled tab made way

    choose_open(monkeypatch, second)
    key(window.view, Qt.Key.Key_O, CTRL)
    assert window.tabs.count() == 2 and window.file_path == second.resolve()
    assert tab_texts(window) == ["first.json", "second.json"]
    assert window.windowTitle().startswith("second.json[*]")
    assert window.view.zoom <= 1.0 and window.view.mapToScene(window.view.viewport().rect()).boundingRect().contains(
        window.scene.items_rect()), "a workflow opened in a new tab is fitted to its canvas"

    choose_open(monkeypatch, first)
    key(window.view, Qt.Key.Key_O, CTRL)  # already open: shown, not opened twice
    assert window.tabs.count() == 2 and window.tabs.currentIndex() == 0
    assert "open already" in window.statusBar().currentMessage()


def test_copy_and_paste_between_tabs_and_between_windows(window, qtbot, registry):
    doc = window.document
    a = doc.add_node("PrimitiveInt", (0, 0), {"value": 5})
    m = doc.add_node("MathInt", (300, 0))
    doc.connect(a, 0, m, "a")
    key(window.view, Qt.Key.Key_Home)
    click(window.view, header_pos(window, a))
    key(window.view, Qt.Key.Key_A, CTRL)
    key(window.view, Qt.Key.Key_C, CTRL)

    key(window.view, Qt.Key.Key_T, CTRL)
    move_to(window.view, window.view.mapToScene(window.view.viewport().rect().center()))
    key(window.view, Qt.Key.Key_V, CTRL)
    pasted = window.document
    assert pasted is not doc
    assert sorted(n.type for n in pasted.graph) == ["MathInt", "PrimitiveInt"]
    assert len(pasted.graph.links) == 1 and len(doc.graph) == 2

    other = next(open_window(qtbot, registry))
    key(other.view, Qt.Key.Key_V, CTRL)
    assert sorted(n.type for n in other.document.graph) == ["MathInt", "PrimitiveInt"]
    assert [n.inputs.get("value") for n in other.document.graph if n.type == "PrimitiveInt"] == [5]
    other.close()


def test_runs_report_to_the_tab_they_were_started_from(window, qtbot):
    doc = window.document
    x = doc.add_node("PrimitiveInt", (0, 0), {"value": 42})
    p = doc.add_node("PreviewAny", (300, 0))
    doc.connect(x, 0, p, "source")
    scene = window.scene
    key(window.view, Qt.Key.Key_Return, CTRL)
    key(window.view, Qt.Key.Key_T, CTRL)  # switch away while it runs
    qtbot.waitUntil(lambda: scene.nodes[p].output_text == "42", timeout=5000)
    assert window.scene is not scene and not window.scene.nodes


def open_recent_menu(window, qtbot) -> QMenu:
    """Click File in the menu bar, then Open Recent, as a user does; the submenu that opened."""
    bar = window.menuBar()
    file_action = next(act for act in bar.actions() if act.text() == "&File")
    QTest.mouseClick(bar, LEFT, Qt.KeyboardModifier.NoModifier, bar.actionGeometry(file_action).center())
    file_menu = file_action.menu()
    qtbot.waitUntil(file_menu.isVisible)
    recent_action = window.recent_menu.menuAction()
    QTest.mouseClick(file_menu, LEFT, Qt.KeyboardModifier.NoModifier, file_menu.actionGeometry(recent_action).center())
    qtbot.waitUntil(window.recent_menu.isVisible)
    return window.recent_menu


def click_entry(menu: QMenu, path) -> None:
    action = next(act for act in menu.actions() if act.data() == str(path.resolve()))
    QTest.mouseClick(menu, LEFT, Qt.KeyboardModifier.NoModifier, menu.actionGeometry(action).center())


def test_open_recent_lists_the_last_files_across_sessions_and_drops_missing_ones(window, qtbot, registry, tmp_path,
                                                                                  monkeypatch):
    files = [workflow_file(registry, tmp_path / f"w{i:02}.json", "PrimitiveInt") for i in range(12)]
    for path in files:
        choose_open(monkeypatch, path)
        key(window.view, Qt.Key.Key_O, CTRL)
    expected = [str(p.resolve()) for p in reversed(files)][: recent.MAX_RECENT]
    menu = open_recent_menu(window, qtbot)
    assert [act.data() for act in menu.actions() if act.data()] == expected
    QTest.keyClick(menu, Qt.Key.Key_Escape)  # out of Open Recent, then out of File
    QTest.keyClick(menu.parentWidget(), Qt.Key.Key_Escape)

    other = next(open_window(qtbot, registry))  # a later session reads the same list
    files[11].unlink()
    menu = open_recent_menu(other, qtbot)
    click_entry(menu, files[11])
    assert "no longer exists" in other.statusBar().currentMessage()
    assert str(files[11].resolve()) not in [str(p) for p in recent.RecentFiles().paths()]
    menu = open_recent_menu(other, qtbot)
    click_entry(menu, files[5])
    assert other.file_path == files[5].resolve() and len(other.document.graph) == 1
    assert recent.RecentFiles().paths()[0] == files[5].resolve()
    assert load_workflow(files[5]).graph.nodes  # the file itself is untouched
    other.close()


def test_saving_adds_the_file_to_recent_files(window, tmp_path, monkeypatch):
    window.document.add_node("PrimitiveInt", (0, 0))
    target = tmp_path / "saved.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    key(window.view, Qt.Key.Key_S, CTRL)
    assert recent.RecentFiles().paths() == [target.resolve()]
    assert json.loads(target.read_text(encoding="utf-8"))["graph"]["nodes"]
