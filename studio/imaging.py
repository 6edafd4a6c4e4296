"""Image helpers shared by node packs: tensors to and from PIL, resizing, PNG metadata.

IMAGE values are float32 tensors ``[B, H, W, C]`` in 0..1 (RGB); MASK values are ``[B, H, W]`` with
1 marking the area to change. These helpers keep those conventions in one place.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, ImageSequence, PngImagePlugin


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as ``[H, W, 3]`` float32 in 0..1."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy())


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """One ``[H, W, C]`` image (C = 1, 3 or 4) as a PIL image, clipped to 0..1 and rounded."""
    array = (image.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def load_image_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """IMAGE ``[B, H, W, 3]`` and MASK ``[B, H, W]`` (1 − alpha, as ComfyUI) from a file.

    Every frame of an animated file becomes a batch item (frames of another size are skipped);
    EXIF orientation is applied, so photos appear the right way up.
    """
    with Image.open(path) as opened:
        frames, masks = [], []
        for frame in ImageSequence.Iterator(opened):
            frame = ImageOps.exif_transpose(frame)
            if frame.mode.startswith("I"):  # 16- or 32-bit greyscale: scale by its own range
                grey = np.asarray(frame, dtype=np.float32)
                grey = grey / (65535.0 if frame.mode.startswith("I;16") or grey.max() > 255 else 255.0)
                rgb = torch.from_numpy(np.repeat(grey[..., None].clip(0, 1), 3, axis=-1).copy())
            else:
                rgb = pil_to_tensor(frame)
            if frames and rgb.shape != frames[0].shape:
                continue
            if "A" in frame.getbands():
                alpha = np.asarray(frame.getchannel("A"), dtype=np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha.copy())
            elif frame.mode == "P" and "transparency" in frame.info:
                alpha = np.asarray(frame.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha.copy())
            else:
                mask = torch.zeros(rgb.shape[:2], dtype=torch.float32)
            frames.append(rgb)
            masks.append(mask)
    return torch.stack(frames), torch.stack(masks)


def resize(samples: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """Resize ``[B, C, H, W]`` to ``width`` × ``height``; ``crop="center"`` keeps the aspect ratio."""
    if crop == "center":
        old_h, old_w = samples.shape[-2:]
        old_aspect, new_aspect = old_w / old_h, width / height
        x = y = 0
        if old_aspect > new_aspect:
            x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
        elif old_aspect < new_aspect:
            y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
        samples = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    if method == "bislerp":
        return bislerp(samples, width, height)
    if method == "lanczos":
        return _lanczos(samples, width, height)
    if method not in ("nearest-exact", "bilinear", "area", "bicubic"):
        raise ValueError(f"unknown resize method {method!r}")
    return F.interpolate(samples, size=(height, width), mode=method,
                         align_corners=False if method in ("bilinear", "bicubic") else None)


def _lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    out = []
    for item in samples:
        channels = []
        for channel in item:
            pil = Image.fromarray(channel.float().cpu().numpy().astype(np.float32))
            channels.append(torch.from_numpy(np.asarray(pil.resize((width, height), Image.LANCZOS)).copy()))
        out.append(torch.stack(channels))
    return torch.stack(out).to(samples.device, samples.dtype)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize by spherical interpolation of each pixel's channel vector (keeps latent statistics
    better than bilinear): directions are slerped, lengths lerped, first along x, then along y."""

    def along_last(t: torch.Tensor, new: int) -> torch.Tensor:
        old = t.shape[-1]
        pos = (torch.arange(new, dtype=torch.float64) + 0.5) * old / new - 0.5
        pos = pos.clamp(0, old - 1)
        left = pos.floor().long()
        right = (left + 1).clamp(max=old - 1)
        w = (pos - left).to(t.dtype)
        a, b = t[..., left], t[..., right]
        a_norm = a.norm(dim=1, keepdim=True)
        b_norm = b.norm(dim=1, keepdim=True)
        a_unit = a / a_norm.clamp_min(1e-12)
        b_unit = b / b_norm.clamp_min(1e-12)
        dot = (a_unit * b_unit).sum(dim=1, keepdim=True).clamp(-1, 1)
        omega = torch.acos(dot)
        sin_omega = torch.sin(omega)
        close = sin_omega.abs() < 1e-4
        safe = torch.where(close, torch.ones_like(sin_omega), sin_omega)
        slerped = (torch.sin((1 - w) * omega) / safe) * a_unit + (torch.sin(w * omega) / safe) * b_unit
        lerped = (1 - w) * a_unit + w * b_unit
        direction = torch.where(close, lerped, slerped)
        return direction * ((1 - w) * a_norm + w * b_norm)

    original_dtype = samples.dtype
    work = samples.double()
    work = along_last(work, width)
    work = along_last(work.transpose(-1, -2), height).transpose(-1, -2)
    return work.to(original_dtype)


