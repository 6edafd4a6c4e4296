"""Small pictures of image files, decoded on worker threads and kept in a bounded cache.

Decoding a large PNG takes tens of milliseconds; the gallery may show hundreds of them and a
Load Image node repaints on every pan. So nothing here decodes on the GUI thread: ``get`` answers
from the cache or schedules a load and answers None, and ``ready`` says when to ask again.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

THUMB_SIZE = 160
CAPACITY = 600


def _key(path: str) -> tuple[str, int, int] | None:
    """The path with its modification time and size: a file rewritten in place is loaded again."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (path, stat.st_mtime_ns, stat.st_size)


def read_scaled(path: str, size: int = THUMB_SIZE) -> QImage:
    """``path`` decoded and shrunk to fit ``size`` × ``size`` (a null image when unreadable)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid() and (full.width() > size or full.height() > size):
        reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull() and (image.width() > size or image.height() > size):
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


class _Signals(QObject):
    loaded = Signal(object, QImage)


class _Job(QRunnable):
    def __init__(self, key: tuple[str, int, int], size: int, signals: _Signals):
        super().__init__()
        self.key, self.size, self.signals = key, size, signals

    def run(self) -> None:
        self.signals.loaded.emit(self.key, read_scaled(self.key[0], self.size))


class ThumbnailLoader(QObject):
    """Thumbnails by path; ``ready(path)`` fires on the GUI thread when one has been decoded."""

    ready = Signal(str)

    def __init__(self, size: int = THUMB_SIZE, capacity: int = CAPACITY, parent: QObject | None = None):
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, int, int], QPixmap | None] = OrderedDict()
        self._pending: set[tuple[str, int, int]] = set()
        #: How many decodes were scheduled, ever (the gallery asks only for the rows it draws).
        self.requested = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _Signals()
        self._signals.loaded.connect(self._loaded, Qt.ConnectionType.QueuedConnection)

    def get(self, path: str) -> QPixmap | None:
        """The cached thumbnail of ``path``; None while it loads (or when it cannot be read)."""
        key = _key(path)
        if key is None:
            return None
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key not in self._pending:
            self._pending.add(key)
            self.requested += 1
            self._pool.start(_Job(key, self.size, self._signals))
        return None

    def failed(self, path: str) -> bool:
        """Whether ``path`` was tried and is not a readable image."""
        key = _key(path)
        return key is None or (key in self._cache and self._cache[key] is None)

    def wait(self, msecs: int = 5000) -> bool:
        """Block until queued loads are decoded (tests, shutdown); their results still arrive as events."""
        return self._pool.waitForDone(msecs)

    def _loaded(self, key: tuple[str, int, int], image: QImage) -> None:
        self._pending.discard(key)
        self._cache[key] = None if image.isNull() else QPixmap.fromImage(image)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key[0])


_shared: ThumbnailLoader | None = None


def shared() -> ThumbnailLoader:
    """The application's one loader, so the gallery and the canvas share one cache."""
    global _shared
    if _shared is None:
        _shared = ThumbnailLoader(parent=QCoreApplication.instance())
    return _shared
