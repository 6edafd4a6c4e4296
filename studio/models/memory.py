"""Model memory: load once, share everywhere, offload and unload when memory runs short.

Loaded checkpoints are kept by file identity (path, size, modification time), so every node that
names the same file gets the same weights and a changed prompt or seed never reloads anything.
Modules move to the compute device when a node uses them; when a GPU runs short, the least
recently used modules go back to the CPU (offload), and beyond ``max_loaded`` checkpoints the least
recently used is dropped entirely (unload).
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Keep a module's size in reserve on the GPU on top of the module itself (activations).
GPU_HEADROOM_BYTES = 1024**3


def file_identity(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """What makes two loads the same: the resolved path, size and modification time."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns


def module_nbytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers())


class ModelManager:
    """Process-wide cache of loaded models and their placement on devices."""

    def __init__(self, max_loaded: int = 6, max_small: int = 32):
        self.max_loaded = max_loaded
        self.max_small = max_small
        self._loaded: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        #: Small files (LoRAs, embeddings) in their own LRU, so they never push a checkpoint out.
        self._small: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._on_device: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0

    def get(self, key: tuple[Any, ...], load: Callable[[], Any], size_hint: int = 0, small: bool = False) -> Any:
        """The object cached under ``key``, loading it (once) if needed.

        ``size_hint`` (bytes the load will take in memory) lets the manager unload least recently
        used models first when the machine's free memory would not hold it. ``small`` objects
        (a LoRA's few megabytes) are kept in a separate, longer LRU.
        """
        if small:
            with self._lock:
                if key in self._small:
                    self._small.move_to_end(key)
                    return self._small[key]
            value = load()
            with self._lock:
                self.loads += 1
                self._small[key] = value
                while len(self._small) > self.max_small:
                    self._forget(self._small.popitem(last=False)[1])
            return value
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            self._unload_for(size_hint)
        value = load()
        with self._lock:
            if key in self._loaded:  # loaded meanwhile by another thread
                return self._loaded[key]
            self.loads += 1
            self._loaded[key] = value
            while len(self._loaded) > self.max_loaded:
                _, dropped = self._loaded.popitem(last=False)
                self._forget(dropped)
            return value

    def __len__(self) -> int:
        return len(self._loaded) + len(self._small)

    def _unload_for(self, size_hint: int) -> None:
        if size_hint <= 0:
            return
        while self._loaded:
            available = available_ram()
            if available is None or available >= size_hint:
                return
            _, dropped = self._loaded.popitem(last=False)
            self._forget(dropped)
            del dropped
            gc.collect()

    def use(self, module: Any, device: str) -> Any:
        """Put ``module`` on ``device`` for use now, offloading others if a GPU is short of memory."""
        import torch

        with self._lock:
            target = torch.device(device)
            current = next(module.parameters()).device
            if current != target:
                if target.type == "cuda":
                    self._make_room(module_nbytes(module) + GPU_HEADROOM_BYTES, target)
                module.to(target)
            if target.type != "cpu":
                self._on_device[id(module)] = module
                self._on_device.move_to_end(id(module))
            return module

    def _make_room(self, needed: int, device: Any) -> None:
        import torch

        while self._on_device:
            free, _ = torch.cuda.mem_get_info(device)
            if free >= needed:
                return
            _, oldest = self._on_device.popitem(last=False)
            oldest.to("cpu")
            torch.cuda.empty_cache()

    def _forget(self, value: Any) -> None:
        for module in _modules_of(value):
            self._on_device.pop(id(module), None)

    def free_memory(self) -> None:
        """Unload every model and release cached GPU memory (the "free memory" action)."""
        with self._lock:
            for value in (*self._loaded.values(), *self._small.values()):
                self._forget(value)
            self._loaded.clear()
            self._small.clear()
            self._on_device.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is a dependency
            pass


def available_ram() -> int | None:
    """Bytes of memory the system can still give (Linux's MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_memory(executor: Any = None) -> None:
    """The "free memory" action: unload every model and drop cached outputs (which hold them)."""
    if executor is not None:
        executor.free_memory()
    model_manager().free_memory()


def _modules_of(value: Any) -> list[Any]:
    found = []
    for name in ("unet", "vae", "text_encoders", "controlnet", "model"):  # model: an upscaler's
        item = getattr(value, name, None)
        if isinstance(item, list):
            found.extend(item)
        elif item is not None:
            found.append(item)
    return found


_manager: ModelManager | None = None
_manager_lock = threading.Lock()


def model_manager() -> ModelManager:
    """The process's model manager (shared by every node and run)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = ModelManager()
        return _manager
