"""What the engine reports while it runs. The editor turns these into Qt signals, the command
line into a progress bar and a JSON report; the engine itself knows neither."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    run_id: int


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeStarted(Event):
    node_id: str
    node_type: str


@dataclass(frozen=True, slots=True)
class NodeCached(Event):
    node_id: str
    node_type: str


@dataclass(frozen=True, slots=True)
class NodeProgress(Event):
    node_id: str
    node_type: str
    value: float
    total: float | None
    #: Optional small preview (e.g. an RGB array of the latent being sampled).
    preview: Any = None


@dataclass(frozen=True, slots=True)
class NodeFinished(Event):
    node_id: str
    node_type: str
    seconds: float
    #: What an output node shows (text, saved files) for the editor to display.
    ui: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeFailed(Event):
    node_id: str
    node_type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class NodeSkipped(Event):
    node_id: str
    node_type: str
    reason: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    #: "succeeded" or "failed"
    status: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RunCancelled(Event):
    seconds: float


Listener = Callable[[Event], None]
