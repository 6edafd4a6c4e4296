"""Image Tools in the editor: the Levels node shows its transfer curve, with handles to drag.

Only the editor loads this module (as ``nuance_plugins.imagetools.gui``); the node pack itself
stays free of Qt. It imports nothing but PySide6 and the public GUI API, ``studio.ui.api``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPainterPath, QPen, QPolygonF

from studio.ui.api import NodeWidget, PluginGui, WidgetStyle

#: The black point stays at least this far below the white point (the curve divides by the gap).
MIN_GAP = 0.01
#: Values are kept to this many decimals: enough for a drag, short in the saved workflow.
DECIMALS = 3
GAMMA_MIN, GAMMA_MAX = 0.1, 10.0
BAR = 8.0      # height of the grey gradient bar
HANDLE = 10.0  # size of a triangle handle
GRAB = 9.0     # how far (sideways) from a handle a press still takes it
HANDLES = ("gamma", "black", "white")  # on a tie the midpoint wins: it sits between the others


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _number(values: Mapping[str, Any], name: str, default: float) -> float:
    """An input's value as a float (the default when it is missing or not a number)."""
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)


def levels(v: float, black: float, gamma: float, white: float, out_black: float = 0.0, out_white: float = 1.0) -> float:
    """The Levels transfer function for one input value (what the node does to each pixel)."""
    span = white - black
    x = (v - black) / span if span > 0 else float(v >= white)
    x = _clamp(x, 0.0, 1.0) ** (1.0 / max(gamma, 1e-6))
    return out_black + x * (out_white - out_black)


def gamma_point(black: float, gamma: float, white: float) -> float:
    """Where the midpoint handle sits: the input whose output is half-way up the output range."""
    return black + (white - black) * 0.5 ** gamma


def gamma_for(t: float) -> float:
    """The gamma that puts the midpoint at relative position ``t`` between black and white."""
    t = _clamp(t, 1e-9, 1.0 - 1e-9)
    return _clamp(round(math.log(t) / math.log(0.5), DECIMALS), GAMMA_MIN, GAMMA_MAX)


