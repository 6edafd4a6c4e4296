"""The executor: runs what the requested outputs need, re-running only what changed.

Nodes run in dependency order. Before running a node the executor computes its signature
(see :mod:`studio.engine.signature`); a hit in the output cache replaces the run. A failing node
fails the run with its id, type and message; the nodes that needed it are skipped, independent
branches still run, and everything already cached stays cached.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from studio.core.errors import Cancelled, InputValueError, NuanceError
from studio.core.graph import Graph, NodeMode
from studio.core.nodedef import NodeSpec
from studio.core.registry import NodeRegistry
from studio.core.validate import CheckedGraph, check_graph
from studio.engine.cache import CacheEntry, OutputCache, estimate_nbytes
from studio.engine.context import CancelToken, RunContext, RunOptions
from studio.engine.events import (
    Event,
    Listener,
    NodeCached,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    RunCancelled,
    RunFinished,
    RunStarted,
)
from studio.engine.signature import constant_key, encode_value, output_key

log = logging.getLogger(__name__)

EXECUTED, CACHED, FAILED, SKIPPED = "executed", "cached", "failed", "skipped"


class _Unavailable:
    """Marks an output slot that has no value this run (its node failed, was skipped or muted).

    ``switched_off`` is True when the cause is the user's choice (a muted node, or a bypassed one
    with nothing to pass): an optional input wired to it then counts as unwired. A failure never
    does, so a node never runs on silently missing values.
    """

    __slots__ = ("reason", "switched_off")

    def __init__(self, reason: str, switched_off: bool = False):
        self.reason = reason
        self.switched_off = switched_off


@dataclass
class NodeRecord:
    """What happened to one node in one run."""

    node_id: str
    node_type: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    reason: str | None = None
    traceback: str | None = None
    ui: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()


@dataclass
class RunResult:
    """The outcome of one run: per-node records, the targets' output values and saved files."""

    run_id: int
    status: str
    nodes: dict[str, NodeRecord]
    outputs: dict[str, tuple[Any, ...]]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def files(self) -> list[str]:
        return [f for record in self.nodes.values() for f in record.files]

    @property
    def failures(self) -> list[NodeRecord]:
        return [r for r in self.nodes.values() if r.status == FAILED]

    def count(self, status: str) -> int:
        return sum(1 for r in self.nodes.values() if r.status == status)


class Executor:
    """Runs graphs against a registry, sharing one output cache across runs and workflows."""

    _run_ids = itertools.count(1)

    def __init__(self, registry: NodeRegistry, cache: OutputCache | None = None,
                 options: RunOptions | None = None):
        self.registry = registry
        self.cache = cache if cache is not None else OutputCache()
        self.options = options if options is not None else RunOptions()

    def free_memory(self) -> None:
        """Drop every cached output (the next run recomputes from scratch)."""
        self.cache.clear()

    def run(self, graph: Graph, targets: Iterable[str] | None = None, *, listener: Listener | None = None,
            cancel: CancelToken | None = None, options: RunOptions | None = None) -> RunResult:
        """Validate, then run. Raises GraphValidationError (before anything runs) if invalid."""
        checked = check_graph(graph, self.registry, targets)
        return _Run(self, checked, listener, cancel or CancelToken(), options or self.options).execute()


