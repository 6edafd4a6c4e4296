"""The output cache: node results by signature, bounded in bytes, least recently used out first.

Keys are signatures, not node ids, so the cache survives switching between workflows and
serves a node in one workflow from an identical node in another. Size is measured, not counted
in entries: one cached image batch can outweigh thousands of numbers (ComfyUI users' complaint
about RAM growing with every run).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    nbytes: int = 0
    #: Files the entry shows but does not list as outputs (previews); like ``files``, the entry
    #: is only valid while they exist.
    temp_files: tuple[str, ...] = ()


def estimate_nbytes(value: Any, _depth: int = 0) -> int:
    """Approximate memory held by ``value``: exact for arrays and tensors, rough for the rest.

    Objects that manage their own memory (model handles) report what the output cache should
    count through a ``cache_nbytes()`` method.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return 32
    if isinstance(value, (str, bytes)):
        return 49 + len(value)
    own = getattr(value, "cache_nbytes", None)
    if callable(own):
        return int(own())
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if _depth < 6:
        if isinstance(value, (list, tuple, set, frozenset)):
            return 56 + 8 * len(value) + sum(estimate_nbytes(v, _depth + 1) for v in value)
        if isinstance(value, dict):
            return 64 + sum(estimate_nbytes(k, _depth + 1) + estimate_nbytes(v, _depth + 1) for k, v in value.items())
    try:
        return sys.getsizeof(value)
    except TypeError:
        return 64


class OutputCache:
    """Thread-safe LRU of :class:`CacheEntry` by signature, holding at most ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        with self._lock:
            self._max_bytes = int(value)
            self._evict()

    def get(self, key: bytes) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: bytes, entry: CacheEntry) -> bool:
        """Store an entry; returns False when it alone is larger than the whole budget."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            if entry.nbytes > self._max_bytes:
                return False
            self._entries[key] = entry
            self.bytes += entry.nbytes
            self._evict()
            return True

    def _evict(self) -> None:
        while self.bytes > self._max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            self.bytes -= entry.nbytes
            self.evictions += 1

    def clear(self) -> None:
        """Forget everything (the editor's "free memory" action)."""
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
