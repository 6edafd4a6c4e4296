"""The demo model: a small SD 1.x-architecture latent diffusion model of a procedural toy world."""
