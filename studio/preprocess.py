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
