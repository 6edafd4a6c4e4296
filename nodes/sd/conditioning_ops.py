"""Combining and shaping conditioning (ComfyUI's node and input names, defaults and ranges).

CONDITIONING is a list of ``(embedding [1, tokens, width], extras)`` pairs. These nodes never change
their inputs: each returns new pairs with copied extras. Areas, masks, strengths and step ranges are
read by the sampler (``studio.models.ksampler``), which weights each pair's prediction as ComfyUI does.
"""

from __future__ import annotations

import logging
from typing import Any

from studio.api import Combo, Float, Input, Int, Node, Output, RunContext

MAX_RESOLUTION = 16384
Conditioning = list[tuple[Any, dict[str, Any]]]
_log = logging.getLogger(__name__)


def set_values(conditioning: Conditioning, values: dict[str, Any]) -> Conditioning:
    """Every pair with ``values`` set in a copy of its extras (ComfyUI's ``conditioning_set_values``)."""
    return [(cond, {**extras, **values}) for cond, extras in conditioning]


def _first_of(conditioning: Conditioning, node: str) -> tuple[Any, dict[str, Any]]:
    if not conditioning:
        raise ValueError(f"{node}: conditioning_from is empty")
    if len(conditioning) > 1:
        _log.warning("%s: conditioning_from holds %d entries; only the first is used", node, len(conditioning))
    return conditioning[0]


def _out(description: str = "") -> list[Output]:
    return [Output("CONDITIONING", "CONDITIONING", tooltip=description)]


class ConditioningCombine(Node):
    NAME = "ConditioningCombine"
    DISPLAY_NAME = "Conditioning (Combine)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Use both conditionings: the result lists the entries of both. The sampler runs each entry and "
                   "averages their predictions (weighted by their area, mask and strength), so two prompts blend in "
                   "the picture rather than in the text.")
    INPUTS = [Input("conditioning_1", "CONDITIONING"), Input("conditioning_2", "CONDITIONING")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning_1: Conditioning, conditioning_2: Conditioning) -> Conditioning:
        return list(conditioning_1) + list(conditioning_2)


class ConditioningConcat(Node):
    NAME = "ConditioningConcat"
    DISPLAY_NAME = "Conditioning (Concat)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Append the tokens of conditioning_from (its first entry) to every entry of conditioning_to, as if "
                   "the prompts were one long prompt encoded in separate chunks. The extras (pooled output, areas) "
                   "of conditioning_to are kept.")
    INPUTS = [Input("conditioning_to", "CONDITIONING"), Input("conditioning_from", "CONDITIONING")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning_to: Conditioning, conditioning_from: Conditioning) -> Conditioning:
        import torch

        cond_from = _first_of(conditioning_from, self.NAME)[0]
        out = []
        for cond, extras in conditioning_to:
            if cond.shape[-1] != cond_from.shape[-1]:
                raise ValueError(f"{self.NAME}: conditioning_to is {cond.shape[-1]} wide and conditioning_from "
                                 f"{cond_from.shape[-1]}; encode both with the same CLIP")
            out.append((torch.cat((cond, cond_from.to(cond)), 1), dict(extras)))
        return out


class ConditioningAverage(Node):
    NAME = "ConditioningAverage"
    DISPLAY_NAME = "Conditioning (Average)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Blend two prompts' embeddings: conditioning_to × strength + conditioning_from × (1 − strength), "
                   "and the same for SDXL's pooled output. Only the first entry of conditioning_from is used; it is cut "
                   "or zero-padded to the token length of each entry of conditioning_to.")
    INPUTS = [Input("conditioning_to", "CONDITIONING"), Input("conditioning_from", "CONDITIONING"),
              Float("conditioning_to_strength", 1.0, min=0.0, max=1.0, step=0.01,
                    tooltip="1 keeps conditioning_to, 0 gives conditioning_from")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning_to: Conditioning, conditioning_from: Conditioning,
            conditioning_to_strength: float) -> Conditioning:
        import torch

        cond_from, extras_from = _first_of(conditioning_from, self.NAME)
        pooled_from = extras_from.get("pooled_output")
        strength = conditioning_to_strength
        out = []
        for cond_to, extras_to in conditioning_to:
            if cond_to.shape[-1] != cond_from.shape[-1]:
                raise ValueError(f"{self.NAME}: conditioning_to is {cond_to.shape[-1]} wide and conditioning_from "
                                 f"{cond_from.shape[-1]}; encode both with the same CLIP")
            pooled_to = extras_to.get("pooled_output", pooled_from)
            t0 = cond_from[:, :cond_to.shape[1]].to(cond_to)
            if t0.shape[1] < cond_to.shape[1]:
                pad = torch.zeros((1, cond_to.shape[1] - t0.shape[1], cond_to.shape[2]), dtype=t0.dtype, device=t0.device)
                t0 = torch.cat([t0, pad], dim=1)
            blended = torch.mul(cond_to, strength) + torch.mul(t0, 1.0 - strength)
            extras = dict(extras_to)
            if pooled_from is not None and pooled_to is not None:
                extras["pooled_output"] = torch.mul(pooled_to, strength) + torch.mul(pooled_from, 1.0 - strength)
            elif pooled_from is not None:
                extras["pooled_output"] = pooled_from
            out.append((blended, extras))
        return out