class _Run:
    """State of one run; kept off the Executor so runs never share mutable state."""

    def __init__(self, executor: Executor, checked: CheckedGraph, listener: Listener | None,
                 cancel: CancelToken, options: RunOptions):
        self.executor = executor
        self.checked = checked
        self.cache = executor.cache
        self.listener = listener
        self.cancel = cancel
        self.options = options
        self.run_id = next(Executor._run_ids)
        self.nonce = os.urandom(8)
        self.records: dict[str, NodeRecord] = {}
        self.values: dict[str, tuple[Any, ...]] = {}
        self.keys: dict[str, tuple[bytes | None, ...]] = {}
        #: Nodes whose output can differ between runs with equal inputs (non-deterministic ones and
        #: everything downstream of them): never looked up or stored in the cache.
        self.volatile: set[str] = set()

    def emit(self, event: Event) -> None:
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:  # a broken listener (UI, progress bar) must not break the run
            log.exception("event listener failed on %r", event)

    def execute(self) -> RunResult:
        checked = self.checked
        graph = checked.graph
        started = time.perf_counter()
        self.emit(RunStarted(self.run_id, tuple(checked.order)))
        remaining = {node_id: 0 for node_id in checked.order}
        for wired in checked.links_into.values():
            for link in wired.values():
                remaining[link.from_node] += 1
        targets = set(checked.targets)
        cancelled = False
        for node_id in checked.order:
            if self.cancel.cancelled:
                cancelled = True
                break
            try:
                self.run_node(node_id)
            except Cancelled:
                cancelled = True
                break
            for link in checked.links_into[node_id].values():
                source = link.from_node
                remaining[source] -= 1
                if remaining[source] == 0 and source not in targets:
                    self.values.pop(source, None)  # nothing else needs it: let memory go
        if cancelled:
            for node_id in checked.order:
                if node_id not in self.records:
                    node = graph.nodes[node_id]
                    self.records[node_id] = NodeRecord(node_id, node.type, SKIPPED, reason="the run was cancelled")
        seconds = time.perf_counter() - started
        failed = any(r.status == FAILED for r in self.records.values())
        status = "cancelled" if cancelled else "failed" if failed else "succeeded"
        if cancelled:
            self.emit(RunCancelled(self.run_id, seconds))
        else:
            self.emit(RunFinished(self.run_id, status, seconds))
        outputs = {t: self.values[t] for t in checked.targets if t in self.values}
        return RunResult(self.run_id, status, self.records, outputs, seconds)

    # -- one node ------------------------------------------------------------------------------
    def skip(self, node_id: str, node_type: str, reason: str, n_outputs: int, as_source: str,
             switched_off: bool) -> None:
        """Record a node that did not run; ``as_source`` is how its dependants explain their skip."""
        self.records[node_id] = NodeRecord(node_id, node_type, SKIPPED, reason=reason)
        gone = _Unavailable(f"node {node_id} ({node_type}), {as_source}", switched_off)
        self.values[node_id] = (gone,) * n_outputs
        self.keys[node_id] = (None,) * n_outputs
        self.emit(NodeSkipped(self.run_id, node_id, node_type, reason))

    def run_node(self, node_id: str) -> None:
        checked = self.checked
        node = checked.graph.nodes[node_id]
        spec = checked.specs[node_id]
        node_type = spec.type
        n_out = len(spec.outputs)
        if node.mode is NodeMode.MUTED:
            self.skip(node_id, node_type, "muted", n_out, "which is muted", switched_off=True)
            return

        kwargs = dict(checked.constants[node_id])
        wired = checked.links_into[node_id]
        hasher = blake2b(digest_size=16)
        hasher.update(b"%s\x00%d\x00" % (node_type.encode(), spec.version))
        value_keys: dict[str, bytes] = {}
        for inp in spec.inputs:
            name = inp.name
            link = wired.get(name)
            if link is None:
                if name in kwargs:
                    encoded = encode_value(kwargs[name])
                    value_keys[name] = b"C" + encoded
                    hasher.update(b"%s=%s" % (name.encode(), encoded))
                continue
            value = self.values[link.from_node][link.from_output]
            if type(value) is _Unavailable:
                if (inp.required or not value.switched_off) and node.mode is NodeMode.NORMAL:
                    self.skip(node_id, node_type, f"needs {value.reason}", n_out, "which was skipped",
                              switched_off=value.switched_off)
                    return
                hasher.update(b"%s-" % name.encode())
                continue
            key = self.keys[link.from_node][link.from_output]
            if link.from_node in self.volatile:
                self.volatile.add(node_id)
            kwargs[name] = value
            value_keys[name] = key
            hasher.update(b"%s<%s" % (name.encode(), key))

        if node.mode is NodeMode.BYPASSED:
            self.bypass(node_id, spec, kwargs, value_keys)
            return

        ctx = RunContext(self.run_id, node_id, node_type, self.options, self.cancel, self.emit, checked.graph)
        try:
            for name in wired:
                inp = spec.input_map.get(name)
                if inp is not None and name in kwargs and (inp.min is not None or inp.max is not None or inp.choices is not None):
                    try:
                        inp.check_bounds(kwargs[name])
                    except InputValueError as exc:
                        raise InputValueError(f"input '{name}': {exc}") from None
            if spec.has_fingerprint:
                hasher.update(b"fp" + encode_value(_hashable_repr(spec.cls.fingerprint(ctx, **kwargs))))
            if not spec.deterministic:
                self.volatile.add(node_id)
            cacheable = node_id not in self.volatile
            if not cacheable:
                hasher.update(self.nonce + node_id.encode())
            signature = hasher.digest()
            entry = self.cache.get(signature) if cacheable else None
            if entry is not None and not all(os.path.exists(f) for f in (*entry.files, *entry.temp_files)):
                entry = None  # a file it saved was deleted: make it again
            if entry is not None:
                self.values[node_id] = entry.outputs
                self.keys[node_id] = tuple(output_key(signature, i) for i in range(n_out))
                self.records[node_id] = NodeRecord(node_id, node_type, CACHED, ui=entry.ui, files=entry.files)
                self.emit(NodeCached(self.run_id, node_id, node_type))
                return
            self.emit(NodeStarted(self.run_id, node_id, node_type))
            if spec.has_validate:
                messages = spec.cls.validate(**kwargs)
                if isinstance(messages, str):
                    messages = [messages]
                if messages:
                    raise InputValueError("; ".join(str(m) for m in messages))
            start = time.perf_counter()
            result = spec.cls().run(ctx, **kwargs)
            seconds = time.perf_counter() - start
            outputs = _normalise_outputs(spec, result)
        except Cancelled:
            self.records[node_id] = NodeRecord(node_id, node_type, SKIPPED, reason="the run was cancelled")
            raise
        except Exception as exc:  # any failure inside a node fails the node, never the app
            message = str(exc) if isinstance(exc, NuanceError) else f"{type(exc).__name__}: {exc}"
            if spec.pack is not None:  # say whose code failed: the user knows where to report it
                message = f"{message} (in plugin '{spec.pack}')"
            tb = traceback.format_exc()
            self.records[node_id] = NodeRecord(node_id, node_type, FAILED, error=message, traceback=tb,
                                               files=tuple(ctx.files))
            self.values[node_id] = (_Unavailable(f"node {node_id} ({node_type}), which failed"),) * n_out
            self.keys[node_id] = (None,) * n_out
            self.emit(NodeFailed(self.run_id, node_id, node_type, message, tb))
            return
        files = tuple(ctx.files)
        if cacheable:
            self.cache.put(signature, CacheEntry(outputs, ctx.ui, files, _entry_nbytes(outputs), tuple(ctx.temp_files)))
        self.values[node_id] = outputs
        self.keys[node_id] = tuple(output_key(signature, i) for i in range(n_out))
        self.records[node_id] = NodeRecord(node_id, node_type, EXECUTED, seconds=seconds, ui=ctx.ui, files=files)
        self.emit(NodeFinished(self.run_id, node_id, node_type, seconds, ctx.ui))

    def bypass(self, node_id: str, spec: NodeSpec, kwargs: dict[str, Any], value_keys: dict[str, bytes]) -> None:
        """Pass, for each output, the first input of a matching type straight through."""
        values: list[Any] = []
        keys: list[bytes | None] = []
        for out in spec.outputs:
            name = spec.bypass_input(out.type, kwargs)
            if name is not None:
                values.append(kwargs[name])
                keys.append(value_keys.get(name) or constant_key(kwargs[name]))
            else:
                values.append(_Unavailable(
                    f"node {node_id} ({spec.type}), which is bypassed and has no {out.type} input to pass through",
                    switched_off=True))
                keys.append(None)
        self.values[node_id] = tuple(values)
        self.keys[node_id] = tuple(keys)
        self.records[node_id] = NodeRecord(node_id, spec.type, SKIPPED, reason="bypassed")
        self.emit(NodeSkipped(self.run_id, node_id, spec.type, "bypassed"))


def _normalise_outputs(spec: NodeSpec, result: Any) -> tuple[Any, ...]:
    count = len(spec.outputs)
    if isinstance(result, dict) and count and set(result) == {o.name for o in spec.outputs}:
        return tuple(result[o.name] for o in spec.outputs)
    if count == 0:
        return ()
    if count == 1 and not (isinstance(result, tuple) and len(result) == 1):
        return (result,)
    if not isinstance(result, tuple):
        raise TypeError(f"run() returned {type(result).__name__}, but the node declares {count} outputs; "
                        "return a tuple with one value per output")
    if len(result) != count:
        raise TypeError(f"run() returned {len(result)} values, but the node declares {count} outputs")
    return result


def _entry_nbytes(outputs: tuple[Any, ...]) -> int:
    return 64 + sum(estimate_nbytes(v) for v in outputs)


def _hashable_repr(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value

