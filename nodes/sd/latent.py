"""Latent images: empty ones to start from, and resizing (ComfyUI's node and input names)."""

from __future__ import annotations

from typing import Any

from studio.api import Combo, Float, Input, Int, Node, Output, RunContext

LATENT_UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
CROP_METHODS = ("disabled", "center")
MAX_RESOLUTION = 16384


class EmptyLatentImage(Node):
    NAME = "EmptyLatentImage"
    DISPLAY_NAME = "Empty Latent Image"
    CATEGORY = "latent"
    DESCRIPTION = "A blank latent of the given picture size (multiples of 8), the start of text-to-image."
    INPUTS = [Int("width", 512, min=16, max=MAX_RESOLUTION, step=8), Int("height", 512, min=16, max=MAX_RESOLUTION, step=8),
              Int("batch_size", 1, min=1, max=4096, tooltip="How many pictures to make at once")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, width: int, height: int, batch_size: int) -> dict[str, Any]:
        import torch

        return {"samples": torch.zeros([batch_size, 4, height // 8, width // 8])}


def _resized(samples: dict[str, Any], method: str, width: int, height: int, crop: str = "disabled") -> dict[str, Any]:
    from studio.imaging import resize

    result = dict(samples)
    result["samples"] = resize(samples["samples"], max(1, width // 8), max(1, height // 8), method, crop)
    return result


class LatentUpscale(Node):
    NAME = "LatentUpscale"
    DISPLAY_NAME = "Upscale Latent"
    CATEGORY = "latent"
    DESCRIPTION = "Resize a latent to a picture size; 0 for one side keeps the aspect ratio."
    INPUTS = [Input("samples", "LATENT"), Combo("upscale_method", LATENT_UPSCALE_METHODS),
              Int("width", 512, min=0, max=MAX_RESOLUTION, step=8), Int("height", 512, min=0, max=MAX_RESOLUTION, step=8),
              Combo("crop", CROP_METHODS)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], upscale_method: str, width: int, height: int,
            crop: str) -> dict[str, Any]:
        from studio.imaging import fill_missing_side

        if width == 0 and height == 0:
            return samples
        old_h, old_w = (d * 8 for d in samples["samples"].shape[-2:])
        width, height = fill_missing_side(old_w, old_h, width, height, minimum=64)
        return _resized(samples, upscale_method, width, height, crop)


class LatentUpscaleBy(Node):
    NAME = "LatentUpscaleBy"
    DISPLAY_NAME = "Upscale Latent By"
    CATEGORY = "latent"
    DESCRIPTION = "Resize a latent by a factor (for a second, higher-resolution pass)."
    INPUTS = [Input("samples", "LATENT"), Combo("upscale_method", LATENT_UPSCALE_METHODS),
              Float("scale_by", 1.5, min=0.01, max=8.0)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], upscale_method: str, scale_by: float) -> dict[str, Any]:
        height, width = samples["samples"].shape[-2:]
        return _resized(samples, upscale_method, round(width * scale_by) * 8, round(height * scale_by) * 8)


NODES = [EmptyLatentImage, LatentUpscale, LatentUpscaleBy]
