"""The mask drawn over the image: one item painting both, only where the view asks.

The overlay is a premultiplied ARGB QImage the size of the image, kept in step with the mask
rectangle by rectangle through a 256-entry colour table, so a brush segment converts only the
pixels it touched and the view repaints only the viewport region they cover.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from studio.ui.mask.mask_model import MaskModel, Rect


def colour_table(colour: QColor, opacity: float) -> np.ndarray:
    """Premultiplied ARGB32 for each mask value: 0 is clear, 255 is the colour at ``opacity``."""
    alpha = np.arange(256, dtype=np.float64) * min(max(opacity, 0.0), 1.0)
    a = np.round(alpha).astype(np.uint32)
    r, g, b = (np.round(alpha * c / 255).astype(np.uint32) for c in (colour.red(), colour.green(), colour.blue()))
    return (a << 24) | (r << 16) | (g << 8) | b


class MaskCanvasItem(QGraphicsItem):
    """The image with its mask on top; ``preview`` (an array like the mask) replaces the mask while shown."""

    def __init__(self, image: QImage, model: MaskModel) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self.model = model
        self.overlay = QImage(model.width, model.height, QImage.Format.Format_ARGB32_Premultiplied)
        self._pixels = np.frombuffer(self.overlay.bits(), np.uint32).reshape(model.height, self.overlay.bytesPerLine() // 4)
        self._table = colour_table(QColor(255, 40, 40), 0.5)
        self._preview: np.ndarray | None = None
        self.refresh(model.full_rect())
        model.add_listener(self.refresh)

    def set_style(self, colour: QColor, opacity: float) -> None:
        self._table = colour_table(colour, opacity)
        self.refresh(self.model.full_rect())

    def set_preview(self, preview: np.ndarray | None) -> None:
        self._preview = preview
        self.refresh(self.model.full_rect())

    @property
    def preview(self) -> np.ndarray | None:
        return self._preview

    def refresh(self, rect: Rect) -> None:
        """Recolour the overlay in ``rect`` from the mask (or preview) and ask for that area's repaint."""
        x0, y0, x1, y1 = rect
        source = self.model.data if self._preview is None else self._preview
        self._pixels[y0:y1, x0:x1] = self._table[source[y0:y1, x0:x1]]
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.model.width, self.model.height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()  # type: ignore[attr-defined]
        if exposed.isEmpty():
            return
        # single pixels stay crisp when zoomed in; zoomed out, smooth to avoid shimmer
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < 1.0)
        painter.drawImage(exposed, self.image, exposed)
        painter.drawImage(exposed, self.overlay, exposed)
