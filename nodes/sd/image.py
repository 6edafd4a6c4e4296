"""Loading, saving, previewing and scaling images (ComfyUI's node and input names).

torch and PIL are imported inside ``run`` so that listing nodes and running plain graphs stays fast.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from typing import Any

from studio.api import Combo, Float, Input, Int, Node, Output, RunContext, String

IMAGE_UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")
MAX_RESOLUTION = 16384


class LoadImage(Node):
    NAME = "LoadImage"
    DISPLAY_NAME = "Load Image"
    CATEGORY = "image"
    DESCRIPTION = ("Load an image file. Its transparency becomes a MASK (1 where the image is transparent, "
                   "the area to repaint), as in ComfyUI; a painted mask file, when given, replaces it.")
    INPUTS = [String("image", "", tooltip="A file in the inputs folder, or a path (absolute or relative to the workflow)"),
              String("mask", "", optional=True,
                     tooltip="A painted mask (greyscale PNG, white = repaint) found like the image; empty: use transparency")]
    OUTPUTS = [Output("IMAGE", "IMAGE"), Output("MASK", "MASK")]

    @classmethod
    def validate(cls, **inputs: Any) -> str | None:
        return None if inputs["image"].strip() else "no image chosen"

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> str | None:
        from studio.core.paths import find_input_file

        digests = []
        for name in (inputs["image"], inputs.get("mask") or ""):
            path = find_input_file(name, ctx.options.base_dir) if name.strip() else None
            digests.append("" if path is None else hashlib.sha256(path.read_bytes()).hexdigest())
        return None if not digests[0] else ":".join(digests).rstrip(":")

    def run(self, ctx: RunContext, image: str, mask: str = "") -> tuple[Any, Any]:
        from studio.imaging import load_image_file

        path = _find(image, "image", ctx)
        try:
            pixels, alpha_mask = load_image_file(path)
        except OSError as exc:
            raise ValueError(f"{path.name} could not be read as an image: {exc}") from None
        if not mask.strip():
            return pixels, alpha_mask
        return pixels, _painted_mask(_find(mask, "mask", ctx), path, pixels.shape[0], pixels.shape[1:3])


def _find(name: str, what: str, ctx: RunContext) -> Any:
    from studio.core.paths import find_input_file, input_file_candidates

    path = find_input_file(name, ctx.options.base_dir)
    if path is None:
        looked = ", ".join(str(p.parent) for p in input_file_candidates(name, ctx.options.base_dir))
        raise FileNotFoundError(f"{what} {name!r} was not found (looked in: {looked})")
    return path


def _painted_mask(path: Any, image_path: Any, batch: int, size: tuple[int, int]) -> Any:
    """MASK ``[B, H, W]`` (1 = repaint) from a greyscale mask file, which must match the image's size."""
    import numpy as np
    import torch
    from PIL import Image

    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except OSError as exc:
        raise ValueError(f"mask {path.name} could not be read as an image: {exc}") from None
    if grey.shape != tuple(size):
        raise ValueError(f"mask {path.name} is {grey.shape[1]}×{grey.shape[0]} but image {image_path.name} is "
                         f"{size[1]}×{size[0]}: paint the mask again or resize it to match")
    return torch.from_numpy(grey.copy()).unsqueeze(0).expand(batch, -1, -1).contiguous()


def _metadata(ctx: RunContext) -> dict[str, str]:
    """PNG text chunks: our workflow, a ComfyUI prompt where the graph allows, A1111 parameters."""
    from nodes.sd.metadata import png_text_chunks

    return png_text_chunks(ctx.graph, ctx.node_id, ctx.options.workflow)


