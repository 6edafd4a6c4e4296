"""Upscale models (``nodes/sd/upscale.py``, ``studio/models/upscale.py``), run the way users run them:
UpscaleModelLoader → ImageUpscaleWithModel through ``studio.engine.Executor``.

The model is a tiny real ESRGAN (spandrel's RRDBNet: 8 filters, 1 block, 2×) with seeded random
weights, saved as .safetensors in a temporary models folder; its last layer is scaled and biased
so that its output spreads over 0..1 (with default weights it is a flat grey, which could not tell
a right answer from a wrong one). The reference for every result is that module run directly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from tensor_sources import ImageSource, source

import studio.models.upscale as upscale
from studio.core.graph import Graph
from studio.engine import CancelToken, Executor, RunOptions
from studio.engine.events import NodeProgress
from studio.models import folders
from studio.models.memory import model_manager
from studio.models.upscale import UpscaleModel, UpscaleModelError, tile_count, tiled_scale, upscale_image

spandrel = upscale.import_spandrel()  # works without torchvision (see import_spandrel)
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402  (after import_spandrel: torchvision may be absent)

MODEL = "tiny_esrgan_x2.safetensors"


# -- the tiny model and the models folder ---------------------------------------------------------
def tiny_esrgan(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    module = ESRGAN(num_filters=8, num_blocks=1, scale=2).eval()
    with torch.no_grad():
        last = module.model[-1]
        last.weight.mul_(10)
        last.bias.fill_(0.5)
    return module


def reference(module: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """What the model gives for a whole IMAGE at once, untiled."""
    with torch.no_grad():
        return module(image.movedim(-1, 1)).clamp(0, 1).movedim(1, -1)


@pytest.fixture(scope="module")
def module() -> torch.nn.Module:
    return tiny_esrgan()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, module: torch.nn.Module) -> Path:
    root = tmp_path_factory.mktemp("upscale_models_root")
    folder = root / "upscale_models"
    folder.mkdir()
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / MODEL))
    torch.save(state, folder / "tiny_esrgan_x2.pth")  # a pickle file: refused unless allowed
    (folder / "garbage.safetensors").write_bytes(bytes(range(256)) * 8)
    save_file({"lora_unet_down.alpha": torch.ones(1), "lora_unet_down.lora_up.weight": torch.zeros(4, 2)},
              str(folder / "a_lora.safetensors"))
    save_file({"nuance_test_inpaint.weight": torch.zeros(3, 4, 3, 3)}, str(folder / "inpaint.safetensors"))
    return root


@pytest.fixture(autouse=True)
def _models_folder(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model choices (checked before a run) come from the process-wide models folder."""
    monkeypatch.setattr(folders, "_override", models_dir)


@pytest.fixture
def fresh_manager():
    model_manager().free_memory()
    yield model_manager()
    model_manager().free_memory()


def new_executor(models_dir: Path, tmp_path: Path) -> Executor:
    from studio.plugins import create_registry

    registry = create_registry()
    registry.register(ImageSource, pack="t")
    return Executor(registry, options=RunOptions(output_dir=tmp_path / "out", device="cpu", models_dir=models_dir))


@pytest.fixture
def executor(models_dir: Path, tmp_path: Path) -> Executor:
    return new_executor(models_dir, tmp_path)


