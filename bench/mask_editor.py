"""How fast the mask painter follows the brush on a big picture.

Prints one JSON object. A 1920×1080 editor shows a 4096×4096 picture, at 100% and fitted to the
view. For each, ``segment`` times one brush segment from a real mouse move (8 viewport pixels)
until the view has repainted what it changed (the mask, the overlay rectangle and that viewport
region), and ``empty`` times a repaint of the whole visible view with nothing changed: the
baseline. Each has ``median_ms`` and ``p95_ms``; ``segment_over_empty`` is the ratio of the
medians, and ``painted_fraction`` the mean share of the viewport a segment repainted (well under 1
means only the dirty rectangle is drawn). ``segment_whole_view`` is the worst case: a segment
followed by a repaint of the whole visible view. Target: segment median under 16 ms.

    QT_QPA_PLATFORM=offscreen python bench/mask_editor.py [--segments 200] [--brush 120]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QPaintEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.ui.mask.editor import MaskEditor

LEFT = Qt.MouseButton.LeftButton


class PaintCounter(QObject):
    """Adds up the viewport area each paint event covers."""

    def __init__(self) -> None:
        super().__init__()
        self.pixels = 0

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if isinstance(event, QPaintEvent):
            self.pixels += sum(r.width() * r.height() for r in event.region())
        return False


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3)}


def picture(size: int) -> QImage:
    """A busy picture (gradients), so drawing it costs what a photo would."""
    import numpy as np

    ramp = np.linspace(0, 255, size, dtype=np.float32)
    rgb = np.empty((size, size, 4), np.uint8)
    rgb[..., 0] = ramp[None, :]
    rgb[..., 1] = ramp[:, None]
    rgb[..., 2] = (ramp[None, :] + ramp[:, None]) % 256
    rgb[..., 3] = 255
    image = QImage(rgb.data, size, size, size * 4, QImage.Format.Format_RGBA8888)
    return image.copy()


def measure(editor: MaskEditor, segments: int) -> dict[str, Any]:
    app = QApplication.instance()
    viewport = editor.viewport()
    counter = PaintCounter()
    viewport.installEventFilter(counter)
    centre = QPointF(viewport.rect().center())

    def at(i: int) -> QPoint:  # a loop of 8-pixel steps around the view's centre
        angle = i * 8 / 300
        return (centre + QPointF(300 * math.cos(angle), 300 * math.sin(angle))).toPoint()

    empty = []
    for _ in range(max(20, segments // 5)):
        began = time.perf_counter()
        viewport.repaint()
        empty.append((time.perf_counter() - began) * 1000)

    QTest.mousePress(viewport, LEFT, Qt.KeyboardModifier.NoModifier, at(0))
    app.processEvents()
    counter.pixels = 0

    def segment(i: int, whole_view: bool) -> float:
        """One brush segment from a real mouse move, until it is on screen; milliseconds."""
        local = at(i)
        event = QMouseEvent(QEvent.Type.MouseMove, QPointF(local), QPointF(viewport.mapToGlobal(local)),
                            Qt.MouseButton.NoButton, LEFT, Qt.KeyboardModifier.NoModifier)
        began = time.perf_counter()
        QApplication.sendEvent(viewport, event)
        app.processEvents()
        if whole_view:
            viewport.repaint()
        return (time.perf_counter() - began) * 1000

    times = [segment(i, False) for i in range(1, segments + 1)]
    painted = counter.pixels / segments / (viewport.width() * viewport.height())
    # The worst case too: each segment followed by a repaint of the whole visible view.
    whole = [segment(i, True) for i in range(segments + 1, segments + 1 + max(20, segments // 5))]
    QTest.mouseRelease(viewport, LEFT, Qt.KeyboardModifier.NoModifier, at(segments))
    viewport.removeEventFilter(counter)
    seg, base = stats(times), stats(empty)
    return {"zoom": round(editor.zoom(), 4), "segment": seg, "segment_whole_view": stats(whole), "empty": base,
            "segment_over_empty": round(seg["median_ms"] / max(base["median_ms"], 1e-6), 3),
            "painted_fraction": round(painted, 4), "undo_bytes_after_stroke": editor.model.undo_bytes()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--brush", type=float, default=120.0, help="brush diameter in picture pixels")
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    editor = MaskEditor(picture(args.size))
    editor.resize(1920, 1080)
    editor.show()
    app.processEvents()
    editor.set_brush(size=args.brush, hardness=0.6)
    result: dict[str, Any] = {"picture": f"{args.size}×{args.size}", "view": "1920×1080", "brush_px": args.brush}
    editor.set_zoom(1.0)
    editor.centerOn(args.size / 2, args.size / 2)
    app.processEvents()
    result["zoom_100"] = measure(editor, args.segments)
    editor.fit()
    app.processEvents()
    result["fit"] = measure(editor, args.segments)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
