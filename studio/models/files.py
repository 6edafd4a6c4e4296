"""Reading model files safely: safetensors headers without torch, hashes, and the pickle rule.

Headers are parsed by hand (8-byte length + JSON), so listing and detecting models needs neither
torch nor reading gigabytes. Pickle-based files (``.ckpt``, ``.pt``, ``.pth``, ``.bin``) can run
arbitrary code when loaded; they are refused unless the user allows them, and even then only
``torch.load(weights_only=True)`` is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import NuanceError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
MODEL_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
#: Headers larger than this are not real safetensors files (the format caps them at 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


class ModelFileError(NuanceError):
    """A model file cannot be used: missing, truncated, corrupt, or of a refused kind."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: v.shape for k, v in self.tensors.items()}


def pickle_refusal(path: Path) -> ModelFileError:
    return ModelFileError(
        f"{path.name}: refused to load a pickle-based model file ({path.suffix}). Such files can run "
        "arbitrary code when opened. Prefer the .safetensors version of this model; if you trust the "
        "file, allow pickle files with allow_pickle = true under [models] in settings.toml or "
        "NUANCE_ALLOW_PICKLE=1 (they are then read with torch.load(weights_only=True), which loads "
        "tensors only)")


def pickle_allowed() -> bool:
    """Whether the user opted in to (weights-only) pickle loading."""
    if os.environ.get("NUANCE_ALLOW_PICKLE", "").strip().lower() in ("1", "true", "yes"):
        return True
    from studio.models.folders import models_settings, settings_path

    value = models_settings().get("allow_pickle", False)
    if not isinstance(value, bool):
        raise ModelFileError(f"{settings_path()}: allow_pickle must be true or false (without quotes), got {value!r}")
    return value


def read_safetensors_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse and check a safetensors header: every tensor must lie inside the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise ModelFileError(f"{path.name}: file is truncated or empty ({size} bytes); download it again")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise ModelFileError(
                    f"{path.name}: not a valid safetensors file (header of {length} bytes in a {size}-byte file); "
                    "it is corrupt, truncated or of another format")
            raw = handle.read(length)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path.name}: the safetensors header is corrupt (not JSON); download the file again") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path.name}: the safetensors header is corrupt")
    metadata = header.pop("__metadata__", {}) or {}
    data_size = size - 8 - length
    tensors: dict[str, TensorInfo] = {}
    for name, info in header.items():
        try:
            dtype, raw_shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            shape = tuple(raw_shape)
        except (TypeError, KeyError, ValueError):
            raise ModelFileError(f"{path.name}: the entry for tensor {name!r} is corrupt") from None
        if not all(_is_count(v) for v in (begin, end, *shape)):
            raise ModelFileError(f"{path.name}: the entry for tensor {name!r} is corrupt (bad offsets or shape)")
        if end > data_size or begin > end:
            raise ModelFileError(
                f"{path.name}: is truncated: tensor {name!r} ends at byte {end} of a {data_size}-byte data section; "
                "download the file again")
        count = 1
        for dim in shape:
            count *= dim
        if dtype in _DTYPE_BYTES and count * _DTYPE_BYTES[dtype] != end - begin:
            raise ModelFileError(f"{path.name}: tensor {name!r} has the wrong size for its shape; the file is corrupt")
        tensors[name] = TensorInfo(str(dtype), shape)
    return SafetensorsHeader(tensors, {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {})


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load_state_dict(path: str | os.PathLike[str], *, device: str = "cpu", keys: Iterable[str] | None = None,
                    allow_pickle: bool | None = None) -> dict[str, Any]:
    """Load tensors from a safetensors file (or, if allowed, a weights-only pickle)."""
    import torch

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if not (pickle_allowed() if allow_pickle is None else allow_pickle):
            raise pickle_refusal(path)
        try:
            data = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:
            raise ModelFileError(f"{path.name}: could not be read as a weights-only checkpoint: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
            data = data["state_dict"]
        if not isinstance(data, dict):
            raise ModelFileError(f"{path.name}: holds no state dict")
        wanted = None if keys is None else set(keys)
        return {k: v for k, v in data.items() if isinstance(v, torch.Tensor) and (wanted is None or k in wanted)}
    header = read_safetensors_header(path)  # checks truncation before safetensors maps the file
    from safetensors import safe_open

    wanted = list(header.tensors) if keys is None else [k for k in keys if k in header.tensors]
    try:
        with safe_open(str(path), framework="pt", device=device) as handle:
            return {k: handle.get_tensor(k) for k in wanted}
    except Exception as exc:
        raise ModelFileError(f"{path.name}: could not be read: {exc}") from None


_hash_lock = threading.Lock()


def cached_sha256(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 if it was computed before (never reads the file itself)."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError:
        return None
    with _hash_lock:
        return _read_hash_cache(_hash_cache_file()).get(f"{path}|{stat.st_size}|{stat.st_mtime_ns}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Full SHA-256 of a file, remembered by (path, size, mtime) so it is computed once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = _hash_cache_file()
    with _hash_lock:
        cache = _read_hash_cache(cache_file)
        if key in cache:
            return cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        cache = _read_hash_cache(cache_file)
        cache[key] = value
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache), encoding="utf-8")
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a cache we cannot write only costs time
    return value


def short_hash(path: str | os.PathLike[str]) -> str:
    """The 10-character hash model sites and other tools show (AutoV2: the SHA-256's start)."""
    return sha256_file(path)[:10].upper()


def _hash_cache_file() -> Path:
    from studio.core.paths import data_dir

    return data_dir() / "cache" / "model_hashes.json"


def _read_hash_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
