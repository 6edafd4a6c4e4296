"""Running graphs on a background thread, one after another, so a UI never blocks on a run.

Runs are queued in order on a single worker thread (they share the output cache and, later, the
models in memory, so running two at once would only fight over them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from studio.core.graph import Graph
from studio.engine.context import CancelToken, RunOptions
from studio.engine.events import Listener
from studio.engine.executor import Executor, RunResult


class RunHandle:
    """A queued or running run: wait for it, or cancel it (within one progress step)."""

    def __init__(self, future: Future[RunResult], token: CancelToken):
        self._future = future
        self._token = token

    def cancel(self) -> None:
        """Ask the run to stop; a run still waiting in the queue never starts."""
        self._token.cancel()
        self._future.cancel()

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, callback: Callable[[Future[RunResult]], None]) -> None:
        """Call ``callback`` with the run's future when it ends (on the worker thread, or at once
        if it already ended): how a UI hears of the end without waiting for it."""
        self._future.add_done_callback(callback)

    def result(self, timeout: float | None = None) -> RunResult:
        """The run's result. Raises GraphValidationError if the graph could not run at all, and
        concurrent.futures.CancelledError if it was cancelled before it started."""
        return self._future.result(timeout)


class BackgroundRunner:
    """A queue of runs executed in order on one worker thread."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nuance-run")
        self._handles: list[RunHandle] = []

    def submit(self, graph: Graph, targets: Iterable[str] | None = None, *, listener: Listener | None = None,
               options: RunOptions | None = None) -> RunHandle:
        """Queue a run of a snapshot of ``graph``: later edits do not affect this run."""
        snapshot = graph.copy()
        target_list = None if targets is None else list(targets)
        token = CancelToken()
        future = self._pool.submit(self.executor.run, snapshot, target_list, listener=listener,
                                   cancel=token, options=options)
        handle = RunHandle(future, token)
        self._handles = [h for h in self._handles if not h.done()] + [handle]
        return handle

    def shutdown(self, cancel_pending: bool = True) -> None:
        """Stop the worker; with ``cancel_pending`` the running run is cancelled too (at its next step)."""
        if cancel_pending:
            for handle in self._handles:
                handle.cancel()
        self._pool.shutdown(wait=True, cancel_futures=cancel_pending)
