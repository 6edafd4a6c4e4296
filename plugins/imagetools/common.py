"""Sockets shared by the imagetools nodes."""

from __future__ import annotations

from studio.api import Input, Output

IMAGE_INPUT = Input("image", "IMAGE", tooltip="The pictures to change: IMAGE [batch, height, width, RGB], values 0..1")
IMAGE_OUTPUT = Output("IMAGE", "IMAGE", tooltip="The changed pictures, same size, batch, dtype and device as the input")
MASK_INPUT = Input("mask", "MASK", optional=True,
                   tooltip="Limit the effect: 1 = full effect, 0 = untouched. Resized to the picture if needed; "
                           "one mask for the whole batch or one per image")
