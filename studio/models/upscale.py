"""Upscale models (ESRGAN, Real-ESRGAN, SwinIR, HAT, DAT, SPAN, …): detection through spandrel,
and tiled inference so that any image size fits in memory.

spandrel recognises the architecture and its hyper-parameters from the weights alone, the way
ComfyUI and chaiNNer load these files. Weights are read by :func:`studio.models.files.load_state_dict`
(safetensors; pickle files only where the user allowed them), never by spandrel's own file loader.

Images are upscaled tile by tile (``TILE_SIZE`` pixels, overlapping by ``TILE_OVERLAP``, blended
with a linear feather across each overlap); when the device runs out of memory the tile size is
halved and the image started again, down to ``MIN_TILE_SIZE``, as ComfyUI does.
"""

from __future__ import annotations

import enum
import gc
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from studio.core.errors import NuanceError
from studio.models.files import load_state_dict
from studio.models.memory import model_manager

#: Side of a square tile in input pixels; a 4× model on a 512-px tile makes a 2048-px output tile.
TILE_SIZE = 512
#: Input pixels shared by neighbouring tiles, blended so that no seam shows.
TILE_OVERLAP = 32
#: Below this tile size an out-of-memory error is given up on (ComfyUI's limit).
MIN_TILE_SIZE = 128

#: What spandrel calls a model's purpose, for the ones an upscale node can run on whole images.
_USABLE_PURPOSES = ("SR", "Restoration")


class UpscaleModelError(NuanceError):
    """An upscale model cannot be loaded or run: unknown architecture, wrong kind of model, …"""


# -- importing spandrel ---------------------------------------------------------------------------
_import_lock = threading.Lock()


def import_spandrel() -> ModuleType:
    """spandrel, imported even where torchvision is missing or does not work with this torch.

    spandrel imports torchvision at import time for two architectures only (LaMa, an inpainting
    model, and RestoreFormer, a face restorer), neither of which an upscale node runs. A CPU-only
    torch may have no matching torchvision at all, so when torchvision cannot be imported, a
    stand-in is put in its place for the duration of spandrel's import and removed right after
    (about a second, once per process); calling anything from it raises a clear error.
    """
    with _import_lock:
        if "spandrel" in sys.modules:
            return sys.modules["spandrel"]
        if _torchvision_works():
            return _import_spandrel_module()
        planted = _torchvision_stand_in()
        previous = {name: sys.modules.get(name) for name in planted}
        sys.modules.update(planted)
        try:
            return _import_spandrel_module()
        finally:
            for name, module in previous.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module


def _import_spandrel_module() -> ModuleType:
    try:
        import spandrel
    except ModuleNotFoundError as exc:
        if exc.name != "spandrel":
            raise UpscaleModelError(f"the spandrel package could not be imported: {exc}") from exc
        raise UpscaleModelError(
            "upscale models need the 'spandrel' package, which is not installed: run 'pip install spandrel' "
            "(beside a CPU-only torch with no matching torchvision: 'pip install --no-deps spandrel einops')") from None
    except ImportError as exc:  # a newer spandrel that needs more of torchvision than the stand-in offers
        raise UpscaleModelError(
            f"the spandrel package could not be imported ({exc}); install the torchvision build that matches "
            f"your torch {torch.__version__}, or spandrel 0.4") from exc
    return spandrel


def _torchvision_works() -> bool:
    try:
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # absent, or built for another torch ("operator torchvision::nms does not exist")
        return False
    return True