class LevelsWidget(NodeWidget):
    """The levels curve over a grey gradient, with black, midpoint (gamma) and white handles."""

    HEIGHT = 110.0

    def __init__(self) -> None:
        self._handle: str | None = None  # the handle being dragged
        self._moved = False

    # -- layout ------------------------------------------------------------------------------------
    @staticmethod
    def frame(rect: QRectF) -> tuple[QRectF, QRectF, QRectF]:
        """(curve plot, gradient bar, handle strip) inside the widget's area."""
        inner = rect.adjusted(HANDLE / 2 + 3, 4, -(HANDLE / 2 + 3), -3)
        handles = QRectF(inner.left(), inner.bottom() - HANDLE, inner.width(), HANDLE)
        bar = QRectF(inner.left(), handles.top() - BAR - 1, inner.width(), BAR)
        plot = QRectF(inner.left(), inner.top(), inner.width(), max(1.0, bar.top() - 3 - inner.top()))
        return plot, bar, handles

    @staticmethod
    def settings(values: Mapping[str, Any]) -> tuple[float, float, float, float, float]:
        """(black, gamma, white, output_black, output_white) from the node's values."""
        return (_number(values, "black", 0.0), _number(values, "gamma", 1.0), _number(values, "white", 1.0),
                _number(values, "output_black", 0.0), _number(values, "output_white", 1.0))

    def handle_pos(self, name: str, rect: QRectF, values: Mapping[str, Any]) -> QPointF:
        """The centre of handle ``name`` (``black``, ``gamma`` or ``white``)."""
        black, gamma, white, _, _ = self.settings(values)
        at = {"black": black, "gamma": gamma_point(black, gamma, white), "white": white}[name]
        _, _, handles = self.frame(rect)
        return QPointF(handles.left() + _clamp(at, 0.0, 1.0) * handles.width(), handles.center().y())

    # -- gestures ------------------------------------------------------------------------------------
    def press(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
        self._handle, self._moved = None, False
        _, bar, _ = self.frame(rect)
        if pos.y() < bar.top() - 2:
            return None  # on the curve: nothing to take hold of
        reach = {name: abs(self.handle_pos(name, rect, values).x() - pos.x()) for name in HANDLES}
        nearest = min(HANDLES, key=lambda name: reach[name])
        if reach[nearest] <= GRAB:
            self._handle = nearest
        return None

    def drag(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if self._handle is None:
            return None
        self._moved = True
        _, _, handles = self.frame(rect)
        v = _clamp((pos.x() - handles.left()) / max(handles.width(), 1.0), 0.0, 1.0)
        black, _, white, _, _ = self.settings(values)
        if self._handle == "black":
            return {"black": max(0.0, min(round(v, DECIMALS), round(white - MIN_GAP - 10 ** -DECIMALS, DECIMALS)))}
        if self._handle == "white":
            return {"white": min(1.0, max(round(v, DECIMALS), round(black + MIN_GAP + 10 ** -DECIMALS, DECIMALS)))}
        span = white - black
        return {"gamma": gamma_for((v - black) / span)} if span > 0 else None

    def release(self, pos: QPointF, rect: QRectF, values: Mapping[str, Any]) -> Mapping[str, Any] | None:
        changes = self.drag(pos, rect, values) if self._moved else None  # a click on a handle changes nothing
        self._handle, self._moved = None, False
        return changes

    # -- painting ---------------------------------------------------------------------------------------
    def paint(self, painter: QPainter, rect: QRectF, values: Mapping[str, Any], style: WidgetStyle) -> None:
        black, gamma, white, out_black, out_white = self.settings(values)
        plot, bar, handles = self.frame(rect)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(style.background)
        painter.drawRoundedRect(rect, 5, 5)

        grid = QColor(style.dim_text)
        grid.setAlpha(55)
        painter.setPen(QPen(grid, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for f in (0.25, 0.5, 0.75):
            x = plot.left() + f * plot.width()
            y = plot.bottom() - f * plot.height()
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        painter.drawRect(plot)
        painter.setPen(QPen(grid, 1, Qt.PenStyle.DashLine))
        painter.drawLine(plot.bottomLeft(), plot.topRight())  # the identity, for comparison

        steps = max(16, int(plot.width() / 2))
        curve = QPainterPath()
        for i in range(steps + 1):
            v = i / steps
            out = _clamp(levels(v, black, gamma, white, out_black, out_white), 0.0, 1.0)
            point = QPointF(plot.left() + v * plot.width(), plot.bottom() - out * plot.height())
            if i == 0:
                curve.moveTo(point)
            else:
                curve.lineTo(point)
        area = QPainterPath(curve)
        area.lineTo(plot.bottomRight())
        area.lineTo(plot.bottomLeft())
        area.closeSubpath()
        fill = QColor(style.accent)
        fill.setAlpha(70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawPath(area)
        painter.setPen(QPen(style.text, 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(curve)

        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        gradient.setColorAt(0.0, QColor(0, 0, 0))
        gradient.setColorAt(1.0, QColor(255, 255, 255))
        painter.setPen(QPen(style.dim_text, 0.5))
        painter.setBrush(gradient)
        painter.drawRect(bar)

        shades = {"black": QColor(0, 0, 0), "gamma": QColor(128, 128, 128), "white": QColor(255, 255, 255)}
        for name in ("black", "white", "gamma"):
            centre = self.handle_pos(name, rect, values)
            x, top = centre.x(), handles.top()
            triangle = QPolygonF([QPointF(x, top), QPointF(x - HANDLE / 2, top + HANDLE), QPointF(x + HANDLE / 2, top + HANDLE)])
            held = name == self._handle
            painter.setPen(QPen(style.accent if held else style.dim_text, 2.0 if held else 1.0))
            painter.setBrush(shades[name])
            painter.drawPolygon(triangle)

        painter.setFont(style.font)
        painter.setPen(style.dim_text)
        painter.drawText(plot.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, f"γ {gamma:.2f}")


def register_gui(gui: PluginGui) -> None:
    """Called by the editor when Image Tools is enabled."""
    gui.add_node_widget("Levels", LevelsWidget)
