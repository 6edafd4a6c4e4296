"""How fast the editor's canvas paints a big graph, and how soon the window appears.

Prints one JSON object:

- ``graph``: the benchmark graph, 500 nodes and 700 wires of real node types with their widgets
  (prompts, combos, numbers), laid out in columns as artists build them.
- ``empty``: frame times of the same 1920×1080 view on an empty canvas: the baseline (grid and
  the paint machinery alone).
- ``pan_100``: frame times while panning across the graph at 100% zoom, where every node is drawn
  in full detail (target: median under 16 ms). ``fit``: frame times with the whole graph fitted
  to the view (level-of-detail drawing). Each has ``median_ms``, ``p95_ms`` and ``over_empty``
  (median against the empty canvas's median).
- ``startup_s``: from starting a fresh Python process to the main window shown and painted
  (``torch_imported`` says whether torch had been imported by then: it should not be).

    QT_QPA_PLATFORM=offscreen python bench/editor.py [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from studio.core.document import ConnectionRefused, Document
from studio.runtime import load_registry
from studio.ui import theme
from studio.ui.canvas.scene import CanvasScene
from studio.ui.canvas.view import CanvasView

NODES, WIRES = 500, 700
COLUMNS = 25
#: Node types of a typical graph: loaders and prompts (combos, long text), samplers (many numbers),
#: image and latent tools, and cheap arithmetic nodes.
TYPES = ["CheckpointLoaderSimple", "CLIPTextEncode", "CLIPTextEncode", "KSampler", "EmptyLatentImage", "VAEDecode",
         "VAEEncode", "SaveImage", "LoraLoader", "ImageScale", "MathInt", "MathFloat", "PrimitiveInt",
         "PrimitiveStringMultiline", "SetLatentNoiseMask", "GrowMask", "ImageBlend"]
VIEW_SIZE = (1920, 1080)


def build_document(seed: int = 0) -> tuple[Document, int]:
    """500 nodes in 25 columns, wired left to right wherever the types allow, up to 700 wires."""
    registry, _errors = load_registry()
    rng = random.Random(seed)
    document = Document(registry=registry)
    columns: list[list[str]] = [[] for _ in range(COLUMNS)]
    for index in range(NODES):
        column, row = index % COLUMNS, index // COLUMNS
        node_type = rng.choice(TYPES)
        inputs = {"text": "a watercolour lighthouse on a cliff at dusk, soft light"} if node_type == "CLIPTextEncode" else None
        columns[column].append(document.add_node(node_type, (column * 420.0, row * 360.0), inputs))
    wires = 0
    attempts = 0
    while wires < WIRES and attempts < 200_000:
        attempts += 1
        column = rng.randrange(1, COLUMNS)
        target = rng.choice(columns[column])
        source = rng.choice(columns[column - 1] if rng.random() < 0.8 else columns[rng.randrange(0, column)])
        spec_in, spec_out = document.spec(target), document.spec(source)
        if spec_in is None or spec_out is None or not spec_in.inputs or not spec_out.outputs:
            continue
        name = rng.choice(spec_in.inputs).name
        if document.graph.link_into(target, name) is not None:
            continue
        slot = rng.randrange(len(spec_out.outputs))
        if document.check_connection(source, slot, target, name) is not None:
            continue
        try:
            document.connect(source, slot, target, name)
        except ConnectionRefused:
            continue
        wires += 1
    return document, wires


def frame_times(view: CanvasView, frames: int, move: Any) -> dict[str, float]:
    """Paint ``frames`` frames, calling ``move(i)`` before each; the time of each full repaint."""
    app = QApplication.instance()
    assert app is not None
    times = []
    for i in range(frames + 5):
        move(i)
        app.processEvents()
        began = time.perf_counter()
        view.viewport().repaint()
        if i >= 5:  # the first frames fill caches
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
            "frames": frames}


def make_view(document: Document) -> CanvasView:
    view = CanvasView(CanvasScene(document))
    view.resize(*VIEW_SIZE)
    view.show()
    QApplication.processEvents()
    return view


def startup() -> dict[str, Any]:
    """A fresh process until the main window is shown and painted, as ``nuance`` starts."""
    child = ("import sys\n"
             "from PySide6.QtWidgets import QApplication\n"
             "from studio.ui import theme\n"
             "from studio.ui.app import create_window\n"
             "app = QApplication([])\n"
             "theme.apply_dark_palette(app)\n"
             "window = create_window()\n"
             "window.show()\n"
             "window.repaint()\n"
             "app.processEvents()\n"
             "print('visible', 'torch' in sys.modules, flush=True)\n")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().split()
    seconds = time.perf_counter() - began
    process.kill()
    process.wait()
    return {"startup_s": round(seconds, 3), "torch_imported": line[1:] == ["True"] if line else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    theme.apply_dark_palette(app)

    empty_view = make_view(Document())
    empty = frame_times(empty_view, args.frames, lambda i: empty_view.centerOn(i * 7.0, i * 3.0))
    empty_view.close()

    document, wires = build_document()
    view = make_view(document)
    view.resetTransform()  # 100%
    bounds = view.scene().itemsBoundingRect()

    def pan(i: int) -> None:  # a slow sweep across the graph, as an artist drags the canvas
        x = bounds.left() + (i * 37.0) % max(1.0, bounds.width())
        y = bounds.top() + (i * 23.0) % max(1.0, bounds.height())
        view.centerOn(x, y)

    pan_100 = frame_times(view, args.frames, pan)
    view.fit()
    zoom = round(view.zoom, 3)
    fit = frame_times(view, args.frames, lambda i: view.viewport().update())
    for figures in (pan_100, fit):
        figures["over_empty"] = round(figures["median_ms"] / max(1e-6, empty["median_ms"]), 2)
    fit["zoom"] = zoom
    result = {"graph": {"nodes": len(document.graph), "wires": wires, "view": list(VIEW_SIZE)},
              "empty": empty, "pan_100": pan_100, "fit": fit, "target_median_ms_at_100": 16.0,
              **startup()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
