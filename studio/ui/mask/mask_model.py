"""The painted mask: a uint8 array the size of the image (255 = repaint), its edits and their undo.

Pure numpy and OpenCV, no Qt: the editor widget draws it, and the tests and the bench drive it
directly. Every edit reports the rectangle it touched, so a view repaints only that, and every
undo step keeps only the pixels of the rectangle it changed (a stroke on a 4096×4096 mask costs
memory in proportion to its area, not the image's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: A rectangle in image pixels: left, top, right, bottom (right and bottom exclusive).
Rect = tuple[int, int, int, int]
Listener = Callable[[Rect], None]


def union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass
class _RegionStep:
    """Before and after pixels of one rectangle: enough to undo and redo an edit there."""

    rect: Rect
    before: np.ndarray
    after: np.ndarray


@dataclass
class _InvertStep:
    """Invert undoes itself: no pixels need keeping."""


_Step = _RegionStep | _InvertStep


def _falloff(dist: np.ndarray, radius: np.ndarray | float, hardness: float) -> np.ndarray:
    """1 inside the hard core, easing to 0 at the radius; a hard brush keeps a one-pixel soft edge.

    The edge is centred on the radius, so a one-pixel hard brush fills exactly its pixel.
    """
    outer = np.asarray(radius, np.float32) + 0.5
    width = np.maximum(outer - (radius * hardness - 0.5), 1.0)
    t = np.clip((outer - dist) / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class MaskModel:
    """A mask with brush strokes, shapes, whole-mask operations and undo/redo.

    A stroke combines each segment with ``max`` (``min`` for the eraser) at no more than the
    stroke's opacity, so where segments overlap the stroke never exceeds its opacity; a new
    stroke over an old one adds coverage the same way.
    """

    TILE = 64  # stroke undo saves original pixels tile by tile, on first touch

    def __init__(self, width: int, height: int, data: np.ndarray | None = None) -> None:
        if data is not None and data.shape != (height, width):
            raise ValueError(f"mask is {data.shape[1]}×{data.shape[0]}, the image {width}×{height}")
        self.width, self.height = width, height
        self.data = np.zeros((height, width), np.uint8) if data is None else np.ascontiguousarray(data, np.uint8)
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._listeners: list[Listener] = []
        self._stroke: dict | None = None

    # -- change notification -------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """``listener(rect)`` is called after every change with the rectangle that changed."""
        self._listeners.append(listener)

    def _changed(self, rect: Rect | None) -> None:
        if rect is not None and rect[2] > rect[0] and rect[3] > rect[1]:
            for listener in self._listeners:
                listener(rect)

    def full_rect(self) -> Rect:
        return 0, 0, self.width, self.height

    def _clip(self, x0: float, y0: float, x1: float, y1: float) -> Rect | None:
        left, top = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        right, bottom = min(self.width, int(np.ceil(x1))), min(self.height, int(np.ceil(y1)))
        return (left, top, right, bottom) if right > left and bottom > top else None

    # -- undo ----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_bytes(self) -> int:
        """Memory held by the undo and redo history (pixels only)."""
        return sum(s.before.nbytes + s.after.nbytes for s in self._undo + self._redo if isinstance(s, _RegionStep))

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        self._redo.clear()

    def _apply_step(self, step: _Step, forward: bool) -> None:
        if isinstance(step, _InvertStep):
            np.subtract(255, self.data, out=self.data)
            self._changed(self.full_rect())
            return
        x0, y0, x1, y1 = step.rect
        self.data[y0:y1, x0:x1] = step.after if forward else step.before
        self._changed(step.rect)

    def undo(self) -> bool:
        if not self._undo:
            return False
        step = self._undo.pop()
        self._apply_step(step, forward=False)
        self._redo.append(step)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        step = self._redo.pop()
        self._apply_step(step, forward=True)
        self._undo.append(step)
        return True

    def _edit(self, rect: Rect | None, new_pixels: Callable[[np.ndarray], np.ndarray]) -> None:
        """Replace the pixels of ``rect`` by ``new_pixels(old)`` as one undo step (skipped if equal)."""
        if rect is None:
            return
        x0, y0, x1, y1 = rect
        before = self.data[y0:y1, x0:x1].copy()
        after = np.asarray(new_pixels(before), np.uint8)
        if np.array_equal(before, after):
            return
        self.data[y0:y1, x0:x1] = after
        self._push(_RegionStep(rect, before, after))
        self._changed(rect)

    # -- brush strokes ---------------------------------------------------------------------------
    def begin_stroke(self, x: float, y: float, size: float, hardness: float = 1.0, opacity: float = 1.0,
                     erase: bool = False, pressure: float = 1.0) -> Rect | None:
        """Start a stroke with a dab at (x, y); ``size`` is the diameter in image pixels."""
        self.end_stroke()
        self._stroke = {"size": size, "hardness": min(max(hardness, 0.0), 1.0), "opacity": min(max(opacity, 0.0), 1.0),
                        "erase": erase, "last": (x, y, pressure), "saved": {}, "rect": None}
        return self._segment((x, y, pressure), (x, y, pressure))

    def stroke_to(self, x: float, y: float, pressure: float = 1.0) -> Rect | None:
        """Paint the segment from the last point to (x, y); returns the rectangle it changed."""
        if self._stroke is None:
            return None
        start = self._stroke["last"]
        self._stroke["last"] = (x, y, pressure)
        return self._segment(start, (x, y, pressure))

    def end_stroke(self) -> None:
        """Close the stroke into one undo step holding the touched rectangle's before and after."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or stroke["rect"] is None:
            return
        x0, y0, x1, y1 = rect = stroke["rect"]
        after = self.data[y0:y1, x0:x1].copy()
        before = after.copy()
        for (tx, ty), tile in stroke["saved"].items():
            th, tw = tile.shape
            before[ty - y0:ty - y0 + th, tx - x0:tx - x0 + tw] = tile
        if not np.array_equal(before, after):
            self._push(_RegionStep(rect, before, after))

    def _save_tiles(self, rect: Rect) -> None:
        """Keep the original pixels of tiles this stroke touches for the first time."""
        saved, t = self._stroke["saved"], self.TILE
        x0, y0, x1, y1 = rect
        for ty in range(y0 // t * t, y1, t):
            for tx in range(x0 // t * t, x1, t):
                if (tx, ty) not in saved:
                    saved[(tx, ty)] = self.data[ty:ty + t, tx:tx + t].copy()
        self._stroke["rect"] = union(self._stroke["rect"], (x0 // t * t, y0 // t * t,
                                                            min(self.width, -(-x1 // t) * t), min(self.height, -(-y1 // t) * t)))

    def _segment(self, a: tuple[float, float, float], b: tuple[float, float, float]) -> Rect | None:
        """Paint a capsule from a to b whose radius and opacity follow the pressure along it."""
        s = self._stroke
        ra, rb = max(s["size"] * a[2] / 2, 0.5), max(s["size"] * b[2] / 2, 0.5)
        reach = max(ra, rb) + 1
        rect = self._clip(min(a[0], b[0]) - reach, min(a[1], b[1]) - reach, max(a[0], b[0]) + reach, max(a[1], b[1]) + reach)
        if rect is None:
            return None
        x0, y0, x1, y1 = rect
        px = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - a[0]
        py = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - a[1]
        dx, dy = b[0] - a[0], b[1] - a[1]
        length2 = dx * dx + dy * dy
        if length2 > 1e-6:
            t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
            dist = np.hypot(px - t * dx, py - t * dy)
            radius = ra + (rb - ra) * t
            opacity = s["opacity"] * (a[2] + (b[2] - a[2]) * t) if a[2] != b[2] else s["opacity"] * a[2]
        else:
            dist, radius, opacity = np.hypot(px, py), ra, s["opacity"] * a[2]
        alpha = _falloff(dist, radius, s["hardness"]) * np.minimum(opacity, 1.0)
        dab = (alpha * 255.0 + 0.5).astype(np.uint8)
        self._save_tiles(rect)
        region = self.data[y0:y1, x0:x1]
        if s["erase"]:
            np.minimum(region, 255 - dab, out=region)
        else:
            np.maximum(region, dab, out=region)
        self._changed(rect)
        return rect

    # -- shapes ----------------------------------------------------------------------------------
    def _shape(self, rect: Rect | None, draw: Callable[[np.ndarray, int, int], None], erase: bool) -> None:
        """Fill (or erase) what ``draw(canvas, x0, y0)`` marks with 255 on a canvas the size of rect."""
        if rect is None:
            return
        x0, y0, x1, y1 = rect
        shape = np.zeros((y1 - y0, x1 - x0), np.uint8)
        draw(shape, x0, y0)
        self._edit(rect, lambda old: np.minimum(old, 255 - shape) if erase else np.maximum(old, shape))

    def fill_polygon(self, points: Sequence[tuple[float, float]], erase: bool = False) -> None:
        """Lasso or polygon: fill the closed outline through ``points`` (image pixels)."""
        if len(points) < 3:
            return
        pts = np.asarray(points, np.float64)
        rect = self._clip(pts[:, 0].min() - 1, pts[:, 1].min() - 1, pts[:, 0].max() + 1, pts[:, 1].max() + 1)

        def draw(canvas: np.ndarray, x0: int, y0: int) -> None:
            local = np.round((pts - (x0, y0)) * 16).astype(np.int32)  # 4 bits of sub-pixel precision
            cv2.fillPoly(canvas, [local], 255, lineType=cv2.LINE_8, shift=4)

        self._shape(rect, draw, erase)

    def fill_rect(self, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> None:
        rect = self._clip(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self._shape(rect, lambda canvas, _x, _y: canvas.fill(255), erase)

    def fill_ellipse(self, x0: float, y0: float, x1: float, y1: float, erase: bool = False) -> None:
        """The ellipse inscribed in the rectangle from (x0, y0) to (x1, y1)."""
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        rect = self._clip(cx - rx, cy - ry, cx + rx, cy + ry)

        def draw(canvas: np.ndarray, ox: int, oy: int) -> None:
            ys = np.arange(oy, oy + canvas.shape[0], dtype=np.float32)[:, None] + 0.5
            xs = np.arange(ox, ox + canvas.shape[1], dtype=np.float32)[None, :] + 0.5
            inside = ((xs - cx) / max(rx, 1e-3)) ** 2 + ((ys - cy) / max(ry, 1e-3)) ** 2 <= 1.0
            canvas[inside] = 255

        self._shape(rect, draw, erase)

    # -- whole-mask operations -----------------------------------------------------------------
    def _bbox_where(self, condition: np.ndarray) -> Rect | None:
        rows, cols = np.any(condition, axis=1), np.any(condition, axis=0)
        if not rows.any():
            return None
        y = np.flatnonzero(rows)
        x = np.flatnonzero(cols)
        return int(x[0]), int(y[0]), int(x[-1]) + 1, int(y[-1]) + 1

    def fill_region(self, x: float, y: float, erase: bool = False) -> None:
        """Bucket fill: the area joined to pixel (x, y) that has its value becomes 255 (0 with
        ``erase``), so a closed outline painted by hand fills with one click."""
        xi, yi = int(x), int(y)
        if not (0 <= xi < self.width and 0 <= yi < self.height):
            return
        region = np.zeros((self.height + 2, self.width + 2), np.uint8)
        cv2.floodFill(self.data, region, (xi, yi), 0, 0, 0, flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
        inside = region[1:-1, 1:-1].astype(bool)
        rect = self._bbox_where(inside)
        if rect is None:
            return
        x0, y0, x1, y1 = rect
        value = 0 if erase else 255
        self._edit(rect, lambda old: np.where(inside[y0:y1, x0:x1], value, old))

    def fill(self) -> None:
        """Mark everything for repainting; the undo step keeps only what was not yet marked."""
        self._edit(self._bbox_where(self.data != 255), lambda old: np.full_like(old, 255))

    def clear(self) -> None:
        self._edit(self._bbox_where(self.data != 0), np.zeros_like)

    def invert(self) -> None:
        np.subtract(255, self.data, out=self.data)
        self._push(_InvertStep())
        self._changed(self.full_rect())

    def set_data(self, data: np.ndarray) -> None:
        """Replace the whole mask (e.g. loaded from a file) as one undoable step."""
        if data.shape != self.data.shape:
            raise ValueError(f"mask is {data.shape[1]}×{data.shape[0]}, the image {self.width}×{self.height}")
        self._edit(self.full_rect(), lambda _old: data)

    # -- grow, shrink, feather -------------------------------------------------------------------
    def adjusted(self, grow: int = 0, feather: float = 0.0) -> np.ndarray:
        """The mask grown (or shrunk, ``grow`` < 0) by pixels, then feathered: a preview, not committed."""
        out = self.data
        if grow:
            size = 2 * abs(grow) + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
            out = cv2.dilate(out, kernel) if grow > 0 else cv2.erode(out, kernel)
        if feather > 0:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=feather, borderType=cv2.BORDER_REPLICATE)
        return out.copy() if out is self.data else out

    def apply_adjustment(self, grow: int = 0, feather: float = 0.0) -> None:
        """Commit :meth:`adjusted` as one undo step."""
        result = self.adjusted(grow, feather)
        changed = self._bbox_where(result != self.data)
        if changed is not None:
            x0, y0, x1, y1 = changed
            self._edit(changed, lambda _old: result[y0:y1, x0:x1])
