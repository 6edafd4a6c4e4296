"""Stable Diffusion nodes: checkpoints, text encoding, sampling, VAE, latents and images.

Modules import torch and diffusers inside ``run`` only, so loading the pack costs nothing until
a model node actually runs.
"""

from nodes.sd import (
    conditioning,
    conditioning_ops,
    controlnet,
    image,
    inpaint,
    latent,
    loaders,
    lora,
    masks,
    preprocess,
    sampling,
    upscale,
    vae,
)
from studio.api import NodePack

NODE_PACK = NodePack(
    name="sd",
    description=("Stable Diffusion 1.x, 2.x and SDXL: loaders, text encoding, sampling, VAE, latents, images, LoRA, "
                 "ControlNet and its preprocessors, upscaling."),
    nodes=[*loaders.NODES, *conditioning.NODES, *conditioning_ops.NODES, *sampling.NODES, *latent.NODES, *vae.NODES, *image.NODES,
           *inpaint.NODES, *masks.NODES, *lora.NODES, *controlnet.NODES, *preprocess.NODES, *upscale.NODES],
)