def picture(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Values on a 1/64 grid (exact through JSON), different in every pixel."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 65, (batch, height, width, 3), generator=generator).float() / 64


def upscale_graph(image: torch.Tensor, model_name: str = MODEL) -> Graph:
    graph = Graph()
    graph.add_node("UpscaleModelLoader", {"model_name": model_name}, id="load")
    graph.add_node("ImageUpscaleWithModel", {}, id="up")
    graph.connect("load", 0, "up", "upscale_model")
    graph.connect(source(graph, image), 0, "up", "image")
    return graph


def upscaled(executor: Executor, image: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    result = executor.run(upscale_graph(image), ["up"], **kwargs)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result.outputs["up"][0]


def failure(executor: Executor, model_name: str) -> str:
    result = executor.run(upscale_graph(picture(1, 8, 8), model_name), ["up"])
    assert not result.ok
    assert result.nodes["load"].status == "failed"
    return result.nodes["load"].error or ""


# -- upscaling -----------------------------------------------------------------------------------
def test_output_is_the_models_own_result_at_scale_times_the_size(executor, module):
    image = picture(1, 20, 24)
    out = upscaled(executor, image)
    assert out.shape == (1, 40, 48, 3) and out.dtype == torch.float32
    expected = reference(module, image)
    assert expected.std() > 0.1  # the tiny model's output is a picture, not a flat grey
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_tiled_output_matches_untiled_and_reports_progress_per_tile(executor, module, monkeypatch):
    monkeypatch.setattr(upscale, "TILE_SIZE", 32)
    monkeypatch.setattr(upscale, "TILE_OVERLAP", 16)
    image = picture(2, 40, 56, seed=1)
    events: list[NodeProgress] = []
    out = upscaled(executor, image, listener=lambda e: events.append(e) if isinstance(e, NodeProgress) else None)

    expected = reference(module, image)
    assert out.shape == (2, 80, 112, 3)
    difference = (out - expected).abs()
    # The tiles see less context near their inner edges; blending across the overlap keeps the
    # difference far below the picture's own variation (std > 0.1).
    assert difference.mean() < 0.005
    assert difference.max() < 0.08

    tiles = tile_count(40, 56, 32, 16)
    assert tiles == 6
    steps = [(e.value, e.total) for e in events if e.node_type == "ImageUpscaleWithModel"]
    assert steps == [(i, 2 * tiles) for i in range(1, 2 * tiles + 1)]


def test_cancel_at_the_first_tile_stops_the_upscale(executor, monkeypatch):
    monkeypatch.setattr(upscale, "TILE_SIZE", 16)
    monkeypatch.setattr(upscale, "TILE_OVERLAP", 4)
    token = CancelToken()
    seen: list[NodeProgress] = []

    def listener(event: Any) -> None:
        if isinstance(event, NodeProgress) and event.node_type == "ImageUpscaleWithModel":
            seen.append(event)
            token.cancel()

    result = executor.run(upscale_graph(picture(1, 40, 40, seed=2)), ["up"], listener=listener, cancel=token)
    assert result.status == "cancelled"
    assert [e.value for e in seen] == [1]  # the second tile's report raised: no tile after the cancel
    assert upscaled(executor, picture(1, 40, 40, seed=2)).shape == (1, 80, 80, 3)  # nothing broken or cached


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), [(37, 23, 16, 4), (16, 50, 16, 8), (9, 9, 16, 4),
                                                                   (64, 64, 20, 6)])
def test_tiles_cover_the_image_and_blend_to_the_exact_result_of_a_local_operation(height, width, tile, overlap):
    """Nearest-neighbour enlargement looks at one pixel only, so tiling must not change it at all:
    this pins where every tile goes and that the blend weights are normalised."""
    pixels = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(3))
    calls: list[tuple[int, int]] = []

    def nearest(piece: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(piece.shape[-2:]))
        return piece.repeat_interleave(3, -1).repeat_interleave(3, -2)

    expected = pixels.repeat_interleave(3, -1).repeat_interleave(3, -2)
    out = tiled_scale(pixels, nearest, scale=3, tile=tile, overlap=overlap)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert len(calls) == 2 * tile_count(height, width, tile, overlap)
    assert all(h <= tile and w <= tile for h, w in calls)


class _FakeDescriptor:
    """A 2× nearest-neighbour 'model' that runs out of memory on tiles wider than ``fits``."""

    def __init__(self, fits: int):
        self.fits = fits
        self.model = torch.nn.Conv2d(1, 1, 1)
        self.scale, self.input_channels, self.supports_half = 2, 3, False
        self.dtype, self.device = torch.float32, torch.device("cpu")
        self.widths: list[int] = []

    def to(self, **kwargs: Any) -> _FakeDescriptor:
        return self

    def __call__(self, piece: torch.Tensor) -> torch.Tensor:
        self.widths.append(piece.shape[-1])
        if piece.shape[-1] > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return piece.repeat_interleave(2, -1).repeat_interleave(2, -2)


