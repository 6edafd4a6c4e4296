"""The toy world: coloured shapes on coloured backgrounds, with captions, and a classifier for it.

Pictures are drawn procedurally (PIL, anti-aliased by supersampling), so the data set is
infinite, seeded and reproducible. The classifier reads a picture back (background colour,
foreground colour, shape) with plain image statistics; the tests check it on the generator's own
pictures before trusting it to judge the model's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 215, 40),
    "purple": (135, 50, 185),
    "orange": (245, 135, 25),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZE = 64
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    background: str
    center: tuple[float, float]
    radius: float

    @property
    def caption(self) -> str:
        return f"a {self.color} {self.shape} on a {self.background} background"


def random_scene(rng: random.Random, size: int = SIZE) -> Scene:
    shape = rng.choice(SHAPES)
    color, background = rng.sample(list(COLORS), 2)
    radius = rng.uniform(0.2, 0.36) * size
    margin = radius + 1
    center = (rng.uniform(margin, size - margin), rng.uniform(margin, size - margin))
    return Scene(shape, color, background, center, radius)


STYLES = ("flat", "pattern")
PATTERN_RADIUS = 0.14  # of the picture size: the smallest shape the demo VAE still carries


def draw(scene: Scene, size: int = SIZE, style: str = "flat") -> Image.Image:
    """The scene as a picture. ``flat``: the shape filled with its colour (the demo model's look);
    ``pattern``: the shape repeated small on a 2×2 grid, as on wallpaper (the style the demo LoRA
    learns: four shapes instead of one, about twice the edge pixels). Thinner styles (outlines, hatching)
    were tried first: the demo VAE, trained on flat shapes with 8×8 latents, cannot carry them."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), COLORS[scene.background])
    pen = ImageDraw.Draw(image)
    fill = COLORS[scene.color]
    if style == "flat":
        cx, cy, r = (v * SUPERSAMPLE for v in (*scene.center, scene.radius))
        _shape(pen, scene.shape, cx, cy, r, fill=fill)
    else:
        for gx in (0.25, 0.75):
            for gy in (0.25, 0.75):
                _shape(pen, scene.shape, big * gx, big * gy, big * PATTERN_RADIUS, fill=fill)
    return image.resize((size, size), Image.LANCZOS)


def _shape(pen: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, **paint: Any) -> None:
    if shape == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), **paint)
    elif shape == "square":
        half = r * 0.85  # about the circle's area, so size does not give the shape away
        pen.rectangle((cx - half, cy - half, cx + half, cy + half), **paint)
    else:
        pen.polygon([(cx, cy - r), (cx - r * 0.95, cy + r * 0.75), (cx + r * 0.95, cy + r * 0.75)], **paint)


def batch(rng: random.Random, count: int, size: int = SIZE, style: str = "flat") -> tuple[np.ndarray, list[str], list[Scene]]:
    """``count`` pictures as float32 ``[N, H, W, 3]`` in 0..1, their captions and scenes."""
    scenes = [random_scene(rng, size) for _ in range(count)]
    pictures = np.stack([np.asarray(draw(s, size, style), dtype=np.float32) / 255.0 for s in scenes])
    return pictures, [s.caption for s in scenes], scenes


# -- reading pictures back -----------------------------------------------------------------------
_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[n] for n in _PALETTE_NAMES], dtype=np.float32) / 255.0


def nearest_color(rgb: np.ndarray) -> str:
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE - rgb) ** 2).sum(axis=1)))]


def _split(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Background colour (the border's median), foreground colour (of the pixels clearly unlike
    it; None when there are too few) and the foreground mask, cut half-way between the two
    colours: the shape's true edge under blur."""
    picture = np.asarray(picture, dtype=np.float32)
    if picture.max() > 1.5:
        picture = picture / 255.0
    border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
    bg_rgb = np.median(border, axis=0)
    distance = np.sqrt(((picture - bg_rgb) ** 2).sum(axis=-1))
    rough = distance > 0.25
    if rough.sum() < 20:
        return picture, bg_rgb, None, np.zeros(picture.shape[:2], dtype=np.uint8)
    fg_rgb = np.median(picture[rough], axis=0)
    halfway = 0.5 * float(np.sqrt(((fg_rgb - bg_rgb) ** 2).sum()))
    return picture, bg_rgb, fg_rgb, (distance > halfway).astype(np.uint8)


def foreground_mask(picture: np.ndarray) -> np.ndarray:
    """Where the picture is not background (bool ``[H, W]``), as the classifier cuts it."""
    return _split(picture)[3].astype(bool)


def shape_mask(scene: Scene, size: int = SIZE) -> np.ndarray:
    """The pixels a flat drawing of ``scene`` covers (bool ``[H, W]``), from the drawing itself."""
    picture = np.asarray(draw(scene, size), dtype=np.float32) / 255.0
    distance = np.sqrt(((picture - np.array(COLORS[scene.background], dtype=np.float32) / 255.0) ** 2).sum(axis=-1))
    full = np.sqrt(((np.array(COLORS[scene.color], dtype=np.float32) - COLORS[scene.background]) ** 2).sum()) / 255.0
    return distance > 0.5 * full


@dataclass(frozen=True)
class Reading:
    background: str
    color: str | None
    shape: str | None
    fill_ratio: float


def classify(picture: np.ndarray) -> Reading:
    """Read a picture back: background from the border, foreground colour from the pixels that
    differ from it, shape from the outline of the largest foreground region.

    The shape comes from the largest foreground region: how much of its bounding box it fills
    (square ≈ 1, circle ≈ π/4 ≈ 0.79, triangle ≈ ½) and whether its outline simplifies to three
    corners (OpenCV's approxPolyDP). The region is cut half-way between the two colours, so
    blurred edges (a VAE's, a sampler's) do not shift the reading.
    """
    import cv2

    picture, bg_rgb, fg_rgb, mask = _split(picture)
    background = nearest_color(bg_rgb)
    if fg_rgb is None:
        return Reading(background, None, None, 0.0)
    color = nearest_color(fg_rgb)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return Reading(background, color, None, 0.0)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    _, _, width, height, area = stats[largest]
    fill = float(area / (width * height))  # square ≈ 1, circle ≈ π/4, triangle ≈ ½
    region = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    corners = len(cv2.approxPolyDP(outline, 0.06 * cv2.arcLength(outline, True), True))
    if corners == 3 or fill < 0.66:
        shape = "triangle"
    elif fill > 0.835:
        shape = "square"
    else:
        shape = "circle"
    return Reading(background, color, shape, fill)


def count_shapes(picture: np.ndarray, min_area: int = 12) -> int:
    """The style statistic of the "pattern" LoRA: how many separate shapes the picture shows
    (foreground regions of at least ``min_area`` pixels, so a speck of noise does not count)."""
    import cv2

    _, _, stats, _ = cv2.connectedComponentsWithStats(foreground_mask(picture).astype(np.uint8), connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= min_area).sum())


def edge_fraction(picture: np.ndarray) -> float:
    """A second style statistic: the share of pixels on a Canny edge (thresholds
    0.1 / 0.2 on ComfyUI's scale, low enough for every colour pair of the toy world)."""
    from studio.preprocess import canny

    picture = np.asarray(picture, dtype=np.float32)
    if picture.max() > 1.5:
        picture = picture / 255.0
    return float(canny(picture, 0.1, 0.2).mean())
