"""Node packs and community plugins: discovery, loading with failure isolation, install / enable /
disable, trust. The built-in packs in ``nodes/`` load through the same code as plugins."""

from studio.plugins.manifest import Manifest, PluginError
from studio.plugins.packs import LoadReport, create_registry, register_nodes, register_pack

__all__ = ["LoadReport", "Manifest", "PluginError", "create_registry", "register_nodes", "register_pack"]
