"""Mask and image tools (ComfyUI's node and input names): grow, feather, invert, threshold,
combine, convert, composite, blend, blur, quantize, crop.

MASK is ``[B, H, W]`` float in 0..1 with 1 = the area to change; IMAGE is ``[B, H, W, C]``.
torch is imported inside ``run`` so listing nodes stays fast.
"""

from __future__ import annotations

import math
from typing import Any

from studio.api import Boolean, Combo, Float, Input, Int, Node, Output, RunContext

MAX = 16384


def _as_mask(mask: Any) -> Any:
    return mask[None] if mask.dim() == 2 else mask


class GrowMask(Node):
    NAME = "GrowMask"
    DISPLAY_NAME = "Grow Mask"
    CATEGORY = "mask"
    DESCRIPTION = "Grow the mask by some pixels (or shrink it, with a negative amount)."
    INPUTS = [Input("mask", "MASK"), Int("expand", 0, min=-MAX, max=MAX),
              Boolean("tapered_corners", True, tooltip="Grow in a diamond (rounder) rather than a square")]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, mask: Any, expand: int, tapered_corners: bool) -> Any:
        return grow(_as_mask(mask), expand, tapered_corners)


def grow(mask: Any, expand: int, tapered_corners: bool = True) -> Any:
    """Dilate (expand > 0) or erode (expand < 0) by |expand| pixels, one 3×3 step at a time;
    soft values are kept (the largest, or smallest, of the neighbourhood)."""
    out = mask[:, None].float()
    for _ in range(abs(expand)):
        out = _morph_step(out, expand > 0, tapered_corners)
    return out[:, 0].to(mask.dtype)


def _morph_step(mask: Any, dilate: bool, tapered: bool) -> Any:
    import torch
    import torch.nn.functional as F

    pad = F.pad(mask, (1, 1, 1, 1), value=0.0 if dilate else 1.0)
    if not tapered:  # the full 3×3 square
        return F.max_pool2d(pad, 3, 1) if dilate else -F.max_pool2d(-pad, 3, 1)
    centre = pad[:, :, 1:-1, 1:-1]
    plus = torch.stack([centre, pad[:, :, :-2, 1:-1], pad[:, :, 2:, 1:-1], pad[:, :, 1:-1, :-2], pad[:, :, 1:-1, 2:]])
    return plus.max(0).values if dilate else plus.min(0).values


class FeatherMask(Node):
    NAME = "FeatherMask"
    DISPLAY_NAME = "Feather Mask"
    CATEGORY = "mask"
    DESCRIPTION = "Fade the mask out towards each edge of the picture over the given number of pixels."
    INPUTS = [Input("mask", "MASK"), *(Int(side, 0, min=0, max=MAX) for side in ("left", "top", "right", "bottom"))]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, mask: Any, left: int, top: int, right: int, bottom: int) -> Any:
        out = _as_mask(mask).clone()
        height, width = out.shape[-2:]
        for x in range(min(left, width)):
            out[:, :, x] *= (x + 1) / left
        for y in range(min(top, height)):
            out[:, y, :] *= (y + 1) / top
        for x in range(min(right, width)):
            out[:, :, width - 1 - x] *= (x + 1) / right
        for y in range(min(bottom, height)):
            out[:, height - 1 - y, :] *= (y + 1) / bottom
        return out


class InvertMask(Node):
    NAME = "InvertMask"
    DISPLAY_NAME = "Invert Mask"
    CATEGORY = "mask"
    DESCRIPTION = "1 becomes 0 and 0 becomes 1: change everything that was kept, keep what was changed."
    INPUTS = [Input("mask", "MASK")]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, mask: Any) -> Any:
        return 1.0 - _as_mask(mask)


class ThresholdMask(Node):
    NAME = "ThresholdMask"
    DISPLAY_NAME = "Threshold Mask"
    CATEGORY = "mask"
    DESCRIPTION = "A hard mask: 1 where the mask is above the value, else 0."
    INPUTS = [Input("mask", "MASK"), Float("value", 0.5, min=0.0, max=1.0)]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, mask: Any, value: float) -> Any:
        return (_as_mask(mask) > value).float()


COMPOSITE_OPERATIONS = ("multiply", "add", "subtract", "and", "or", "xor")


