"""The mask editor opened from a Load Image node, over the main window.

Painting only touches a :class:`MaskModel`; nothing is written until Save, which stores the mask as
its own PNG (``storage.mask_path_for``) and names it in the node's ``mask`` input as one Document
command, so the source image is never modified and Cancel leaves the workflow and files as they were.
When the picture feeds an ImagePadForOutpaint node, the dialog also edits its borders (spin boxes, with
the new area drawn around the picture); Save sets them in the same undo step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QImage, QKeyEvent, QMouseEvent, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.document import Document
from studio.core.paths import find_input_file
from studio.ui.canvas.viewport_filter import CanvasViewportFilter
from studio.ui.mask.editor import MaskEditor
from studio.ui.mask.mask_model import MaskModel
from studio.ui.mask.storage import load_mask, mask_path_for, save_mask

#: Node types whose picture can carry a painted mask: type → (image input, mask input).
MASKABLE: dict[str, tuple[str, str]] = {"LoadImage": ("image", "mask")}
PAD_TYPE, SIDES, MAX_PAD = "ImagePadForOutpaint", ("left", "top", "right", "bottom"), 16384
MAX_GROW, MAX_FEATHER = 512, 256
#: Milliseconds the grow / feather values must rest before the preview is computed (a wide grow on a large
#: picture takes a while, so typing "40" or holding an arrow computes once, not at each step).
PREVIEW_DELAY_MS = 60
#: The overlay colours offered, by name.
OVERLAY_COLOURS = {"Red": QColor(255, 40, 40), "Green": QColor(40, 220, 60), "Blue": QColor(40, 110, 255),
                   "Yellow": QColor(255, 220, 40), "Magenta": QColor(240, 40, 240), "White": QColor(255, 255, 255)}


def outpaint_node(document: Document, node_id: str) -> str | None:
    """The ImagePadForOutpaint fed by the node's picture, whose borders the dialog then edits too."""
    for link in document.graph.links.values():
        if (link.from_node == node_id and link.from_output == 0 and link.to_input == "image"
                and document.graph.nodes[link.to_node].type == PAD_TYPE):
            return link.to_node
    return None


def can_paint_mask(document: Document, node_id: str) -> bool:
    node = document.graph.nodes.get(node_id)
    return node is not None and node.type in MASKABLE


