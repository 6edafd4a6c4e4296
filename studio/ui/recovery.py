"""Autosave of unsaved work, and offering it back after a crash.

Every AUTOSAVE_MS each tab with unsaved changes is written (when it changed since the last write)
into a folder of this window's own under ``<user data>/recovery``; the user's files are never
touched. A clean close deletes the folder. The folder holds a lock file (QLockFile) while its
window lives, so at start-up a folder whose lock is free was left by a session that died: that is
what is offered back, and another running instance's autosaves never are.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QLockFile, QObject, QTimer, Signal

from studio.core.paths import data_dir
from studio.core.workflow import workflow_to_dict

if TYPE_CHECKING:
    from studio.ui.tabs import WorkflowTab

log = logging.getLogger(__name__)

#: How often unsaved tabs are written; tests shorten it before making a window.
AUTOSAVE_MS = 30_000
RECOVERY_FORMAT = "nuance.recovery"
RECOVERY_VERSION = 1
LOCK_NAME = "session.lock"


def recovery_root() -> Path:
    return data_dir() / "recovery"


def _locker(folder: Path) -> QLockFile:
    lock = QLockFile(str(folder / LOCK_NAME))
    lock.setStaleLockTime(0)  # held for a whole session: stale only when its process is gone, never by age
    return lock


@dataclass
class Recovered:
    """One autosaved workflow of a session that died."""

    name: str
    data: dict[str, Any]
    file_path: Path | None
    example: bool


@dataclass
class Orphan:
    """The recovery folder of a session that died, locked by us while we decide what to do."""

    folder: Path
    lock: QLockFile
    entries: list[Recovered] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def discard(self) -> None:
        self.lock.unlock()
        shutil.rmtree(self.folder, ignore_errors=True)


def find_orphans() -> list[Orphan]:
    """Recovery folders nobody holds: what crashed sessions left, oldest entries first."""
    root = recovery_root()
    if not root.is_dir():
        return []
    orphans = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        lock = _locker(folder)
        if not lock.tryLock(0):
            continue  # a running window's
        orphan = Orphan(folder, lock)
        for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            entry = read_entry(path)
            if entry is None:
                orphan.unreadable.append(path.name)
            else:
                orphan.entries.append(entry)
        orphans.append(orphan)
    return orphans


def read_entry(path: Path) -> Recovered | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != RECOVERY_FORMAT or not isinstance(data.get("workflow"), dict):
        return None
    file_path = data.get("file_path")
    return Recovered(name=str(data.get("name") or "Untitled"), data=data["workflow"],
                     file_path=Path(file_path) if isinstance(file_path, str) and file_path else None,
                     example=bool(data.get("example")))


class Session:
    """This window's recovery folder: made and locked on the first write, removed on a clean close."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self._lock: QLockFile | None = None

    def _ensure(self) -> Path:
        if self.folder is None:
            folder = recovery_root() / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            folder.mkdir(parents=True)
            lock = _locker(folder)
            if not lock.tryLock(0):
                raise OSError(f"cannot lock {folder}")
            self.folder, self._lock = folder, lock
        return self.folder

    def write(self, tab: WorkflowTab) -> Path:
        """Write one tab atomically (a crash while writing leaves the previous autosave whole)."""
        folder = self._ensure()
        entry = {"format": RECOVERY_FORMAT, "version": RECOVERY_VERSION,
                 "saved": datetime.now(UTC).isoformat(timespec="seconds"), "name": tab.name,
                 "file_path": str(tab.file_path) if tab.file_path is not None else None, "example": tab.example,
                 "workflow": workflow_to_dict(tab.document.workflow)}
        target = folder / f"{tab.recovery_key}.json"
        fd, tmp = tempfile.mkstemp(prefix=".autosave.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def remove(self, key: str) -> None:
        if self.folder is not None:
            (self.folder / f"{key}.json").unlink(missing_ok=True)

    def end(self) -> None:
        """A clean close: nothing is left to recover."""
        if self.folder is None or self._lock is None:
            return
        self._lock.unlock()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = self._lock = None


class Autosave(QObject):
    """Writes the unsaved tabs of one window on a timer; only what changed since the last write."""

    #: Writing failed (disk full, folder not writable): the reason, for the status bar.
    failed = Signal(str)

    def __init__(self, tabs: Callable[[], list[WorkflowTab]], parent: QObject | None = None):
        super().__init__(parent)
        self._tabs = tabs
        self.session = Session()
        self._written: dict[str, int] = {}  # recovery key -> the tab's revision when written
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    def save_now(self) -> None:
        unsaved = set()
        for tab in self._tabs():
            if not tab.document.dirty:
                continue
            unsaved.add(tab.recovery_key)
            if self._written.get(tab.recovery_key) == tab.revision:
                continue
            try:
                self.session.write(tab)
            except OSError as exc:
                log.warning("autosave of %s failed: %s", tab.name, exc)
                self.failed.emit(f"Autosave of {tab.name} failed: {exc.strerror or exc}")
                continue
            self._written[tab.recovery_key] = tab.revision
        for key in [k for k in self._written if k not in unsaved]:  # saved, discarded or closed since
            self.session.remove(key)
            del self._written[key]

    def forget(self, tab: WorkflowTab) -> None:
        """The tab closes: its autosave goes with it."""
        self.session.remove(tab.recovery_key)
        self._written.pop(tab.recovery_key, None)

    def end(self) -> None:
        self.timer.stop()
        self.session.end()
        self._written.clear()
