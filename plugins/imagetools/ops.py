"""The tensor maths behind the imagetools nodes, as plain functions (usable and testable without the engine).

IMAGE is ``[B, H, W, C]`` float in 0..1, RGB first; MASK is ``[B, H, W]`` (or ``[H, W]``) with 1 = the area to change.
Every function returns a new tensor with the input's dtype and device, clamped to 0..1, and leaves its input alone.
Parameters at their neutral values give back the input bit for bit, so a node left at its defaults changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: Rec. 709 / sRGB luma weights: "brightness" as people see it (green counts most, blue least).
REC709 = (0.2126, 0.7152, 0.0722)


# -- helpers ------------------------------------------------------------------------------------------------------------
def luminance(image: torch.Tensor) -> torch.Tensor:
    """Rec. 709 luma ``[..., 1]`` of an RGB image (the mean of the channels when it has fewer than three)."""
    if image.shape[-1] >= 3:
        weights = torch.tensor(REC709, dtype=image.dtype, device=image.device)
        return (image[..., :3] * weights).sum(-1, keepdim=True)
    return image.mean(-1, keepdim=True)


def _rgb(image: torch.Tensor, node: str) -> torch.Tensor:
    if image.dim() != 4 or image.shape[-1] < 3:
        raise ValueError(f"{node} needs an RGB IMAGE [batch, height, width, 3], got a tensor of shape {tuple(image.shape)}")
    return image[..., :3]


def _with_rgb(image: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """``image`` with its first three channels replaced (any extra channel, such as alpha, is kept)."""
    if image.shape[-1] == 3:
        return rgb
    return torch.cat([rgb, image[..., 3:]], dim=-1)


def fit_gamut(rgb: torch.Tensor, luma: torch.Tensor) -> torch.Tensor:
    """Bring colours outside 0..1 back by moving them towards the grey of equal ``luma``.

    Unlike a per-channel clamp this keeps both the luma and the hue, so a strong push towards red never turns
    a bright pixel darker or yellower. Pixels already inside 0..1 are returned untouched (bit for bit).
    """
    luma = luma.clamp(0.0, 1.0)
    chroma = rgb - luma
    tiny = torch.finfo(rgb.dtype).tiny
    inf = torch.tensor(math.inf, dtype=rgb.dtype, device=rgb.device)
    room_up = torch.where(chroma > 0, (1.0 - luma) / chroma.clamp_min(tiny), inf)
    room_down = torch.where(chroma < 0, luma / (-chroma).clamp_min(tiny), inf)
    scale = torch.minimum(room_up, room_down).amin(-1, keepdim=True).clamp(max=1.0)
    return torch.where(scale < 1.0, luma + chroma * scale, rgb).clamp(0.0, 1.0)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[B, H, W, C]`` with reflect padding (edges do not darken).

    The kernel reaches 3 sigma; on a picture smaller than that it is cut to what reflect padding allows
    (and renormalised), so any radius works on any size.
    """
    b, h, w, c = image.shape
    planes = image.movedim(-1, 1).reshape(b * c, 1, h, w)
    planes = _blur_axis(planes, sigma, vertical=False)
    planes = _blur_axis(planes, sigma, vertical=True)
    return planes.reshape(b, c, h, w).movedim(1, -1)