class ConditioningZeroOut(Node):
    NAME = "ConditioningZeroOut"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Zeros instead of the embedding and the pooled output, keeping everything else: an 'empty' "
                   "negative that is not the encoding of an empty prompt (what some SDXL workflows use).")
    INPUTS = [Input("conditioning", "CONDITIONING")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning) -> Conditioning:
        import torch

        out = []
        for cond, extras in conditioning:
            extras = dict(extras)
            if extras.get("pooled_output") is not None:
                extras["pooled_output"] = torch.zeros_like(extras["pooled_output"])
            out.append((torch.zeros_like(cond), extras))
        return out


class ConditioningSetTimestepRange(Node):
    NAME = "ConditioningSetTimestepRange"
    CATEGORY = "advanced/conditioning"
    DESCRIPTION = ("Use this conditioning only between start and end, as fractions of the denoising (0 = the first, "
                   "noisiest step, 1 = the end). Combine several ranges to change the prompt part way through. "
                   "When no positive entry is active at a step, the positive prediction there is zero, as in ComfyUI.")
    INPUTS = [Input("conditioning", "CONDITIONING"),
              Float("start", 0.0, min=0.0, max=1.0, step=0.001, tooltip="Where the conditioning starts (0 = the beginning)"),
              Float("end", 1.0, min=0.0, max=1.0, step=0.001, tooltip="Where it ends (1 = the last step)")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning, start: float, end: float) -> Conditioning:
        return set_values(conditioning, {"start_percent": start, "end_percent": end})


class ConditioningSetArea(Node):
    NAME = "ConditioningSetArea"
    DISPLAY_NAME = "Conditioning (Set Area)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Make this conditioning act only in a rectangle (pixels, in steps of 8): the sampler runs the model "
                   "on that part of the latent and blends it in, fading over 8 latent cells at edges inside the picture. "
                   "Combine it with a whole-picture prompt (Conditioning (Combine)) to place things.")
    INPUTS = [Input("conditioning", "CONDITIONING"),
              Int("width", 64, min=64, max=MAX_RESOLUTION, step=8),
              Int("height", 64, min=64, max=MAX_RESOLUTION, step=8),
              Int("x", 0, min=0, max=MAX_RESOLUTION, step=8, tooltip="Left edge, pixels"),
              Int("y", 0, min=0, max=MAX_RESOLUTION, step=8, tooltip="Top edge, pixels"),
              Float("strength", 1.0, min=0.0, max=10.0, step=0.01, tooltip="Weight against the other entries")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning, width: int, height: int, x: int, y: int,
            strength: float) -> Conditioning:
        return set_values(conditioning, {"area": (height // 8, width // 8, y // 8, x // 8), "strength": strength,
                                         "set_area_to_bounds": False})


class ConditioningSetAreaPercentage(Node):
    NAME = "ConditioningSetAreaPercentage"
    DISPLAY_NAME = "Conditioning (Set Area with Percentage)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Conditioning (Set Area) with the rectangle as fractions of the picture's width and height, so "
                   "it follows the picture size.")
    INPUTS = [Input("conditioning", "CONDITIONING"),
              Float("width", 1.0, min=0.0, max=1.0, step=0.01),
              Float("height", 1.0, min=0.0, max=1.0, step=0.01),
              Float("x", 0.0, min=0.0, max=1.0, step=0.01),
              Float("y", 0.0, min=0.0, max=1.0, step=0.01),
              Float("strength", 1.0, min=0.0, max=10.0, step=0.01, tooltip="Weight against the other entries")]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning, width: float, height: float, x: float, y: float,
            strength: float) -> Conditioning:
        return set_values(conditioning, {"area": ("percentage", height, width, y, x), "strength": strength,
                                         "set_area_to_bounds": False})


class ConditioningSetAreaStrength(Node):
    NAME = "ConditioningSetAreaStrength"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Set the weight of this conditioning against the others it is combined with (the sampler "
                   "averages their predictions weighted by strength).")
    INPUTS = [Input("conditioning", "CONDITIONING"), Float("strength", 1.0, min=0.0, max=10.0, step=0.01)]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning, strength: float) -> Conditioning:
        return set_values(conditioning, {"strength": strength})


class ConditioningSetMask(Node):
    NAME = "ConditioningSetMask"
    DISPLAY_NAME = "Conditioning (Set Mask)"
    CATEGORY = "conditioning"
    DESCRIPTION = ("Make this conditioning act where the mask is white: its prediction is weighted by the mask "
                   "(scaled to the latent) times strength. 'mask bounds' runs the model only on the rectangle around "
                   "the mask, which is faster and gives that region the full resolution of the model's attention.")
    INPUTS = [Input("conditioning", "CONDITIONING"), Input("mask", "MASK"),
              Float("strength", 1.0, min=0.0, max=10.0, step=0.01),
              Combo("set_cond_area", ["default", "mask bounds"])]
    OUTPUTS = _out()

    def run(self, ctx: RunContext, conditioning: Conditioning, mask: Any, strength: float,
            set_cond_area: str) -> Conditioning:
        if mask.dim() < 3:
            mask = mask.unsqueeze(0)
        return set_values(conditioning, {"mask": mask, "set_area_to_bounds": set_cond_area != "default",
                                         "mask_strength": strength})


NODES = [ConditioningCombine, ConditioningConcat, ConditioningAverage, ConditioningZeroOut, ConditioningSetTimestepRange,
         ConditioningSetArea, ConditioningSetAreaPercentage, ConditioningSetAreaStrength, ConditioningSetMask]
