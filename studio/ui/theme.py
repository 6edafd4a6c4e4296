"""Colours, fonts and the dark palette: one place, so every part of the editor agrees."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from studio.core.types import type_members

BACKGROUND = QColor("#1d1f23")
GRID_MINOR = QColor("#25282d")
GRID_MAJOR = QColor("#2e3238")
NODE_BODY = QColor("#2c2f35")
NODE_HEADER = QColor("#3a3f47")
NODE_BORDER = QColor("#15171a")
NODE_TEXT = QColor("#e6e6e6")
NODE_TEXT_DIM = QColor("#9aa0a8")
WIDGET_BG = QColor("#202226")
WIDGET_TEXT = QColor("#d8d8d8")
SELECTED = QColor("#f0c674")
RUNNING = QColor("#5fb3ff")
CACHED = QColor("#6fbf73")
FAILED = QColor("#e05555")
PLACEHOLDER_HEADER = QColor("#6b2f2f")
MUTED_OVERLAY = QColor(20, 20, 20, 150)
BYPASSED_OVERLAY = QColor(150, 60, 170, 70)
GROUP_DEFAULT = QColor("#3f5f7f")
NOTE_BG = QColor("#4a4630")
DIM_ALPHA = 45

#: Familiar colours for the core types (those ComfyUI users know); others get a stable hue.
TYPE_COLORS = {
    "MODEL": "#b39ddb", "CLIP": "#ffd500", "VAE": "#ff6e6e", "CONDITIONING": "#ffa931",
    "LATENT": "#ff9cf9", "IMAGE": "#64b5f6", "MASK": "#81c784", "CONTROL_NET": "#00d78d",
    "UPSCALE_MODEL": "#c5a3ff", "INT": "#7fd1b9", "FLOAT": "#a8d5a2", "STRING": "#e8e8a0",
    "BOOLEAN": "#f4a6a6", "*": "#c8c8c8",
}

#: Colours offered for nodes and groups (litegraph's palette, slightly brighter).
SWATCHES = {
    "red": "#7a3434", "brown": "#6b4b2f", "green": "#34603a", "blue": "#33507a",
    "pale blue": "#3f6b7a", "cyan": "#2f6b6b", "purple": "#5a3a6b", "yellow": "#6b6330",
}


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
        return QColor.fromHsl(hue, 150, 165)
    return QColor(TYPE_COLORS["*"])


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


def apply_dark_palette(app: QApplication) -> None:
    """A dark Fusion look: artists work on images, and a bright frame distracts from them."""
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#25282d", QPalette.ColorRole.WindowText: "#e0e0e0",
        QPalette.ColorRole.Base: "#1b1d21", QPalette.ColorRole.AlternateBase: "#25282d",
        QPalette.ColorRole.ToolTipBase: "#2c2f35", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e0e0e0", QPalette.ColorRole.Button: "#2f3238",
        QPalette.ColorRole.ButtonText: "#e0e0e0", QPalette.ColorRole.BrightText: "#ff6060",
        QPalette.ColorRole.Highlight: "#3d6fa8", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#5fb3ff", QPalette.ColorRole.PlaceholderText: "#80858c",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c7077"))
    app.setPalette(palette)
