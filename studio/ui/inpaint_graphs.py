"""One-click inpainting graphs: the chains of the bundled Inpaint / Inpaint masked area / Outpaint
examples, built around a Load Image node already on the canvas.

The chain is inserted as one Document macro (one undo step), wired and laid out in columns to the
right of the node, so it runs as soon as the picture (and, for inpainting, its mask) is there. An
existing checkpoint loader is reused, so a graph that already has a model keeps using it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

from studio.core.document import Document

DEMO_CKPT = "nuance-demo.safetensors"
COLUMN, ROW = 300.0, 230.0
GAP = 40.0
#: Role → (column, place in it): the reading order of the chain, left to right.
PLACES = {"crop": (0, 0), "pad": (0, 0), "ckpt": (0, 1), "positive": (1, 0), "negative": (1, 1), "encode": (1, 2),
          "sampler": (2, 0), "decode": (3, 0), "stitch": (3, 1), "save": (4, 0)}
SOURCE_TYPE = "LoadImage"


@dataclass(frozen=True)
class Chain:
    """One kind of graph: its menu text and what goes between the picture and the sampler."""

    name: str
    text: str
    prefix: str
    tip: str


CHAINS = (Chain("inpaint", "Inpaint", "inpaint", "Repaint the masked area of the selected Load Image's picture"),
          Chain("inpaint_area", "Inpaint masked area only", "inpaint_area",
                "Repaint only a crop around the mask, at the model's resolution, and stitch it back"),
          Chain("outpaint", "Outpaint", "outpaint", "Extend the selected Load Image's picture beyond its edges"))


def _values(chain: str, demo: bool) -> dict[str, dict[str, Any]]:
    """Per-role inputs; the demo model paints 64 px pictures, so its crops and borders are small."""
    return {"crop": {"padding": 8, "min_size": 32, "target_size": 64} if demo else {},
            "pad": {"left": 0, "top": 0, "right": 32 if demo else 256, "bottom": 0, "feathering": 8 if demo else 40},
            "encode": {"grow_mask_by": 4 if chain != "outpaint" else 8},
            "stitch": {"blend_pixels": 8 if demo else 16}}


def insert_chain(document: Document, source: str, chain: str, origin: tuple[float, float]) -> dict[str, str]:
    """Build ``chain`` (a :data:`CHAINS` name) fed by Load Image ``source``; ``origin`` is the top-left of its
    first column. Returns the new nodes by role (``ckpt`` only when one had to be added)."""
    x, y = origin
    made: dict[str, str] = {}

    def add(role: str, node_type: str, column: int, row: float, inputs: dict[str, Any] | None = None,
            title: str | None = None) -> str:
        made[role] = document.add_node(node_type, (x + column * COLUMN, y + row * ROW), inputs, title)
        return made[role]

    wire = document.connect
    with document.macro(next(c.text for c in CHAINS if c.name == chain)):
        ckpt = next((nid for nid, node in document.graph.nodes.items() if node.type == "CheckpointLoaderSimple"), None)
        if ckpt is None:
            ckpt = add("ckpt", "CheckpointLoaderSimple", 0, 1.2, {"ckpt_name": DEMO_CKPT})
        demo = document.graph.nodes[ckpt].inputs.get("ckpt_name") == DEMO_CKPT
        values = _values(chain, demo)
        pixels, mask = (source, 0), (source, 1)
        if chain == "inpaint_area":
            crop = add("crop", "InpaintCrop", 0, 0, values["crop"])
            wire(source, 0, crop, "image")
            wire(source, 1, crop, "mask")
            pixels, mask = (crop, 0), (crop, 1)
        elif chain == "outpaint":
            pad = add("pad", "ImagePadForOutpaint", 0, 0, values["pad"])
            wire(source, 0, pad, "image")
            pixels, mask = (pad, 0), (pad, 1)
        positive = add("positive", "CLIPTextEncode", 1, 0, {"text": ""}, "Positive prompt")
        negative = add("negative", "CLIPTextEncode", 1, 1, {"text": ""}, "Negative prompt")
        encode = add("encode", "VAEEncodeForInpaint", 1, 2, values["encode"])
        sampler = add("sampler", "KSampler", 2, 0, {"denoise": 1.0})
        decode = add("decode", "VAEDecode", 3, 0)
        save = add("save", "SaveImage", 4, 0, {"filename_prefix": next(c.prefix for c in CHAINS if c.name == chain)})
        for link in ((ckpt, 1, positive, "clip"), (ckpt, 1, negative, "clip"), (*pixels, encode, "pixels"),
                     (*mask, encode, "mask"), (ckpt, 2, encode, "vae"), (ckpt, 0, sampler, "model"),
                     (positive, 0, sampler, "positive"), (negative, 0, sampler, "negative"),
                     (encode, 0, sampler, "latent_image"), (sampler, 0, decode, "samples"), (ckpt, 2, decode, "vae")):
            wire(*link)
        result = decode
        if chain == "inpaint_area":
            stitch = add("stitch", "InpaintStitch", 3, 1, values["stitch"])
            wire(made["crop"], 2, stitch, "stitch")
            wire(decode, 0, stitch, "image")
            result = stitch
        wire(result, 0, save, "images")
    return made


def build_around(window: QMainWindow, node_id: str, chain: str) -> dict[str, str]:
    """Insert ``chain`` to the right of the node as drawn, its columns spaced by the nodes' drawn sizes, as
    one undo step; select what was added."""
    document: Document = window.document  # type: ignore[attr-defined]
    scene = window.scene  # type: ignore[attr-defined]
    node = document.graph.nodes.get(node_id)
    if node is None or node.type != SOURCE_TYPE or node_id not in scene.nodes:
        return {}
    box = scene.nodes[node_id].sceneBoundingRect()
    with document.macro(next(c.text for c in CHAINS if c.name == chain)):
        made = insert_chain(document, node_id, chain, (box.right() + 2 * GAP, box.top()))
        x, positions = box.right() + 2 * GAP, {}
        for column in sorted({PLACES[role][0] for role in made}):
            roles = sorted((role for role in made if PLACES[role][0] == column), key=lambda role: PLACES[role][1])
            y, width = box.top(), 0.0
            for role in roles:
                drawn = scene.nodes[made[role]].boundingRect()
                positions[made[role]] = (x, y)
                y += drawn.height() + GAP
                width = max(width, drawn.width())
            x += width + 2 * GAP
        document.move_nodes(positions)
    scene.select(nodes=list(made.values()))
    return made


def build_for_selection(window: QMainWindow, chain: str) -> dict[str, str]:
    """The Edit menu's entry: acts on the selected Load Image node, or says why it cannot."""
    document: Document = window.document  # type: ignore[attr-defined]
    selected = [nid for nid in window.scene.selected_node_ids()  # type: ignore[attr-defined]
                if document.graph.nodes[nid].type == SOURCE_TYPE]
    if not selected:
        window.show_message("Select a Load Image node first: the graph is built around its picture")  # type: ignore[attr-defined]
        return {}
    return build_around(window, selected[0], chain)


def add_to_node_menu(menu: QMenu, window: QMainWindow, node_id: str) -> None:
    """The three entries in a Load Image node's context menu."""
    for chain in CHAINS:
        action = menu.addAction(chain.text, lambda name=chain.name: build_around(window, node_id, name))
        action.setStatusTip(chain.tip)


def add_to_edit_menu(window: QMainWindow, menu: QMenu) -> list[QAction]:
    """The same entries in the Edit menu, for the selected Load Image node."""
    actions = []
    menu.addSeparator()
    for chain in CHAINS:
        action = QAction(chain.text, window)
        action.setObjectName(f"build_{chain.name}")
        action.setStatusTip(chain.tip)
        action.triggered.connect(lambda _checked=False, name=chain.name: build_for_selection(window, name))
        menu.addAction(action)
        getattr(window, "actions_by_name", {})[f"build_{chain.name}"] = action
        actions.append(action)
    return actions
