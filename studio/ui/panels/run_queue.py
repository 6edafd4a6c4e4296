"""Batches of runs: Ctrl+Enter queues "batch count" runs, one after another.

Runs wait here and go to the engine one at a time, each from the graph as it is when its turn
comes: seeds move on between them as their controls say (the window does that after each run
it queues), and changing the batch count while a batch runs adds or drops the runs still waiting.
The running node's progress and the time it has left show in the status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QMainWindow, QProgressBar, QSpinBox, QToolBar

from studio.engine import events as eev
from studio.ui.eta import ProgressClock, format_eta

MAX_BATCH = 999


class RunQueue(QObject):
    """Runs waiting their turn, the batch count, and progress in the status bar."""

    def __init__(self, window: QMainWindow, before_run: Callable[[], None] | None = None):
        super().__init__(window)
        self.window_ = window
        self.runs = window.runs
        self.before_run = before_run
        #: Runs of this batch not yet given to the engine.
        self.pending = 0
        self._batch_active = False
        self.clock = ProgressClock()
        self._progress_node: str | None = None

        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, MAX_BATCH)
        self.batch_spin.setValue(1)
        self.batch_spin.setToolTip("How many runs Ctrl+Enter queues; seeds move on between them as their "
                                   "controls say. Change it while a batch runs to add or drop the runs still waiting.")
        self.batch_spin.setAccessibleName("Batch count")
        self.batch_spin.setKeyboardTracking(False)
        self._last_count = 1
        self.batch_spin.valueChanged.connect(self._count_changed)
        self.queue_label = QLabel("Queue: 0")
        self.queue_label.setToolTip("Runs queued: the one running and those waiting")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()

        self.runs.event.connect(self._on_event)
        self.runs.finished.connect(self._on_finished)
        window.document_changed.connect(lambda _doc: self.clear())

    def add_to(self, toolbar: QToolBar) -> None:
        toolbar.addSeparator()
        label = QLabel(" Batch count ", toolbar)
        label.setBuddy(self.batch_spin)
        toolbar.addWidget(label)
        toolbar.addWidget(self.batch_spin)
        toolbar.addWidget(QLabel("  ", toolbar))
        toolbar.addWidget(self.queue_label)
        self.window_.statusBar().addPermanentWidget(self.progress)

    # -- queueing ----------------------------------------------------------------------------------
    @property
    def length(self) -> int:
        """Runs queued and not finished: the one running (or several, queued elsewhere) and those waiting."""
        return self.pending + self.runs.in_flight

    def queue_batch(self) -> None:
        """Queue ``batch count`` runs of the current document (Ctrl+Enter)."""
        if self.before_run is not None:
            self.before_run()
        self.pending += self.batch_spin.value()
        self._batch_active = True
        self._pump()

    def clear(self) -> None:
        """Drop the runs still waiting (cancel, another document shown)."""
        self.pending = 0
        self._batch_active = False
        self._update_label()

    def _count_changed(self, value: int) -> None:
        delta, self._last_count = value - self._last_count, value
        if self._batch_active:
            self.pending = max(0, self.pending + delta)
            self._update_label()

    def _pump(self) -> None:
        while self.pending > 0 and self.runs.in_flight == 0:
            self.pending -= 1
            self.window_.queue_run()
            if self.runs.in_flight == 0:  # the graph cannot run: the window has said why
                self.pending = 0
        if self.pending == 0 and self.runs.in_flight == 0:
            self._batch_active = False
        self._update_label()

    def _update_label(self) -> None:
        self.queue_label.setText(f"Queue: {self.length}")

    # -- progress ----------------------------------------------------------------------------------
    def _on_event(self, tag: object, event: eev.Event) -> None:
        if tag is not self.window_.document:
            return
        if isinstance(event, eev.RunStarted):
            self._update_label()
        elif isinstance(event, eev.NodeProgress) and event.total:
            if event.node_id != self._progress_node:
                self._progress_node = event.node_id
                self.clock.reset()
            fraction = max(0.0, min(1.0, event.value / event.total))
            self.clock.report(fraction)
            eta = format_eta(self.clock.eta())
            self.progress.setValue(round(fraction * 1000))
            self.progress.setFormat(f"{fraction:.0%}" + (f" · {eta} left" if eta else ""))
            self.progress.show()
        elif isinstance(event, (eev.NodeFinished, eev.NodeCached, eev.NodeFailed, eev.RunFinished, eev.RunCancelled)):
            self._hide_progress()

    def _hide_progress(self) -> None:
        self._progress_node = None
        self.clock.reset()
        self.progress.hide()

    def _on_finished(self, _tag: object, result: Any, _error: str) -> None:
        self._hide_progress()
        if result is not None and getattr(result, "status", "") == "cancelled":
            self.clear()
        self._pump()

