"""What the latest run did to each node, per document: the inspector's "last run" line.

Kept apart from the canvas items, whose run state is cleared when a new run starts and is lost
when another document is shown; here each document keeps its nodes' last outcomes.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from studio.engine import events as eev
from studio.ui.runs import RunController


@dataclass(frozen=True)
class NodeOutcome:
    """One node's part in the latest run that included it."""

    status: str  # queued, running, done, cached, failed, skipped
    seconds: float | None = None
    message: str = ""

    def describe(self) -> str:
        if self.status == "done":
            return f"ran in {self.seconds:.2f} s" if self.seconds is not None else "ran"
        if self.status == "cached":
            return "cached: its inputs had not changed, so the last result was reused"
        if self.status == "failed":
            return f"failed: {self.message}"
        if self.status == "skipped":
            return f"skipped ({self.message})" if self.message else "skipped"
        return self.status


class NodeRunLog(QObject):
    """Listens to every run; ``changed(document)`` when a node's outcome in it changed."""

    changed = Signal(object)

    def __init__(self, runs: RunController, parent: QObject | None = None):
        super().__init__(parent)
        self._logs: weakref.WeakKeyDictionary[object, dict[str, NodeOutcome]] = weakref.WeakKeyDictionary()
        runs.event.connect(self._on_event)

    def outcome(self, document: object, node_id: str) -> NodeOutcome | None:
        try:
            return self._logs.get(document, {}).get(node_id)
        except TypeError:  # a tag that cannot be weakly referenced never has a log
            return None

    def _on_event(self, tag: object, event: eev.Event) -> None:
        try:
            log = self._logs.setdefault(tag, {})
        except TypeError:
            return
        if isinstance(event, eev.RunStarted):
            for node_id in event.node_ids:
                log[node_id] = NodeOutcome("queued")
        elif isinstance(event, eev.NodeStarted):
            log[event.node_id] = NodeOutcome("running")
        elif isinstance(event, eev.NodeFinished):
            log[event.node_id] = NodeOutcome("done", event.seconds)
        elif isinstance(event, eev.NodeCached):
            log[event.node_id] = NodeOutcome("cached")
        elif isinstance(event, eev.NodeFailed):
            log[event.node_id] = NodeOutcome("failed", message=event.message)
        elif isinstance(event, eev.NodeSkipped):
            log[event.node_id] = NodeOutcome("skipped", message=event.reason)
        elif isinstance(event, eev.RunCancelled):
            for node_id, outcome in list(log.items()):
                if outcome.status in ("queued", "running"):
                    log[node_id] = NodeOutcome("skipped", message="run cancelled")
        else:
            return
        self.changed.emit(tag)
