"""The preferences the editor keeps in the user's settings.toml, beside whatever else is there.

The file is shared: the models folders are read from it by :mod:`studio.models.folders` (so the
command line and the editor agree), and a user may keep keys of their own in it. Saving reads
the file again and changes only the keys below; everything else is written back as it was.

    [models]
    dir = "~/AI/models"
    extra_paths = ["~/ComfyUI/models"]

    [run]
    device = "cuda"
    cache_mb = 4096

    [editor]
    theme = "light"

The theme is dark unless the file says otherwise: artists judge pictures on a dark frame.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core import toml_text
from studio.core.errors import NuanceError
from studio.engine.cache import DEFAULT_MAX_BYTES
from studio.models.devices import DEVICE_CHOICES
from studio.models.folders import load_settings, settings_path
from studio.ui.theme import DEFAULT_THEME, THEMES

MB = 1024 * 1024
DEFAULT_CACHE_MB = DEFAULT_MAX_BYTES // MB


@dataclass
class Preferences:
    models_dir: str = ""
    extra_paths: list[str] = field(default_factory=list)
    device: str = "auto"
    cache_mb: int = DEFAULT_CACHE_MB
    theme: str = DEFAULT_THEME

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> Preferences:
        """Read what is usable; a value of the wrong kind falls back to its default."""
        models = _table(data, "models")
        run = _table(data, "run")
        editor = _table(data, "editor")
        prefs = cls()
        if isinstance(models.get("dir"), str):
            prefs.models_dir = models["dir"]
        extra = models.get("extra_paths", [])
        extra = [extra] if isinstance(extra, str) else extra
        if isinstance(extra, list):
            prefs.extra_paths = [p for p in extra if isinstance(p, str)]
        if run.get("device") in DEVICE_CHOICES:
            prefs.device = run["device"]
        if isinstance(run.get("cache_mb"), int) and not isinstance(run["cache_mb"], bool) and run["cache_mb"] > 0:
            prefs.cache_mb = run["cache_mb"]
        if editor.get("theme") in THEMES:
            prefs.theme = editor["theme"]
        return prefs

    def merged_into(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with these preferences written in: keys at their default are left out, the
        user's other keys and tables are kept."""
        merged = copy.deepcopy(data)
        defaults = Preferences()
        for section, key, value, default in (
                ("models", "dir", self.models_dir, defaults.models_dir),
                ("models", "extra_paths", list(self.extra_paths), defaults.extra_paths),
                ("run", "device", self.device, defaults.device),
                ("run", "cache_mb", int(self.cache_mb), defaults.cache_mb),
                ("editor", "theme", self.theme, defaults.theme)):
            table = merged.get(section)
            if not isinstance(table, dict):
                table = {}
            if value == default:
                table.pop(key, None)
            else:
                table[key] = value
            if table:
                merged[section] = table
            else:
                merged.pop(section, None)
        return merged

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb) * MB


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def load_preferences() -> Preferences:
    """The preferences in settings.toml; raises NuanceError when the file is not valid TOML."""
    return Preferences.from_settings(load_settings())


def saved_theme() -> str:
    """The theme settings.toml names; the default when the file is missing or broken (the window
    reports a broken file once it is shown)."""
    try:
        return load_preferences().theme
    except (NuanceError, OSError):
        return DEFAULT_THEME


def save_preferences(prefs: Preferences) -> Path:
    """Write ``prefs`` into settings.toml, keeping every other key; returns the file's path.

    Raises NuanceError when the file there is broken (it is not overwritten) and OSError when it
    cannot be written.
    """
    path = settings_path()
    toml_text.write(path, prefs.merged_into(load_settings()))
    return path
