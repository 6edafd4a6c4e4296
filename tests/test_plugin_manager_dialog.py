"""The Plugin Manager in the running editor: listing, installing with review and trust, enabling,
disabling, uninstalling and development reloads, each followed at once by palette, canvas and inspector."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from editor_support import LEFT, key, move_to
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

PLUGIN_TOML = """name = "{name}"
version = "{version}"
api_version = 1
description = "A plugin made by the tests."
author = "Test Author"
homepage = "https://example.org/{name}"
"""

PLUGIN_INIT = '''{head}
from studio.api import Int, Node, NodePack, Output


class Greeter(Node):
    NAME = "Greeter"
    CATEGORY = "testing"
    DESCRIPTION = "Greets a number of times."
    INPUTS = [Int("count", 1, min=0, max=100)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, count):
        return count
{more}

NODE_PACK = NodePack(name="{name}", nodes=[Greeter{names}])
'''

SECOND_NODE = '''

class Waver(Node):
    NAME = "Waver"
    CATEGORY = "testing"
    INPUTS = [Int("times", 2)]
    OUTPUTS = [Output("INT", "INT")]

    def run(self, ctx, times):
        return times
'''


def write_plugin(folder: Path, name: str, *, version: str = "1.2.0", head: str = "", second: bool = False) -> Path:
    """A small plugin folder: plugin.toml and a package with one (or two) nodes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.toml").write_text(PLUGIN_TOML.format(name=name, version=version), encoding="utf-8")
    (folder / "__init__.py").write_text(PLUGIN_INIT.format(
        head=head, name=name, more=SECOND_NODE if second else "", names=", Waver" if second else ""), encoding="utf-8")
    return folder


def user_plugins() -> Path:
    from studio.plugins.state import plugins_dir

    return plugins_dir()


@pytest.fixture
def make_window(qtbot: Any) -> Any:
    """Opens a main window the way the app does: every plugin loaded through a PluginManager."""
    from studio.runtime import load_plugins
    from studio.ui import api, theme
    from studio.ui.window import MainWindow

    windows: list[Any] = []

    def make() -> Any:
        manager = load_plugins()
        theme.apply_dark_palette(QApplication.instance())
        win = MainWindow(manager.registry, plugins=manager)
        win.ask_unsaved = lambda: "discard"
        win.warn = lambda title, text: win.show_message(f"{title}: {text}")
        qtbot.addWidget(win)
        win.resize(1200, 800)
        win.show()
        qtbot.waitExposed(win)
        windows.append(win)
        return win

    with api.isolated():
        yield make
        for win in windows:
            win.ask_unsaved = lambda: "discard"
            win.close()


def open_manager(window: Any) -> Any:
    """Plugins > Plugin Manager… from the window's menu."""
    window.actions_by_name["plugin_manager"].trigger()
    dialog = window.plugin_gui.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def click_row(dialog: Any, name: str) -> None:
    row = dialog.row_of(name)
    assert row >= 0, f"{name} is not listed"
    rect = dialog.table.visualItemRect(dialog.table.item(row, 0))
    QTest.mouseClick(dialog.table.viewport(), LEFT, Qt.KeyboardModifier.NoModifier, rect.center())
    assert dialog.selected().name == name


def row_values(dialog: Any, name: str) -> list[str]:
    row = dialog.row_of(name)
    return [dialog.table.item(row, column).text() for column in range(dialog.table.columnCount())]


