"""Live sampler previews without the VAE: a fixed linear map from the 4 latent channels to RGB.

Good enough to watch composition form at every step for the cost of one tiny matmul; the factors
are the ones ComfyUI ships (fitted against VAE decodes), so previews look familiar.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_FACTORS: dict[str, tuple[list[list[float]], list[float]]] = {
    "sd1": (
        [[0.3512, 0.2297, 0.3227],
         [0.3250, 0.4974, 0.2350],
         [-0.2829, 0.1762, 0.2721],
         [-0.2120, -0.2616, -0.7177]],
        [0.0, 0.0, 0.0],
    ),
    "sdxl": (
        [[0.3651, 0.4232, 0.4341],
         [-0.2533, -0.0042, 0.1068],
         [0.1076, 0.1111, -0.0362],
         [-0.3165, -0.2492, -0.2188]],
        [0.1084, -0.0175, -0.0011],
    ),
}
_FACTORS["sd2"] = _FACTORS["sd1"]  # same VAE
PREVIEW_ARCHS = tuple(_FACTORS)


def latent_to_rgb(latent: Tensor, arch: str = "sd1") -> np.ndarray:
    """First item of a ``[B, 4, H, W]`` latent (unscaled, as samplers hold it) as ``uint8 [H, W, 3]``."""
    if arch not in _FACTORS:
        raise ValueError(f"no preview factors for {arch!r}; choose one of {', '.join(PREVIEW_ARCHS)}")
    if latent.dim() == 3:
        latent = latent[None]
    if latent.dim() != 4 or latent.shape[1] != 4:
        raise ValueError(f"expected a [B, 4, H, W] latent, got shape {tuple(latent.shape)}")
    factors, bias = _FACTORS[arch]
    item = latent[0].detach().to(device="cpu", dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", item, torch.tensor(factors)) + torch.tensor(bias)
    rgb = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8)
    return rgb.numpy()