def fill_missing_side(old_w: int, old_h: int, width: int, height: int, minimum: int = 1) -> tuple[int, int]:
    """A target size where 0 for one side means "keep the aspect ratio" (both 0: unchanged)."""
    if width == 0 and height == 0:
        return old_w, old_h
    if width == 0:
        width = max(minimum, round(old_w * height / old_h))
    elif height == 0:
        height = max(minimum, round(old_h * width / old_w))
    return width, height


def total_pixels_size(width: int, height: int, megapixels: float) -> tuple[int, int]:
    """The size with the same aspect ratio and about ``megapixels`` million pixels."""
    scale = math.sqrt(megapixels * 1024 * 1024 / (width * height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def png_info(text_chunks: dict[str, str]) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for key, value in text_chunks.items():
        info.add_itxt(key, value) if not value.isascii() else info.add_text(key, value)
    return info


def save_png(image: torch.Tensor, path: Path, text_chunks: dict[str, str] | None = None, compress_level: int = 4) -> None:
    """Write one ``[H, W, C]`` image as PNG with text chunks (workflow, parameters)."""
    tensor_to_pil(image).save(path, format="PNG", pnginfo=png_info(text_chunks or {}), compress_level=compress_level)


def read_png_text(path: Path) -> dict[str, Any]:
    """The text chunks of a PNG (to read back the workflow a picture carries); one reader for the
    engine and the editor, which reads chunks without decoding pixels."""
    from studio.core.png_text import read_text_chunks

    return dict(read_text_chunks(path))


def repeat_to_batch(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """``tensor`` cut or repeated along its first dimension to ``batch`` items (ComfyUI's repeat_to_batch_size)."""
    if tensor.shape[0] > batch:
        return tensor[:batch]
    if tensor.shape[0] < batch:
        times = -(-batch // tensor.shape[0])
        return tensor.repeat(times, *([1] * (tensor.dim() - 1)))[:batch]
    return tensor


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None = None,
              multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """Paste ``source`` into ``destination`` (both ``[B, C, H, W]``, changed in place) at pixel (x, y),
    through ``mask`` (1 = source) resized to the source: ComfyUI's ``composite`` helper. One for
    pictures (``multiplier`` 1, channels first) and latents (8: positions are in pixels)."""
    if resize_source:
        source = F.interpolate(source, size=destination.shape[-2:], mode="bilinear")
    source = repeat_to_batch(source.to(destination), destination.shape[0])
    x = max(-source.shape[-1] * multiplier, min(x, destination.shape[-1] * multiplier))
    y = max(-source.shape[-2] * multiplier, min(y, destination.shape[-2] * multiplier))
    left, top = x // multiplier, y // multiplier
    right, bottom = left + source.shape[-1], top + source.shape[-2]
    if mask is None:
        weights = source.new_ones(source.shape)
    else:
        weights = mask.to(destination).reshape(-1, 1, mask.shape[-2], mask.shape[-1])
        weights = repeat_to_batch(F.interpolate(weights, size=source.shape[-2:], mode="bilinear"), source.shape[0])
    visible_w = destination.shape[-1] - left + min(0, x)
    visible_h = destination.shape[-2] - top + min(0, y)
    weights = weights[:, :, :visible_h, :visible_w]
    part = weights * source[..., :visible_h, :visible_w]
    kept = (1 - weights) * destination[..., top:bottom, left:right]
    destination[..., top:bottom, left:right] = part + kept
    return destination
