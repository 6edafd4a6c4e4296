"""Registering node packs. Built-in packs go through the same path as community plugins, so the
public API is exercised by our own nodes every day."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from studio.core.errors import RegistryError
from studio.core.nodedef import NodePack
from studio.core.registry import NodeRegistry


@dataclass
class LoadReport:
    """What loading packs did: packs loaded, and every error with the pack it came from."""

    packs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def register_pack(registry: NodeRegistry, pack: NodePack, *, builtin: bool, report: LoadReport) -> None:
    """Register each node of ``pack``; a node that is refused is reported, the others still load."""
    namespace = None if builtin else pack.name
    for cls in pack.nodes:
        try:
            registry.register(cls, pack=namespace)
        except RegistryError as exc:
            report.errors.append(f"pack {pack.name!r}: {exc}")
    report.packs.append(pack.name)


def load_builtin_packs(registry: NodeRegistry, report: LoadReport) -> None:
    """Import every sub-package of ``nodes`` that exposes ``NODE_PACK``."""
    import nodes

    for info in sorted(pkgutil.iter_modules(nodes.__path__), key=lambda i: i.name):
        module_name = f"nodes.{info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # one broken pack must not take the others down
            report.errors.append(f"built-in pack {module_name}: failed to import: {type(exc).__name__}: {exc}")
            continue
        pack = getattr(module, "NODE_PACK", None)
        if isinstance(pack, NodePack):
            register_pack(registry, pack, builtin=True, report=report)


def create_registry(report: LoadReport | None = None) -> NodeRegistry:
    """A registry holding every built-in node."""
    registry = NodeRegistry()
    load_builtin_packs(registry, report if report is not None else LoadReport())
    return registry
