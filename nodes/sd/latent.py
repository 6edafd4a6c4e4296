"""Latent images: empty ones to start from, and resizing (ComfyUI's node and input names)."""

from __future__ import annotations

from typing import Any

from studio.api import Boolean, Combo, Float, Input, Int, Node, Output, RunContext

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


# -- compositing, batches and transforms (ComfyUI's nodes.py and comfy_extras/nodes_mask.py) -----------------------
class LatentComposite(Node):
    NAME = "LatentComposite"
    DISPLAY_NAME = "Latent Composite"
    CATEGORY = "latent"
    DESCRIPTION = ("Paste samples_from into samples_to at (x, y) pixels (rounded down to multiples of 8). feather "
                   "fades the pasted edges that lie inside samples_to over that many pixels (in steps of 8). The result "
                   "keeps samples_to's noise mask and batch indices.")
    INPUTS = [Input("samples_to", "LATENT"), Input("samples_from", "LATENT"),
              Int("x", 0, min=0, max=MAX_RESOLUTION, step=8), Int("y", 0, min=0, max=MAX_RESOLUTION, step=8),
              Int("feather", 0, min=0, max=MAX_RESOLUTION, step=8, tooltip="Width of the fade at the pasted edges, in pixels")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples_to: dict[str, Any], samples_from: dict[str, Any], x: int, y: int,
            feather: int) -> dict[str, Any]:
        import torch

        x, y, feather = x // 8, y // 8, feather // 8
        out = dict(samples_to)
        dest = samples_to["samples"].clone()
        height, width = dest.shape[-2:]
        if x >= width or y >= height:
            out["samples"] = dest
            return out
        source = samples_from["samples"][..., : height - y, : width - x].to(dest)
        _check_batches(dest, source, "samples_to", "samples_from")
        h, w = source.shape[-2:]
        region = dest[..., y:y + h, x:x + w]
        if feather == 0:
            dest[..., y:y + h, x:x + w] = source
        else:
            mask = torch.ones_like(source)
            for t in range(feather):
                rate = (1.0 / feather) * (t + 1)
                if y != 0:
                    mask[..., t:t + 1, :] *= rate
                if y + h < height:
                    mask[..., h - 1 - t:h - t, :] *= rate
                if x != 0:
                    mask[..., :, t:t + 1] *= rate
                if x + w < width:
                    mask[..., :, w - 1 - t:w - t] *= rate
            dest[..., y:y + h, x:x + w] = source * mask + region * (1 - mask)
        out["samples"] = dest
        return out


def _check_batches(dest: Any, source: Any, dest_name: str, source_name: str) -> None:
    if source.shape[0] not in (1, dest.shape[0]):
        raise ValueError(f"{source_name} holds {source.shape[0]} latents but {dest_name} holds {dest.shape[0]}: "
                         "give one, or as many as the destination")
    if source.shape[1] != dest.shape[1]:
        raise ValueError(f"{source_name} has {source.shape[1]} channels but {dest_name} has {dest.shape[1]}: "
                         "latents of different models cannot be combined")


class LatentCompositeMasked(Node):
    NAME = "LatentCompositeMasked"
    DISPLAY_NAME = "Latent Composite Masked"
    CATEGORY = "latent"
    DESCRIPTION = ("Paste source into destination at (x, y) pixels (multiples of 8), through the mask when one is given "
                   "(1 = source, 0 = destination; it is resized to the source). resize_source first scales the source "
                   "to the destination's size. The result keeps destination's noise mask and batch indices.")
    INPUTS = [Input("destination", "LATENT"), Input("source", "LATENT"),
              Int("x", 0, min=0, max=MAX_RESOLUTION, step=8), Int("y", 0, min=0, max=MAX_RESOLUTION, step=8),
              Boolean("resize_source", False, tooltip="Scale the source to the destination's size first"),
              Input("mask", "MASK", optional=True, tooltip="Where the source shows (1) and the destination stays (0)")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, destination: dict[str, Any], source: dict[str, Any], x: int, y: int,
            resize_source: bool, mask: Any = None) -> dict[str, Any]:
        out = dict(destination)
        dest = destination["samples"].clone()
        if source["samples"].shape[1] != dest.shape[1]:
            raise ValueError(f"source has {source['samples'].shape[1]} channels but destination has {dest.shape[1]}: "
                             "latents of different models cannot be combined")
        from studio.imaging import composite

        out["samples"] = composite(dest, source["samples"], x, y, mask, 8, resize_source)
        return out


def _mask_batch(masks: Any, batch: int) -> Any:
    """A noise mask with at least ``batch`` items (repeated), as ComfyUI lines masks up with latents."""
    from studio.imaging import repeat_to_batch

    return repeat_to_batch(masks, batch) if masks.shape[0] < batch else masks


class RepeatLatentBatch(Node):
    NAME = "RepeatLatentBatch"
    DISPLAY_NAME = "Repeat Latent Batch"
    CATEGORY = "latent/batch"
    DESCRIPTION = ("Repeat the whole batch of latents amount times (e.g. to make several variations of one img2img "
                   "start). A per-item noise mask is repeated with it; batch indices continue, so each copy gets "
                   "its own noise.")
    INPUTS = [Input("samples", "LATENT"), Int("amount", 1, min=1, max=64)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], amount: int) -> dict[str, Any]:
        out = dict(samples)
        latents = samples["samples"]
        out["samples"] = latents.repeat(amount, *([1] * (latents.dim() - 1)))
        masks = samples.get("noise_mask")
        if masks is not None and masks.shape[0] > 1:
            masks = _mask_batch(masks, latents.shape[0])
            out["noise_mask"] = masks.repeat(amount, *([1] * (masks.dim() - 1)))
        if "batch_index" in out:
            indices = list(out["batch_index"])
            offset = max(indices) - min(indices) + 1
            out["batch_index"] = indices + [i + n * offset for n in range(1, amount) for i in indices]
        return out


