"""ControlNet preprocessors that need no downloaded weights, on numpy pictures (OpenCV).

Kept free of torch and Qt so the training code, the nodes and the tests share one definition:
a ControlNet trained on these edge maps sees the same maps at generation time.
"""

from __future__ import annotations

import numpy as np

#: ITU-R 601 luma, as kornia's ``rgb_to_grayscale`` (which ComfyUI's Canny uses).
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def canny(picture: np.ndarray, low_threshold: float = 0.4, high_threshold: float = 0.8) -> np.ndarray:
    """White-on-black Canny edges of an ``[H, W, 3]`` (or ``[H, W]``) float picture in 0..1.

    Thresholds are on the scale ComfyUI's ``Canny`` node uses (kornia): the gradient magnitude of
    a 0..1 picture after a 5×5, σ = 1 Gaussian blur, with plain (unnormalised) 3×3 Sobel kernels.
    OpenCV's Canny takes the gradients of 0..255 values, so they are scaled by 255; the
    gradients are computed in float and handed over as int16 so no 8-bit rounding of the blurred
    picture shifts an edge. Returns float32 ``[H, W]`` in {0, 1}.
    """
    import cv2

    if not 0.0 <= low_threshold <= high_threshold:
        raise ValueError(f"Canny needs 0 <= low_threshold <= high_threshold, got {low_threshold} and {high_threshold}")
    picture = np.asarray(picture, dtype=np.float32)
    grey = picture @ LUMA if picture.ndim == 3 and picture.shape[-1] >= 3 else picture.reshape(picture.shape[:2])
    blurred = cv2.GaussianBlur(grey * 255.0, (5, 5), 1.0, borderType=cv2.BORDER_REFLECT)
    dx = np.round(cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)).astype(np.int16)
    dy = np.round(cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)).astype(np.int16)
    scale = 255.0
    edges = cv2.Canny(dx, dy, low_threshold * scale, high_threshold * scale, L2gradient=True)
    return (edges > 0).astype(np.float32)


def rgb(picture: np.ndarray) -> np.ndarray:
    """An ``[H, W]`` or ``[H, W, C]`` picture (C = 1, 3 or 4) as float32 ``[H, W, 3]``: grey is
    repeated, alpha dropped. Every ControlNet hint is an RGB picture, whatever came in."""
    picture = np.asarray(picture, dtype=np.float32)
    if picture.ndim == 2:
        picture = picture[..., None]
    if picture.ndim != 3 or picture.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected a picture [height, width, 1, 3 or 4 channels], got shape {tuple(picture.shape)}")
    if picture.shape[0] == 0 or picture.shape[1] == 0:
        raise ValueError(f"the picture is empty (shape {tuple(picture.shape)})")
    if picture.shape[-1] == 1:
        return np.ascontiguousarray(np.repeat(picture, 3, axis=-1))
    return np.ascontiguousarray(picture[..., :3])


def invert(picture: np.ndarray) -> np.ndarray:
    """``1 - picture``, as ComfyUI's ``ImageInvert`` (every channel; works on numpy and torch alike)."""
    return 1.0 - picture


def thicken(lines: np.ndarray, width: int) -> np.ndarray:
    """Dilate a 1-pixel ``[H, W]`` line map with a round pen ``width`` pixels across (1 = unchanged)."""
    import cv2

    _at_least("width", width, 1)
    lines = np.asarray(lines, dtype=np.float32)
    if width == 1:
        return lines
    pen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    return cv2.dilate(lines, pen, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def drop_short_lines(lines: np.ndarray, min_length: int) -> np.ndarray:
    """Remove pieces of a ``[H, W]`` line map with fewer than ``min_length`` pixels (8-connected):
    the specks and fragments texture and noise leave, which a model would read as detail."""
    import cv2

    _at_least("min_length", min_length, 0)
    lines = np.asarray(lines, dtype=np.float32)
    if min_length <= 1:
        return lines
    _, labels, stats, _ = cv2.connectedComponentsWithStats((lines > 0.5).astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_length
    keep[0] = False  # the background
    return keep[labels].astype(np.float32)


def simplified_edges(picture: np.ndarray, threshold: float, simplify: float = 0.0, min_length: int = 0) -> np.ndarray:
    """1-pixel Canny edges (thresholds ``threshold / 2`` and ``threshold``, on :func:`canny`'s scale)
    after a Gaussian blur of ``simplify`` pixels (σ) that leaves out fine texture, then without
    pieces shorter than ``min_length``.

    Blurring also weakens every gradient (by about 1 / √(1 + σ²) next to Canny's own σ = 1 blur),
    so the picture is scaled back up by that factor: ``threshold`` keeps meaning the same contrast
    whatever ``simplify`` is, and only detail goes. Returns float32 ``[H, W]`` in {0, 1}.
    """
    import cv2

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    _at_least("simplify", simplify, 0.0)
    grey = rgb(picture) @ LUMA
    if simplify > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), simplify, borderType=cv2.BORDER_REFLECT) * np.sqrt(1.0 + simplify**2)
    return drop_short_lines(canny(grey, threshold / 2, threshold), min_length)