def read_picture(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """RGB uint8 ``[H, W, 3]`` and 255 − alpha (or None), oriented as Load Image reads the file."""
    with Image.open(path) as opened:
        frame = ImageOps.exif_transpose(opened)
        has_alpha = "A" in frame.getbands() or (frame.mode == "P" and "transparency" in frame.info)
        rgba = np.asarray(frame.convert("RGBA"), np.uint8)
    rgb = np.ascontiguousarray(rgba[..., :3])
    return rgb, (255 - rgba[..., 3]) if has_alpha else None


def to_qimage(rgb: np.ndarray) -> QImage:
    height, width = rgb.shape[:2]
    return QImage(rgb.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class MaskDialog(QDialog):
    """Paint the mask of one Load Image node; ``saved_path`` is set once Save has written the file."""

    def __init__(self, document: Document, node_id: str, image_path: Path, parent: QWidget | None = None,
                 workflow_path: Path | None = None) -> None:
        """``workflow_path``: the workflow's own file, None while untitled or a bundled example (never written into)."""
        super().__init__(parent)
        self.document, self.node_id, self.image_path = document, node_id, image_path
        self.workflow_path = workflow_path
        self.saved_path: Path | None = None
        rgb, alpha_mask = read_picture(image_path)
        height, width = rgb.shape[:2]
        start, self.mask_note = self._starting_mask(width, height, alpha_mask)
        self.editor = MaskEditor(to_qimage(rgb), MaskModel(width, height, start), self)
        self.setWindowTitle(f"Paint mask — {image_path.name}")
        hint = QLabel("B brush · E eraser · X swap · [ ] size · 1…0 opacity · L lasso · P polygon · R rectangle · "
                      "O ellipse · G fill · Ctrl+I invert · Delete clear · Ctrl+Z undo · wheel zoom · Space+drag pan · "
                      "grow / feather are previewed until Apply (or Enter)" + self.mask_note)
        hint.setWordWrap(True)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor, 1)
        layout.addLayout(self._adjust_row())
        self.pad_node = outpaint_node(document, node_id)
        self.sides: dict[str, QSpinBox] = {}
        self.padding_item: QGraphicsRectItem | None = None
        if self.pad_node is not None:
            layout.addLayout(self._padding_row())
        layout.addWidget(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(900, 700)

    def _adjust_row(self) -> QHBoxLayout:
        """Grow / shrink and feather with a live preview on the overlay, Apply, and the overlay's colour and opacity."""
        row = QHBoxLayout()
        self.grow = QSpinBox(self)
        self.grow.setObjectName("mask_grow")
        self.grow.setRange(-MAX_GROW, MAX_GROW)
        self.grow.setSuffix(" px")
        self.grow.setToolTip("Grow the mask by this many pixels (negative shrinks it); previewed until Apply")
        self.feather = QSpinBox(self)
        self.feather.setObjectName("mask_feather")
        self.feather.setRange(0, MAX_FEATHER)
        self.feather.setSuffix(" px")
        self.feather.setToolTip("Soften the mask's edge by this many pixels; previewed until Apply")
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._preview_adjustment)
        for box in (self.grow, self.feather):
            box.valueChanged.connect(lambda _value: self._value_changed())
            box.installEventFilter(self)  # Enter applies, rather than pressing Save
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setObjectName("mask_apply")
        self.apply_button.setToolTip("Apply the grow / shrink and feather to the mask (Ctrl+Z in the picture undoes it)")
        self.apply_button.setAutoDefault(False)
        self.apply_button.clicked.connect(self.apply_adjustment)
        self.colour = QComboBox(self)
        self.colour.setObjectName("mask_colour")
        self.colour.setToolTip("The colour the mask is drawn in")
        self.colour.addItems(list(OVERLAY_COLOURS))
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("mask_opacity")
        self.opacity.setToolTip("How opaque the mask is drawn")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.colour.currentIndexChanged.connect(lambda _index: self._restyle())
        self.opacity.valueChanged.connect(lambda _value: self._restyle())
        # Edits (strokes, undo) made while a preview shows are previewed adjusted too, once each edit is done;
        # while the mouse paints, the mask itself shows, so the stroke is seen as it goes.
        self.editor.changed.connect(self._preview_adjustment)
        self.editor.viewport().installEventFilter(self)
        for text, widget in (("Grow / shrink", self.grow), ("Feather", self.feather), (None, self.apply_button),
                             ("Overlay", self.colour), ("Opacity", self.opacity)):
            if text:
                row.addWidget(QLabel(text, self))
            row.addWidget(widget)
        row.addStretch(1)
        self.apply_button.setEnabled(False)
        return row

    def _value_changed(self) -> None:
        self.apply_button.setEnabled(bool(self.grow.value() or self.feather.value()))
        self._preview_timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (watched in (self.grow, self.feather) and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            watched.interpretText()  # type: ignore[attr-defined]
            if self.grow.value() or self.feather.value():
                self.apply_adjustment()
            return True
        if watched is self.editor.viewport():
            if event.type() == QEvent.Type.MouseButtonPress and self.editor.canvas.preview is not None:
                self.editor.canvas.set_preview(None)
            elif event.type() == QEvent.Type.MouseButtonRelease and (self.grow.value() or self.feather.value()):
                self._preview_timer.start()  # shown again after a pan too; an edit's `changed` shows it at once
        return super().eventFilter(watched, event)

    def _preview_adjustment(self) -> None:
        self._preview_timer.stop()
        grow, feather = self.grow.value(), self.feather.value()
        self.apply_button.setEnabled(bool(grow or feather))
        if grow or feather or self.editor.canvas.preview is not None:
            self.editor.show_adjustment(grow, feather)

    def apply_adjustment(self) -> None:
        """Commit the previewed grow / shrink and feather as one step of the mask's own undo."""
        self._preview_timer.stop()
        grow, feather = self.grow.value(), self.feather.value()
        for box in (self.grow, self.feather):
            box.blockSignals(True)
            box.setValue(0)
            box.blockSignals(False)
        self.apply_button.setEnabled(False)
        self.editor.apply_adjustment(grow, feather)
        self.editor.setFocus()

    def _restyle(self) -> None:
        self.editor.set_overlay_style(OVERLAY_COLOURS[self.colour.currentText()], self.opacity.value() / 100)

    def _padding_row(self) -> QHBoxLayout:
        """Spin boxes for the outpaint borders, and a grey frame around the picture showing the new area."""
        row = QHBoxLayout()
        row.addWidget(QLabel("Extend the picture (pixels):"))
        values = self.document.graph.nodes[self.pad_node].inputs
        for side in SIDES:
            box = QSpinBox(self)
            box.setObjectName(f"pad_{side}")
            box.setRange(0, MAX_PAD)
            box.setSingleStep(8)
            box.setValue(int(values.get(side) or 0))
            box.valueChanged.connect(lambda _value: self._show_padding())
            row.addWidget(QLabel(side.capitalize()))
            row.addWidget(box)
            self.sides[side] = box
        row.addStretch(1)
        self.padding_item = QGraphicsRectItem()
        self.padding_item.setZValue(-1)
        self.padding_item.setBrush(QBrush(QColor(128, 128, 128, 110)))  # the pad node fills with grey
        self.padding_item.setPen(QPen(QColor(255, 255, 255, 200), 0, Qt.PenStyle.DashLine))
        self.editor.scene().addItem(self.padding_item)
        self._show_padding()
        return row

    def fit(self) -> None:
        """The picture, and the outpaint frame around it when there is one, in view."""
        if self.padding_item is not None:
            self.editor.fitInView(self.padding_item.rect(), Qt.AspectRatioMode.KeepAspectRatio)
        else:
            self.editor.fit()

    def padding(self) -> dict[str, int]:
        return {side: box.value() for side, box in self.sides.items()}

    def _show_padding(self) -> None:
        assert self.padding_item is not None
        p, picture = self.padding(), self.editor.canvas.boundingRect()
        frame = picture.adjusted(-p["left"], -p["top"], p["right"], p["bottom"])
        self.padding_item.setRect(frame)
        self.editor.scene().setSceneRect(frame)
        self.fit()

    def _starting_mask(self, width: int, height: int, alpha_mask: np.ndarray | None) -> tuple[np.ndarray | None, str]:
        """The node's mask file when it names one that fits, else the picture's transparency: what Load Image uses now."""
        _image_input, mask_input = MASKABLE[self.document.graph.nodes[self.node_id].type]
        name = self.document.graph.nodes[self.node_id].inputs.get(mask_input) or ""
        found = find_input_file(name, self.document.workflow.base_dir) if name.strip() else None
        if found is not None:
            try:
                data = load_mask(found)
            except OSError as exc:
                return alpha_mask, f"\n{name} could not be read ({exc}); starting from the picture's transparency."
            if data.shape == (height, width):
                return data, ""
            return alpha_mask, f"\n{name} does not match the picture's size; starting afresh."
        return alpha_mask, ""

    def target_path(self) -> Path:
        return mask_path_for(self.image_path, self.workflow_path)

    def save(self) -> None:
        """Write the PNG and name it in the node's mask input (one undo step), then close."""
        path = self.target_path()
        try:
            save_mask(self.editor.mask_array(), path)
        except OSError as exc:
            self.error.setText(f"Cannot save the mask as {path}: {exc.strerror or exc}")
            self.error.show()
            return
        self.saved_path = path
        _image_input, mask_input = MASKABLE[self.document.graph.nodes[self.node_id].type]
        # The mask folder is one Load Image searches, so the bare file name finds it again.
        value = path.name if find_input_file(path.name, self.document.workflow.base_dir) == path else str(path)
        self.document.seal()
        with self.document.macro("Paint mask"):
            self.document.set_input(self.node_id, mask_input, value)
            if self.pad_node is not None and self.pad_node in self.document.graph.nodes:
                for side, pixels in self.padding().items():
                    self.document.set_input(self.pad_node, side, pixels)
        self.document.seal()
        self.accept()


def open_mask_dialog(window: QMainWindow, node_id: str) -> MaskDialog | None:
    """Open the mask editor for ``node_id`` of the window's current workflow, window-modal; None when it cannot."""
    document: Document = window.document  # type: ignore[attr-defined]
    node = document.graph.nodes.get(node_id)
    if node is None or node.type not in MASKABLE:
        return None
    image_input, _mask_input = MASKABLE[node.type]
    name = node.inputs.get(image_input) or ""
    path = find_input_file(name, document.workflow.base_dir) if name.strip() else None
    show = getattr(window, "show_message", None)
    if path is None:
        if show is not None:
            show("Choose a picture for the node before painting its mask" if not name.strip()
                 else f"Cannot paint a mask: the image {name!r} was not found")
        return None
    try:
        # The tab's file, not workflow.path: an example keeps its bundle's path but is saved elsewhere.
        dialog = MaskDialog(document, node_id, path, window, getattr(window, "file_path", document.workflow.path))
    except OSError as exc:
        if show is not None:
            show(f"Cannot paint a mask: {path.name} could not be read ({exc})")
        return None
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.show()
    dialog.fit()
    dialog.editor.setFocus()
    return dialog


class PictureDoubleClick(CanvasViewportFilter):
    """A double-click on a Load Image node's picture opens the mask editor (one per window)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() != QEvent.Type.MouseButtonDblClick or not isinstance(event, QMouseEvent)
                or event.button() != Qt.MouseButton.LeftButton or watched is not self._viewport):
            return False
        view, scene = self.window_.view, self.window_.scene  # type: ignore[attr-defined]
        scene_pos = view.mapToScene(event.position().toPoint())
        item = scene.node_item_at(scene_pos)
        picker = item.geo.picker if item is not None and not item.geo.collapsed else None
        if picker is None or not picker.thumb.contains(item.mapFromScene(scene_pos)):
            return False
        if not can_paint_mask(self.window_.document, item.node_id):  # type: ignore[attr-defined]
            return False
        open_mask_dialog(self.window_, item.node_id)
        return True
