"""Running graphs from the editor: queue runs on the engine's worker thread, hear its events.

The engine calls its listener on the worker thread; emitting a Qt signal from there delivers the
event on the GUI thread (a queued connection), so the window never blocks on a run and never
touches widgets from another thread.
"""

from __future__ import annotations

import copy
from concurrent.futures import CancelledError, Future
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage

from studio.core.errors import GraphValidationError
from studio.core.registry import NodeRegistry
from studio.core.validate import check_graph
from studio.core.workflow import Workflow
from studio.engine import BackgroundRunner, Executor, OutputCache, RunHandle, RunResult
from studio.engine.cache import DEFAULT_MAX_BYTES
from studio.runtime import run_options


class RunController(QObject):
    """Queues runs of a workflow and re-emits what the engine reports, on the GUI thread."""

    #: (tag, engine event): the tag given to :meth:`queue`, so a window can tell whose run it is.
    event = Signal(object, object)
    #: A run ended: (tag, RunResult or None, error message or "").
    finished = Signal(object, object, str)
    #: The graph cannot run as it stands: the problems, each naming its node.
    problems = Signal(list)
    # Emitted from the worker thread; always queued, so the end of a run that finished before its
    # callback was attached still arrives after the run's events, on the GUI thread.
    _from_worker_event = Signal(object, object)
    _from_worker_finished = Signal(object, object, str)

    def __init__(self, registry: NodeRegistry, parent: QObject | None = None):
        super().__init__(parent)
        self.registry = registry
        queued = Qt.ConnectionType.QueuedConnection
        self._from_worker_event.connect(self.event, queued)
        self._from_worker_finished.connect(self.finished, queued)
        self._runner: BackgroundRunner | None = None
        self._handles: list[RunHandle] = []
        self._in_flight = 0
        # Connected first, so every other listener of ``finished`` already sees the lower count.
        self.finished.connect(self._count_finished)
        #: The device runs use ("auto", "cpu", "cuda", "mps"); the preferences set it.
        self.device = "auto"
        self._cache_bytes: int | None = None

    def configure(self, device: str | None = None, cache_bytes: int | None = None) -> None:
        """Settings for the runs queued from now on; a new cache size applies at once."""
        if device is not None:
            self.device = device
        if cache_bytes is not None:
            self._cache_bytes = int(cache_bytes)
            if self._runner is not None:
                self._runner.executor.cache.max_bytes = self._cache_bytes

    @property
    def cache_bytes(self) -> int:
        """The output cache's bound (what the next runner will get, before the first run)."""
        if self._runner is not None:
            return self._runner.executor.cache.max_bytes
        return self._cache_bytes if self._cache_bytes is not None else DEFAULT_MAX_BYTES

    def clear_cache(self) -> None:
        """Forget every cached node output (the code that made them was replaced)."""
        if self._runner is not None:  # made on the first run: nothing is cached before
            self._runner.executor.cache.clear()

    @property
    def in_flight(self) -> int:
        """Runs queued whose end has not yet reached the GUI thread (unlike :attr:`busy`, which
        turns False on the worker thread before the window has heard the run's last events)."""
        return self._in_flight

    def _count_finished(self, _tag: object, _result: object, _error: str) -> None:
        self._in_flight = max(0, self._in_flight - 1)

    @property
    def runner(self) -> BackgroundRunner:
        """Made on the first run: opening the window starts no thread and loads no model code."""
        if self._runner is None:
            cache = OutputCache(self._cache_bytes) if self._cache_bytes is not None else None
            self._runner = BackgroundRunner(Executor(self.registry, cache))
        return self._runner

    @property
    def busy(self) -> bool:
        self._handles = [h for h in self._handles if not h.done()]
        return bool(self._handles)

    def queue(self, workflow: Workflow, tag: object = None) -> RunHandle | None:
        """Check the graph now (so problems show at once) and queue a run of a snapshot of it."""
        try:
            check_graph(workflow.graph, self.registry)
        except GraphValidationError as exc:
            self.problems.emit(list(exc.problems))
            return None
        # The run embeds the workflow in the images it saves: give it a copy the editor cannot change.
        snapshot = Workflow(workflow.graph.copy(), ui=copy.deepcopy(workflow.ui), meta=copy.deepcopy(workflow.meta),
                            path=workflow.path)
        handle = self.runner.submit(snapshot.graph, listener=lambda event: self._from_worker_event.emit(tag, event),
                                    options=run_options(snapshot, device=self.device))
        self._handles.append(handle)
        self._in_flight += 1
        # The callback runs on the worker thread: it only emits, Qt carries it to the GUI thread.
        handle.add_done_callback(lambda future: self._done(tag, future))
        return handle

    def _done(self, tag: object, future: Future[RunResult]) -> None:
        try:
            result = future.result()
        except CancelledError:
            self._from_worker_finished.emit(tag, None, "cancelled before it started")
        except GraphValidationError as exc:
            self._from_worker_finished.emit(tag, None, str(exc))
        except Exception as exc:  # an engine bug must not take the window down
            self._from_worker_finished.emit(tag, None, f"{type(exc).__name__}: {exc}")
        else:
            self._from_worker_finished.emit(tag, result, "")

    def cancel(self) -> bool:
        """Cancel the running run (at its next step) and every queued one; False when idle."""
        pending = [h for h in self._handles if not h.done()]
        for handle in pending:
            handle.cancel()
        return bool(pending)

    def shutdown(self) -> None:
        if self._runner is not None:
            self._runner.shutdown(cancel_pending=True)
            self._runner = None


def images_of(result: RunResult) -> list[str]:
    """Image files the run's output nodes showed (saved or previews), in run order."""
    paths: list[str] = []
    for record in result.nodes.values():
        images: Any = record.ui.get("images") if record.ui else None
        if isinstance(images, list):
            paths.extend(str(p) for p in images)
    return paths


def preview_image(preview: Any) -> QImage | None:
    """A sampler's preview (``uint8 [H, W, 3]``, as numpy gives it) as an image; None if it is not one."""
    shape = getattr(preview, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 or str(getattr(preview, "dtype", "")) != "uint8":
        return None
    height, width = int(shape[0]), int(shape[1])
    data = bytes(preview.tobytes()) if hasattr(preview, "tobytes") else b""
    if len(data) != width * height * 3:
        return None
    # copy(): the QImage must own its pixels, not borrow the bytes object about to go away.
    return QImage(data, width, height, width * 3, QImage.Format.Format_RGB888).copy()
