"""ControlNet preprocessors that need no downloaded weights: Canny edges, scribble, line art,
colour palette, tile; and ComfyUI's ImageInvert. (Blur is ``ImageBlur`` in ``masks.py``.)

The pictures are made by the torch-free functions of :mod:`studio.preprocess`, which training
uses too; these nodes only carry each item of an IMAGE batch there and back. Every output is an
RGB IMAGE ``[B, H, W, 3]`` of the input's size (a grey input is repeated, alpha is dropped).
torch is imported inside ``run`` so listing nodes stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studio.api import Boolean, Float, Input, Int, Node, Output, RunContext

CATEGORY = "image/preprocessors"

THRESHOLD_TIP = ("How strong an edge must be, on the Canny node's scale: about 2.6 × the brightness step across it "
                 "(0.3 ≈ areas 12% apart). Lower finds fainter edges.")
MIN_LENGTH_TIP = "Drop lines shorter than this many pixels (specks from texture and noise); 0 keeps all"


def each_picture(ctx: RunContext, image: Any, make: Callable[..., Any], **options: Any) -> Any:
    """Run ``make`` (a :mod:`studio.preprocess` function) on each picture of an IMAGE batch and
    stack the results as an RGB IMAGE on the input's device; a one-channel map becomes grey RGB."""
    import numpy as np
    import torch

    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expects an IMAGE [batch, height, width, 1, 3 or 4 channels], got {shape}")
    if 0 in image.shape[:3]:
        raise ValueError(f"the image is empty (shape {tuple(image.shape)})")
    pictures = image.detach().to("cpu", torch.float32).numpy()
    out = []
    for index, picture in enumerate(pictures):
        ctx.check_cancelled()
        result = np.asarray(make(picture, **options), dtype=np.float32)
        out.append(np.repeat(result[..., None], 3, axis=-1) if result.ndim == 2 else result)
        if len(pictures) > 1:
            ctx.progress(index + 1, len(pictures))
    return torch.from_numpy(np.stack(out)).to(image.device)


class Canny(Node):
    NAME = "Canny"
    DISPLAY_NAME = "Canny"
    CATEGORY = CATEGORY
    DESCRIPTION = ("White Canny edges on black, for canny ControlNets (ComfyUI's node, same thresholds). An edge "
                   "pixel stays where its gradient passes high_threshold, or passes low_threshold and joins such an edge.")
    INPUTS = [
        Input("image", "IMAGE"),
        Float("low_threshold", 0.4, min=0.01, max=0.99, step=0.01,
              tooltip="Weaker edges are kept only where they continue a strong one; at most high_threshold"),
        Float("high_threshold", 0.8, min=0.01, max=0.99, step=0.01,
              tooltip="Gradient an edge needs to start a line; lower finds fainter edges (about 2.6 × the brightness step)"),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    @classmethod
    def validate(cls, **inputs: Any) -> str | None:
        low, high = inputs["low_threshold"], inputs["high_threshold"]
        if low > high:
            return f"low_threshold ({low}) is above high_threshold ({high}); make it at most the high threshold"
        return None

    def run(self, ctx: RunContext, image: Any, low_threshold: float, high_threshold: float) -> Any:
        from studio.preprocess import canny, rgb

        return each_picture(ctx, image, lambda picture: canny(rgb(picture), low_threshold, high_threshold))


class ImageInvert(Node):
    NAME = "ImageInvert"
    DISPLAY_NAME = "Invert Image"
    CATEGORY = "image"
    DESCRIPTION = ("1 − image, in every channel (ComfyUI's node): turns black lines on white into the white lines on "
                   "black that line-art and scribble ControlNets expect, and back.")
    INPUTS = [Input("image", "IMAGE")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any) -> Any:
        from studio.preprocess import invert

        return invert(image)


class ScribbleFromEdges(Node):
    NAME = "ScribbleFromEdges"
    DISPLAY_NAME = "Scribble from Edges"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Thick white strokes on black along the main outlines, like a hand-drawn scribble: the hint for "
                   "scribble ControlNets. Fine texture and short fragments are left out.")
    INPUTS = [
        Input("image", "IMAGE"),
        Int("thickness", 8, min=1, max=64, tooltip="Stroke width in pixels"),
        Float("simplify", 3.0, min=0.0, max=10.0, step=0.5,
              tooltip="Blur (σ, pixels) before finding edges: higher keeps only the big shapes"),
        Float("threshold", 0.3, min=0.01, max=0.99, step=0.01, tooltip=THRESHOLD_TIP),
        Int("min_length", 32, min=0, max=4096, tooltip=MIN_LENGTH_TIP),
        Boolean("smooth", True, tooltip="Round the strokes and merge ones closer than about their width"),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, thickness: int, simplify: float, threshold: float, min_length: int,
            smooth: bool) -> Any:
        from studio.preprocess import scribble

        return each_picture(ctx, image, scribble, thickness=thickness, simplify=simplify, threshold=threshold,
                            min_length=min_length, smooth=smooth)


