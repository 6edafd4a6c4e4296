"""Nuance Studio: a node-graph application for image generation with diffusion models."""

__version__ = "0.1.0"
