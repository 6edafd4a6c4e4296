""""Inpaint this…" on a picture shown in the viewer or the gallery: a Load Image node naming the file
(absolute path) is added below the current workflow's nodes, the Inpaint chain of :mod:`inpaint_graphs`
is built around it, both as one undo step, and the mask editor opens on the node to paint the area."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMainWindow

from studio.core.document import Document
from studio.ui.inpaint_graphs import GAP, SOURCE_TYPE, build_around
from studio.ui.mask.dialog import MaskDialog, open_mask_dialog

TEXT = "Inpaint this…"
TIP = "Add a Load Image node for this picture with an Inpaint graph around it, and paint the area to repaint"


def inpaint_picture(window: QMainWindow, path: str | Path) -> MaskDialog | None:
    """Build the graph for the picture at ``path`` and open the mask editor on its Load Image node."""
    picture = Path(path).resolve()
    if not picture.is_file():
        window.show_message(f"Cannot inpaint: {picture} was not found")  # type: ignore[attr-defined]
        return None
    document: Document = window.document  # type: ignore[attr-defined]
    scene, view = window.scene, window.view  # type: ignore[attr-defined]
    taken = scene.items_rect()
    if taken.isEmpty():
        corner = view.mapToScene(view.viewport().rect().topLeft())
        origin = (corner.x() + GAP, corner.y() + GAP)
    else:
        origin = (taken.left(), taken.bottom() + 2 * GAP)
    document.seal()
    with document.macro(TEXT.rstrip("…")):
        node = document.add_node(SOURCE_TYPE, origin, {"image": str(picture)})
        made = build_around(window, node, "inpaint")
    document.seal()
    scene.select(nodes=[node, *made.values()])
    view.fit(selected_only=True)
    return open_mask_dialog(window, node)