class LineArtFromEdges(Node):
    NAME = "LineArtFromEdges"
    DISPLAY_NAME = "Line Art from Edges"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Clean thin white lines on black along the picture's edges: the hint for lineart ControlNets. "
                   "Wider lines suit the coarse style; black on white is for looking at or printing (invert it back "
                   "with Invert Image before a ControlNet).")
    INPUTS = [
        Input("image", "IMAGE"),
        Float("threshold", 0.2, min=0.01, max=0.99, step=0.01, tooltip=THRESHOLD_TIP),
        Int("line_width", 1, min=1, max=16, tooltip="Line width in pixels: 1 for fine line art, 2–3 for coarse"),
        Int("min_length", 16, min=0, max=4096, tooltip=MIN_LENGTH_TIP),
        Boolean("black_on_white", False,
                tooltip="Black lines on white, like a drawing; lineart ControlNets want it off (white on black)"),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, threshold: float, line_width: int, min_length: int,
            black_on_white: bool) -> Any:
        from studio.preprocess import line_art

        return each_picture(ctx, image, line_art, threshold=threshold, line_width=line_width, min_length=min_length,
                            black_on_white=black_on_white)


class ColorPalette(Node):
    NAME = "ColorPalette"
    DISPLAY_NAME = "Color Palette"
    CATEGORY = CATEGORY
    DESCRIPTION = ("The picture as blocks of its mean colours, shapes gone: the hint for the t2i-adapter colour model "
                   "(as comfyui_controlnet_aux's Color preprocessor), or a colour layout to steer a generation.")
    INPUTS = [
        Input("image", "IMAGE"),
        Int("block_size", 64, min=1, max=4096, tooltip="Size of a colour block in pixels; 64 matches the colour adapter"),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, block_size: int) -> Any:
        from studio.preprocess import color_palette

        return each_picture(ctx, image, color_palette, block_size=block_size)


class TilePreprocessor(Node):
    NAME = "TilePreprocessor"
    DISPLAY_NAME = "Tile Preprocessor"
    CATEGORY = CATEGORY
    DESCRIPTION = ("A blurred likeness of the picture (shrunk, then enlarged with Gaussian pyramid steps), for tile "
                   "ControlNets that add detail back, as comfyui_controlnet_aux's node. For a plain blur use Image Blur.")
    INPUTS = [
        Input("image", "IMAGE"),
        Int("pyrUp_iters", 3, min=1, max=10,
            tooltip="Halvings before enlarging again: 3 shrinks 8×; more gives a blurrier hint and more freedom"),
    ]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, image: Any, pyrUp_iters: int) -> Any:
        from studio.preprocess import tile

        return each_picture(ctx, image, tile, pyr_up_iters=pyrUp_iters)


NODES = [Canny, ImageInvert, ScribbleFromEdges, LineArtFromEdges, ColorPalette, TilePreprocessor]
