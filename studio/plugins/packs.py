"""Registering a node pack, all or nothing. Built-in packs go through the same path as community
plugins, so the public API is exercised by our own nodes every day."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.core.errors import RegistryError
from studio.core.nodedef import NodePack
from studio.core.registry import NodeRegistry


@dataclass
class LoadReport:
    """What loading packs did: packs loaded, and every error with the pack it came from."""

    packs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def register_nodes(registry: NodeRegistry, pack: NodePack, namespace: str | None) -> list[str]:
    """Register every node of ``pack`` or none: one refused node (a clashing id or alias, a newer
    API) rolls back the ones registered before it, so a half-loaded plugin never shows up.

    Returns the registered type ids; raises RegistryError naming the pack and the node.
    """
    done: list[str] = []
    try:
        for cls in pack.nodes:
            done.append(registry.register(cls, pack=namespace).type)
    except RegistryError as exc:
        for type_id in done:
            registry.unregister(type_id)
        raise RegistryError(f"pack {pack.name!r}: {exc}; none of its nodes were loaded") from None
    return done


def register_pack(registry: NodeRegistry, pack: NodePack, *, builtin: bool, report: LoadReport) -> list[str]:
    """Register ``pack`` (namespaced by its name unless built in); a refusal is reported, not raised."""
    try:
        types = register_nodes(registry, pack, None if builtin else pack.name)
    except RegistryError as exc:
        report.errors.append(str(exc))
        return []
    report.packs.append(pack.name)
    return types


def create_registry(report: LoadReport | None = None) -> NodeRegistry:
    """A registry holding every built-in node (no community plugins: see ``studio.runtime``)."""
    from studio.plugins.manager import PluginManager

    manager = PluginManager(community=False)
    manager.load_all()
    if report is not None:
        report.packs.extend(p.name for p in manager.plugins if p.loaded)
        report.errors.extend(manager.errors())
    return manager.registry
