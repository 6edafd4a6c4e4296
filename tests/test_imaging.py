"""Image helpers: PIL and tensor conversion, loading files (alpha, palettes, EXIF, frames),
resizing (crop, lanczos, bislerp) and PNG text chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from studio.imaging import (
    bislerp,
    load_image_file,
    pil_to_tensor,
    read_png_text,
    resize,
    save_png,
    tensor_to_pil,
    total_pixels_size,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def rgb(values: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32) / 255.0


# -- conversion ------------------------------------------------------------------------------------
def test_pil_to_tensor_is_hwc_float_in_0_1() -> None:
    image = Image.new("RGB", (5, 3), (255, 128, 0))
    tensor = pil_to_tensor(image)
    assert tensor.shape == (3, 5, 3)
    assert tensor.dtype == torch.float32
    assert torch.allclose(tensor[0, 0], torch.tensor([1.0, 128 / 255, 0.0]))


def test_pil_to_tensor_converts_other_modes_to_rgb() -> None:
    assert pil_to_tensor(Image.new("L", (2, 2), 51)).shape == (2, 2, 3)
    rgba = pil_to_tensor(Image.new("RGBA", (2, 2), (10, 20, 30, 0)))
    assert rgba.shape == (2, 2, 3)
    assert torch.allclose(rgba[0, 0], rgb((10, 20, 30)))


def test_tensor_to_pil_round_trips_8_bit_values() -> None:
    array = np.random.default_rng(0).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    back = tensor_to_pil(pil_to_tensor(image))
    assert back.mode == "RGB"
    assert back.size == (6, 4)
    assert np.array_equal(np.asarray(back), array)


def test_tensor_to_pil_clips_and_rounds() -> None:
    tensor = torch.tensor([[[1.5, -0.2, 0.5]]])
    assert np.asarray(tensor_to_pil(tensor)).tolist() == [[[255, 0, 128]]]


def test_tensor_to_pil_handles_one_and_four_channels() -> None:
    gray = tensor_to_pil(torch.full((2, 3, 1), 0.2))
    assert gray.mode == "L"
    assert gray.size == (3, 2)
    assert gray.getpixel((0, 0)) == 51
    rgba = tensor_to_pil(torch.tensor([[[1.0, 0.0, 0.0, 0.5]]]))
    assert rgba.mode == "RGBA"
    assert rgba.getpixel((0, 0)) == (255, 0, 0, 128)


# -- loading files ---------------------------------------------------------------------------------------
def test_load_rgb_file_has_batch_of_one_and_empty_mask(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (7, 5), RED).save(path)
    image, mask = load_image_file(path)
    assert image.shape == (1, 5, 7, 3)
    assert mask.shape == (1, 5, 7)
    assert image.dtype == mask.dtype == torch.float32
    assert torch.allclose(image[0, 2, 3], rgb(RED))
    assert torch.count_nonzero(mask) == 0


def test_mask_is_one_minus_alpha(tmp_path: Path) -> None:
    path = tmp_path / "cutout.png"
    image = Image.new("RGBA", (3, 2), (0, 0, 255, 255))
    image.putpixel((0, 0), (0, 0, 255, 0))      # fully transparent: repaint here
    image.putpixel((1, 0), (0, 0, 255, 51))     # mostly transparent
    image.save(path)
    pixels, mask = load_image_file(path)
    assert pixels.shape == (1, 2, 3, 3)
    assert mask[0, 0, 0].item() == pytest.approx(1.0)
    assert mask[0, 0, 1].item() == pytest.approx(1 - 51 / 255)
    assert mask[0, 1, 2].item() == pytest.approx(0.0)
    assert torch.allclose(pixels[0, 1, 1], rgb(BLUE))


def test_gray_with_alpha_gives_mask_too(tmp_path: Path) -> None:
    path = tmp_path / "la.png"
    Image.new("LA", (2, 2), (100, 128)).save(path)
    pixels, mask = load_image_file(path)
    assert torch.allclose(pixels[0, 0, 0], torch.full((3,), 100 / 255))
    assert torch.allclose(mask, torch.full((1, 2, 2), 1 - 128 / 255))


def test_palette_transparency_becomes_mask(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    image = Image.new("P", (3, 3), 0)
    image.putpalette([*RED, *GREEN] + [0] * (256 * 3 - 6))
    image.putpixel((2, 1), 1)
    image.save(path, transparency=1)
    pixels, mask = load_image_file(path)
    expected = torch.zeros(1, 3, 3)
    expected[0, 1, 2] = 1.0
    assert torch.equal(mask, expected)
    assert torch.allclose(pixels[0, 0, 0], rgb(RED))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    stored = Image.new("RGB", (3, 2), WHITE)
    stored.putpixel((0, 0), RED)  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the picture rotated 90° clockwise
    stored.save(path, exif=exif)
    pixels, mask = load_image_file(path)
    assert pixels.shape == (1, 3, 2, 3)  # width and height swapped
    assert mask.shape == (1, 3, 2)
    # Rotating clockwise carries the stored top-left corner to the top-right.
    assert torch.allclose(pixels[0, 0, 1], rgb(RED))
    assert torch.allclose(pixels[0, 0, 0], rgb(WHITE))


def test_animated_file_gives_one_batch_item_per_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.png"
    frames = [Image.new("RGBA", (4, 3), (*color, 255)) for color in (RED, GREEN, BLUE)]
    frames[1].putpixel((0, 0), (0, 255, 0, 0))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    pixels, mask = load_image_file(path)
    assert pixels.shape == (3, 3, 4, 3)
    assert mask.shape == (3, 3, 4)
    for index, color in enumerate((RED, GREEN, BLUE)):
        assert torch.allclose(pixels[index, 2, 2], rgb(color))
    assert mask[1, 0, 0].item() == pytest.approx(1.0)
    assert mask[0, 0, 0].item() == pytest.approx(0.0)


def test_frames_of_another_size_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "pages.tiff"
    pages = [Image.new("RGB", (4, 4), RED), Image.new("RGB", (8, 2), GREEN), Image.new("RGB", (4, 4), BLUE)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    pixels, mask = load_image_file(path)
    assert pixels.shape == (2, 4, 4, 3)
    assert mask.shape == (2, 4, 4)
    assert torch.allclose(pixels[0, 0, 0], rgb(RED))
    assert torch.allclose(pixels[1, 0, 0], rgb(BLUE))


def test_16_bit_grayscale_keeps_its_brightness(tmp_path: Path) -> None:
    path = tmp_path / "depth16.png"
    array = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(array).save(path)
    pixels, _ = load_image_file(path)
    assert pixels.shape == (1, 1, 4, 3)
    assert pixels[0, 0, :, 0].tolist() == pytest.approx([0.0, 0.25, 0.5, 1.0], abs=0.01)


def test_not_an_image_raises_oserror(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not a picture", encoding="utf-8")
    with pytest.raises(OSError):
        load_image_file(path)


# -- resizing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "lanczos", "bislerp"])
def test_resize_gives_the_requested_size(method: str) -> None:
    samples = torch.rand(2, 3, 10, 16)
    out = resize(samples, 24, 6, method)
    assert out.shape == (2, 3, 6, 24)
    assert out.dtype == samples.dtype


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic", "lanczos", "bislerp"])
def test_resize_keeps_a_flat_colour(method: str) -> None:
    samples = torch.full((1, 3, 8, 12), 0.25)
    assert torch.allclose(resize(samples, 20, 5, method), torch.full((1, 3, 5, 20), 0.25), atol=1e-4)


def test_unknown_resize_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown resize method 'cubic'"):
        resize(torch.zeros(1, 3, 4, 4), 8, 8, "cubic")


def striped(width_left: int, width_middle: int, width_right: int, height: int) -> torch.Tensor:
    """``[1, 3, H, W]``: red, green and blue vertical bands."""
    columns = [rgb(RED)] * width_left + [rgb(GREEN)] * width_middle + [rgb(BLUE)] * width_right
    row = torch.stack(columns, dim=-1)  # [3, W]
    return row[None, :, None, :].expand(1, 3, height, len(columns)).clone()


def test_center_crop_keeps_the_middle_of_a_wide_image() -> None:
    samples = striped(30, 40, 30, 40)  # 100 × 40; the middle 40 columns are green
    out = resize(samples, 20, 20, "nearest-exact", crop="center")
    assert out.shape == (1, 3, 20, 20)
    assert torch.allclose(out, rgb(GREEN)[None, :, None, None].expand_as(out))


def test_center_crop_keeps_the_middle_of_a_tall_image() -> None:
    samples = striped(30, 40, 30, 40).transpose(-1, -2)  # 40 × 100, bands top to bottom
    out = resize(samples, 10, 10, "bilinear", crop="center")
    assert out.shape == (1, 3, 10, 10)
    assert torch.allclose(out, rgb(GREEN)[None, :, None, None].expand_as(out), atol=1e-6)


def test_without_crop_the_whole_image_is_squeezed() -> None:
    out = resize(striped(30, 40, 30, 40), 20, 20, "nearest-exact")
    assert torch.allclose(out[0, :, 0, 0], rgb(RED))
    assert torch.allclose(out[0, :, 0, -1], rgb(BLUE))


def test_lanczos_is_sharper_than_bilinear_on_an_edge() -> None:
    samples = torch.zeros(1, 1, 1, 8)
    samples[..., 4:] = 1.0
    lanczos = resize(samples, 32, 1, "lanczos")[0, 0, 0]
    bilinear = resize(samples, 32, 1, "bilinear")[0, 0, 0]
    assert lanczos[0].item() == pytest.approx(0.0, abs=1e-3)
    assert lanczos[-1].item() == pytest.approx(1.0, abs=1e-3)
    # Lanczos rings a little around the edge; bilinear never leaves the input range.
    assert lanczos.max().item() > 1.0 or lanczos.min().item() < 0.0
    assert 0.0 <= bilinear.min().item() and bilinear.max().item() <= 1.0


def test_total_pixels_size_keeps_aspect_and_area() -> None:
    width, height = total_pixels_size(1600, 900, 1.0)
    assert width * height == pytest.approx(1024 * 1024, rel=0.01)
    assert width / height == pytest.approx(16 / 9, rel=0.01)
    assert total_pixels_size(512, 512, 0.25) == (512, 512)
    assert total_pixels_size(10, 10, 1e-9) == (1, 1)


# -- bislerp -------------------------------------------------------------------------------------------------
def test_bislerp_is_identity_when_the_size_is_unchanged() -> None:
    samples = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(bislerp(samples, 7, 5), samples, atol=1e-6)
    assert torch.allclose(resize(samples, 7, 5, "bislerp"), samples, atol=1e-6)


def test_bislerp_keeps_norms_where_bilinear_shrinks_them() -> None:
    samples = torch.zeros(1, 4, 1, 2)
    samples[0, 0, 0, 0] = 1.0  # two unit vectors at right angles
    samples[0, 1, 0, 1] = 1.0
    slerped = bislerp(samples, 4, 1)
    norms = slerped.norm(dim=1)[0, 0]
    assert norms.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0], abs=1e-5)
    lerped = resize(samples, 4, 1, "bilinear").norm(dim=1)[0, 0]
    assert lerped.min().item() < 0.8


def test_bislerp_norms_lie_between_the_neighbours_norms() -> None:
    samples = torch.randn(1, 4, 3, 6, generator=torch.Generator().manual_seed(2))
    old, new = 6, 15
    out = bislerp(samples, new, 3)  # width only: each output mixes two horizontal neighbours
    in_norms, out_norms = samples.norm(dim=1)[0], out.norm(dim=1)[0]
    for x in range(new):
        pos = min(max((x + 0.5) * old / new - 0.5, 0.0), old - 1)
        left = int(pos)
        right = min(left + 1, old - 1)
        low = torch.minimum(in_norms[:, left], in_norms[:, right])
        high = torch.maximum(in_norms[:, left], in_norms[:, right])
        assert bool(((out_norms[:, x] >= low - 1e-5) & (out_norms[:, x] <= high + 1e-5)).all()), x


def test_bislerp_in_two_dimensions_stays_within_the_input_norms() -> None:
    samples = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    out = bislerp(samples, 9, 11)
    assert out.shape == (2, 4, 11, 9)
    in_norms, out_norms = samples.norm(dim=1), out.norm(dim=1)
    for b in range(2):
        assert out_norms[b].min() >= in_norms[b].min() - 1e-5
        assert out_norms[b].max() <= in_norms[b].max() + 1e-5


def test_bislerp_downscale_and_opposite_vectors_stay_finite() -> None:
    samples = torch.zeros(1, 4, 2, 2)
    samples[0, 0, :, 0] = 1.0
    samples[0, 0, :, 1] = -1.0  # exactly opposite neighbours
    samples[0, 1, 1, :] = 0.0
    up = bislerp(samples, 5, 2)
    down = bislerp(torch.randn(1, 4, 8, 8), 3, 3)
    assert torch.isfinite(up).all() and torch.isfinite(down).all()
    assert down.shape == (1, 4, 3, 3)


def test_bislerp_keeps_the_dtype() -> None:
    samples = torch.randn(1, 4, 4, 4).half()
    assert bislerp(samples, 8, 8).dtype == torch.float16


# -- PNG text chunks -------------------------------------------------------------------------------------------
def test_png_text_chunks_round_trip_including_non_ascii(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    image = torch.rand(6, 5, 3)
    chunks = {"parameters": "a cat\nSteps: 20", "nuance": '{"prompt": "猫, café ☕"}', "empty": ""}
    save_png(image, path, chunks)
    assert read_png_text(path) == chunks
    with Image.open(path) as reloaded:
        assert reloaded.size == (5, 6)
        assert np.array_equal(np.asarray(reloaded), np.asarray(tensor_to_pil(image)))


def test_png_without_text_has_no_chunks(tmp_path: Path) -> None:
    path = tmp_path / "bare.png"
    save_png(torch.zeros(2, 2, 3), path)
    assert read_png_text(path) == {}
