"""Where a painted mask is kept and how: its own greyscale PNG (255 = repaint) beside the inputs.

The source image is never touched; Load Image's ``mask`` input names the file, found like any other
file input (the workflow's ``inputs`` folder, then the user's inputs folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.paths import default_input_dir

MASK_SUFFIX = ".mask.png"


def mask_folder(workflow_path: Path | None) -> Path:
    """``<workflow dir>/inputs`` for a saved workflow, else the user's inputs folder."""
    return workflow_path.parent / "inputs" if workflow_path is not None else default_input_dir()


def mask_path_for(image_path: Path, workflow_path: Path | None) -> Path:
    """``<image stem>.mask.png`` in :func:`mask_folder`."""
    return mask_folder(workflow_path) / f"{Path(image_path).stem}{MASK_SUFFIX}"


def save_mask(mask: np.ndarray, path: Path) -> Path:
    """Write the uint8 mask as an 8-bit greyscale PNG, exactly (PNG is lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(mask, np.uint8), mode="L").save(path, format="PNG")
    return path


def load_mask(path: Path) -> np.ndarray:
    """A mask PNG (any picture: its greyscale) as uint8 ``[H, W]``."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), np.uint8).copy()
