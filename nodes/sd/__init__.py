"""Stable Diffusion nodes: checkpoints, text encoding, sampling, VAE, latents and images.

Modules import torch and diffusers inside ``run`` only, so loading the pack costs nothing until
a model node actually runs.
"""

from nodes.sd import conditioning, image, inpaint, latent, loaders, masks, sampling, vae
from studio.api import NodePack

NODE_PACK = NodePack(
    name="sd",
    description="Stable Diffusion 1.x, 2.x and SDXL: loaders, text encoding, sampling, VAE, latents and images.",
    nodes=[*loaders.NODES, *conditioning.NODES, *sampling.NODES, *latent.NODES, *vae.NODES, *image.NODES,
           *inpaint.NODES, *masks.NODES],
)