def tick(checkbox: Any) -> None:
    """Click a check box on its indicator, as a user does."""
    QTest.mouseClick(checkbox, LEFT, Qt.KeyboardModifier.NoModifier, QPoint(8, checkbox.height() // 2))


def status(window: Any) -> str:
    return window.statusBar().currentMessage()


def test_the_dialog_lists_every_plugin_with_its_status_and_a_broken_one_fails_alone(make_window, qtbot):
    write_plugin(user_plugins() / "greet", "greet")
    broken = write_plugin(user_plugins() / "broken", "broken")
    (broken / "__init__.py").write_text("raise RuntimeError('the plugin author made a mistake')\n", encoding="utf-8")
    shaky = write_plugin(user_plugins() / "shaky", "shaky")
    (shaky / "plugin.toml").write_text((shaky / "plugin.toml").read_text() + 'gui = "gui"\n', encoding="utf-8")
    (shaky / "gui.py").write_text("def register_gui(gui):\n    raise ValueError('no widgets today')\n", encoding="utf-8")
    window = make_window()
    assert "shaky" in status(window) and "no widgets today" in status(window)  # reported, the editor is fine

    dialog = open_manager(window)
    assert row_values(dialog, "basic")[2:4] == ["loaded", "built-in"] and int(row_values(dialog, "basic")[4]) > 5
    assert row_values(dialog, "imagetools")[2:4] == ["loaded", "bundled"]
    assert row_values(dialog, "greet")[:5] == ["greet", "1.2.0", "loaded", "user", "1"]
    assert row_values(dialog, "shaky")[2] == "loaded" and "shaky.Greeter" in window.registry
    assert row_values(dialog, "broken")[2:5] == ["failed", "user", "0"]
    assert "greet.Greeter" in window.registry

    click_row(dialog, "broken")
    details = dialog.details.toPlainText()
    assert "RuntimeError: the plugin author made a mistake" in details and "__init__.py, line 1" in details
    assert dialog.table.item(dialog.row_of("broken"), 2).foreground().color().name() == "#e05252"

    click_row(dialog, "basic")
    assert not dialog.toggle_button.isEnabled() and not dialog.uninstall_button.isEnabled()
    assert not dialog.update_button.isEnabled()
    click_row(dialog, "greet")
    details = dialog.details.toPlainText()
    assert "Test Author" in details and "https://example.org/greet" in details and "greet.Greeter" in details
    assert dialog.toggle_button.text() == "Disable" and dialog.toggle_button.isEnabled()
    assert dialog.uninstall_button.isEnabled() and not dialog.update_button.isEnabled()  # no install record
    click_row(dialog, "shaky")
    assert "no widgets today" in dialog.details.toPlainText()


def test_installing_from_a_folder_shows_the_scan_and_needs_trust_then_the_node_is_in_the_palette(make_window, qtbot,
                                                                                                    tmp_path):
    source = write_plugin(tmp_path / "src" / "greet", "greet", head="import subprocess  # noqa: F401\n")
    window = make_window()
    dialog = open_manager(window)
    dialog.choose_folder = lambda title: str(source)
    (from_folder,) = [a for a in dialog.install_menu.actions() if a.text() == "From folder…"]
    from_folder.trigger()
    qtbot.waitUntil(lambda: dialog.review is not None and dialog.review.isVisible(), timeout=5000)
    review = dialog.review
    assert "greet" in review.header.text() and "1.2.0" in review.header.text() and "Test Author" in review.header.text()
    top = review.findings.topLevelItem(0)
    assert top.text(0) == "runs programs (1)"
    assert "subprocess" in top.child(0).text(0) and top.child(0).text(1) == "__init__.py:1"
    assert "no extra packages" in review.requirements.text()
    assert not review.install_button.isEnabled()
    assert "greet.Greeter" not in window.registry and not (user_plugins() / "greet").exists()  # nothing written yet

    tick(review.trust)
    assert review.trust.isChecked() and review.install_button.isEnabled()
    QTest.mouseClick(review.install_button, LEFT)
    qtbot.waitUntil(lambda: "greet.Greeter" in window.registry and not dialog.busy, timeout=10000)
    assert (user_plugins() / "greet" / "__init__.py").is_file()
    assert "installed and loaded" in dialog.message.text() and "installed and loaded" in status(window)
    assert row_values(dialog, "greet")[2:4] == ["loaded", "user"] and str(source) in row_values(dialog, "greet")[5]
    assert dialog.selected().name == "greet" and dialog.update_button.isEnabled()

    dialog.hide()
    window.activateWindow()
    view = window.view
    move_to(view, view.mapToScene(view.viewport().rect().center()))
    key(view, Qt.Key.Key_Tab)
    palette = view.palette_popup
    assert palette.isVisible()
    QTest.keyClicks(palette.search, "greeter")
    assert palette.list.currentItem().data(Qt.ItemDataRole.UserRole) == "greet.Greeter"
    QTest.keyClick(palette.search, Qt.Key.Key_Return)
    (node,) = window.document.graph.nodes.values()
    assert node.type == "greet.Greeter" and not window.scene.nodes[node.id].geo.title.startswith("Missing")


def test_a_conflicting_requirement_keeps_install_disabled(make_window, qtbot, tmp_path, monkeypatch):
    from studio.plugins import requirements
    from studio.plugins.manifest import PluginError

    def conflict(*args: Any, **kwargs: Any) -> Any:
        raise PluginError("plugin 'greet' needs numpy 1.x, but Nuance Studio uses numpy 2.0")

    monkeypatch.setattr(requirements, "plan", conflict)
    source = write_plugin(tmp_path / "greet", "greet")
    window = make_window()
    dialog = open_manager(window)
    dialog.install_from(str(source))
    qtbot.waitUntil(lambda: dialog.review is not None, timeout=5000)
    review = dialog.review
    assert "needs numpy 1.x" in review.requirements.text() and "Cannot install" in review.requirements.text()
    tick(review.trust)
    assert review.trust.isChecked() and not review.install_button.isEnabled()
    review.reject()
    assert "was not installed" in dialog.message.text() and not (user_plugins() / "greet").exists()


def test_disabling_turns_open_nodes_into_placeholders_and_enabling_brings_them_back(make_window, qtbot, tmp_path):
    from studio.ui import panels

    write_plugin(user_plugins() / "greet", "greet")
    window = make_window()
    doc = window.document
    node_id = doc.add_node("greet.Greeter", (0, 0))
    doc.set_input(node_id, "count", 7)
    window.scene.select([node_id])
    inspector = panels.of(window).inspector
    assert inspector.node_id == node_id and "count" in inspector.editors

    dialog = open_manager(window)
    click_row(dialog, "greet")
    QTest.mouseClick(dialog.toggle_button, LEFT)
    assert "greet.Greeter" not in window.registry
    assert row_values(dialog, "greet")[2] == "disabled" and dialog.toggle_button.text() == "Enable"
    assert "disabled" in dialog.message.text() and "disabled" in status(window)
    item = window.scene.nodes[node_id]
    assert item.geo.title == "Missing: greet.Greeter"
    assert "plugin 'greet', which is disabled" in " ".join(item.output_text.split())  # said on the node itself
    assert "plugin 'greet', which is disabled" in inspector.description_label.text() and not inspector.editors

    saved = tmp_path / "saved.json"
    assert window.save_as(saved)
    copy = tmp_path / "copy.json"
    shutil.copy(saved, copy)
    assert window.open_file(copy)
    assert "1 node(s) need plugin 'greet', which is disabled: enable it in the Plugin Manager" in status(window)
    window.close_tab()

    click_row(dialog, "greet")
    QTest.mouseClick(dialog.toggle_button, LEFT)
    assert "greet.Greeter" in window.registry and row_values(dialog, "greet")[2] == "loaded"
    assert "enabled" in status(window)
    assert window.document is doc and doc.graph.nodes[node_id].inputs["count"] == 7
    item = window.scene.nodes[node_id]
    assert not item.geo.title.startswith("Missing") and item.geo.widget_for("count") is not None
    assert item.output_text == ""
    assert inspector.node_id == node_id and inspector.editors["count"].widget is not None


def test_uninstall_asks_first_then_removes_the_plugin(make_window, qtbot, tmp_path):
    from studio.plugins import install

    install.install(str(write_plugin(tmp_path / "greet", "greet")), trust=True)
    window = make_window()
    dialog = open_manager(window)
    click_row(dialog, "greet")
    assert dialog.update_button.isEnabled() and dialog.uninstall_button.isEnabled()
    assert row_values(dialog, "greet")[5] == str(tmp_path / "greet")
    assert "folder: " + str(tmp_path / "greet") in dialog.details.toPlainText()

    write_plugin(tmp_path / "greet", "greet", version="1.3.0", second=True)  # the author released a new version
    QTest.mouseClick(dialog.update_button, LEFT)
    qtbot.waitUntil(lambda: dialog.review is not None, timeout=5000)
    review = dialog.review
    assert "1.3.0" in review.header.text() and "Replaces the installed version 1.2.0" in review.header.text()
    assert review.install_button.text() == "Update" and not review.install_button.isEnabled()
    tick(review.trust)
    QTest.mouseClick(review.install_button, LEFT)
    qtbot.waitUntil(lambda: "greet.Waver" in window.registry and not dialog.busy, timeout=10000)
    assert row_values(dialog, "greet")[1:5] == ["1.3.0", "loaded", "user", "2"] and "1.3.0 updated and loaded" in status(window)

    asked: list[str] = []
    dialog.confirm = lambda title, text: asked.append(text) or False
    QTest.mouseClick(dialog.uninstall_button, LEFT)
    assert asked and "greet" in asked[0] and not dialog.busy and "greet.Greeter" in window.registry

    dialog.confirm = lambda title, text: True
    QTest.mouseClick(dialog.uninstall_button, LEFT)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=5000)
    assert "uninstalled" in dialog.message.text() and "uninstalled" in status(window)
    assert dialog.row_of("greet") == -1 and "greet.Greeter" not in window.registry
    assert not (user_plugins() / "greet").exists()


def test_development_mode_reloads_a_linked_plugin_when_its_files_change(make_window, qtbot, tmp_path):
    from studio.plugins import install

    folder = write_plugin(tmp_path / "devplug", "devplug")
    install.install(str(folder), trust=True, dev=True)
    window = make_window()
    dialog = open_manager(window)
    assert row_values(dialog, "devplug")[2:4] == ["loaded", "dev (linked)"]
    assert "devplug.Waver" not in window.registry
    tick(dialog.dev_mode)
    assert dialog.dev_mode.isChecked() and window.plugin_gui.dev_mode

    write_plugin(folder, "devplug", second=True)
    later = os.stat(folder / "__init__.py").st_mtime + 5
    os.utime(folder / "__init__.py", (later, later))
    qtbot.waitUntil(lambda: "devplug.Waver" in window.registry, timeout=4000)  # the 1 s watcher saw it
    assert "reloaded: 2 node type(s)" in status(window)
    assert row_values(dialog, "devplug")[4] == "2"

    tick(dialog.dev_mode)
    assert not window.plugin_gui.dev_mode
    (folder / "__init__.py").write_text("raise ImportError('half-saved')\n", encoding="utf-8")
    assert window.plugin_gui.poll() == ["devplug"]  # the poll itself, as the timer calls it
    assert row_values(dialog, "devplug")[2] == "failed" and "devplug.Waver" not in window.registry
    assert "failed to reload" in status(window)


def test_saving_records_the_plugins_the_workflow_uses(make_window, tmp_path):
    write_plugin(user_plugins() / "greet", "greet")
    window = make_window()
    plain = tmp_path / "plain.json"
    window.document.add_node("PrimitiveInt", (0, 0))
    assert window.save_as(plain)
    assert "plugins" not in json.loads(plain.read_text(encoding="utf-8")).get("meta", {})

    window.document.add_node("greet.Greeter", (200, 0))
    assert window.save()
    meta = json.loads(plain.read_text(encoding="utf-8"))["meta"]
    assert meta["plugins"] == {"greet": {"version": "1.2.0", "homepage": "https://example.org/greet"}}


def test_rescan_loads_a_plugin_installed_from_the_command_line_while_the_app_runs(make_window, qtbot):
    window = make_window()
    dialog = open_manager(window)
    assert dialog.row_of("greet") < 0
    write_plugin(user_plugins() / "greet", "greet")  # as `nuance plugins install` would, in another process
    QTest.mouseClick(dialog.rescan_button, LEFT)
    assert row_values(dialog, "greet")[2] == "loaded" and "greet.Greeter" in window.registry
    assert "1 node type(s) added" in dialog.message.text()
