"""What a running node can reach: progress, cancellation, output folder, device.

One context per node execution, so progress and files are always attributed to the right node.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import Cancelled
from studio.engine.events import Event, NodeProgress


class CancelToken:
    """Set once by whoever wants the run to stop; nodes and the engine check it cooperatively."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass
class RunOptions:
    """Settings of one run that nodes may read; none of them is part of any cache key."""

    output_dir: Path | None = None
    device: str = "auto"
    models_dir: Path | None = None
    #: Folder of the workflow file: relative file inputs are resolved against it.
    base_dir: Path | None = None
    #: The workflow being run (its UI layout and metadata), for nodes that embed it in outputs.
    workflow: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved_output_dir(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        from studio.core.paths import default_output_dir

        return default_output_dir()


_COUNTER_RE_CACHE: dict[tuple[str, str], re.Pattern[str]] = {}


class RunContext:
    """Handed to ``Node.run`` as ``ctx``."""

    __slots__ = ("_cancel", "_device", "_emit", "files", "graph", "node_id", "node_type", "options", "run_id",
                 "temp_files", "ui")

    def __init__(self, run_id: int, node_id: str, node_type: str, options: RunOptions,
                 cancel: CancelToken, emit: Callable[[Event], None], graph: Any = None):
        self.run_id = run_id
        self.node_id = node_id
        self.node_type = node_type
        self.options = options
        self.ui: dict[str, Any] = {}
        self.files: list[str] = []
        self.temp_files: list[str] = []
        #: The graph being run (read-only for nodes): lets a saver embed the workflow in its file.
        self.graph = graph
        self._cancel = cancel
        self._emit = emit
        self._device: str | None = None

    # -- progress and cancellation ----------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`~studio.core.errors.Cancelled` if the user asked to stop."""
        self._cancel.raise_if_cancelled()

    def progress(self, value: float, total: float | None = None, preview: Any = None) -> None:
        """Report progress (e.g. sampler step ``value`` of ``total``); also a cancellation point."""
        self._cancel.raise_if_cancelled()
        self._emit(NodeProgress(self.run_id, self.node_id, self.node_type, value, total, preview))

    # -- environment --------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The torch device for this run, decided on first use (importing torch only then)."""
        if self._device is None:
            from studio.models.devices import resolve_device

            self._device = resolve_device(self.options.device)
        return self._device

    @property
    def output_dir(self) -> Path:
        return self.options.resolved_output_dir()

    # -- results -------------------------------------------------------------------------------
    def show(self, **items: Any) -> None:
        """Attach things for the editor to display on this node (text, image paths, …)."""
        self.ui.update(items)

    def add_output_file(self, path: str | os.PathLike[str]) -> None:
        """Record a file this node produced; it is listed in the run's report."""
        self.files.append(str(Path(path).resolve()))

    def add_temp_file(self, path: str | os.PathLike[str]) -> None:
        """Record a temporary file this node shows (a preview): not an output, but if it is
        deleted the cached result is stale and the node runs again."""
        self.temp_files.append(str(Path(path).resolve()))

    def reserve_output_file(self, prefix: str, extension: str) -> Path:
        """Create and return a new, empty file ``<prefix>_00001_.<ext>`` that no other run has.

        The prefix may contain sub-folders (``portraits/face``) but may not leave the output
        folder. Existing files are never overwritten: the counter goes up until the name is free,
        and creation is exclusive, so two runs at once cannot take the same name.
        """
        root = self.output_dir.resolve()
        prefix = prefix.replace("\\", "/").strip() or "nuance"
        if prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix):
            raise ValueError(f"filename prefix {prefix!r} leads outside the output folder {root}; use a relative name")
        *folders, stem = prefix.split("/")
        if stem in ("", ".", ".."):
            raise ValueError(f"filename prefix {prefix!r} must end with a file name, such as 'portraits/face'")
        target_dir = root.joinpath(*folders).resolve()
        if target_dir != root and root not in target_dir.parents:
            raise ValueError(f"filename prefix {prefix!r} leads outside the output folder {root}")
        extension = extension.lstrip(".")
        target_dir.mkdir(parents=True, exist_ok=True)
        key = (stem, extension)
        pattern = _COUNTER_RE_CACHE.get(key)
        if pattern is None:
            pattern = _COUNTER_RE_CACHE[key] = re.compile(re.escape(stem) + r"_(\d+)_\." + re.escape(extension) + "$")
        highest = 0
        for entry in os.scandir(target_dir):
            match = pattern.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
        counter = highest + 1
        while True:
            path = target_dir / f"{stem}_{counter:05d}_.{extension}"
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                counter += 1
                continue
            os.close(fd)
            self.add_output_file(path)
            return path
