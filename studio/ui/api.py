"""The public GUI API for plugin authors: custom areas drawn on nodes in the editor.

A plugin's node code imports only :mod:`studio.api` and runs without Qt. A plugin may also ship
a GUI module (``gui.py``) that only the editor loads; it defines a ``register_gui(gui)`` function
and imports only PySide6 and this module. Example::

    from studio.ui.api import NodeWidget

    class Dial(NodeWidget):
        HEIGHT = 60.0

        def paint(self, painter, rect, values, style):
            painter.setPen(style.text)
            painter.drawText(rect, f"{values['amount']:.2f}")

        def drag(self, pos, rect, values):
            return {"amount": min(max((pos.x() - rect.left()) / rect.width(), 0.0), 1.0)}

    def register_gui(gui):
        gui.add_node_widget("Dial", Dial)   # for the node type "<plugin>.Dial"

The editor draws the widget below the node's widget rows, applies what ``press``/``drag``/
``release`` return through the document (checked against the inputs' types and ranges, one undo
step per gesture), and survives a widget that raises: the node shows the error instead.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QPainter

from studio.ui import theme

__all__ = ["GuiExtensions", "NodeWidget", "PluginGui", "WidgetStyle", "isolated", "shared"]

log = logging.getLogger(__name__)

#: The tallest area a widget may ask for: a typo in HEIGHT must not make a node a mile long.
MAX_HEIGHT = 2000.0

Changes = Mapping[str, Any]


@dataclass(frozen=True)
class WidgetStyle:
    """The theme's colours and font, so a widget looks at home in the dark and the light theme."""

    background: QColor
    text: QColor
    dim_text: QColor
    accent: QColor
    font: QFont
    dark: bool

    @classmethod
    def current(cls) -> WidgetStyle:
        """The style of the theme shown now (copies: a widget may change them freely)."""
        return cls(QColor(theme.WIDGET_BG), QColor(theme.WIDGET_TEXT), QColor(theme.NODE_TEXT_DIM),
                   QColor(theme.ACCENT), QFont(theme.fonts()["label"]), theme.current_theme() != "light")


