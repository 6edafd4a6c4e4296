"""Setting up the engine one way for every front end: the command line and the editor.

Both must load the same nodes and give runs the same options (output folder, device, the
workflow's folder for relative files, the workflow itself for embedding in saved images), so
a graph behaves identically whether it runs headless or from the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.registry import NodeRegistry
from studio.core.workflow import Workflow
from studio.engine import RunOptions

if TYPE_CHECKING:
    from studio.plugins.manager import PluginManager


def load_plugins() -> PluginManager:
    """Every installed node: the built-in packs and each enabled plugin, each loaded on its own."""
    from studio.plugins.manager import PluginManager

    manager = PluginManager()
    manager.load_all()
    return manager


def load_registry() -> tuple[NodeRegistry, list[str]]:
    """Every installed node, and the errors of plugins that failed to load (for the user to read)."""
    manager = load_plugins()
    return manager.registry, manager.errors()


def run_options(workflow: Workflow | None, *, output_dir: Path | None = None, device: str = "auto",
                models_dir: Path | None = None) -> RunOptions:
    """Options for running ``workflow``: the default output folder unless one is given."""
    resolved = (output_dir or RunOptions().resolved_output_dir()).resolve()
    return RunOptions(output_dir=resolved, device=device, models_dir=models_dir,
                      base_dir=workflow.base_dir if workflow is not None else None, workflow=workflow)
