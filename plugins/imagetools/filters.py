"""Filters that look at neighbouring pixels: Sharpen (unsharp mask) and Film Grain. The maths lives in :mod:`.ops`."""

from __future__ import annotations

from typing import Any

from studio.api import Boolean, Float, Int, Node, RunContext

from .common import IMAGE_INPUT, IMAGE_OUTPUT, MASK_INPUT


class Sharpen(Node):
    NAME = "Sharpen"
    DISPLAY_NAME = "Sharpen (Unsharp Mask)"
    CATEGORY = "image/filter"
    DESCRIPTION = ("Crisp up detail with an unsharp mask: the difference between the picture and a Gaussian blur of it "
                   "is added back, 'amount' times. 'radius' picks the size of detail to enhance; 'threshold' leaves "
                   "differences smaller than it alone, so smooth skin, sky and noise stay smooth.")
    INPUTS = [
        IMAGE_INPUT,
        Float("radius", 1.5, min=0.1, max=50.0, step=0.1, tooltip="Blur radius (standard deviation) in pixels: the detail size"),
        Float("amount", 1.0, min=0.0, max=5.0, step=0.01, tooltip="How much detail to add back; 0 = unchanged"),
        Float("threshold", 0.0, min=0.0, max=1.0, step=0.01, tooltip="Leave differences smaller than this alone"),
        MASK_INPUT,
    ]
    OUTPUTS = [IMAGE_OUTPUT]

    def run(self, ctx: RunContext, image: Any, radius: float, amount: float, threshold: float, mask: Any = None) -> Any:
        from .ops import blend_with_mask, unsharp_mask

        return blend_with_mask(image, unsharp_mask(image, radius, amount, threshold), mask)


class FilmGrain(Node):
    NAME = "FilmGrain"
    DISPLAY_NAME = "Film Grain"
    CATEGORY = "image/filter"
    DESCRIPTION = ("Add photographic film grain, strongest in the midtones and fading out in deep shadows and bright "
                   "highlights as on real film. Monochrome by default; 'color' gives each channel its own grain. "
                   "The same seed always gives the same grain.")
    INPUTS = [
        IMAGE_INPUT,
        Float("intensity", 0.1, min=0.0, max=1.0, step=0.01, tooltip="Grain strength; 0 = none, 1 = very heavy"),
        Float("size", 1.0, min=0.5, max=8.0, step=0.1, tooltip="Grain size in pixels"),
        Boolean("color", False, tooltip="Colour grain (each channel its own) instead of monochrome"),
        Int("seed", 0, min=0, max=2**32 - 1, tooltip="Which grain pattern; the same seed gives the same grain"),
        MASK_INPUT,
    ]
    OUTPUTS = [IMAGE_OUTPUT]

    def run(self, ctx: RunContext, image: Any, intensity: float, size: float, color: bool, seed: int,
            mask: Any = None) -> Any:
        from .ops import blend_with_mask, film_grain

        return blend_with_mask(image, film_grain(image, intensity, size, color, seed), mask)