class MaskComposite(Node):
    NAME = "MaskComposite"
    DISPLAY_NAME = "Mask Composite"
    CATEGORY = "mask"
    DESCRIPTION = "Combine source into destination at (x, y); the result has the destination's size."
    INPUTS = [Input("destination", "MASK"), Input("source", "MASK"), Int("x", 0, min=0, max=MAX), Int("y", 0, min=0, max=MAX),
              Combo("operation", COMPOSITE_OPERATIONS)]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, destination: Any, source: Any, x: int, y: int, operation: str) -> Any:
        out = _as_mask(destination).clone()
        src = _as_mask(source)
        height, width = out.shape[-2:]
        if x >= width or y >= height:
            return out
        h, w = min(src.shape[-2], height - y), min(src.shape[-1], width - x)
        region = out[:, y:y + h, x:x + w]
        part = src[:, :h, :w].to(out.dtype)
        if operation == "multiply":
            result = region * part
        elif operation == "add":
            result = region + part
        elif operation == "subtract":
            result = region - part
        else:
            a, b = region.round().bool(), part.round().bool()
            result = {"and": a & b, "or": a | b, "xor": a ^ b}[operation].to(out.dtype)
        out[:, y:y + h, x:x + w] = result
        return out.clamp(0, 1)


class MaskToImage(Node):
    NAME = "MaskToImage"
    DISPLAY_NAME = "Convert Mask to Image"
    CATEGORY = "mask"
    DESCRIPTION = "Show a mask as a grey picture (white = 1)."
    INPUTS = [Input("mask", "MASK")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, mask: Any) -> Any:
        return _as_mask(mask)[..., None].expand(-1, -1, -1, 3).clone()


class ImageToMask(Node):
    NAME = "ImageToMask"
    DISPLAY_NAME = "Convert Image to Mask"
    CATEGORY = "mask"
    DESCRIPTION = "Use one channel of a picture as a mask."
    INPUTS = [Input("image", "IMAGE"), Combo("channel", ["red", "green", "blue", "alpha"])]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, image: Any, channel: str) -> Any:
        index = ["red", "green", "blue", "alpha"].index(channel)
        if index >= image.shape[-1]:
            raise ValueError(f"the image has no {channel} channel ({image.shape[-1]} channels)")
        return image[..., index].clone()


class ImageColorToMask(Node):
    NAME = "ImageColorToMask"
    DISPLAY_NAME = "Image Color to Mask"
    CATEGORY = "mask"
    DESCRIPTION = "A mask of the pixels of one exact colour, given as 0xRRGGBB (e.g. 16711680 for red)."
    INPUTS = [Input("image", "IMAGE"), Int("color", 0, min=0, max=0xFFFFFF)]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, image: Any, color: int) -> Any:
        import torch

        rgb = (image[..., :3].clamp(0, 1) * 255).round().to(torch.int64)
        packed = (rgb[..., 0] << 16) + (rgb[..., 1] << 8) + rgb[..., 2]
        return (packed == color).float()


class ImageCompositeMasked(Node):
    NAME = "ImageCompositeMasked"
    DISPLAY_NAME = "Image Composite Masked"
    CATEGORY = "image"
    DESCRIPTION = "Paste source onto destination at (x, y), through the mask if one is given."
    INPUTS = [Input("destination", "IMAGE"), Input("source", "IMAGE"), Int("x", 0, min=0, max=MAX, step=8),
              Int("y", 0, min=0, max=MAX, step=8), Boolean("resize_source", False), Input("mask", "MASK", optional=True)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, destination: Any, source: Any, x: int, y: int, resize_source: bool,
            mask: Any = None) -> Any:
        from studio.imaging import composite

        out = destination.clone().movedim(-1, 1)  # the same helper as LatentCompositeMasked, at pixel scale
        source = source.movedim(-1, 1)[:, : out.shape[1]]
        composite(out, source, x, y, None if mask is None else _as_mask(mask), 1, resize_source)
        return out.movedim(1, -1)


BLEND_MODES = ("normal", "multiply", "screen", "overlay", "soft_light", "difference")


class ImageBlend(Node):
    NAME = "ImageBlend"
    DISPLAY_NAME = "Image Blend"
    CATEGORY = "image/postprocessing"
    DESCRIPTION = "Blend image2 over image1 with a blend mode; blend_factor 0 keeps image1, 1 gives the blend."
    INPUTS = [Input("image1", "IMAGE"), Input("image2", "IMAGE"), Float("blend_factor", 0.5, min=0.0, max=1.0),
              Combo("blend_mode", BLEND_MODES)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image1: Any, image2: Any, blend_factor: float, blend_mode: str) -> Any:
        import torch

        from studio.imaging import resize

        if image2.shape[1:3] != image1.shape[1:3]:
            image2 = resize(image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bicubic", "center").movedim(1, -1)
        a, b = image1, image2.clamp(0, 1)
        if blend_mode == "normal":
            blended = b
        elif blend_mode == "multiply":
            blended = a * b
        elif blend_mode == "screen":
            blended = 1 - (1 - a) * (1 - b)
        elif blend_mode == "overlay":
            blended = torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))
        elif blend_mode == "soft_light":
            g = torch.where(a <= 0.25, ((16 * a - 12) * a + 4) * a, torch.sqrt(a))
            blended = torch.where(b <= 0.5, a - (1 - 2 * b) * a * (1 - a), a + (2 * b - 1) * (g - a))
        else:
            blended = (a - b).abs()
        return (a * (1 - blend_factor) + blended * blend_factor).clamp(0, 1)


