"""Inpainting and outpainting: masked latents, inpainting-model conditioning, padding, and our
"inpaint only the masked area" pair (crop a context region, repaint it, stitch it back).

The sampler keeps the unmasked latents (LATENT ``noise_mask``), so either route repaints only
what the mask marks. MASK is ``[B, H, W]`` with 1 = repaint.
"""

from __future__ import annotations

import math
from typing import Any

from studio.api import Boolean, Input, Int, Node, Output, RunContext

MAX = 16384


def _fit_mask(mask: Any, height: int, width: int) -> Any:
    """The mask as ``[B, 1, H, W]`` at the picture's size."""
    import torch.nn.functional as F

    m = mask[None] if mask.dim() == 2 else mask
    m = m[:, None].float() if m.dim() == 3 else m.float()
    if m.shape[-2:] != (height, width):
        m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)
    return m.clamp(0, 1)


def _crop8(pixels: Any, mask: Any) -> tuple[Any, Any]:
    """Centre-crop pixels and mask together to multiples of 8, as the VAE needs."""
    from studio.models.vae import crop_to_multiple

    cropped = crop_to_multiple(pixels)
    top = (pixels.shape[1] - cropped.shape[1]) // 2
    left = (pixels.shape[2] - cropped.shape[2]) // 2
    return cropped, mask[:, :, top:top + cropped.shape[1], left:left + cropped.shape[2]]


def _grey_out(pixels: Any, mask: Any) -> Any:
    """Masked pixels set to mid-grey (what inpainting models and VAEEncodeForInpaint expect)."""
    keep = (1.0 - mask.round())[:, 0, :, :, None]
    return (pixels[..., :3] - 0.5) * keep + 0.5


class VAEEncodeForInpaint(Node):
    NAME = "VAEEncodeForInpaint"
    DISPLAY_NAME = "VAE Encode (for Inpainting)"
    CATEGORY = "latent/inpaint"
    DESCRIPTION = ("Encode a picture with its masked area greyed out, and attach the (grown) mask, so the sampler "
                   "repaints only the masked area from scratch (use denoise 1.0).")
    INPUTS = [Input("pixels", "IMAGE"), Input("vae", "VAE"), Input("mask", "MASK"), Int("grow_mask_by", 6, min=0, max=64)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, pixels: Any, vae: Any, mask: Any, grow_mask_by: int) -> dict[str, Any]:
        from nodes.sd.masks import grow

        mask = _fit_mask(mask, pixels.shape[1], pixels.shape[2])
        pixels, mask = _crop8(pixels, mask)
        # ComfyUI grows with a grow_mask_by-wide square kernel: about half that many pixels per side.
        pixels_per_side = math.ceil((grow_mask_by - 1) / 2) if grow_mask_by else 0
        grown = grow(mask[:, 0].round(), pixels_per_side, tapered_corners=False)[:, None] if pixels_per_side else mask
        latent = vae.encode(_grey_out(pixels, mask), ctx.device)
        return {"samples": latent, "noise_mask": grown.round()}


class SetLatentNoiseMask(Node):
    NAME = "SetLatentNoiseMask"
    DISPLAY_NAME = "Set Latent Noise Mask"
    CATEGORY = "latent/inpaint"
    DESCRIPTION = "Let the sampler change only the masked area of this latent (the rest is kept exactly)."
    INPUTS = [Input("samples", "LATENT"), Input("mask", "MASK")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], mask: Any) -> dict[str, Any]:
        out = dict(samples)
        out["noise_mask"] = _fit_mask(mask, *mask.shape[-2:])  # [B, 1, H, W] at the mask's own size
        return out


