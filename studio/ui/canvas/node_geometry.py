"""Where everything on a node sits: header, sockets, widget rows, the image picker, a plugin's custom
widget area, the output text area.

Computed once when a node changes (not on every paint), so painting and hit-testing only read
rectangles. A widget input shows as a socket when it is wired or the user converted it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QFontMetricsF

from studio.core import layout
from studio.core.graph import GraphNode, Link
from studio.core.nodedef import Input, NodeSpec
from studio.core.types import WIDGET_TYPES, type_members
from studio.ui import theme

HEADER = 26.0
SOCKET_ROW = 22.0
WIDGET_ROW = 24.0
MULTILINE_ROWS = 4
PAD = 8.0
MIN_WIDTH = 220.0
PORT_RADIUS = 5.0
TEXT_LINE = 15.0
MAX_TEXT_LINES = 6
#: A long file name or text value widens its node up to this much; beyond, it is elided.
MAX_VALUE_WIDTH = 200.0

#: Widget kinds, each drawn and edited in its own way.
INT, FLOAT, COMBO, TOGGLE, TEXT, MULTILINE, CONTROL = "int", "float", "combo", "toggle", "text", "multiline", "control"

#: Node type → the input naming an image file: such nodes show the picture and buttons to choose or paste one.
IMAGE_FILE_INPUTS: dict[str, str] = {"LoadImage": "image", "LoadImageMask": "image"}
THUMB_HEIGHT = 150.0
#: Room around a plugin's custom widget area: the node grows by its HEIGHT plus this.
CUSTOM_MARGIN = 8.0


def widget_kind(inp: Input) -> str | None:
    """How an input's constant is edited on the node; None when it can only be wired."""
    members = type_members(inp.type)
    if members is None or not members & WIDGET_TYPES:
        return None
    if inp.choices is not None:
        return COMBO
    if members == {"BOOLEAN"}:
        return TOGGLE
    if members == {"INT"}:
        return INT
    if members == {"FLOAT"}:
        return FLOAT
    if members == {"STRING"} and inp.multiline:
        return MULTILINE
    return TEXT


@dataclass(frozen=True)
class Port:
    """A socket: ``key`` is the input name, or the output's index."""

    key: str | int
    label: str
    type: str
    pos: QPointF
    is_input: bool


@dataclass(frozen=True)
class WidgetRow:
    name: str
    label: str
    kind: str
    rect: QRectF
    inp: Input | None = None


@dataclass(frozen=True)
class ImagePicker:
    """The picture of an image-file input and its two buttons, in node coordinates."""

    name: str
    choose: QRectF
    paste: QRectF
    thumb: QRectF

    def translated(self, dy: float, grow: float = 0.0) -> ImagePicker:
        thumb = self.thumb.translated(0, dy)
        thumb.setHeight(thumb.height() + grow)
        return ImagePicker(self.name, self.choose.translated(0, dy), self.paste.translated(0, dy), thumb)


@dataclass
class NodeGeometry:
    width: float
    height: float
    title: str
    inputs: dict[str, Port] = field(default_factory=dict)
    outputs: list[Port] = field(default_factory=list)
    widgets: list[WidgetRow] = field(default_factory=list)
    text_rect: QRectF | None = None
    picker: ImagePicker | None = None
    #: The area a plugin's node widget draws in (studio.ui.api.NodeWidget).
    custom: QRectF | None = None
    collapsed: bool = False

    @property
    def rect(self) -> QRectF:
        return QRectF(0, 0, self.width, self.height)

    def widget_for(self, name: str) -> WidgetRow | None:
        return next((w for w in self.widgets if w.name == name and w.kind != CONTROL), None)


def node_title(node: GraphNode, spec: NodeSpec | None) -> str:
    if node.title:
        return node.title
    return spec.display_name if spec is not None else f"Missing: {node.type}"