class ImageBlur(Node):
    NAME = "ImageBlur"
    DISPLAY_NAME = "Image Blur"
    CATEGORY = "image/postprocessing"
    DESCRIPTION = ("Gaussian blur over a (2 × radius + 1)-pixel square. As in ComfyUI, sigma is measured in radii "
                   "(sigma 1 with radius 4 is a 4-pixel Gaussian), so its workflows blur the same.")
    INPUTS = [Input("image", "IMAGE"), Int("blur_radius", 1, min=1, max=31),
              Float("sigma", 1.0, min=0.1, max=10.0, step=0.1, tooltip="The Gaussian's width, in units of the radius")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, blur_radius: int, sigma: float) -> Any:
        return gaussian_blur(image, blur_radius, sigma * blur_radius)


def gaussian_blur(image: Any, radius: int, sigma: float) -> Any:
    """Separable Gaussian blur of ``[B, H, W, C]`` with reflected edges."""
    import torch
    import torch.nn.functional as F

    size = radius * 2 + 1
    x = torch.arange(size, dtype=torch.float32) - radius
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[-1]
    t = image.movedim(-1, 1).float()
    t = F.pad(t, (radius, radius, radius, radius), mode="reflect" if min(t.shape[-2:]) > radius else "replicate")
    t = F.conv2d(t, kernel.view(1, 1, 1, size).repeat(channels, 1, 1, 1), groups=channels)
    t = F.conv2d(t, kernel.view(1, 1, size, 1).repeat(channels, 1, 1, 1), groups=channels)
    return t.movedim(1, -1).to(image.dtype)


DITHERS = ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"]


class ImageQuantize(Node):
    NAME = "ImageQuantize"
    DISPLAY_NAME = "Image Quantize"
    CATEGORY = "image/postprocessing"
    DESCRIPTION = ("Reduce the picture to a number of colours (a palette), optionally dithered: floyd-steinberg "
                   "diffuses the error; bayer-N adds an N×N ordered-dither threshold pattern (as ComfyUI).")
    INPUTS = [Input("image", "IMAGE"), Int("colors", 256, min=1, max=256), Combo("dither", DITHERS)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, colors: int, dither: str) -> Any:
        import torch
        from PIL import Image

        from studio.imaging import pil_to_tensor, tensor_to_pil

        if dither not in DITHERS:
            raise ValueError(f"unknown dither {dither!r}; choose one of {', '.join(DITHERS)}")
        out = []
        for item in image:
            pil = tensor_to_pil(item[..., :3])
            palette = pil.quantize(colors=colors, dither=Image.Dither.NONE)
            if dither.startswith("bayer-"):
                quantized = bayer_dither(pil, palette, int(dither.split("-")[1]))
            else:
                mode = Image.Dither.FLOYDSTEINBERG if dither == "floyd-steinberg" else Image.Dither.NONE
                quantized = pil.quantize(colors=colors, palette=palette, dither=mode)
            out.append(pil_to_tensor(quantized))
        return torch.stack(out)


def bayer_threshold_map(order: int) -> Any:
    """The ``order``×``order`` ordered-dither offsets in (-0.5, 0.5), ComfyUI's ``normalized_bayer_matrix``:
    each level tiles the previous one four times, interleaved as ((m - 1.5, m + 0.5), (m + 1.5, m - 0.5))."""
    import numpy as np

    matrix = np.zeros((1, 1), np.float32)
    for level in range(1, int(math.log2(order)) + 1):
        q = 4**level
        m = q * matrix
        matrix = np.block([[m - 1.5, m + 0.5], [m + 1.5, m - 0.5]]).astype(np.float32) / q
    return matrix


def bayer_dither(pil: Any, palette: Any, order: int) -> Any:
    """Ordered dithering onto ``palette`` (a "P" image), as ComfyUI's ``Quantize.bayer``: each pixel is
    offset by the tiled threshold map scaled to the palette's spacing (2·256 / colours), then mapped
    to the nearest palette colour without error diffusion."""
    import numpy as np
    from PIL import Image

    num_colors = len(palette.getpalette()) // 3
    spread = 2 * 256 / num_colors
    offsets = np.float32(spread) * bayer_threshold_map(order) + np.float32(0.5)
    pixels = np.asarray(pil, dtype=np.float32)
    height, width = pixels.shape[:2]
    tiled = np.tile(offsets, (math.ceil(height / order), math.ceil(width / order)))[:height, :width, None]
    shifted = np.clip(pixels + tiled, 0, 255).astype(np.uint8)
    return Image.fromarray(shifted).quantize(palette=palette, dither=Image.Dither.NONE)


