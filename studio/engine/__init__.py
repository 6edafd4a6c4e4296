"""The engine: executes graphs with an incremental cache, events and cancellation (no Qt)."""

from studio.engine.cache import OutputCache
from studio.engine.context import CancelToken, RunContext, RunOptions
from studio.engine.executor import Executor, NodeRecord, RunResult
from studio.engine.worker import BackgroundRunner, RunHandle

__all__ = [
    "BackgroundRunner", "CancelToken", "Executor", "NodeRecord", "OutputCache", "RunContext",
    "RunHandle", "RunOptions", "RunResult",
]
