"""The project's own exceptions: each one carries a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


class NuanceError(Exception):
    """Base of every error the project raises on purpose (bad input, not a bug)."""


class RegistryError(NuanceError):
    """A node class could not be registered (duplicate id, clashing alias, bad declaration)."""


class WorkflowError(NuanceError):
    """A workflow file (or dict) could not be read: says which file and where in it."""


class InputValueError(NuanceError, ValueError):
    """A value does not fit an input (wrong type, out of range, not among the choices)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph, located by node id, node type and input name."""

    message: str
    node_id: str | None = None
    node_type: str | None = None
    input: str | None = None

    def __str__(self) -> str:
        where = []
        if self.node_id is not None:
            where.append(f"node {self.node_id}" + (f" ({self.node_type})" if self.node_type else ""))
        if self.input is not None:
            where.append(f"input '{self.input}'")
        return (", ".join(where) + ": " if where else "") + self.message


class GraphValidationError(NuanceError):
    """The graph cannot run as it stands; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(f"the graph cannot run ({head}): " + "; ".join(str(p) for p in self.problems))


class NodeExecutionError(NuanceError):
    """A node failed while running; names the node so the user can find it."""

    def __init__(self, node_id: str, node_type: str, message: str):
        self.node_id = node_id
        self.node_type = node_type
        self.message = message
        super().__init__(f"node {node_id} ({node_type}) failed: {message}")


class Cancelled(NuanceError):
    """Raised inside a node when the user cancelled the run; the engine stops cleanly."""

    def __init__(self, message: str = "the run was cancelled"):
        super().__init__(message)