class NodeWidget:
    """A custom area drawn on every node of one type, below its widget rows.

    Override what you need. Positions are in the same (node) coordinates as ``rect``.
    ``values`` holds the node's constant inputs with defaults filled in (read-only). ``press``,
    ``drag`` and ``release`` return input changes ``{input name: new value}`` (or None); the
    editor checks and applies them, and a whole press → drag → release gesture is one undo step.
    The editor makes one instance per node on the canvas, so a widget may keep gesture state on
    ``self``.
    """

    #: Height of the area, in node units; the area spans the node's inner width.
    HEIGHT: float = 90.0

    def paint(self, painter: QPainter, rect: QRectF, values: Mapping[str, Any], style: WidgetStyle) -> None:
        """Draw the area (the painter is clipped to ``rect`` and restored afterwards)."""

    def press(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Changes | None:
        """The left button went down inside ``rect``."""
        return None

    def drag(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Changes | None:
        """The mouse moved with the button held (``pos`` may leave ``rect``)."""
        return None

    def release(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Changes | None:
        """The button came up: the gesture ends."""
        return None


def widget_height(widget: type[NodeWidget]) -> float:
    """A widget class's HEIGHT, checked: a positive number no larger than :data:`MAX_HEIGHT`."""
    height = getattr(widget, "HEIGHT", None)
    if isinstance(height, bool) or not isinstance(height, (int, float)) or not math.isfinite(height) or height <= 0:
        raise ValueError(f"{widget.__name__}.HEIGHT must be a positive number, not {height!r}")
    return min(float(height), MAX_HEIGHT)


class PluginGui:
    """What a plugin's ``register_gui(gui)`` receives: adds widgets for the plugin's own nodes."""

    def __init__(self, extensions: GuiExtensions, plugin: str):
        self.extensions = extensions
        self.plugin = plugin

    def add_node_widget(self, name: str, widget: type[NodeWidget]) -> str:
        """Draw ``widget`` on the plugin's node ``name`` (namespaced as ``plugin.name``, as its
        node type is); returns the full node type."""
        node_type = f"{self.plugin}.{name}"
        self.extensions.add_node_widget(node_type, widget, plugin=self.plugin)
        return node_type


class GuiExtensions:
    """Which node types have a custom widget, and which plugin gave it (to drop it on disable).

    Listeners (open canvases) hear of every change so their nodes re-layout at once.
    """

    def __init__(self) -> None:
        self._widgets: dict[str, tuple[type[NodeWidget], str | None]] = {}
        self._listeners: list[Callable[[], Callable[[], Any] | None]] = []

    def add_node_widget(self, node_type: str, widget: type[NodeWidget], *, plugin: str | None = None) -> None:
        """Draw ``widget`` on every node of ``node_type``. A plugin may replace its own widget (a
        reload), not another plugin's."""
        if not isinstance(node_type, str) or not node_type:
            raise ValueError(f"a node widget needs a node type name, not {node_type!r}")
        if not (isinstance(widget, type) and issubclass(widget, NodeWidget)):
            raise ValueError(f"the widget for {node_type} must be a subclass of studio.ui.api.NodeWidget, not {widget!r}")
        widget_height(widget)
        existing = self._widgets.get(node_type)
        if existing is not None and existing[1] != plugin:
            owner = f"plugin {existing[1]!r}" if existing[1] is not None else "the application"
            raise ValueError(f"node type {node_type} already has a widget ({existing[0].__name__}) from {owner}")
        self._widgets[node_type] = (widget, plugin)
        self._notify()

    def node_widget_class(self, node_type: str) -> type[NodeWidget] | None:
        """The widget drawn on nodes of ``node_type``, if any."""
        entry = self._widgets.get(node_type)
        return entry[0] if entry is not None else None

    def remove_plugin(self, plugin: str) -> list[str]:
        """Drop every widget ``plugin`` added (it was disabled or is reloading); returns their
        node types."""
        gone = [node_type for node_type, (_, owner) in self._widgets.items() if owner == plugin]
        for node_type in gone:
            del self._widgets[node_type]
        if gone:
            self._notify()
        return gone

    def for_plugin(self, plugin: str) -> PluginGui:
        """The object passed to ``plugin``'s ``register_gui``."""
        if not isinstance(plugin, str) or not plugin:
            raise ValueError(f"a plugin needs a name, not {plugin!r}")
        return PluginGui(self, plugin)

    def subscribe(self, listener: Callable[[], Any]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that stops it. A bound method
        is held weakly, so a canvas that is never closed is still freed (its entry then lapses)."""
        ref: Callable[[], Callable[[], Any] | None]
        if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
            ref = weakref.WeakMethod(listener)  # type: ignore[arg-type]
        else:
            def ref() -> Callable[[], Any] | None:
                return listener
        self._listeners.append(ref)

        def unsubscribe() -> None:
            if ref in self._listeners:
                self._listeners.remove(ref)

        return unsubscribe

    @property
    def listener_count(self) -> int:
        """Live listeners (for checks that closed canvases let go)."""
        return sum(1 for ref in self._listeners if ref() is not None)

    def _notify(self) -> None:
        for ref in list(self._listeners):
            listener = ref()
            if listener is None:
                self._listeners.remove(ref)
                continue
            try:
                listener()
            except Exception:  # one broken canvas must not stop the others re-laying out
                log.exception("node widget listener failed")


_shared = GuiExtensions()


def shared() -> GuiExtensions:
    """The process-wide registry the editor's canvases read."""
    return _shared


@contextmanager
def isolated() -> Iterator[GuiExtensions]:
    """Use a fresh, empty registry as :func:`shared` inside the block (for tests); canvases made
    inside it read that one."""
    global _shared
    before, _shared = _shared, GuiExtensions()
    try:
        yield _shared
    finally:
        _shared = before