class SaveImage(Node):
    NAME = "SaveImage"
    DISPLAY_NAME = "Save Image"
    CATEGORY = "image"
    DESCRIPTION = ("Save images as PNG files in the output folder, never overwriting one. Each file carries the "
                   "workflow that made it: drop it on the editor to get the graph back.")
    INPUTS = [Input("images", "IMAGE"),
              String("filename_prefix", "Nuance", tooltip="File name start; may include sub-folders")]
    OUTPUT_NODE = True

    def run(self, ctx: RunContext, images: Any, filename_prefix: str) -> None:
        from studio.imaging import save_png

        chunks = _metadata(ctx)
        saved = []
        for image in images:
            path = ctx.reserve_output_file(filename_prefix, "png")
            save_png(image, path, chunks)
            saved.append(str(path))
        ctx.show(images=saved)


class PreviewImage(Node):
    NAME = "PreviewImage"
    DISPLAY_NAME = "Preview Image"
    CATEGORY = "image"
    DESCRIPTION = "Show images without keeping them: they are written to a temporary folder, not the outputs."
    INPUTS = [Input("images", "IMAGE")]
    OUTPUT_NODE = True

    def run(self, ctx: RunContext, images: Any) -> None:
        from studio.core.paths import data_dir
        from studio.imaging import save_png

        folder = data_dir() / "temp"
        folder.mkdir(parents=True, exist_ok=True)
        chunks = _metadata(ctx)
        shown = []
        for image in images:
            path = folder / f"preview_{uuid.uuid4().hex[:12]}.png"
            save_png(image, path, chunks, compress_level=1)
            ctx.add_temp_file(path)
            shown.append(str(path))
        ctx.show(images=shown)


def _scale(image: Any, method: str, width: int, height: int, crop: str = "disabled") -> Any:
    from studio.imaging import fill_missing_side, resize

    if width == 0 and height == 0:
        return image
    old_h, old_w = image.shape[1:3]
    width, height = fill_missing_side(old_w, old_h, width, height)
    return resize(image.movedim(-1, 1), width, height, method, crop).movedim(1, -1).clamp(0, 1)


class ImageScale(Node):
    NAME = "ImageScale"
    DISPLAY_NAME = "Upscale Image"
    CATEGORY = "image/upscaling"
    DESCRIPTION = "Resize images to a width and height; 0 for one of them keeps the aspect ratio."
    INPUTS = [Input("image", "IMAGE"), Combo("upscale_method", IMAGE_UPSCALE_METHODS),
              Int("width", 512, min=0, max=MAX_RESOLUTION), Int("height", 512, min=0, max=MAX_RESOLUTION),
              Combo("crop", CROP_METHODS)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, upscale_method: str, width: int, height: int, crop: str) -> Any:
        return _scale(image, upscale_method, width, height, crop)


class ImageScaleBy(Node):
    NAME = "ImageScaleBy"
    DISPLAY_NAME = "Upscale Image By"
    CATEGORY = "image/upscaling"
    DESCRIPTION = "Resize images by a factor."
    INPUTS = [Input("image", "IMAGE"), Combo("upscale_method", IMAGE_UPSCALE_METHODS),
              Float("scale_by", 1.0, min=0.01, max=8.0)]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, upscale_method: str, scale_by: float) -> Any:
        height, width = image.shape[1:3]
        return _scale(image, upscale_method, max(1, round(width * scale_by)), max(1, round(height * scale_by)))


class ImageScaleToTotalPixels(Node):
    NAME = "ImageScaleToTotalPixels"
    DISPLAY_NAME = "Scale Image to Total Pixels"
    CATEGORY = "image/upscaling"
    DESCRIPTION = "Resize images to about a number of megapixels (1 = 1024×1024), keeping the aspect ratio."
    INPUTS = [Input("image", "IMAGE"), Combo("upscale_method", IMAGE_UPSCALE_METHODS),
              Float("megapixels", 1.0, min=0.01, max=16.0),
              Int("resolution_steps", 1, min=1, max=256, optional=True,
                  tooltip="Round the width and height to multiples of this (8 or 64 suit the VAE); 1 = no rounding")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, upscale_method: str, megapixels: float, resolution_steps: int = 1) -> Any:
        from studio.imaging import total_pixels_size

        height, width = image.shape[1:3]
        if resolution_steps <= 1:
            new_w, new_h = total_pixels_size(width, height, megapixels)
        else:  # ComfyUI: round(side × scale / steps) × steps
            scale = math.sqrt(megapixels * 1024 * 1024 / (width * height))
            new_w = max(1, round(width * scale / resolution_steps)) * resolution_steps
            new_h = max(1, round(height * scale / resolution_steps)) * resolution_steps
        return _scale(image, upscale_method, new_w, new_h)