class _Unavailable:
    """Whatever spandrel takes from the torchvision stand-in: fails clearly only when used."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> _Unavailable:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Unavailable(f"{self._name}.{attribute}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UpscaleModelError(f"this model needs torchvision ({self._name}), which is not installed or does not "
                                f"work with torch {torch.__version__}")


def _torchvision_stand_in() -> dict[str, ModuleType]:
    modules: dict[str, ModuleType] = {}
    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
        module = ModuleType(name, "stand-in while spandrel is imported without torchvision")

        def attribute(attr: str, _name: str = name) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Unavailable(f"{_name}.{attr}")

        module.__getattr__ = attribute  # type: ignore[method-assign]  # PEP 562: names made on demand
        modules[name] = module
    modules["torchvision"].transforms = modules["torchvision.transforms"]  # type: ignore[attr-defined]
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    modules["torchvision.transforms.functional"].InterpolationMode = enum.Enum(  # type: ignore[attr-defined]
        "InterpolationMode", {"NEAREST": "nearest", "BILINEAR": "bilinear", "BICUBIC": "bicubic"})
    return modules


# -- the model ------------------------------------------------------------------------------------
@dataclass(eq=False)
class UpscaleModel:
    """UPSCALE_MODEL: a spandrel image model owned by the model manager."""

    descriptor: Any
    name: str = ""

    @property
    def scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def architecture(self) -> str:
        return str(self.descriptor.architecture.name)

    def cache_nbytes(self) -> int:
        return 1024  # the weights are counted by the model manager, not the output cache

    def dtype_for(self, device: str) -> torch.dtype:
        """fp16 on CUDA where the architecture allows it; fp32 elsewhere (CPU, and MPS to be safe)."""
        if device.startswith("cuda") and self.descriptor.supports_half:
            return torch.float16
        return torch.float32

    def prepare(self, device: str) -> Any:
        """The model on ``device`` in the dtype that suits it, others offloaded if a GPU is short."""
        model_manager().use(self.descriptor.model, device)
        dtype = self.dtype_for(device)
        if self.descriptor.dtype != dtype:
            self.descriptor.to(dtype=dtype)
        return self.descriptor

    def release(self) -> None:
        """Back to the CPU after a run (as ComfyUI does): VRAM is for the sampler that may follow."""
        if self.descriptor.device.type != "cpu":
            self.descriptor.to(device="cpu")


def load_upscale_model(path: str | Path, *, allow_pickle: bool | None = None) -> UpscaleModel:
    """Detect and build the model in ``path`` (on the CPU, fp32, in eval mode)."""
    path = Path(path)
    state = load_state_dict(path, allow_pickle=allow_pickle)
    spandrel = import_spandrel()
    state = spandrel.canonicalize_state_dict(state)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        hint = " (no tensors were found in it)" if not state else (
            ". Is it a checkpoint, LoRA or VAE put in the upscale_models folder? Supported are ESRGAN, Real-ESRGAN, "
            "SwinIR, HAT, DAT, OmniSR, SPAN, Compact and the other architectures spandrel "
            f"{getattr(spandrel, '__version__', '')} detects")
        raise UpscaleModelError(f"{path.name}: not an upscale model spandrel knows{hint}") from None
    except UpscaleModelError:
        raise
    except Exception as exc:  # detected, but the weights do not fit: a damaged or unusual file
        raise UpscaleModelError(f"{path.name}: looks like an upscale model but could not be built: {exc}") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UpscaleModelError(
            f"{path.name}: is a {descriptor.architecture.name} {descriptor.purpose.lower()} model, which needs a mask; "
            "an upscale model takes one image and gives one image")
    if descriptor.purpose not in _USABLE_PURPOSES:
        raise UpscaleModelError(
            f"{path.name}: is a {descriptor.architecture.name} face restoration model, made for aligned face crops, "
            "not whole pictures; it cannot be used as an upscale model")
    if descriptor.input_channels not in (1, 3, 4) or descriptor.output_channels not in (1, 3, 4):
        raise UpscaleModelError(
            f"{path.name}: takes {descriptor.input_channels} and gives {descriptor.output_channels} channels; "
            "only grey, RGB and RGBA models are supported")
    return UpscaleModel(descriptor.eval(), name=path.name)


# -- running it -----------------------------------------------------------------------------------
Progress = Callable[[int, int], None]


def upscale_image(model: UpscaleModel, image: torch.Tensor, device: str, *, tile: int | None = None,
                  overlap: int | None = None, min_tile: int | None = None, progress: Progress | None = None) -> torch.Tensor:
    """IMAGE ``[B, H, W, 3]`` in 0..1 → IMAGE ``[B, H·s, W·s, 3]``, tiled; the tile shrinks on out-of-memory.

    ``progress(done, total)`` is called after each tile (and may raise to cancel).
    """
    tile = TILE_SIZE if tile is None else tile
    overlap = TILE_OVERLAP if overlap is None else overlap
    min_tile = MIN_TILE_SIZE if min_tile is None else min_tile
    descriptor = model.prepare(device)
    pixels = image[..., :3].movedim(-1, 1).float()  # [B, 3, H, W], stays put: tiles travel one at a time
    try:
        while True:
            try:
                result = tiled_scale(pixels, lambda piece: _run(descriptor, piece, device), scale=model.scale,
                                     tile=tile, overlap=overlap, progress=progress)
                break
            except Exception as exc:
                if not _is_out_of_memory(exc):
                    raise
                _free_device_memory(device)
                if tile // 2 < min_tile:
                    raise UpscaleModelError(
                        f"out of memory upscaling with {model.name} even with {tile}-px tiles; free memory (unload "
                        "other models), use a smaller image or run on the CPU") from None
                tile //= 2
    finally:
        model.release()
    return result.movedim(1, -1).clamp(0, 1).contiguous()


def _run(descriptor: Any, piece: torch.Tensor, device: str) -> torch.Tensor:
    """One tile through the model, adapting RGB to grey or RGBA models and back; fp32 on the CPU out."""
    channels = descriptor.input_channels
    if channels == 1:
        piece = piece.mean(dim=1, keepdim=True)
    elif channels == 4:
        piece = torch.cat([piece, torch.ones_like(piece[:, :1])], dim=1)
    out = descriptor(piece.to(device=device, dtype=descriptor.dtype)).float().cpu()
    if out.shape[1] == 1:
        return out.expand(-1, 3, -1, -1)
    return out[:, :3]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along one side: evenly ``tile - overlap`` apart, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    count = -(-(length - overlap) // stride)  # ceil
    return sorted({min(i * stride, length - tile) for i in range(count)})


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def tiled_scale(pixels: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], *, scale: int, tile: int,
                overlap: int, progress: Progress | None = None) -> torch.Tensor:
    """Apply ``fn`` (``[1, C, h, w]`` → ``[1, C, h·scale, w·scale]``) to ``pixels`` tile by tile.

    Where tiles overlap, each one's weight rises linearly from its edge over the overlap, and the
    sum is normalised, so seams fade; sides on the image's border are not feathered.
    """
    batch, _, height, width = pixels.shape
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    total, done = batch * len(ys) * len(xs), 0
    out = torch.zeros(batch, 3, height * scale, width * scale)
    for b in range(batch):
        weight = torch.zeros(1, 1, height * scale, width * scale)
        for y in ys:
            for x in xs:
                piece = pixels[b:b + 1, :, y:y + tile, x:x + tile]
                result = fn(piece)
                h, w = piece.shape[2] * scale, piece.shape[3] * scale
                if result.shape[-2:] != (h, w):
                    raise UpscaleModelError(
                        f"the model gave a {result.shape[-1]}×{result.shape[-2]} tile for a {piece.shape[3]}×{piece.shape[2]} "
                        f"input, not {scale}× larger")
                mask = _feather(h, w, overlap * scale, top=y > 0, bottom=y + tile < height, left=x > 0,
                                right=x + tile < width)
                out[b:b + 1, :, y * scale:y * scale + h, x * scale:x * scale + w] += result * mask
                weight[:, :, y * scale:y * scale + h, x * scale:x * scale + w] += mask
                done += 1
                if progress is not None:
                    progress(done, total)
        out[b:b + 1] /= weight
    return out


def _feather(height: int, width: int, feather: int, *, top: bool, bottom: bool, left: bool, right: bool) -> torch.Tensor:
    """Weights 1 inside, rising from ``1/(feather+1)`` at each side that meets another tile."""
    ramp = torch.arange(1, feather + 1, dtype=torch.float32) / (feather + 1)
    rows, cols = torch.ones(height), torch.ones(width)
    n = min(feather, height)
    if top:
        rows[:n] *= ramp[:n]
    if bottom:
        rows[height - n:] *= ramp[:n].flip(0)
    n = min(feather, width)
    if left:
        cols[:n] *= ramp[:n]
    if right:
        cols[width - n:] *= ramp[:n].flip(0)
    return (rows[:, None] * cols[None, :])[None, None]


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_device_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
