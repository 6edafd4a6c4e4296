"""Files dropped on the window or the canvas: workflows open, pictures become Load Image nodes.

A workflow (ours, or a ComfyUI workflow or API prompt, ``.json``) opens in a tab. A picture dropped becomes a
``LoadImage`` node where it was dropped, reading the file by its absolute path (LoadImage takes
plain paths as they are). A PNG that carries a workflow could mean either: the window asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF

from studio.core.errors import WorkflowError
from studio.core.png_text import embedded_workflow, is_png

if TYPE_CHECKING:
    from studio.ui.tabs import WorkflowTab
    from studio.ui.window import MainWindow

WORKFLOW_SUFFIXES = frozenset({".json"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
LOAD_IMAGE = "LoadImage"
#: Several pictures dropped at once are laid out in a row, this far apart.
IMAGE_SPACING = 280.0


def kind_of(path: Path) -> str | None:
    """"workflow", "image", or None for a file the editor cannot use."""
    suffix = path.suffix.lower()
    if suffix in WORKFLOW_SUFFIXES:
        return "workflow"
    if suffix in IMAGE_SUFFIXES or is_png(path):
        return "image"
    return None


def carries_workflow(path: Path) -> bool:
    try:
        return is_png(path) and embedded_workflow(path) is not None
    except WorkflowError:
        return False


def drop_files(window: MainWindow, paths: list[Path], at: QPointF | None) -> None:
    """Handle files dropped at scene position ``at`` of the current canvas (None: not on the canvas,
    pictures then go to the middle of the view)."""
    tab = window.tab  # opening a workflow switches tabs; pictures still go where they were dropped
    images: list[Path] = []
    workflows: list[Path] = []
    for path in paths:
        kind = kind_of(path) if path.is_file() else None
        if kind is None:
            window.show_message(f"Cannot use {path.name}: drop a workflow (.json), a picture that carries one, "
                                "or an image to load")
        elif kind == "workflow":
            workflows.append(path)
        elif carries_workflow(path):
            answer = window.ask_png_drop(path)
            if answer == "workflow":
                workflows.append(path)
            elif answer == "image":
                images.append(path)
        else:
            images.append(path)
    if images:
        add_load_images(window, tab.view.mapToScene(tab.view.viewport().rect().center()) if at is None else at,
                        images, tab)
    for path in workflows:
        window.open_file(path)


def add_load_images(window: MainWindow, at: QPointF, images: list[Path], tab: WorkflowTab) -> None:
    """One Load Image node per picture, as one undo step, selected."""
    doc = tab.document
    if doc.registry is None or doc.registry.spec(LOAD_IMAGE) is None:
        window.show_message("Cannot add the picture: the Load Image node is not installed")
        return
    with doc.macro("Drop images" if len(images) > 1 else "Drop image"):
        ids = [doc.add_node(LOAD_IMAGE, (at.x() + i * IMAGE_SPACING, at.y()), {"image": str(path.resolve())})
               for i, path in enumerate(images)]
    tab.scene.select(nodes=ids)
    window.show_message(f"Added Load Image for {', '.join(p.name for p in images)}")