class ImageCrop(Node):
    NAME = "ImageCrop"
    DISPLAY_NAME = "Image Crop"
    CATEGORY = "image/transform"
    DESCRIPTION = "Cut a width × height rectangle out of the picture, starting at (x, y)."
    INPUTS = [Input("image", "IMAGE"), Int("width", 512, min=1, max=MAX), Int("height", 512, min=1, max=MAX),
              Int("x", 0, min=0, max=MAX), Int("y", 0, min=0, max=MAX)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, width: int, height: int, x: int, y: int) -> Any:
        x, y = min(x, image.shape[2] - 1), min(y, image.shape[1] - 1)
        return image[:, y:y + height, x:x + width, :].clone()


class ImageSharpen(Node):
    NAME = "ImageSharpen"
    DISPLAY_NAME = "Image Sharpen"
    CATEGORY = "image/postprocessing"
    DESCRIPTION = ("Sharpen by unsharp masking: the picture plus alpha × 10 times its difference from a Gaussian blur of "
                   "the given radius and sigma (ComfyUI's kernel; sigma is relative to the radius). alpha 0 changes nothing.")
    INPUTS = [Input("image", "IMAGE"), Int("sharpen_radius", 1, min=1, max=31),
              Float("sigma", 1.0, min=0.1, max=10.0, step=0.01), Float("alpha", 1.0, min=0.0, max=5.0, step=0.01)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, sharpen_radius: int, sigma: float, alpha: float) -> Any:
        return sharpen(image, sharpen_radius, sigma, alpha)


def comfy_gaussian_kernel(size: int, sigma: float) -> Any:
    """ComfyUI's 2-D Gaussian (``nodes_post_processing.gaussian_kernel``): distances run from −1 to 1 across
    the kernel, so sigma is measured in radii, not pixels."""
    import torch

    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    g = torch.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return g / g.sum()


def sharpen(image: Any, radius: int, sigma: float, alpha: float) -> Any:
    """ComfyUI's ImageSharpen: kernel −10·alpha·G with its centre raised so the weights sum to 1, applied to
    the picture with reflected edges, clipped to 0..1."""
    import torch.nn.functional as F

    size = radius * 2 + 1
    kernel = comfy_gaussian_kernel(size, sigma) * -(alpha * 10)
    kernel[radius, radius] = kernel[radius, radius] - kernel.sum() + 1.0
    channels = image.shape[-1]
    t = image.movedim(-1, 1).float()
    mode = "reflect" if min(t.shape[-2:]) > radius else "replicate"
    t = F.conv2d(F.pad(t, (radius, radius, radius, radius), mode=mode), kernel.repeat(channels, 1, 1, 1), groups=channels)
    return t.movedim(1, -1).clamp(0, 1).to(image.dtype)


class SolidMask(Node):
    NAME = "SolidMask"
    DISPLAY_NAME = "Solid Mask"
    CATEGORY = "mask"
    DESCRIPTION = "A mask of one value everywhere (1 = change all, 0 = keep all), of the given size."
    INPUTS = [Float("value", 1.0, min=0.0, max=1.0, step=0.01), Int("width", 512, min=1, max=MAX),
              Int("height", 512, min=1, max=MAX)]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, value: float, width: int, height: int) -> Any:
        import torch

        return torch.full((1, height, width), float(value), dtype=torch.float32)


class CropMask(Node):
    NAME = "CropMask"
    DISPLAY_NAME = "Crop Mask"
    CATEGORY = "mask"
    DESCRIPTION = "Cut a width × height rectangle out of the mask, starting at (x, y); it stops at the mask's edges."
    INPUTS = [Input("mask", "MASK"), Int("x", 0, min=0, max=MAX), Int("y", 0, min=0, max=MAX),
              Int("width", 512, min=1, max=MAX), Int("height", 512, min=1, max=MAX)]
    OUTPUTS = [Output("MASK", "MASK")]

    def run(self, ctx: RunContext, mask: Any, x: int, y: int, width: int, height: int) -> Any:
        m = mask.reshape(-1, mask.shape[-2], mask.shape[-1])
        x, y = min(x, m.shape[-1] - 1), min(y, m.shape[-2] - 1)
        return m[:, y:y + height, x:x + width].clone()


NODES = [GrowMask, FeatherMask, InvertMask, ThresholdMask, MaskComposite, MaskToImage, ImageToMask, ImageColorToMask,
         ImageCompositeMasked, ImageBlend, ImageBlur, ImageQuantize, ImageCrop, ImageSharpen, SolidMask, CropMask]
