"""Setting up the engine one way for every front end: the command line and the editor.

Both must load the same nodes and give runs the same options (output folder, device, the
workflow's folder for relative files, the workflow itself for embedding in saved images), so
a graph behaves identically whether it runs headless or from the window.
"""

from __future__ import annotations

from pathlib import Path

from studio.core.registry import NodeRegistry
from studio.core.workflow import Workflow
from studio.engine import RunOptions


def load_registry() -> tuple[NodeRegistry, list[str]]:
    """Every installed node, and the errors of packs that failed to load (for the user to read)."""
    from studio.plugins import LoadReport, create_registry

    report = LoadReport()
    registry = create_registry(report)
    return registry, list(report.errors)


def run_options(workflow: Workflow | None, *, output_dir: Path | None = None, device: str = "auto",
                models_dir: Path | None = None) -> RunOptions:
    """Options for running ``workflow``: the default output folder unless one is given."""
    resolved = (output_dir or RunOptions().resolved_output_dir()).resolve()
    return RunOptions(output_dir=resolved, device=device, models_dir=models_dir,
                      base_dir=workflow.base_dir if workflow is not None else None, workflow=workflow)