def test_out_of_memory_halves_the_tile_and_starts_again():
    fake = _FakeDescriptor(fits=32)
    image = picture(1, 100, 100)
    out = upscale_image(UpscaleModel(fake, "fake"), image, "cpu", tile=128, overlap=8, min_tile=16)
    assert out.shape == (1, 200, 200, 3)
    torch.testing.assert_close(out, image.repeat_interleave(2, 2).repeat_interleave(2, 1), atol=1e-6, rtol=0)
    assert fake.widths[:2] == [100, 64]  # 128 (the whole 100-px image) failed, then 64, then 32 worked
    assert max(fake.widths[2:]) == 32


def test_out_of_memory_below_the_smallest_tile_is_a_clear_error():
    with pytest.raises(UpscaleModelError, match="out of memory upscaling with fake even with 16-px tiles"):
        upscale_image(UpscaleModel(_FakeDescriptor(fits=8), "fake"), picture(1, 64, 64), "cpu", tile=64, overlap=4,
                      min_tile=16)


# -- loading -------------------------------------------------------------------------------------
def test_loader_is_cached_a_second_run_does_not_reload(models_dir, tmp_path, fresh_manager):
    before = fresh_manager.loads
    first = new_executor(models_dir, tmp_path).run(upscale_graph(picture(1, 8, 8)), ["load"])
    second = new_executor(models_dir, tmp_path).run(upscale_graph(picture(1, 8, 8)), ["load"])  # a fresh output cache
    assert first.ok and second.ok
    assert fresh_manager.loads - before == 1
    model = first.outputs["load"][0]
    assert second.outputs["load"][0] is model
    assert (model.architecture, model.scale) == ("ESRGAN", 2)


def test_pickle_file_is_refused_by_default_naming_the_file_and_the_setting(executor):
    error = failure(executor, "tiny_esrgan_x2.pth")
    assert "tiny_esrgan_x2.pth" in error and "pickle" in error
    assert "allow_pickle" in error and "NUANCE_ALLOW_PICKLE" in error


def test_pickle_file_loads_once_allowed(executor, module, monkeypatch, fresh_manager):
    monkeypatch.setenv("NUANCE_ALLOW_PICKLE", "1")
    image = picture(1, 12, 12)
    result = executor.run(upscale_graph(image, "tiny_esrgan_x2.pth"), ["up"])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    torch.testing.assert_close(result.outputs["up"][0], reference(module, image), atol=1e-5, rtol=0)


def test_garbage_file_is_a_clear_error_naming_it(executor):
    error = failure(executor, "garbage.safetensors")
    assert "garbage.safetensors" in error and "safetensors" in error


def test_weights_of_another_kind_are_not_an_upscale_model(executor):
    error = failure(executor, "a_lora.safetensors")
    assert "a_lora.safetensors: not an upscale model spandrel knows" in error


class _TinyInpaint(spandrel.Architecture):
    """An inpainting architecture spandrel would detect (as LaMa is): an image and a mask in."""

    def __init__(self) -> None:
        super().__init__(id="NuanceTestInpaint", detect=lambda state: "nuance_test_inpaint.weight" in state)

    def load(self, state_dict: Any) -> Any:
        model = torch.nn.Module()
        model.nuance_test_inpaint = torch.nn.Conv2d(4, 3, 3, bias=False)
        return spandrel.MaskedImageModelDescriptor(model, state_dict, self, purpose="Inpainting", tags=[],
                                                   supports_half=True, supports_bfloat16=True, input_channels=3,
                                                   output_channels=3)


def test_a_model_that_is_not_image_to_image_is_refused(executor, monkeypatch):
    registry = spandrel.MAIN_REGISTRY.copy()
    registry.add(spandrel.ArchSupport.from_architecture(_TinyInpaint()))
    loader = spandrel.ModelLoader
    monkeypatch.setattr(spandrel, "ModelLoader", lambda: loader(registry=registry))
    error = failure(executor, "inpaint.safetensors")
    assert "inpaint.safetensors" in error and "inpainting" in error and "one image" in error


def test_importing_spandrel_leaves_no_torchvision_stand_in_behind():
    spec_before = importlib.util.find_spec("torchvision") if "torchvision" not in sys.modules else "imported"
    upscale.import_spandrel()
    module = sys.modules.get("torchvision")
    assert module is None or getattr(module, "__file__", None)  # a real torchvision has a file; the stand-in none
    if spec_before is None:
        assert "torchvision" not in sys.modules
