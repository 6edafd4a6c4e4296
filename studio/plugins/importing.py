"""Importing a plugin folder as a package, and forgetting it again.

A plugin folder is imported under ``nuance_plugins.<name>`` rather than its folder name, so two
plugins cannot shadow each other (or an installed library) by picking the same folder name, and
everything one plugin imported of its own can be found again and dropped when it is disabled or
reloaded.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

NAMESPACE = "nuance_plugins"


def module_name(plugin: str) -> str:
    """The module name a plugin's package is imported under."""
    return f"{NAMESPACE}.{plugin}"


def _namespace() -> types.ModuleType:
    parent = sys.modules.get(NAMESPACE)
    if parent is None:
        parent = types.ModuleType(NAMESPACE, "Community node plugins, each imported under its own name.")
        parent.__path__ = []
        sys.modules[NAMESPACE] = parent
    return parent


def import_package(folder: Path, name: str) -> types.ModuleType:
    """Import ``folder/__init__.py`` as the package ``name`` (relative imports inside it work).

    On failure nothing it imported of its own stays in ``sys.modules``.
    """
    init = folder / "__init__.py"
    if not init.is_file():
        raise ImportError(f"{folder} has no __init__.py: a plugin folder must be a Python package")
    if name.startswith(NAMESPACE + "."):
        _namespace()
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        forget_modules(name)
        raise
    parent_name, _, child = name.rpartition(".")
    if parent_name and parent_name in sys.modules:
        setattr(sys.modules[parent_name], child, module)
    return module


def forget_modules(name: str) -> list[str]:
    """Drop ``name`` and its submodules from ``sys.modules`` so the next import reads the files again."""
    gone = [key for key in sys.modules if key == name or key.startswith(name + ".")]
    for key in gone:
        del sys.modules[key]
    parent_name, _, child = name.rpartition(".")
    parent = sys.modules.get(parent_name) if parent_name else None
    if parent is not None and getattr(parent, child, None) is not None:
        delattr(parent, child)
    importlib.invalidate_caches()
    return gone
