"""The mask model without a widget: strokes, shapes, whole-mask operations, undo and storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.ui.mask.mask_model import MaskModel
from studio.ui.mask.storage import load_mask, mask_path_for, save_mask


def disk(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r


def test_hard_dab_covers_its_disk() -> None:
    model = MaskModel(64, 64)
    model.begin_stroke(32, 32, size=20)
    model.end_stroke()
    assert (model.data[disk(64, 32, 32, 9)] == 255).all()
    assert (model.data[~disk(64, 32, 32, 10.5)] == 0).all()


def test_overlapping_segments_never_exceed_the_stroke_opacity() -> None:
    model = MaskModel(64, 64)
    model.begin_stroke(10, 32, size=16, opacity=0.5)
    for x in (20, 10, 30, 12, 40):
        model.stroke_to(x, 32)
    model.end_stroke()
    assert model.data.max() == 128


def test_soft_brush_fades_towards_its_edge() -> None:
    model = MaskModel(64, 64)
    model.begin_stroke(32, 32, size=40, hardness=0.0)
    row = model.data[32, 32:]
    assert row[0] > 240 and 0 < row[10] < row[0] and row[25] == 0
    assert (np.diff(row.astype(int)) <= 0).all()


def test_eraser_and_undo_redo_restore_exact_pixels() -> None:
    model = MaskModel(128, 128)
    model.fill_rect(10, 10, 100, 100)
    filled = model.data.copy()
    model.begin_stroke(20, 50, size=10, erase=True)
    model.stroke_to(90, 50)
    model.end_stroke()
    assert model.data[50, 50] == 0 and model.data[20, 50] == 255
    erased = model.data.copy()
    assert model.undo() and np.array_equal(model.data, filled)
    assert model.redo() and np.array_equal(model.data, erased)
    assert model.undo() and model.undo() and not model.data.any()
    assert not model.undo()


def test_stroke_undo_keeps_only_the_touched_rectangle() -> None:
    model = MaskModel(4096, 4096)
    model.begin_stroke(100, 100, size=20)
    model.stroke_to(200, 120)
    model.end_stroke()
    assert model.undo_bytes() <= 2 * 192 * 128  # tiles round the 120×40 stroke up, not to 4096²


def test_polygon_rect_ellipse_invert_clear() -> None:
    model = MaskModel(100, 100)
    model.fill_polygon([(10, 10), (90, 10), (10, 90)])
    assert model.data[20, 20] == 255 and model.data[80, 80] == 0
    model.fill_polygon([(0, 0), (100, 0), (100, 100), (0, 100)], erase=True)
    assert not model.data.any()
    model.fill_ellipse(20, 20, 80, 60)
    assert model.data[40, 50] == 255 and model.data[22, 22] == 0 and model.data[70, 50] == 0
    model.invert()
    assert model.data[40, 50] == 0 and model.data[22, 22] == 255
    model.clear()
    assert not model.data.any()
    model.undo()
    model.undo()
    assert model.data[40, 50] == 255 and model.data[22, 22] == 0


def test_grow_shrink_and_feather_preview_without_committing() -> None:
    model = MaskModel(100, 100)
    model.fill_rect(40, 40, 60, 60)
    before = model.data.copy()
    grown, shrunk = model.adjusted(grow=5), model.adjusted(grow=-5)
    assert grown[37, 50] == 255 and before[37, 50] == 0
    assert shrunk[42, 50] == 0 and shrunk[50, 50] == 255
    soft = model.adjusted(feather=4)
    assert 0 < soft[50, 39] < 255 and np.array_equal(model.data, before)
    model.apply_adjustment(feather=4)
    assert np.array_equal(model.data, soft)
    model.undo()
    assert np.array_equal(model.data, before)


def test_mask_file_round_trip_beside_the_inputs(tmp_path: Path) -> None:
    path = mask_path_for(Path("/pics/cat.jpg"), tmp_path / "flow.json")
    assert path == tmp_path / "inputs" / "cat.mask.png"
    data = np.random.default_rng(0).integers(0, 256, (30, 40), dtype=np.uint8)
    save_mask(data, path)
    assert np.array_equal(load_mask(path), data)
