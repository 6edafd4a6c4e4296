"""Colours, fonts and the palettes of the two themes: one place, so every part of the editor agrees.

The canvas reads the module's colours (``theme.BACKGROUND`` …) when it paints, so switching the
theme only rebinds them here, sets the application palette, and tells the views (``changes()``)
to drop what they built from the old colours: cached backgrounds, pens, the minimap.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from studio.core.types import type_members

#: The themes offered in Preferences; the first is the default.
THEMES = ("dark", "light")
DEFAULT_THEME = THEMES[0]

Spec = str | tuple[int, int, int, int]

#: Dark (the default): artists judge pictures on a dark frame.
DARK: dict[str, Spec] = {
    "BACKGROUND": "#1d1f23", "GRID_MINOR": "#25282d", "GRID_MAJOR": "#2e3238",
    "NODE_BODY": "#2c2f35", "NODE_HEADER": "#3a3f47", "NODE_BORDER": "#15171a",
    "NODE_TEXT": "#e6e6e6", "NODE_TEXT_DIM": "#9aa0a8", "WIDGET_BG": "#202226", "WIDGET_TEXT": "#d8d8d8",
    "TEXT_BOX_BG": "#17191c", "TOGGLE_ON": "#3d6fa8", "TOGGLE_OFF": "#4a4e55", "TOGGLE_KNOB": "#e6e6e6",
    "SELECTED": "#f0c674", "RUNNING": "#5fb3ff", "CACHED": "#6fbf73", "FAILED": "#e05555",
    "PLACEHOLDER_HEADER": "#6b2f2f", "MUTED_OVERLAY": (20, 20, 20, 150), "BYPASSED_OVERLAY": (150, 60, 170, 70),
    "GROUP_DEFAULT": "#3f5f7f", "NOTE_BG": "#4a4630",
    "MINIMAP_BACKDROP": (12, 13, 15, 210), "MINIMAP_FRAME": "#4a4f57", "MINIMAP_NODE": "#6b7280",
    "MINIMAP_VISIBLE": (240, 198, 116, 40), "PLACEHOLDER_ICON": "#2a2d32",
    "POPUP_BG": "#2a2d33", "POPUP_BORDER": "#4a4f57", "POPUP_LIST_BG": "#23262b", "EDITOR_BG": "#15171a",
    "EDITOR_TEXT": "#f0f0f0", "ACCENT": "#3d6fa8",
}

#: Light: for bright rooms and screens. Text and sockets are darker and more saturated than in the
#: dark theme, so they keep their contrast on a white node.
LIGHT: dict[str, Spec] = {
    "BACKGROUND": "#e9ecf0", "GRID_MINOR": "#dfe3e8", "GRID_MAJOR": "#cdd2d9",
    "NODE_BODY": "#fbfbfc", "NODE_HEADER": "#dce2ea", "NODE_BORDER": "#a3aab5",
    "NODE_TEXT": "#1d2127", "NODE_TEXT_DIM": "#5a616c", "WIDGET_BG": "#eceff3", "WIDGET_TEXT": "#1d2127",
    "TEXT_BOX_BG": "#f0f2f5", "TOGGLE_ON": "#3d6fa8", "TOGGLE_OFF": "#b4bac4", "TOGGLE_KNOB": "#ffffff",
    "SELECTED": "#d48a00", "RUNNING": "#1f7ad1", "CACHED": "#2e8b3e", "FAILED": "#c62828",
    "PLACEHOLDER_HEADER": "#f2c4c4", "MUTED_OVERLAY": (255, 255, 255, 150), "BYPASSED_OVERLAY": (150, 60, 170, 45),
    "GROUP_DEFAULT": "#7fa4c8", "NOTE_BG": "#f5ecb8",
    "MINIMAP_BACKDROP": (255, 255, 255, 215), "MINIMAP_FRAME": "#a3aab5", "MINIMAP_NODE": "#8a919c",
    "MINIMAP_VISIBLE": (212, 138, 0, 40), "PLACEHOLDER_ICON": "#dde1e7",
    "POPUP_BG": "#f7f8fa", "POPUP_BORDER": "#a3aab5", "POPUP_LIST_BG": "#ffffff", "EDITOR_BG": "#ffffff",
    "EDITOR_TEXT": "#1d2127", "ACCENT": "#3d6fa8",
}

#: Familiar colours for the core types (those ComfyUI users know); others get a stable hue.
DARK_TYPE_COLORS = {
    "MODEL": "#b39ddb", "CLIP": "#ffd500", "VAE": "#ff6e6e", "CONDITIONING": "#ffa931",
    "LATENT": "#ff9cf9", "IMAGE": "#64b5f6", "MASK": "#81c784", "CONTROL_NET": "#00d78d",
    "UPSCALE_MODEL": "#c5a3ff", "INT": "#7fd1b9", "FLOAT": "#a8d5a2", "STRING": "#e8e8a0",
    "BOOLEAN": "#f4a6a6", "*": "#c8c8c8",
}
#: The same hues, deeper: pastel yellow or pink would vanish on a white node.
LIGHT_TYPE_COLORS = {
    "MODEL": "#7e57c2", "CLIP": "#c79a00", "VAE": "#e53935", "CONDITIONING": "#ef7d00",
    "LATENT": "#d63aa6", "IMAGE": "#1e88e5", "MASK": "#43a047", "CONTROL_NET": "#00a170",
    "UPSCALE_MODEL": "#8e5bd8", "INT": "#00897b", "FLOAT": "#689f38", "STRING": "#9e8f00",
    "BOOLEAN": "#d84343", "*": "#7b828c",
}

#: Colours offered for nodes and groups (litegraph's palette, slightly brighter). Stored in the
#: workflow as they are; the light theme shows them paler (``shown_colour``).
SWATCHES = {
    "red": "#7a3434", "brown": "#6b4b2f", "green": "#34603a", "blue": "#33507a",
    "pale blue": "#3f6b7a", "cyan": "#2f6b6b", "purple": "#5a3a6b", "yellow": "#6b6330",
}

#: The Fusion palette of each theme (the widgets around the canvas).
_WIDGET_PALETTES: dict[str, dict[QPalette.ColorRole, str]] = {
    "dark": {
        QPalette.ColorRole.Window: "#25282d", QPalette.ColorRole.WindowText: "#e0e0e0",
        QPalette.ColorRole.Base: "#1b1d21", QPalette.ColorRole.AlternateBase: "#25282d",
        QPalette.ColorRole.ToolTipBase: "#2c2f35", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e0e0e0", QPalette.ColorRole.Button: "#2f3238",
        QPalette.ColorRole.ButtonText: "#e0e0e0", QPalette.ColorRole.BrightText: "#ff6060",
        QPalette.ColorRole.Highlight: "#3d6fa8", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#5fb3ff", QPalette.ColorRole.PlaceholderText: "#80858c",
    },
    "light": {
        QPalette.ColorRole.Window: "#f0f2f5", QPalette.ColorRole.WindowText: "#1d2127",
        QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f3f5f8",
        QPalette.ColorRole.ToolTipBase: "#ffffdc", QPalette.ColorRole.ToolTipText: "#1d2127",
        QPalette.ColorRole.Text: "#1d2127", QPalette.ColorRole.Button: "#e4e7ec",
        QPalette.ColorRole.ButtonText: "#1d2127", QPalette.ColorRole.BrightText: "#c62828",
        QPalette.ColorRole.Highlight: "#3d6fa8", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#1f6fbf", QPalette.ColorRole.PlaceholderText: "#8a9099",
    },
}
_DISABLED_TEXT = {"dark": "#6c7077", "light": "#a0a6ae"}


def _colour(spec: Spec) -> QColor:
    return QColor(spec) if isinstance(spec, str) else QColor(*spec)


# The colours the canvas paints with, the dark theme's until apply_theme rebinds them: read them as
# ``theme.NAME`` when painting (``from theme import NAME`` would keep the old colour).
BACKGROUND = _colour(DARK["BACKGROUND"])
GRID_MINOR = _colour(DARK["GRID_MINOR"])
GRID_MAJOR = _colour(DARK["GRID_MAJOR"])
NODE_BODY = _colour(DARK["NODE_BODY"])
NODE_HEADER = _colour(DARK["NODE_HEADER"])
NODE_BORDER = _colour(DARK["NODE_BORDER"])
NODE_TEXT = _colour(DARK["NODE_TEXT"])
NODE_TEXT_DIM = _colour(DARK["NODE_TEXT_DIM"])
WIDGET_BG = _colour(DARK["WIDGET_BG"])
WIDGET_TEXT = _colour(DARK["WIDGET_TEXT"])
TEXT_BOX_BG = _colour(DARK["TEXT_BOX_BG"])
TOGGLE_ON = _colour(DARK["TOGGLE_ON"])
TOGGLE_OFF = _colour(DARK["TOGGLE_OFF"])
TOGGLE_KNOB = _colour(DARK["TOGGLE_KNOB"])
SELECTED = _colour(DARK["SELECTED"])
RUNNING = _colour(DARK["RUNNING"])
CACHED = _colour(DARK["CACHED"])
FAILED = _colour(DARK["FAILED"])
PLACEHOLDER_HEADER = _colour(DARK["PLACEHOLDER_HEADER"])
MUTED_OVERLAY = _colour(DARK["MUTED_OVERLAY"])
BYPASSED_OVERLAY = _colour(DARK["BYPASSED_OVERLAY"])
GROUP_DEFAULT = _colour(DARK["GROUP_DEFAULT"])
NOTE_BG = _colour(DARK["NOTE_BG"])
MINIMAP_BACKDROP = _colour(DARK["MINIMAP_BACKDROP"])
MINIMAP_FRAME = _colour(DARK["MINIMAP_FRAME"])
MINIMAP_NODE = _colour(DARK["MINIMAP_NODE"])
MINIMAP_VISIBLE = _colour(DARK["MINIMAP_VISIBLE"])
PLACEHOLDER_ICON = _colour(DARK["PLACEHOLDER_ICON"])
POPUP_BG = _colour(DARK["POPUP_BG"])
POPUP_BORDER = _colour(DARK["POPUP_BORDER"])
POPUP_LIST_BG = _colour(DARK["POPUP_LIST_BG"])
EDITOR_BG = _colour(DARK["EDITOR_BG"])
EDITOR_TEXT = _colour(DARK["EDITOR_TEXT"])
ACCENT = _colour(DARK["ACCENT"])
TYPE_COLORS = DARK_TYPE_COLORS
DIM_ALPHA = 45

_current = DEFAULT_THEME


def _bind(name: str) -> None:
    """Rebind the module's colours to theme ``name``'s."""
    global TYPE_COLORS, _current
    values = LIGHT if name == "light" else DARK
    globals().update({key: _colour(spec) for key, spec in values.items()})
    TYPE_COLORS = LIGHT_TYPE_COLORS if name == "light" else DARK_TYPE_COLORS
    _current = name
    type_color.cache_clear()


def current_theme() -> str:
    """The theme the editor shows now: ``"dark"`` or ``"light"``."""
    return _current


class ThemeSignals(QObject):
    #: Emitted with the theme's name after it changed; views and panels refresh what they cached.
    changed = Signal(str)


_signals: ThemeSignals | None = None


def changes() -> ThemeSignals:
    """The object whose ``changed`` signal says the theme changed (connect a bound method of a
    QObject, so the connection ends with the receiver)."""
    global _signals
    if _signals is None:
        _signals = ThemeSignals()
    return _signals


def apply_theme(app: QApplication, name: str) -> str:
    """Show theme ``name`` (an unknown one means dark): the canvas colours, the widgets' Fusion
    palette, and a ``changed`` signal when it differs from before. Returns the name applied."""
    name = name if name in THEMES else DEFAULT_THEME
    before = _current
    _bind(name)
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in _WIDGET_PALETTES[name].items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[name]))
    app.setPalette(palette)
    if name != before:
        changes().changed.emit(name)
    return name


def apply_dark_palette(app: QApplication) -> None:
    """The dark theme (kept for callers from before there were two)."""
    apply_theme(app, "dark")


@lru_cache(maxsize=256)
def type_color(type_name: str) -> QColor:
    """The colour of a socket and its wires: by type, so a glance shows what may connect."""
    members = type_members(type_name)
    if members is None:
        return QColor(TYPE_COLORS["*"])
    if len(members) == 1:
        (name,) = members
        if name in TYPE_COLORS:
            return QColor(TYPE_COLORS[name])
        hue = int(hashlib.md5(name.encode()).hexdigest()[:4], 16) % 360
        return QColor.fromHsl(hue, 170, 100) if _current == "light" else QColor.fromHsl(hue, 150, 165)
    return QColor(TYPE_COLORS["*"])


def shown_colour(stored: str) -> QColor:
    """How a colour the workflow stores for a node, group or note is shown: as it is on the dark
    theme; paler on the light one, where litegraph's dark swatches would swallow dark text."""
    colour = QColor(stored)
    if _current != "light" or not colour.isValid() or colour.lightnessF() >= 0.6:
        return colour
    hue, saturation, _lightness, alpha = colour.getHslF()
    return QColor.fromHslF(hue, min(1.0, saturation * 1.2 + 0.1), 0.78, alpha)


def _luminance(colour: QColor) -> float:
    """Relative luminance (WCAG), the measure of how text stands out."""
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours, 1 (none) to 21."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(fill: QColor) -> QColor:
    """NODE_TEXT when it reads well on ``fill`` (a header the user coloured may not let it), else
    whichever of near-black and near-white reads better."""
    if contrast(NODE_TEXT, fill) >= 4.5:
        return NODE_TEXT
    dark, light = QColor("#1d2127"), QColor("#f0f0f0")
    return dark if contrast(dark, fill) >= contrast(light, fill) else light


def edge(colour: QColor, factor: int) -> QColor:
    """An outline of ``colour``: lighter on the dark theme, darker on the light one."""
    return colour.darker(factor) if _current == "light" else colour.lighter(factor)


@lru_cache(maxsize=1)
def fonts() -> dict[str, QFont]:
    base = QApplication.font()
    title = QFont(base)
    title.setPointSizeF(10)
    title.setBold(True)
    label = QFont(base)
    label.setPointSizeF(9)
    small = QFont(base)
    small.setPointSizeF(8)
    return {"title": title, "label": label, "small": small}

