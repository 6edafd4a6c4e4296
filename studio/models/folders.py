"""Where models live: the models folder, extra search paths, and the files found in them.

The models folder is chosen by, in order: ``--models-dir``, the ``NUANCE_MODELS_DIR`` environment
variable, ``dir`` under ``[models]`` in ``settings.toml`` (in the user config folder), and the
default ``<user data dir>/models``. ``extra_paths`` in the same section adds more folders to
search, so an existing ComfyUI or AUTOMATIC1111 models folder works as it is; the bundled
``resources/models`` is always searched last (read-only).

    [models]
    dir = "~/AI/models"
    extra_paths = ["~/ComfyUI/models", "~/stable-diffusion-webui"]
    allow_pickle = false
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import NuanceError
from studio.core.paths import config_dir, data_dir
from studio.models.files import MODEL_SUFFIXES

#: Each kind of model, with the folder names ComfyUI (first) and AUTOMATIC1111 use for it.
KINDS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints", "Stable-diffusion"),
    "vae": ("vae", "VAE"),
    "loras": ("loras", "Lora", "LyCORIS"),
    "controlnet": ("controlnet", "ControlNet"),
    "embeddings": ("embeddings",),
    "upscale_models": ("upscale_models", "ESRGAN", "RealESRGAN"),
}


class ModelNotFoundError(NuanceError):
    """A model named in a workflow is not in any models folder."""


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def load_settings() -> dict[str, Any]:
    """The user's settings.toml as a dict (empty when absent); a broken file is an error."""
    path = settings_path()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise NuanceError(f"{path}: is not valid TOML ({exc}); fix or delete it") from None


def models_settings() -> dict[str, Any]:
    """The ``[models]`` table of settings.toml, checked: a wrong shape is an error, not a crash."""
    section = load_settings().get("models", {})
    if not isinstance(section, dict):
        raise NuanceError(f"{settings_path()}: 'models' must be a table ([models] with keys under it)")
    extra = section.get("extra_paths", [])
    if isinstance(extra, str):
        extra = [extra]  # one path written without the list brackets
    if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
        raise NuanceError(f"{settings_path()}: extra_paths must be a list of folder paths")
    if "dir" in section and not isinstance(section["dir"], str):
        raise NuanceError(f"{settings_path()}: dir must be a folder path in quotes")
    return {**section, "extra_paths": extra}


def _bundled_models_dir() -> Path | None:
    from studio.core.resources import resource_path

    path = resource_path("models")
    return path if path.is_dir() else None


@dataclass
class ModelFolders:
    """The models folder plus the extra places searched for models."""

    root: Path
    extra: list[Path] = field(default_factory=list)
    #: Which setting chose ``root``: "--models-dir", "NUANCE_MODELS_DIR", "settings.toml" or "default".
    source: str = "default"

    def search_dirs(self, kind: str) -> list[Path]:
        """Folders holding models of ``kind``, in search order (earlier ones win on equal names)."""
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; kinds: {', '.join(KINDS)}")
        names = KINDS[kind]
        dirs = [self.root / names[0]]
        for base in self.extra:
            for candidate in (base, base / "models"):
                dirs.extend(candidate / name for name in names)
        bundled = _bundled_models_dir()
        if bundled is not None:
            dirs.append(bundled / names[0])
        unique: list[Path] = []
        for path in dirs:
            if path.is_dir() and path.resolve() not in {u.resolve() for u in unique}:
                unique.append(path)
        return unique

    def files(self, kind: str) -> dict[str, Path]:
        """Model name (relative, with ``/``) to path. Diffusers folders count as one model."""
        found: dict[str, Path] = {}
        for base in self.search_dirs(kind):
            for path in _walk_models(base):
                name = path.relative_to(base).as_posix()
                found.setdefault(name, path)
        return dict(sorted(found.items(), key=lambda item: item[0].lower()))

    def list(self, kind: str) -> list[str]:
        return list(self.files(kind))

    def find(self, kind: str, name: str) -> Path:
        """The file for a model name (as listed), or an absolute path that exists."""
        files = self.files(kind)
        if name in files:
            return files[name]
        direct = Path(name).expanduser()
        if direct.is_absolute() and direct.exists():
            return direct
        looked = ", ".join(str(d) for d in self.search_dirs(kind)) or f"{self.root / KINDS[kind][0]} (missing)"
        close = [f for f in files if Path(f).name == Path(name).name]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelNotFoundError(f"{kind} model {name!r} was not found (looked in: {looked}){hint}")

    def ensure_layout(self) -> None:
        """Create the standard sub-folders in the models folder, so users know where files go."""
        for names in KINDS.values():
            (self.root / names[0]).mkdir(parents=True, exist_ok=True)


def _walk_models(base: Path) -> list[Path]:
    result: list[Path] = []
    visited: set[str] = set()
    for current, dirnames, filenames in os.walk(base, followlinks=True):
        here = Path(current)
        real = os.path.realpath(current)
        if real in visited:  # a symlink back to a folder already walked
            dirnames.clear()
            continue
        visited.add(real)
        if (here / "model_index.json").is_file() and here != base:
            result.append(here)
            dirnames.clear()
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        result.extend(here / f for f in sorted(filenames) if f.lower().endswith(MODEL_SUFFIXES))
    return result


_override_lock = threading.Lock()
_override: Path | None = None


def configure(models_dir: str | os.PathLike[str] | None) -> None:
    """Set the ``--models-dir`` override for this process (the CLI and the app call this)."""
    global _override
    with _override_lock:
        _override = None if models_dir is None else Path(models_dir).expanduser()


@contextmanager
def configured(models_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """``configure(models_dir)`` for the duration of a block, then the previous setting again."""
    previous = _override
    configure(models_dir)
    try:
        yield
    finally:
        configure(previous)


def model_folders(models_dir: str | os.PathLike[str] | None = None) -> ModelFolders:
    """The folders in effect now, following the documented precedence."""
    settings = models_settings()
    extra = [Path(p).expanduser() for p in settings["extra_paths"]]
    explicit = models_dir if models_dir is not None else _override
    if explicit is not None:
        return ModelFolders(Path(explicit).expanduser(), extra, "--models-dir")
    env = os.environ.get("NUANCE_MODELS_DIR")
    if env:
        return ModelFolders(Path(env).expanduser(), extra, "NUANCE_MODELS_DIR")
    if "dir" in settings:
        return ModelFolders(Path(settings["dir"]).expanduser(), extra, "settings.toml")
    return ModelFolders(data_dir() / "models", extra, "default")
