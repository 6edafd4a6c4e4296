"""The light theme: chosen in Preferences, saved in settings.toml, shown at once on every open
canvas (background, nodes, wires, minimap) and by windows opened later."""

from __future__ import annotations

import tomllib

import pytest
from editor_support import key, open_preferences, open_window, press_ok
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.core.paths import config_dir
from studio.ui import theme
from studio.ui.panels.settings import Preferences, saved_theme

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(qtbot, registry):
    yield from open_window(qtbot, registry)


@pytest.fixture(autouse=True)
def _dark_after():
    yield  # later tests expect the default theme
    theme.apply_dark_palette(QApplication.instance())


def choose_theme(window, qtbot, steps: Qt.Key) -> None:
    """Open Preferences, move the Theme combo by one entry with the keyboard, press OK."""
    dialog = open_preferences(window, qtbot)
    dialog.theme.setFocus()
    QTest.keyClick(dialog.theme, steps)
    press_ok(dialog)
    assert not dialog.isVisible()


def show_tab(window, index: int) -> None:
    bar = window.tabs.tabBar()
    QTest.mouseClick(bar, LEFT, Qt.KeyboardModifier.NoModifier, bar.tabRect(index).center())
    assert window.tabs.currentIndex() == index


def pixels(window) -> dict[str, QColor]:
    """What the current tab's canvas shows: an empty spot, a node's body and a spot of the minimap."""
    view = window.view
    image = view.viewport().grab().toImage()
    node = next(iter(window.scene.nodes.values()))
    body = view.mapFromScene(node.mapToScene(QPointF(4, node.geo.outputs[0].pos.y())))
    found = {"background": image.pixelColor(QPoint(6, 6)), "body": image.pixelColor(body)}
    if view.minimap.shown:
        found["minimap"] = image.pixelColor(view.minimap.rect.topLeft() + QPoint(3, 3))
    return found


def test_choosing_light_repaints_every_tab_at_once_and_dark_brings_back_every_pixel(window, qtbot):
    settings = config_dir() / "settings.toml"
    doc = window.document
    first = doc.add_node("PrimitiveInt", (0, 0))
    shown = doc.add_node("PreviewAny", (300, 0))
    doc.connect(first, 0, shown, "source")
    doc.add_node("PrimitiveFloat", (3000, 2000))  # far away: at 100% the minimap is shown
    key(window.view, Qt.Key.Key_Home)
    key(window.view, Qt.Key.Key_0, CTRL)  # actual size
    window.view.centerOn(window.scene.nodes[first].sceneBoundingRect().center())
    qtbot.waitUntil(lambda: window.view.minimap.shown)
    key(window.view, Qt.Key.Key_T, CTRL)  # a second tab, with a node of its own
    window.document.add_node("PrimitiveString", (0, 0))
    key(window.view, Qt.Key.Key_Home)
    assert len(window.workflow_tabs()) == 2

    dark = []
    for index in (0, 1):
        show_tab(window, index)
        dark.append(pixels(window))
    assert "minimap" in dark[0]
    assert all(colour.lightnessF() < 0.3 for shot in dark for colour in shot.values())
    assert dark[0]["body"] == QColor(theme.DARK["NODE_BODY"])
    wire = next(iter(window.workflow_tabs()[0].scene.wires.values()))
    assert wire.pen().color() == QColor(theme.DARK_TYPE_COLORS["INT"])

    choose_theme(window, qtbot, Qt.Key.Key_Down)  # Dark → Light
    assert tomllib.loads(settings.read_text(encoding="utf-8")) == {"editor": {"theme": "light"}}
    assert theme.current_theme() == "light"
    for index in (1, 0):  # the tab shown while choosing, then the other one
        show_tab(window, index)
        light = pixels(window)
        assert light.keys() == dark[index].keys()
        for part, colour in light.items():
            assert colour.lightnessF() > 0.75, f"tab {index}: the {part} is still dark: {colour.name()}"
        assert light["body"] == QColor(theme.LIGHT["NODE_BODY"])
    assert wire.pen().color() == QColor(theme.LIGHT_TYPE_COLORS["INT"]), "wires keep their pen: it is set again"
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightnessF() > 0.75

    choose_theme(window, qtbot, Qt.Key.Key_Up)  # Light → Dark
    assert saved_theme() == "dark" and "editor" not in tomllib.loads(settings.read_text(encoding="utf-8"))
    for index in (0, 1):
        show_tab(window, index)
        assert pixels(window) == dark[index], f"tab {index} looks as it did before the light theme"
    assert wire.pen().color() == QColor(theme.DARK_TYPE_COLORS["INT"])


def test_a_window_opened_later_starts_in_the_saved_theme(window, qtbot, registry):
    settings = config_dir() / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('[editor]\nzoom_speed = 2\n', encoding="utf-8")  # a key of the user's own
    choose_theme(window, qtbot, Qt.Key.Key_Down)
    assert tomllib.loads(settings.read_text(encoding="utf-8")) == {"editor": {"zoom_speed": 2, "theme": "light"}}
    window.close()

    later = next(open_window(qtbot, registry))  # applies the dark palette first, as the tests' windows do
    later.document.add_node("PrimitiveInt", (0, 0))
    key(later.view, Qt.Key.Key_Home)
    shot = pixels(later)
    assert shot["background"].lightnessF() > 0.75 and shot["body"] == QColor(theme.LIGHT["NODE_BODY"])
    dialog = open_preferences(later, qtbot)
    assert dialog.theme.currentData() == "light" and dialog.theme.currentText() == "Light"
    QTest.keyClick(dialog, Qt.Key.Key_Escape)
    later.close()


def test_unknown_theme_names_mean_dark():
    app = QApplication.instance()
    assert theme.apply_theme(app, "solarized") == "dark" and theme.current_theme() == "dark"
    assert theme.BACKGROUND == QColor("#1d1f23")
    assert Preferences.from_settings({"editor": {"theme": "solarized"}}).theme == "dark"
    assert Preferences.from_settings({"editor": {"theme": "light"}}).theme == "light"
    assert Preferences(theme="light").merged_into({"editor": {"x": 1}}) == {"editor": {"x": 1, "theme": "light"}}


def test_the_editor_starts_in_the_saved_theme_before_its_window_exists(monkeypatch):
    from studio.ui import app as app_module

    config_dir().mkdir(parents=True)
    (config_dir() / "settings.toml").write_text('[editor]\ntheme = "light"\n', encoding="utf-8")
    seen = []

    class Shown:
        view = type("View", (), {"fit": lambda self: None})()

        def show(self) -> None:
            pass

    monkeypatch.setattr(app_module, "create_window", lambda workflow: seen.append(theme.current_theme()) or Shown())
    app = QApplication.instance()
    names = app.applicationName(), app.organizationName()
    monkeypatch.setattr(app, "exec", lambda: 0)
    try:
        assert app_module.main([]) == 0
    finally:
        app.setApplicationName(names[0])
        app.setOrganizationName(names[1])
    assert seen == ["light"]