class LatentFromBatch(Node):
    NAME = "LatentFromBatch"
    DISPLAY_NAME = "Latent From Batch"
    CATEGORY = "latent/batch"
    DESCRIPTION = ("Take length latents from a batch, starting at batch_index (0 = the first). They keep their batch "
                   "indices, so sampling them again gives each the noise it had in the whole batch.")
    INPUTS = [Input("samples", "LATENT"), Int("batch_index", 0, min=0, max=63), Int("length", 1, min=1, max=64)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], batch_index: int, length: int) -> dict[str, Any]:
        out = dict(samples)
        latents = samples["samples"]
        batch_index = min(latents.shape[0] - 1, batch_index)
        length = min(latents.shape[0] - batch_index, length)
        out["samples"] = latents[batch_index:batch_index + length].clone()
        masks = samples.get("noise_mask")
        if masks is not None:
            if masks.shape[0] == 1:
                out["noise_mask"] = masks.clone()
            else:
                out["noise_mask"] = _mask_batch(masks, latents.shape[0])[batch_index:batch_index + length].clone()
        if "batch_index" in samples:
            out["batch_index"] = list(samples["batch_index"])[batch_index:batch_index + length]
        else:
            out["batch_index"] = list(range(batch_index, batch_index + length))
        return out


FLIP_METHODS = ("x-axis: vertically", "y-axis: horizontally")
ROTATIONS = ("none", "90 degrees", "180 degrees", "270 degrees")


class LatentFlip(Node):
    NAME = "LatentFlip"
    DISPLAY_NAME = "Flip Latent"
    CATEGORY = "latent/transform"
    DESCRIPTION = ("Mirror the latent: 'x-axis: vertically' turns it upside down, 'y-axis: horizontally' swaps left and "
                   "right. As in ComfyUI, a noise mask is passed on unchanged.")
    INPUTS = [Input("samples", "LATENT"), Combo("flip_method", FLIP_METHODS)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], flip_method: str) -> dict[str, Any]:
        out = dict(samples)
        if flip_method.startswith("x"):
            out["samples"] = samples["samples"].flip(-2)
        elif flip_method.startswith("y"):
            out["samples"] = samples["samples"].flip(-1)
        return out


class LatentRotate(Node):
    NAME = "LatentRotate"
    DISPLAY_NAME = "Rotate Latent"
    CATEGORY = "latent/transform"
    DESCRIPTION = "Turn the latent clockwise by 90, 180 or 270 degrees. As in ComfyUI, a noise mask is passed on unchanged."
    INPUTS = [Input("samples", "LATENT"), Combo("rotation", ROTATIONS)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], rotation: str) -> dict[str, Any]:
        import torch

        turns = {"90": 1, "180": 2, "270": 3}.get(rotation.split(" ")[0], 0)
        out = dict(samples)
        out["samples"] = torch.rot90(samples["samples"], k=turns, dims=[-1, -2])
        return out


class LatentCrop(Node):
    NAME = "LatentCrop"
    DISPLAY_NAME = "Crop Latent"
    CATEGORY = "latent/transform"
    DESCRIPTION = ("Cut a width × height rectangle (pixels, multiples of 8) out of the latent, starting at (x, y); the "
                   "start is moved in so that at least 64 pixels remain. As in ComfyUI, a noise mask is passed on unchanged.")
    INPUTS = [Input("samples", "LATENT"),
              Int("width", 512, min=64, max=MAX_RESOLUTION, step=8), Int("height", 512, min=64, max=MAX_RESOLUTION, step=8),
              Int("x", 0, min=0, max=MAX_RESOLUTION, step=8), Int("y", 0, min=0, max=MAX_RESOLUTION, step=8)]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples: dict[str, Any], width: int, height: int, x: int, y: int) -> dict[str, Any]:
        out = dict(samples)
        latents = samples["samples"]
        x, y = min(x // 8, max(0, latents.shape[-1] - 8)), min(y // 8, max(0, latents.shape[-2] - 8))
        out["samples"] = latents[..., y:y + height // 8, x:x + width // 8]
        return out


class LatentBlend(Node):
    NAME = "LatentBlend"
    DISPLAY_NAME = "Latent Blend"
    CATEGORY = "latent"
    DESCRIPTION = ("Mix two latents: blend_factor × samples1 + (1 − blend_factor) × samples2 (so 1 gives samples1). "
                   "samples2 is resized (bicubic, centre crop) to samples1 when their sizes differ; the result keeps "
                   "samples1's noise mask and batch indices.")
    INPUTS = [Input("samples1", "LATENT"), Input("samples2", "LATENT"),
              Float("blend_factor", 0.5, min=0.0, max=1.0, step=0.01, tooltip="1 = samples1 only, 0 = samples2 only")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, samples1: dict[str, Any], samples2: dict[str, Any], blend_factor: float) -> dict[str, Any]:
        from studio.imaging import resize

        out = dict(samples1)
        a, b = samples1["samples"], samples2["samples"].to(samples1["samples"])
        if a.shape != b.shape:
            b = resize(b, a.shape[-1], a.shape[-2], "bicubic", "center")
        out["samples"] = a * blend_factor + b * (1 - blend_factor)
        return out


NODES += [LatentComposite, LatentCompositeMasked, RepeatLatentBatch, LatentFromBatch, LatentFlip, LatentRotate,
          LatentCrop, LatentBlend]
