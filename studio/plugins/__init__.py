"""Finding and loading node packs: the built-in ones in ``nodes/`` and, later, user plugins."""

from studio.plugins.packs import LoadReport, create_registry, register_pack

__all__ = ["LoadReport", "create_registry", "register_pack"]