def compute(node: GraphNode, spec: NodeSpec | None, links_in: Iterable[Link], links_out: Iterable[Link],
            ui: dict[str, Any], text_lines: int = 0, size: tuple[float, float] | None = None,
            custom_height: float = 0.0) -> NodeGeometry:
    """The layout of one node, from its spec, its wires (in and out) and its ``ui`` entry.

    ``size`` overrides the saved size (while the user drags the resize grip). A node is never
    smaller than its content; extra height goes to its multi-line text boxes. ``custom_height``
    makes room for a plugin's node widget below the widget rows (and the image picker).
    """
    fm = QFontMetricsF(theme.fonts()["label"])
    title_fm = QFontMetricsF(theme.fonts()["title"])
    title = node_title(node, spec)
    entry = layout.node_entry(ui, node.id)
    collapsed = bool(entry.get("collapsed"))
    socket_inputs, widget_inputs, outputs = _sockets(node, spec, links_in, links_out, ui)

    if collapsed:
        width = max(120.0, title_fm.horizontalAdvance(title) + 44)
        geo = NodeGeometry(width, HEADER, title, collapsed=True)
        mid = HEADER / 2
        for name, label, type_name in socket_inputs:
            geo.inputs[name] = Port(name, label, type_name, QPointF(0, mid), True)
        for index, (label, type_name) in enumerate(outputs):
            geo.outputs.append(Port(index, label, type_name, QPointF(width, mid), False))
        return geo

    width = max(MIN_WIDTH, title_fm.horizontalAdvance(title) + 60)
    rows = max(len(socket_inputs), len(outputs))
    for i in range(rows):
        left = fm.horizontalAdvance(socket_inputs[i][1]) if i < len(socket_inputs) else 0.0
        right = fm.horizontalAdvance(outputs[i][0]) if i < len(outputs) else 0.0
        width = max(width, left + right + 56)
    for inp in widget_inputs:
        value = node.inputs.get(inp.name, inp.default if inp.has_default else "")
        shown = min(fm.horizontalAdvance(str(value)), MAX_VALUE_WIDTH) if widget_kind(inp) in (COMBO, TEXT) else 40.0
        width = max(width, fm.horizontalAdvance(inp.label) + shown + 70)
    size = size if size is not None else layout.as_point(entry.get("size"))
    if size is not None:
        width = max(width, size[0])

    geo = NodeGeometry(width, 0.0, title)
    y = HEADER + 4
    for i in range(rows):
        centre = y + SOCKET_ROW / 2
        if i < len(socket_inputs):
            name, label, type_name = socket_inputs[i]
            geo.inputs[name] = Port(name, label, type_name, QPointF(0, centre), True)
        if i < len(outputs):
            label, type_name = outputs[i]
            geo.outputs.append(Port(i, label, type_name, QPointF(width, centre), False))
        y += SOCKET_ROW
    if widget_inputs:
        y += 2
    for inp in widget_inputs:
        kind = widget_kind(inp)
        assert kind is not None
        height = WIDGET_ROW * (MULTILINE_ROWS if kind == MULTILINE else 1)
        label = inp.label
        geo.widgets.append(WidgetRow(inp.name, label, kind, QRectF(PAD, y + 2, width - 2 * PAD, height - 4), inp))
        y += height
        if inp.name in layout.SEED_INPUTS and kind == INT:
            geo.widgets.append(WidgetRow(inp.name, "control after run", CONTROL,
                                         QRectF(PAD, y + 2, width - 2 * PAD, WIDGET_ROW - 4), inp))
            y += WIDGET_ROW
    picked = IMAGE_FILE_INPUTS.get(spec.type) if spec is not None else None
    if picked is not None and any(inp.name == picked for inp in widget_inputs):
        inner = width - 2 * PAD
        choose = QRectF(PAD, y + 2, inner * 0.62 - 2, WIDGET_ROW - 4)
        paste = QRectF(PAD + inner * 0.62 + 2, y + 2, inner * 0.38 - 2, WIDGET_ROW - 4)
        geo.picker = ImagePicker(picked, choose, paste, QRectF(PAD, y + WIDGET_ROW + 2, inner, THUMB_HEIGHT))
        y += WIDGET_ROW + THUMB_HEIGHT + 4
    if custom_height > 0:
        geo.custom = QRectF(PAD, y + 4, width - 2 * PAD, custom_height)
        y += custom_height + CUSTOM_MARGIN
    if text_lines:
        lines = min(text_lines, MAX_TEXT_LINES)
        geo.text_rect = QRectF(PAD, y + 4, width - 2 * PAD, lines * TEXT_LINE + 8)
        y += lines * TEXT_LINE + 12
    height = y + 6
    if size is not None and size[1] > height:
        _grow_text_boxes(geo, size[1] - height)
        height = size[1]
    geo.height = math.ceil(height)
    return geo


