"""Tone and colour adjustments: Levels, Color Balance, Vibrance. The maths lives in :mod:`.ops`.

torch is imported only when a node runs (through ``.ops``), so listing and describing nodes stays fast.
"""

from __future__ import annotations

from typing import Any

from studio.api import Boolean, Float, Node, RunContext

from .common import IMAGE_INPUT, IMAGE_OUTPUT, MASK_INPUT


class Levels(Node):
    """Photoshop-style levels. Its input names are read by the plugin's custom widget (``gui.py``): keep them."""

    NAME = "Levels"
    DISPLAY_NAME = "Levels"
    CATEGORY = "image/adjust"
    DESCRIPTION = ("Set the black point, white point and midtone gamma, like Photoshop's Levels: values at or below "
                   "'black' become output_black, values at or above 'white' become output_white, and gamma above 1 "
                   "brightens the midtones (below 1 darkens them).")
    INPUTS = [
        IMAGE_INPUT,
        Float("black", 0.0, min=0.0, max=1.0, step=0.01, tooltip="Input black point: this value and below become output_black"),
        Float("gamma", 1.0, min=0.1, max=10.0, step=0.01, tooltip="Midtone gamma: above 1 brightens, below 1 darkens"),
        Float("white", 1.0, min=0.0, max=1.0, step=0.01, tooltip="Input white point: this value and above become output_white"),
        Float("output_black", 0.0, min=0.0, max=1.0, step=0.01, tooltip="The darkest output value (raise it to fade blacks)"),
        Float("output_white", 1.0, min=0.0, max=1.0, step=0.01, tooltip="The brightest output value (lower it to dim whites)"),
    ]
    OUTPUTS = [IMAGE_OUTPUT]

    @classmethod
    def validate(cls, **inputs: Any) -> str | None:
        black, white = inputs.get("black", 0.0), inputs.get("white", 1.0)
        if white <= black:
            return (f"white ({white:g}) must be above black ({black:g}): raise 'white' or lower 'black' "
                    "(to invert the picture, swap output_black and output_white instead)")
        return None

    def run(self, ctx: RunContext, image: Any, black: float, gamma: float, white: float,
            output_black: float, output_white: float) -> Any:
        from .ops import levels

        return levels(image, black, gamma, white, output_black, output_white)


_AXES = (("cyan_red", "cyan (−) ↔ red (+)"), ("magenta_green", "magenta (−) ↔ green (+)"),
         ("yellow_blue", "yellow (−) ↔ blue (+)"))
_RANGES = ("shadows", "midtones", "highlights")


class ColorBalance(Node):
    NAME = "ColorBalance"
    DISPLAY_NAME = "Color Balance"
    CATEGORY = "image/adjust"
    DESCRIPTION = ("Shift the colours of the shadows, midtones and highlights separately, like GIMP's Color Balance: "
                   "warm the highlights, cool the shadows, remove a colour cast. Each slider goes from −1 to 1; "
                   "'preserve luminosity' keeps every pixel's brightness so only the colour changes.")
    INPUTS = [
        IMAGE_INPUT,
        *(Float(f"{tone}_{axis}", 0.0, min=-1.0, max=1.0, step=0.01, tooltip=f"{tone.capitalize()}: {words}")
          for tone in _RANGES for axis, words in _AXES),
        Boolean("preserve_luminosity", True, tooltip="Keep each pixel's brightness (Rec. 709 luma): change colour only"),
        MASK_INPUT,
    ]
    OUTPUTS = [IMAGE_OUTPUT]

    def run(self, ctx: RunContext, image: Any, preserve_luminosity: bool, mask: Any = None, **shifts: float) -> Any:
        from .ops import blend_with_mask, color_balance

        by_range = [tuple(shifts[f"{tone}_{axis}"] for axis, _ in _AXES) for tone in _RANGES]
        return blend_with_mask(image, color_balance(image, *by_range, preserve_luminosity=preserve_luminosity), mask)


class Vibrance(Node):
    NAME = "Vibrance"
    DISPLAY_NAME = "Vibrance / Saturation"
    CATEGORY = "image/adjust"
    DESCRIPTION = ("Make colours richer or duller. Vibrance boosts dull colours most and spares ones already vivid "
                   "(good for skies and foliage without garish skin); saturation changes all colours alike "
                   "(−1 gives greyscale). Brightness is kept.")
    INPUTS = [
        IMAGE_INPUT,
        Float("vibrance", 0.0, min=-1.0, max=1.0, step=0.01, tooltip="Boost (or mute) mostly the dull colours"),
        Float("saturation", 0.0, min=-1.0, max=1.0, step=0.01, tooltip="Boost (or mute) every colour alike; −1 = greyscale"),
        MASK_INPUT,
    ]
    OUTPUTS = [IMAGE_OUTPUT]

    def run(self, ctx: RunContext, image: Any, vibrance: float, saturation: float, mask: Any = None) -> Any:
        from .ops import blend_with_mask
        from .ops import vibrance as apply_vibrance

        return blend_with_mask(image, apply_vibrance(image, vibrance, saturation), mask)
