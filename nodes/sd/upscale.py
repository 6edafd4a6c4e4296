"""Upscaling with a model (ComfyUI's node and input names): ESRGAN, Real-ESRGAN, SwinIR, HAT, …

The loader keeps each file's model in the model manager (keyed by path, size and modification
time), so a workflow that upscales many pictures loads it once. The upscaler works in tiles, so a
large picture fits on a small GPU; see :mod:`studio.models.upscale`.
"""

from __future__ import annotations

from typing import Any

from nodes.sd.loaders import _choices, _fingerprint, load_cached
from studio.api import Combo, Input, Node, Output, RunContext

#: Files up to this size (ESRGAN, SwinIR, DAT, SPAN, …; not AuraSR) go to the model manager's small LRU.
SMALL_MODEL_BYTES = 256 * 1024**2


class UpscaleModelLoader(Node):
    NAME = "UpscaleModelLoader"
    DISPLAY_NAME = "Load Upscale Model"
    CATEGORY = "loaders"
    DESCRIPTION = ("Load an image upscale model (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, SPAN, …; the architecture is "
                   "detected from the weights) from the upscale_models folder.")
    INPUTS = [Combo("model_name", _choices("upscale_models"), tooltip="A file in the upscale_models folder")]
    OUTPUTS = [Output("UPSCALE_MODEL", "UPSCALE_MODEL")]

    @classmethod
    def fingerprint(cls, ctx: RunContext, **inputs: Any) -> Any:
        return _fingerprint(ctx, "upscale_models", inputs["model_name"])

    def run(self, ctx: RunContext, model_name: str) -> Any:
        from studio.models.upscale import load_upscale_model

        # Built in fp32 whatever the file holds: up to twice the file's size in memory. Most are tens
        # of megabytes: kept beside LoRAs, so that upscaling never pushes the checkpoint out.
        return load_cached(ctx, "upscale_models", model_name, "upscale_model", load_upscale_model,
                           size_hint=lambda path: 2 * path.stat().st_size,
                           small=lambda path: path.stat().st_size <= SMALL_MODEL_BYTES)


class ImageUpscaleWithModel(Node):
    NAME = "ImageUpscaleWithModel"
    DISPLAY_NAME = "Upscale Image (using Model)"
    CATEGORY = "image/upscaling"
    DESCRIPTION = ("Enlarge images with an upscale model, by the model's own factor (2×, 4×, …). Works in overlapping "
                   "tiles, so large pictures fit in memory; on out-of-memory the tiles get smaller and it tries again.")
    INPUTS = [Input("upscale_model", "UPSCALE_MODEL"), Input("image", "IMAGE")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, upscale_model: Any, image: Any) -> Any:
        from studio.models.upscale import upscale_image

        ctx.check_cancelled()  # before the model moves to the device
        return upscale_image(upscale_model, image, ctx.device, progress=ctx.progress)


NODES = [UpscaleModelLoader, ImageUpscaleWithModel]