class InpaintModelConditioning(Node):
    NAME = "InpaintModelConditioning"
    DISPLAY_NAME = "Inpaint Model Conditioning"
    CATEGORY = "conditioning/inpaint"
    DESCRIPTION = ("For inpainting checkpoints (9 input channels): give the model the masked picture and the mask "
                   "through the conditioning, and the picture itself as the latent.")
    INPUTS = [Input("positive", "CONDITIONING"), Input("negative", "CONDITIONING"), Input("vae", "VAE"),
              Input("pixels", "IMAGE"), Input("mask", "MASK"),
              Boolean("noise_mask", True, tooltip="Also keep the unmasked latent exactly (recommended)")]
    OUTPUTS = [Output("positive", "CONDITIONING"), Output("negative", "CONDITIONING"), Output("latent", "LATENT")]

    def run(self, ctx: RunContext, positive: Any, negative: Any, vae: Any, pixels: Any, mask: Any,
            noise_mask: bool) -> tuple[Any, Any, dict[str, Any]]:
        mask = _fit_mask(mask, pixels.shape[1], pixels.shape[2])
        pixels, mask = _crop8(pixels, mask)
        concat = vae.encode(_grey_out(pixels, mask), ctx.device)
        latent: dict[str, Any] = {"samples": vae.encode(pixels, ctx.device)}
        if noise_mask:
            latent["noise_mask"] = mask

        def attach(conditioning: Any) -> list[tuple[Any, dict[str, Any]]]:
            return [(cond, {**extras, "concat_latent": concat, "concat_mask": mask}) for cond, extras in conditioning]

        return attach(positive), attach(negative), latent


class ImagePadForOutpaint(Node):
    NAME = "ImagePadForOutpaint"
    DISPLAY_NAME = "Pad Image for Outpainting"
    CATEGORY = "image"
    DESCRIPTION = ("Extend the canvas on each side (grey) and give a mask of the new area, feathered into the "
                   "picture by 'feathering' pixels so the seam blends.")
    INPUTS = [Input("image", "IMAGE"), *(Int(side, 0, min=0, max=MAX, step=8) for side in ("left", "top", "right", "bottom")),
              Int("feathering", 40, min=0, max=MAX)]
    OUTPUTS = [Output("IMAGE", "IMAGE"), Output("MASK", "MASK")]

    def run(self, ctx: RunContext, image: Any, left: int, top: int, right: int, bottom: int,
            feathering: int) -> tuple[Any, Any]:
        import torch

        batch, height, width, channels = image.shape
        new = torch.full((batch, height + top + bottom, width + left + right, channels), 0.5, dtype=image.dtype)
        new[:, top:top + height, left:left + width] = image
        mask = torch.ones((new.shape[1], new.shape[2]), dtype=torch.float32)
        inner = torch.zeros((height, width), dtype=torch.float32)
        if feathering > 0:
            ys = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
            xs = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
            far = torch.full((height, width), float(feathering))
            distance = torch.minimum(torch.minimum(
                xs if left else far, ys if top else far),
                torch.minimum(width - 1 - xs if right else far, height - 1 - ys if bottom else far))
            v = ((feathering - distance) / feathering).clamp(min=0)
            inner = v * v
        mask[top:top + height, left:left + width] = inner
        return new, mask[None].expand(batch, -1, -1).clone()


class InpaintCrop(Node):
    NAME = "InpaintCrop"
    DISPLAY_NAME = "Inpaint Crop (masked area only)"
    CATEGORY = "image/inpaint"
    DESCRIPTION = ("Cut out the masked area with some context around it and scale it to the model's resolution, "
                   "so a small region is repainted with full detail; InpaintStitch puts it back.")
    INPUTS = [Input("image", "IMAGE"), Input("mask", "MASK"),
              Int("padding", 32, min=0, max=MAX, tooltip="Context around the mask, in pixels"),
              Int("min_size", 64, min=8, max=MAX, tooltip="The context region is at least this wide and high"),
              Int("target_size", 512, min=0, max=MAX, step=8,
                  tooltip="Scale the region's longer side to this (the model's resolution); 0 keeps its size")]
    OUTPUTS = [Output("IMAGE", "IMAGE"), Output("MASK", "MASK"), Output("stitch", "INPAINT_STITCH")]

    def run(self, ctx: RunContext, image: Any, mask: Any, padding: int, min_size: int,
            target_size: int) -> tuple[Any, Any, dict[str, Any]]:
        from studio.imaging import resize

        height, width = image.shape[1:3]
        m = _fit_mask(mask, height, width)[:, 0]
        box = crop_box(m, padding, min_size, width, height)
        x0, y0, x1, y1 = box
        crop, crop_mask = image[:, y0:y1, x0:x1], m[:, y0:y1, x0:x1]
        w, h = x1 - x0, y1 - y0
        if target_size:
            scale = target_size / max(w, h)
            new_w, new_h = max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)
            crop = resize(crop.movedim(-1, 1), new_w, new_h, "bicubic").movedim(1, -1).clamp(0, 1)
            crop_mask = resize(crop_mask[:, None], new_w, new_h, "bilinear")[:, 0].clamp(0, 1)
        return crop, crop_mask, {"image": image, "mask": m, "box": box}


