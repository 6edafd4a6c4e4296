"""View > Refresh model lists (F5): look at the models folders again.

Lists of model files are callables asked afresh whenever a list is opened, so a file copied into
a models folder can be chosen at once. This action re-asks every list the open workflow uses,
rebuilds the inspector's lists, and says which nodes name a file that is not there (any more).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMainWindow

from studio.core.validate import node_label


def refresh_model_lists(window: QMainWindow, quiet: bool = False) -> dict[tuple[str, str], list[Any]]:
    """Re-read the file lists of the current document's nodes; returns them by (node type, input)."""
    doc = window.document
    lists: dict[tuple[str, str], list[Any]] = {}
    missing: list[str] = []
    failed: list[str] = []
    for node_id, node in doc.graph.nodes.items():
        spec = doc.spec(node_id)
        if spec is None:
            continue
        for inp in spec.inputs:
            if not callable(inp.choices) or doc.graph.link_into(node_id, inp.name) is not None:
                continue
            key = (spec.type, inp.name)
            if key not in lists:
                try:
                    lists[key] = inp.current_choices() or []
                except Exception as exc:  # a plugin's list must not stop the others
                    failed.append(f"{spec.display_name} · {inp.label}: {exc}")
                    lists[key] = []
            value = node.inputs.get(inp.name)
            if value not in lists[key]:
                shown = repr(value) if value not in (None, "") else "nothing"
                missing.append(f"{node_label(node, spec)} (node {node_id}) names {shown}")
    from studio.ui import panels  # the package imports this module

    found = panels.of(window)
    inspector = found.inspector
    if inspector.node_id is not None:
        inspector.show_node(inspector.node_id)
    for item in window.scene.nodes.values():
        item.update()
    if not quiet:
        files = len({choice for options in lists.values() for choice in options})
        text = f"Model lists refreshed: {_count(len(lists), 'list')}, {_count(files, 'file')}"
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            text += f"; not found: {missing[0]}{more}"
        if failed:
            text += f"; could not list {failed[0]}"
        window.show_message(text)
    return lists


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"
