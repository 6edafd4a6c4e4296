"""Painting inpaint and outpaint masks over an image: the mask model, its file, and the editor widget."""