def _grow_text_boxes(geo: NodeGeometry, extra: float) -> None:
    """Share extra height among the multi-line boxes (prompts get taller when a node is); a node
    without one gives it to its picture, else to its custom widget area."""
    boxes = [i for i, w in enumerate(geo.widgets) if w.kind == MULTILINE]
    if not boxes:
        if geo.picker is not None:
            geo.picker = geo.picker.translated(0.0, extra)
            if geo.custom is not None:
                geo.custom = geo.custom.translated(0, extra)
        elif geo.custom is not None:
            geo.custom = QRectF(geo.custom.x(), geo.custom.y(), geo.custom.width(), geo.custom.height() + extra)
        else:
            return
        if geo.text_rect is not None:
            geo.text_rect = geo.text_rect.translated(0, extra)
        return
    share = extra / len(boxes)
    shift = 0.0
    rows = []
    for i, row in enumerate(geo.widgets):
        rect = QRectF(row.rect.translated(0, shift))
        if i in boxes:
            rect.setHeight(rect.height() + share)
            shift += share
        rows.append(WidgetRow(row.name, row.label, row.kind, rect, row.inp))
    geo.widgets = rows
    if geo.picker is not None:
        geo.picker = geo.picker.translated(shift)
    if geo.custom is not None:
        geo.custom = geo.custom.translated(0, shift)
    if geo.text_rect is not None:
        geo.text_rect = geo.text_rect.translated(0, shift)


def _sockets(node: GraphNode, spec: NodeSpec | None, links_in: Iterable[Link], links_out: Iterable[Link],
             ui: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[Input], list[tuple[str, str]]]:
    """(socket inputs as (name, label, type), widget inputs, outputs as (label, type))."""
    wired = {link.to_input for link in links_in}
    if spec is None:  # a placeholder: show what its wires tell about it
        highest = max((link.from_output for link in links_out), default=-1)
        return ([(name, name, "*") for name in sorted(wired)], [],
                [(f"output {i}", "*") for i in range(highest + 1)])
    converted = layout.shown_as_socket(ui, node.id)
    sockets: list[tuple[str, str, str]] = []
    widgets: list[Input] = []
    for inp in spec.inputs:
        if widget_kind(inp) is None or inp.name in wired or inp.name in converted:
            sockets.append((inp.name, inp.label, inp.type))
        else:
            widgets.append(inp)
    outputs = [(out.name, out.type) for out in spec.outputs]
    return sockets, widgets, outputs


def format_value(kind: str, value: Any, inp: Input | None) -> str:
    """A widget's value as shown on the node."""
    if value is None:
        return "—"
    if kind == FLOAT and isinstance(value, (int, float)) and not isinstance(value, bool):
        step = inp.step if inp is not None and inp.step else 0.01
        decimals = min(max(0, -math.floor(math.log10(step))) if step > 0 else 2, 6)
        return f"{value:.{decimals}f}"
    if kind == TOGGLE:
        return "true" if value else "false"
    return str(value)
