"""``plugin.toml``: what a plugin says about itself before any of its code runs.

Reading the manifest first means an incompatible plugin (it needs a newer node API) or one whose
requirements cannot be met is refused without importing it, and the plugin manager can show a
plugin it could not load with its name, version and author.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import NuanceError
from studio.core.nodedef import API_VERSION

MANIFEST = "plugin.toml"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
#: Names a plugin may not take: the built-in packs' and names the loader uses itself.
RESERVED_NAMES = frozenset({"basic", "sd", "studio", "nodes", "nuance", "nuance_plugins", "builtin"})


class PluginError(NuanceError):
    """A plugin could not be read, installed or loaded; the message names the plugin and the cause."""


@dataclass(frozen=True)
class Manifest:
    """A plugin's declared facts. ``api_version`` is the node API version it was written for."""

    name: str
    version: str = "0"
    api_version: int = 1
    description: str = ""
    author: str = ""
    homepage: str = ""
    requirements: tuple[str, ...] = ()
    gui: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def check_api(self) -> None:
        """Refuse a plugin written for a newer node API than this app provides."""
        if self.api_version > API_VERSION:
            raise PluginError(
                f"plugin {self.name!r} needs node API version {self.api_version}, but this Nuance Studio "
                f"provides version {API_VERSION}; update Nuance Studio to use it")


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"{where}: the plugin name {name!r} must be letters, digits, '_' or '-', "
                          "starting with a letter (it becomes the prefix of its node ids)")
    if name.lower() in RESERVED_NAMES:
        raise PluginError(f"{where}: the plugin name {name!r} is reserved for Nuance Studio itself")
    return name


def parse_manifest(data: Mapping[str, Any], where: str) -> Manifest:
    """Check the fields of a manifest table; ``where`` names the file in error messages."""
    name = check_name(data.get("name"), where)

    def text(key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise PluginError(f"{where}: '{key}' must be a string, got {value!r}")
        return value

    api = data.get("api_version", 1)
    if not isinstance(api, int) or isinstance(api, bool) or api < 1:
        raise PluginError(f"{where}: 'api_version' must be a whole number ≥ 1 (the node API it was written for), "
                          f"got {api!r}")
    requirements = data.get("requirements", [])
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise PluginError(f"{where}: 'requirements' must be a list of strings such as \"scipy>=1.10\"")
    for requirement in requirements:
        _check_requirement(requirement, where)
    gui = data.get("gui")
    if gui is not None and (not isinstance(gui, str) or not all(p.isidentifier() for p in gui.split("."))):
        raise PluginError(f"{where}: 'gui' must name a module of the plugin, such as \"gui\", got {gui!r}")
    version = data.get("version", "0")
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)
    known = {"name", "version", "api_version", "description", "author", "homepage", "requirements", "gui"}
    return Manifest(
        name=name, version=str(version), api_version=api, description=text("description"), author=text("author"),
        homepage=text("homepage"), requirements=tuple(requirements), gui=gui,
        extra={k: v for k, v in data.items() if k not in known},
    )


def _check_requirement(text: str, where: str) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise PluginError(f"{where}: requirement {text!r} is not valid ({exc})") from None


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the plugin in ``folder``; PluginError naming the file when it is bad."""
    path = folder / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PluginError(f"{folder}: no {MANIFEST} (a plugin folder needs one; see the plugin guide)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PluginError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("plugin", data)  # a [plugin] table is accepted as well as top-level keys
    if not isinstance(table, dict):
        raise PluginError(f"{path}: [plugin] must be a table")
    return parse_manifest(table, str(path))