def gaussian_kernel(sigma: float, half: int, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """A normalised 1-D Gaussian of ``2 * half + 1`` taps."""
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    kernel = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def _blur_half(sigma: float, size: int) -> int:
    return max(0, min(math.ceil(3.0 * sigma), size - 1))


def _blur_axis(planes: torch.Tensor, sigma: float, *, vertical: bool) -> torch.Tensor:
    size = planes.shape[-2] if vertical else planes.shape[-1]
    half = _blur_half(sigma, size)
    if half == 0:
        return planes
    kernel = gaussian_kernel(sigma, half, planes.dtype, planes.device)
    if vertical:
        padded, weight = F.pad(planes, (0, 0, half, half), mode="reflect"), kernel.view(1, 1, -1, 1)
    else:
        padded, weight = F.pad(planes, (half, half, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1)
    return F.conv2d(padded, weight)


def blend_with_mask(original: torch.Tensor, adjusted: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``adjusted`` where the mask is 1, ``original`` where it is 0, a mix between.

    A mask of another size is resized (bilinear) to the image; one mask serves a whole batch, otherwise
    there must be one mask per image.
    """
    if mask is None:
        return adjusted
    if mask.dim() == 2:
        mask = mask[None]
    if mask.dim() != 3:
        raise ValueError(f"mask must be a MASK [batch, height, width], got a tensor of shape {tuple(mask.shape)}")
    images, height, width = original.shape[:3]
    if mask.shape[0] not in (1, images):
        raise ValueError(f"the mask batch holds {mask.shape[0]} masks but the image batch holds {images} images: "
                         "connect one mask for all images, or exactly one per image")
    weight = mask.to(device=original.device, dtype=torch.float32)
    if tuple(weight.shape[-2:]) != (height, width):
        weight = F.interpolate(weight[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    weight = weight.clamp(0.0, 1.0).to(original.dtype)[..., None]
    return torch.lerp(original, adjusted, weight)


# -- adjustments --------------------------------------------------------------------------------------------------------
def levels(image: torch.Tensor, black: float = 0.0, gamma: float = 1.0, white: float = 1.0,
           output_black: float = 0.0, output_white: float = 1.0) -> torch.Tensor:
    """Photoshop-style Levels, on every channel alike.

    ``x = clamp((v - black) / (white - black), 0, 1)``, then ``x ** (1 / gamma)`` (gamma above 1 brightens the
    midtones), then ``output_black + x * (output_white - output_black)``; an output_black above output_white
    inverts the picture, as in Photoshop.
    """
    if white <= black:
        raise ValueError(f"Levels: white ({white:g}) must be above black ({black:g})")
    if gamma <= 0:
        raise ValueError(f"Levels: gamma must be above 0, got {gamma:g}")
    x = ((image - black) / (white - black)).clamp(0.0, 1.0)
    if gamma != 1.0:
        x = x.pow(1.0 / gamma)
    return (output_black + x * (output_white - output_black)).clamp(0.0, 1.0)


#: GIMP's tonal ranges for colour balance: ramps of width A centred at B and 1 - B, and the strength of a full shift.
_RAMP_WIDTH, _RAMP_CENTRE, _SHIFT_SCALE = 0.25, 0.333, 0.7


def tonal_weights(lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How much a pixel of HSL ``lightness`` belongs to the shadows, the midtones and the highlights.

    GIMP's masks (``‾\\___``, ``_/‾\\_``, ``___/‾``): linear ramps of width 0.25 centred at 0.333 and 0.667, which
    add up to 1 everywhere, so the same shift in all three ranges is the same as one shift of the whole picture.
    """
    a, b = _RAMP_WIDTH, _RAMP_CENTRE
    shadows = ((lightness - b) / -a + 0.5).clamp(0.0, 1.0)
    midtones = ((lightness - b) / a + 0.5).clamp(0.0, 1.0) * ((lightness + b - 1.0) / -a + 0.5).clamp(0.0, 1.0)
    highlights = ((lightness + b - 1.0) / a + 0.5).clamp(0.0, 1.0)
    return shadows, midtones, highlights


def color_balance(image: torch.Tensor, shadows: Sequence[float] = (0.0, 0.0, 0.0),
                  midtones: Sequence[float] = (0.0, 0.0, 0.0), highlights: Sequence[float] = (0.0, 0.0, 0.0),
                  preserve_luminosity: bool = True) -> torch.Tensor:
    """GIMP-like colour balance: shift R, G, B separately in the shadows, midtones and highlights.

    Each range takes three shifts (cyan–red, magenta–green, yellow–blue, each -1..1, positive towards red, green,
    blue). With L the HSL lightness ``(max + min) / 2`` of a pixel and ``w_s, w_m, w_h`` its :func:`tonal_weights`::

        rgb' = clamp(rgb + 0.7 * (w_s * shadows + w_m * midtones + w_h * highlights), 0, 1)

    ``preserve_luminosity`` then restores each pixel's Rec. 709 luma Y exactly: ``rgb'' = rgb' + (Y(rgb) - Y(rgb'))``
    (an equal offset on all channels, so the colour shift stays), and colours pushed past 0..1 are pulled towards
    the grey of that luma (:func:`fit_gamut`) rather than clipped, so the luma holds there too.
    """
    rgb = _rgb(image, "ColorBalance")
    shifts = [torch.tensor([float(v) for v in values], dtype=rgb.dtype, device=rgb.device)
              for values in (shadows, midtones, highlights)]
    lightness = (rgb.amax(-1, keepdim=True) + rgb.amin(-1, keepdim=True)) / 2.0
    w_s, w_m, w_h = tonal_weights(lightness)
    shifted = (rgb + _SHIFT_SCALE * (w_s * shifts[0] + w_m * shifts[1] + w_h * shifts[2])).clamp(0.0, 1.0)
    if preserve_luminosity:
        luma = luminance(rgb)
        shifted = fit_gamut(shifted + (luma - luminance(shifted)), luma)
    return _with_rgb(image, shifted.clamp(0.0, 1.0))


def vibrance(image: torch.Tensor, vibrance: float = 0.0, saturation: float = 0.0) -> torch.Tensor:
    """Saturation that spares colours which are already vivid (vibrance), and plain saturation.

    With Y the Rec. 709 luma and ``chroma = max - min`` of a pixel::

        rgb' = Y + (rgb - Y) * (1 + saturation) * (1 + vibrance * (1 - chroma))

    so vibrance lifts dull colours most and leaves saturated ones (and skin already rich in colour) nearly alone;
    saturation -1 gives greyscale. Luma is kept, and colours pushed past 0..1 are pulled towards their grey.
    """
    rgb = _rgb(image, "Vibrance")
    luma = luminance(rgb)
    chroma = rgb.amax(-1, keepdim=True) - rgb.amin(-1, keepdim=True)
    gain = (1.0 + saturation) * (1.0 + vibrance * (1.0 - chroma)) - 1.0
    return _with_rgb(image, fit_gamut(rgb + (rgb - luma) * gain, luma))


# -- filters ------------------------------------------------------------------------------------------------------------
def unsharp_mask(image: torch.Tensor, radius: float = 1.5, amount: float = 1.0, threshold: float = 0.0) -> torch.Tensor:
    """Sharpen by adding back the detail a Gaussian blur removes: ``v + amount * (v - blur(v, radius))``.

    ``radius`` is the blur's standard deviation in pixels (larger sharpens coarser detail); detail smaller than
    ``threshold`` (per channel) is left alone, so flat areas and film grain are not roughened.
    """
    work = image.float()
    detail = work - gaussian_blur(work, radius)
    if threshold > 0:
        detail = torch.where(detail.abs() >= threshold, detail, torch.zeros_like(detail))
    return (work + amount * detail).clamp(0.0, 1.0).to(image.dtype)


#: Grain standard deviation, in 0..1 units, at intensity 1 on a mid-grey pixel.
GRAIN_STRENGTH = 0.25


def grain_noise(shape: tuple[int, int, int, int], size: float, seed: int) -> torch.Tensor:
    """Unit-variance Gaussian noise of ``shape``, smoothed to grains of about ``size`` pixels, made on the CPU.

    Made on the CPU from a seeded generator so the same seed gives the same grain on every device (and the
    engine's cache stays sound). The blur's variance loss is divided out exactly, so ``size`` changes the
    grain's coarseness, not its strength.
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    sigma = size / 2.0
    noise = gaussian_blur(noise, sigma)
    spread = 1.0
    for axis_size in shape[1:3]:
        half = _blur_half(sigma, axis_size)
        if half:
            spread *= float(gaussian_kernel(sigma, half).square().sum().sqrt())
    return noise / spread


def midtone_weight(luma: torch.Tensor) -> torch.Tensor:
    """``4 * Y * (1 - Y)``: 1 at mid-grey, falling to 0 at black and white, as grain shows on real film."""
    y = luma.clamp(0.0, 1.0)
    return 4.0 * y * (1.0 - y)


def film_grain(image: torch.Tensor, intensity: float = 0.1, size: float = 1.0, color: bool = False,
               seed: int = 0) -> torch.Tensor:
    """Add photographic grain: ``v + 0.25 * intensity * 4Y(1 - Y) * noise``.

    ``noise`` is :func:`grain_noise` (zero mean, unit variance, grains about ``size`` px), one field for all
    channels (monochrome, like black-and-white film) or one per channel (``color``). The midtone weight keeps
    deep shadows and highlights clean and avoids clipping there, so the picture's mean brightness is kept.
    """
    b, h, w, c = image.shape
    noise = grain_noise((b, h, w, c if color else 1), size, seed).to(device=image.device, dtype=torch.float32)
    work = image.float()
    grain = (GRAIN_STRENGTH * intensity) * midtone_weight(luminance(work)) * noise
    return (work + grain).clamp(0.0, 1.0).to(image.dtype)
