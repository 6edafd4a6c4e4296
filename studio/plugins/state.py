"""``plugins.toml`` in the user's config folder: which plugins are disabled, and where each
installed one came from (the exact git commit or package version), so ``update`` knows where to
look and the plugin manager can say what is installed.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.core import paths, toml_text

STATE_FILE = "plugins.toml"


def plugins_dir() -> Path:
    """Where installed plugins live: one folder per plugin."""
    return paths.data_dir() / "plugins"


def packages_dir(name: str) -> Path:
    """A plugin's private folder for its requirements (never the app's own environment)."""
    return paths.data_dir() / "plugin-packages" / name


def state_path() -> Path:
    return paths.config_dir() / STATE_FILE


@dataclass
class InstallRecord:
    """How a plugin was installed. ``kind``: folder, archive, git, package or dev (linked, not copied)."""

    kind: str
    source: str
    version: str = ""
    rev: str = ""
    commit: str = ""
    path: str = ""
    installed: str = ""
    trusted: bool = False
    packages: dict[str, str] = field(default_factory=dict)

    def to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {}, None)}

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> InstallRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("kind", "folder")
        known.setdefault("source", "")
        known["packages"] = {str(k): str(v) for k, v in dict(known.get("packages") or {}).items()}
        return cls(**known)


@dataclass
class PluginState:
    """The file's content. Unknown keys are kept, so a newer app's additions survive an older one."""

    disabled: set[str] = field(default_factory=set)
    installed: dict[str, InstallRecord] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls) -> PluginState:
        path = state_path()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            # Never fail start-up over it; the file is rewritten whole on the next change.
            import logging

            logging.getLogger(__name__).warning("ignoring unreadable %s: %s", path, exc)
            return cls()
        disabled = {str(n) for n in data.pop("disabled", []) if isinstance(n, str)}
        installed = {}
        for name, record in dict(data.pop("installed", {})).items():
            if isinstance(record, dict):
                installed[str(name)] = InstallRecord.from_toml(record)
        return cls(disabled=disabled, installed=installed, extra=data)

    def save(self) -> None:
        data: dict[str, Any] = dict(self.extra)
        data["disabled"] = sorted(self.disabled)
        data["installed"] = {name: record.to_toml() for name, record in sorted(self.installed.items())}
        path = state_path()
        if not self.disabled and not self.installed and not self.extra:
            path.unlink(missing_ok=True)  # nothing to remember: leave no file behind
            return
        toml_text.write(path, data)