def scribble(picture: np.ndarray, thickness: int = 8, simplify: float = 3.0, threshold: float = 0.3,
             min_length: int = 32, smooth: bool = True) -> np.ndarray:
    """Thick white strokes on black that trace the main outlines, like a quick hand-drawn scribble:
    the hint scribble ControlNets were trained on. ``smooth`` rounds the strokes and merges ones
    closer than about their width, as one pen line would. Returns float32 ``[H, W]`` in {0, 1}."""
    import cv2

    _at_least("thickness", thickness, 1)
    strokes = thicken(simplified_edges(picture, threshold, simplify, min_length), thickness)
    if smooth and thickness > 2:
        strokes = cv2.GaussianBlur(strokes, (0, 0), thickness / 3, borderType=cv2.BORDER_CONSTANT)
        strokes = (strokes > 0.5).astype(np.float32)
    return strokes


def line_art(picture: np.ndarray, threshold: float = 0.2, line_width: int = 1, min_length: int = 16,
             black_on_white: bool = False) -> np.ndarray:
    """Clean lines ``line_width`` pixels wide along the picture's edges: white on black, as lineart
    ControlNets expect, or black on white to look at or print. Returns float32 ``[H, W]`` in {0, 1}."""
    lines = thicken(simplified_edges(picture, threshold, 0.0, min_length), line_width)
    return invert(lines) if black_on_white else lines


def color_palette(picture: np.ndarray, block_size: int = 64) -> np.ndarray:
    """The picture as blocks of about ``block_size`` pixels, each the mean colour of its area: the
    colour layout a t2i-adapter colour model (or a shuffle-like use) takes, with the shapes gone.

    As comfyui_controlnet_aux's Color preprocessor, but averaged (INTER_AREA, so a block is its
    pixels' mean rather than a cubic sample) and at the picture's own size. Returns float32
    ``[H, W, 3]``.
    """
    import cv2

    _at_least("block_size", block_size, 1)
    picture = rgb(picture)
    height, width = picture.shape[:2]
    small = cv2.resize(picture, (max(1, round(width / block_size)), max(1, round(height / block_size))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).reshape(height, width, 3)


def tile(picture: np.ndarray, pyr_up_iters: int = 3) -> np.ndarray:
    """The picture taken ``pyr_up_iters`` steps down the Gaussian pyramid (each halves it) and
    back up to its own size: the blurred likeness tile ControlNets add detail to.

    As comfyui_controlnet_aux's TilePreprocessor, but down with ``pyrDown`` rather than an area
    resize: ``pyrDown`` and ``pyrUp`` share their pixel grid, while area-then-``pyrUp`` shifts the
    picture by (2**iters − 1) / 2 pixels up and left. Odd sizes round up at each level, so the last
    step lands exactly on the input's size. Returns float32 ``[H, W, 3]``.
    """
    import cv2

    _at_least("pyr_up_iters", pyr_up_iters, 0)
    out = rgb(picture)
    sizes = []
    for _ in range(pyr_up_iters):
        sizes.append((out.shape[1], out.shape[0]))
        out = cv2.pyrDown(out).reshape((out.shape[0] + 1) // 2, (out.shape[1] + 1) // 2, 3)
    for width, height in reversed(sizes):
        out = cv2.pyrUp(out, dstsize=(width, height)).reshape(height, width, 3)
    return np.clip(out, 0.0, 1.0)


def _at_least(name: str, value: float, minimum: float) -> None:
    if not value >= minimum:  # also refuses NaN
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
