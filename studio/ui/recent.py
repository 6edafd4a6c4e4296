"""The files opened last, for File > Open Recent, kept across sessions.

Kept with QSettings in an INI file in the user's configuration folder (``studio.core.paths``),
not in the platform's registry, so tests and portable installs keep their own list. Stored as
JSON text: an INI list of one entry would read back as a plain string.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from studio.core.paths import config_dir

MAX_RECENT = 10
SETTINGS_FILE = "editor.ini"
KEY = "files/recent"


def editor_settings() -> QSettings:
    """The editor's own settings file (window state, recent files)."""
    return QSettings(str(config_dir() / SETTINGS_FILE), QSettings.Format.IniFormat)


class RecentFiles:
    """Most recent first, at most MAX_RECENT; read afresh each time, so windows share one list."""

    def paths(self) -> list[Path]:
        raw = editor_settings().value(KEY, "[]")
        try:
            listed = json.loads(raw) if isinstance(raw, str) else []
        except json.JSONDecodeError:
            listed = []
        return [Path(p) for p in listed if isinstance(p, str)][:MAX_RECENT] if isinstance(listed, list) else []

    def add(self, path: Path) -> None:
        path = path.resolve()
        self._store([path, *(p for p in self.paths() if p != path)])

    def remove(self, path: Path) -> None:
        self._store([p for p in self.paths() if p != path])

    def clear(self) -> None:
        self._store([])

    def _store(self, paths: list[Path]) -> None:
        settings = editor_settings()
        settings.setValue(KEY, json.dumps([str(p) for p in paths[:MAX_RECENT]]))
        settings.sync()


def fill_menu(menu: QMenu, recent: RecentFiles, open_recent: Callable[[Path], object]) -> None:
    """(Re)build File > Open Recent just before it shows: another window may have opened files."""
    menu.clear()
    paths = recent.paths()
    for index, path in enumerate(paths, 1):
        action = menu.addAction(f"&{index % 10}  {path.name.replace('&', '&&')}")
        action.setData(str(path))
        action.setStatusTip(str(path))
        action.setToolTip(str(path))
        action.triggered.connect(lambda _checked=False, chosen=path: open_recent(chosen))
    if not paths:
        menu.addAction("No recent files").setEnabled(False)
        return
    menu.addSeparator()
    menu.addAction("Clear the list", recent.clear)
