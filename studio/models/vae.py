"""VAE encode and decode between IMAGE tensors and latents, whole or in tiles.

LATENT values hold the VAE's raw latents, as in ComfyUI: the MODEL scales them into its own
space while sampling (see :mod:`studio.models.ksampler`), so any VAE works with any latent of
its shape and a standalone VAE file needs no knowledge of the model it will serve.

Tiles let large pictures pass through the VAE in bounded memory; overlapping tiles are blended
with linear ramps so no seams show. Encoding takes the mean of the latent distribution (no
random sampling), so the same picture always gives the same latent and caching stays sound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from studio.models.devices import vae_dtype
from studio.models.memory import model_manager

#: Pictures are decoded this many at a time, to bound peak memory on big batches.
DECODE_BATCH = 4


@dataclass(eq=False)
class VaeHandle:
    """The VAE value that flows between nodes."""

    vae: Any
    #: True where half precision gives black or noisy pictures (SDXL's VAE): always run in fp32.
    force_upcast: bool = False
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def cache_nbytes(self) -> int:
        return 1024  # the weights are owned (and counted) by the model manager

    def clone(self, **changes: Any) -> VaeHandle:
        return replace(self, **changes)

    def _prepare(self, device: str) -> tuple[Any, torch.dtype]:
        dtype = torch.float32 if self.force_upcast else vae_dtype(device)
        module = model_manager().use(self.vae, device)
        if next(module.parameters()).dtype != dtype:
            module.to(dtype=dtype)
        return module, dtype

    def decode(self, latent: torch.Tensor, device: str = "cpu") -> torch.Tensor:
        """Latent ``[B, 4, h, w]`` to IMAGE ``[B, 8h, 8w, 3]`` in 0..1 on the CPU."""
        module, dtype = self._prepare(device)
        images = []
        with torch.inference_mode():
            for chunk in latent.split(DECODE_BATCH):
                images.append(_to_image(module.decode(chunk.to(device, dtype)).sample))
        return torch.cat(images)

    def encode(self, image: torch.Tensor, device: str = "cpu") -> torch.Tensor:
        """IMAGE ``[B, H, W, C]`` (cropped to multiples of 8) to a latent ``[B, 4, H/8, W/8]``."""
        module, dtype = self._prepare(device)
        pixels = _to_pixels(crop_to_multiple(image))
        latents = []
        with torch.inference_mode():
            for chunk in pixels.split(DECODE_BATCH):
                latents.append(module.encode(chunk.to(device, dtype)).latent_dist.mean.float().cpu())
        return torch.cat(latents)

    def decode_tiled(self, latent: torch.Tensor, device: str = "cpu", tile: int = 512, overlap: int = 64) -> torch.Tensor:
        module, dtype = self._prepare(device)

        def run(z: torch.Tensor) -> torch.Tensor:
            return module.decode(z.to(device, dtype)).sample.float().cpu()

        with torch.inference_mode():
            out = tiled(latent.float(), run, tile // 8, max(0, overlap // 8), 8, 3)
        return ((out + 1) / 2).clamp(0, 1).movedim(1, -1)

    def encode_tiled(self, image: torch.Tensor, device: str = "cpu", tile: int = 512, overlap: int = 64) -> torch.Tensor:
        module, dtype = self._prepare(device)

        def run(x: torch.Tensor) -> torch.Tensor:
            return module.encode(x.to(device, dtype)).latent_dist.mean.float().cpu()

        pixels = _to_pixels(crop_to_multiple(image))
        with torch.inference_mode():
            return tiled(pixels, run, tile, overlap, 1 / 8, 4)


def crop_to_multiple(image: torch.Tensor, multiple: int = 8) -> torch.Tensor:
    """Centre-crop ``[B, H, W, C]`` so both sides are multiples of ``multiple`` (what the VAE needs)."""
    height, width = image.shape[1:3]
    new_h, new_w = height // multiple * multiple, width // multiple * multiple
    if new_h == 0 or new_w == 0:
        raise ValueError(f"the image is {width}×{height}; it must be at least {multiple} pixels on each side")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return image[:, top:top + new_h, left:left + new_w, :]


def _to_pixels(image: torch.Tensor) -> torch.Tensor:
    return image[..., :3].movedim(-1, 1).float() * 2 - 1


def _to_image(sample: torch.Tensor) -> torch.Tensor:
    return ((sample.float().cpu() + 1) / 2).clamp(0, 1).movedim(1, -1)


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
        if not at_start:
            weight[:overlap] = ramp
        if not at_end:
            weight[-overlap:] = ramp.flip(0)
    return weight


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = [*range(0, size - tile, stride), size - tile]
    return sorted(set(starts))


def tiled(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], tile: int, overlap: int, scale: float,
          out_channels: int) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` ``[B, C, H, W]`` and blend the results.

    ``scale`` is the output size per input pixel (8 to decode, 1/8 to encode).
    """
    batch, _, height, width = x.shape
    tile = max(8 if scale < 1 else 1, tile)
    overlap = min(overlap, tile // 2)
    out_h, out_w = round(height * scale), round(width * scale)
    out = torch.zeros(batch, out_channels, out_h, out_w)
    weights = torch.zeros(1, 1, out_h, out_w)
    ys, xs = _starts(height, tile, overlap), _starts(width, tile, overlap)
    for y in ys:
        for x0 in xs:
            piece = fn(x[:, :, y:y + tile, x0:x0 + tile])
            ph, pw = piece.shape[-2:]
            oy, ox = round(y * scale), round(x0 * scale)
            o_overlap = round(overlap * scale)
            wy = _ramp(ph, o_overlap, y == ys[0], y == ys[-1])
            wx = _ramp(pw, o_overlap, x0 == xs[0], x0 == xs[-1])
            w = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, oy:oy + ph, ox:ox + pw] += piece * w
            weights[:, :, oy:oy + ph, ox:ox + pw] += w
    return out / weights.clamp_min(1e-8)
