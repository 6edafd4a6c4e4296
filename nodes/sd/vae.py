"""Between pictures and latents: VAE encode and decode, whole or tiled (ComfyUI's names)."""

from __future__ import annotations

from typing import Any

from studio.api import Input, Int, Node, Output, RunContext

TILE = Int("tile_size", 512, min=64, max=4096, step=32, tooltip="Tile width and height in pixels")
OVERLAP = Int("overlap", 64, min=0, max=4096, step=32, tooltip="How much neighbouring tiles overlap, in pixels")
ENCODE_TILE = Int("tile_size", 512, min=64, max=4096, step=64, tooltip="Tile width and height in pixels")
#: ComfyUI's video-VAE settings; pictures have no time axis, so they are accepted and ignored (as ComfyUI does).
TEMPORAL = [Int("temporal_size", 64, min=8, max=4096, step=4, optional=True,
                tooltip="Only for video VAEs (ignored for pictures): frames per tile"),
            Int("temporal_overlap", 8, min=4, max=4096, step=4, optional=True,
                tooltip="Only for video VAEs (ignored for pictures): frames of overlap")]


class VAEDecode(Node):
    NAME = "VAEDecode"
    DISPLAY_NAME = "VAE Decode"
    CATEGORY = "latent"
    DESCRIPTION = "Turn a latent into pictures."
    INPUTS = [Input("samples", "LATENT"), Input("vae", "VAE")]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, samples: dict[str, Any], vae: Any) -> Any:
        ctx.check_cancelled()
        return vae.decode(samples["samples"], ctx.device)


class VAEEncode(Node):
    NAME = "VAEEncode"
    DISPLAY_NAME = "VAE Encode"
    CATEGORY = "latent"
    DESCRIPTION = "Turn pictures into a latent (for image-to-image); sides are cropped to multiples of 8."
    INPUTS = [Input("pixels", "IMAGE"), Input("vae", "VAE")]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, pixels: Any, vae: Any) -> dict[str, Any]:
        ctx.check_cancelled()
        return {"samples": vae.encode(pixels, ctx.device)}


class VAEDecodeTiled(Node):
    NAME = "VAEDecodeTiled"
    DISPLAY_NAME = "VAE Decode (Tiled)"
    CATEGORY = "latent"
    DESCRIPTION = "Decode a big latent tile by tile, in bounded memory; overlapping tiles are blended."
    INPUTS = [Input("samples", "LATENT"), Input("vae", "VAE"), TILE, OVERLAP, *TEMPORAL]
    OUTPUTS = [Output("IMAGE", "IMAGE")]

    def run(self, ctx: RunContext, samples: dict[str, Any], vae: Any, tile_size: int, overlap: int,
            temporal_size: int = 64, temporal_overlap: int = 8) -> Any:
        return vae.decode_tiled(samples["samples"], ctx.device, tile_size, overlap)


class VAEEncodeTiled(Node):
    NAME = "VAEEncodeTiled"
    DISPLAY_NAME = "VAE Encode (Tiled)"
    CATEGORY = "latent"
    DESCRIPTION = "Encode big pictures tile by tile, in bounded memory; overlapping tiles are blended."
    INPUTS = [Input("pixels", "IMAGE"), Input("vae", "VAE"), ENCODE_TILE, OVERLAP, *TEMPORAL]
    OUTPUTS = [Output("LATENT", "LATENT")]

    def run(self, ctx: RunContext, pixels: Any, vae: Any, tile_size: int, overlap: int,
            temporal_size: int = 64, temporal_overlap: int = 8) -> dict[str, Any]:
        return {"samples": vae.encode_tiled(pixels, ctx.device, tile_size, overlap)}


NODES = [VAEDecode, VAEEncode, VAEDecodeTiled, VAEEncodeTiled]