class LoadImageMask(Node):
    NAME = "LoadImageMask"
    DISPLAY_NAME = "Load Image (as Mask)"
    CATEGORY = "mask"
    DESCRIPTION = ("Load one channel of an image file as a MASK. 'alpha' gives 1 − alpha, as Load Image does (1 where the "
                   "picture is transparent: the area to repaint; all 0 when the file has no transparency); 'red', "
                   "'green' and 'blue' give that channel as it is (white = 1).")
    INPUTS = [String("image", "", tooltip="A file in the inputs folder, or a path (absolute or relative to the workflow)"),
              Combo("channel", ["alpha", "red", "green", "blue"], tooltip="Which channel becomes the mask")]
    OUTPUTS = [Output("MASK", "MASK")]

    @classmethod
    def validate(cls, **inputs: Any) -> str | None:
        return LoadImage.validate(**inputs)

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> str | None:
        return LoadImage.fingerprint(ctx, image=inputs["image"])

    def run(self, ctx: RunContext, image: str, channel: str) -> Any:
        from studio.imaging import load_image_file

        path = _find(image, "image", ctx)
        try:
            pixels, alpha_mask = load_image_file(path)
        except OSError as exc:
            raise ValueError(f"{path.name} could not be read as an image: {exc}") from None
        if channel == "alpha":
            return alpha_mask
        return pixels[..., ["red", "green", "blue"].index(channel)].clone()


class EmptyImage(Node):
    NAME = "EmptyImage"
    DISPLAY_NAME = "Empty Image"
    CATEGORY = "image"
    DESCRIPTION = "A batch of pictures filled with one colour, given as 0xRRGGBB (e.g. 16744448 = 0xFF8000, orange)."
    INPUTS = [Int("width", 512, min=1, max=MAX_RESOLUTION), Int("height", 512, min=1, max=MAX_RESOLUTION),
              Int("batch_size", 1, min=1, max=4096),
              Int("color", 0, min=0, max=0xFFFFFF, tooltip="The colour as 0xRRGGBB: 0 = black, 16777215 = white")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, width: int, height: int, batch_size: int, color: int) -> Any:
        import torch

        rgb = torch.tensor([((color >> 16) & 0xFF) / 0xFF, ((color >> 8) & 0xFF) / 0xFF, (color & 0xFF) / 0xFF])
        return rgb.expand(batch_size, height, width, 3).contiguous()


class ImageBatch(Node):
    NAME = "ImageBatch"
    DISPLAY_NAME = "Batch Images"
    CATEGORY = "image"
    DESCRIPTION = ("Join two batches of pictures into one, image1's first. image2 is resized to image1's size "
                   "(bilinear, centre crop) when they differ; if only one has an alpha channel, the other gets an "
                   "opaque one.")
    INPUTS = [Input("image1", "IMAGE"), Input("image2", "IMAGE")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image1: Any, image2: Any) -> Any:
        import torch
        import torch.nn.functional as F

        from studio.imaging import resize

        if image1.shape[-1] != image2.shape[-1]:
            if image1.shape[-1] > image2.shape[-1]:
                image2 = F.pad(image2, (0, image1.shape[-1] - image2.shape[-1]), value=1.0)
            else:
                image1 = F.pad(image1, (0, image2.shape[-1] - image1.shape[-1]), value=1.0)
        if image1.shape[1:] != image2.shape[1:]:
            image2 = resize(image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bilinear", "center").movedim(1, -1)
        return torch.cat((image1, image2.to(image1)), dim=0)


NODES = [LoadImage, SaveImage, PreviewImage, ImageScale, ImageScaleBy, ImageScaleToTotalPixels, LoadImageMask, EmptyImage,
         ImageBatch]


