"""The right-click menu: what can be done to the node, wire or spot under the mouse."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF
from PySide6.QtWidgets import QMenu, QWidget

from studio.core import layout
from studio.core.graph import NodeMode
from studio.ui import inpaint_graphs, theme
from studio.ui.canvas import node_geometry as ng
from studio.ui.canvas.editing import CanvasEditing
from studio.ui.canvas.wire_item import RerouteItem, WireItem
from studio.ui.mask.dialog import can_paint_mask, open_mask_dialog


def build_menu(editing: CanvasEditing, scene_pos: QPointF, parent: QWidget) -> QMenu:
    scene = editing.scene
    doc = editing.document
    menu = QMenu(parent)
    item = scene.node_item_at(scene_pos)
    if item is not None:
        if not item.isSelected():
            scene.select(nodes=[item.node_id])
        _node_menu(menu, editing, item.node_id)
        return menu
    hit = next((h for h in scene.items(scene_pos) if isinstance(h, (RerouteItem, WireItem))), None)
    if isinstance(hit, RerouteItem):
        point, wire = hit, hit.wire
        menu.addAction("Remove reroute point", lambda: doc.set_reroutes(
            wire.link.id, [(p.pos().x(), p.pos().y()) for p in wire.reroutes if p is not point]))
        return menu
    if isinstance(hit, WireItem):
        clicked, link = hit, hit.link
        menu.addAction("Add reroute point", lambda: scene.add_reroute(clicked, scene_pos))
        menu.addAction("Delete wire", lambda: doc.disconnect(link.to_node, link.to_input))
        return menu
    menu.addAction("Add node…", lambda: editing.view.open_palette(
        scene_pos, None, lambda node_type: scene.add_node_at(node_type, scene_pos)))
    menu.addAction("Add note", editing.add_note)
    menu.addAction("Add group", editing.group_selection)
    menu.addSeparator()
    menu.addAction("Paste", editing.paste)
    if scene.selected_group_ids() or scene.selected_note_ids():
        _colour_menu(menu, editing)
        menu.addAction("Delete", editing.delete)
    return menu


def _node_menu(menu: QMenu, editing: CanvasEditing, node_id: str) -> None:
    scene = editing.scene
    doc = editing.document
    item = scene.nodes[node_id]
    node = doc.graph.nodes[node_id]
    menu.addAction("Rename…", editing.rename)
    menu.addAction("Expand" if item.geo.collapsed else "Collapse", editing.toggle_collapsed)
    modes = menu.addMenu("Mode")
    for mode, text in ((NodeMode.NORMAL, "Normal"), (NodeMode.MUTED, "Muted (not run)"),
                       (NodeMode.BYPASSED, "Bypassed (inputs pass through)")):
        action = modes.addAction(text, lambda m=mode: doc.set_mode(scene.selected_node_ids(), m))
        action.setCheckable(True)
        action.setChecked(node.mode is mode)
    _colour_menu(menu, editing)
    spec = doc.spec(node_id)
    if spec is not None:
        converted = layout.shown_as_socket(doc.ui, node_id)
        widgets = [inp for inp in spec.inputs if ng.widget_kind(inp) is not None]
        to_socket = [inp for inp in widgets if inp.name not in converted]
        to_widget = [inp for inp in widgets if inp.name in converted or doc.graph.link_into(node_id, inp.name)]
        if to_socket:
            sub = menu.addMenu("Convert widget to input")
            for inp in to_socket:
                sub.addAction(inp.label, lambda name=inp.name: doc.show_as_socket(node_id, name, True))
        if to_widget:
            sub = menu.addMenu("Convert input to widget")
            for inp in to_widget:
                sub.addAction(inp.label, lambda name=inp.name: doc.show_as_socket(node_id, name, False))
    if len(scene.selected_node_ids()) > 1:
        align = menu.addMenu("Align")
        for edge, text in (("left", "Left edges"), ("right", "Right edges"), ("top", "Top edges"),
                           ("bottom", "Bottom edges"), ("hcenter", "Centres, vertically"),
                           ("vcenter", "Centres, horizontally")):
            align.addAction(text, lambda e=edge: editing.align(e))
    if can_paint_mask(doc, node_id):
        menu.addSeparator()
        menu.addAction("Paint mask…", lambda: open_mask_dialog(editing.view.window(), node_id))
        inpaint_graphs.add_to_node_menu(menu, editing.view.window(), node_id)
    menu.addSeparator()
    menu.addAction("Copy", editing.copy)
    menu.addAction("Duplicate", editing.duplicate)
    menu.addAction("Delete", editing.delete)


def _colour_menu(menu: QMenu, editing: CanvasEditing) -> None:
    colours = menu.addMenu("Colour")
    colours.addAction("Default", lambda: editing.set_color(None))
    for name, value in theme.SWATCHES.items():
        colours.addAction(name.capitalize(), lambda v=value: editing.set_color(v))


def show(editing: CanvasEditing, scene_pos: QPointF, global_pos: QPoint) -> None:
    menu = build_menu(editing, scene_pos, editing.view)
    menu.aboutToHide.connect(menu.deleteLater)
    menu.popup(global_pos)