def crop_box(mask: Any, padding: int, min_size: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The masked area's bounding box, grown by ``padding`` and to ``min_size``, inside the picture."""
    import torch

    rows = torch.nonzero(mask.amax(dim=(0, 2)) > 0).flatten()
    cols = torch.nonzero(mask.amax(dim=(0, 1)) > 0).flatten()
    if rows.numel() == 0:
        raise ValueError("the mask is empty: paint the area to repaint first")
    y0, y1 = int(rows[0]) - padding, int(rows[-1]) + 1 + padding
    x0, x1 = int(cols[0]) - padding, int(cols[-1]) + 1 + padding

    def widen(lo: int, hi: int, limit: int) -> tuple[int, int]:
        size = max(hi - lo, min(min_size, limit))
        centre = (lo + hi) / 2
        lo = round(centre - size / 2)
        lo = min(max(0, lo), limit - size)
        return max(0, lo), min(limit, max(0, lo) + size)

    x0, x1 = widen(max(0, x0), min(width, x1), width)
    y0, y1 = widen(max(0, y0), min(height, y1), height)
    return x0, y0, x1, y1


class InpaintStitch(Node):
    NAME = "InpaintStitch"
    DISPLAY_NAME = "Inpaint Stitch"
    CATEGORY = "image/inpaint"
    DESCRIPTION = ("Put a repainted crop back into the original picture with a feathered blend around the mask. "
                   "Every pixel outside the blend region stays exactly as in the original.")
    INPUTS = [Input("stitch", "INPAINT_STITCH"), Input("image", "IMAGE", tooltip="The repainted crop"),
              Int("blend_pixels", 16, min=0, max=256, tooltip="How far beyond the mask the seam is blended")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, stitch: dict[str, Any], image: Any, blend_pixels: int) -> Any:
        import torch

        from nodes.sd.masks import gaussian_blur, grow
        from studio.imaging import resize

        original, mask, (x0, y0, x1, y1) = stitch["image"], stitch["mask"], stitch["box"]
        w, h = x1 - x0, y1 - y0
        crop = image
        if crop.shape[1:3] != (h, w):
            crop = resize(crop.movedim(-1, 1), w, h, "bicubic").movedim(1, -1).clamp(0, 1)
        region = mask[:, y0:y1, x0:x1]
        if blend_pixels:
            region = grow(region, blend_pixels // 2, tapered_corners=True)
            region = gaussian_blur(region[..., None], max(1, blend_pixels // 2), max(0.5, blend_pixels / 4))[..., 0]
            region = torch.maximum(region, mask[:, y0:y1, x0:x1]).clamp(0, 1)
        weight = region[..., None]
        out = original.clone()
        blended = original[:, y0:y1, x0:x1] * (1 - weight) + crop[..., : original.shape[-1]] * weight
        # Where the weight is exactly 0 the original pixel is kept as it is, bit for bit.
        out[:, y0:y1, x0:x1] = torch.where(weight > 0, blended, original[:, y0:y1, x0:x1])
        return out


NODES = [VAEEncodeForInpaint, SetLatentNoiseMask, InpaintModelConditioning, ImagePadForOutpaint, InpaintCrop, InpaintStitch]
