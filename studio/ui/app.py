"""Starting the editor: ``nuance`` / ``nuance gui [WORKFLOW]`` end up here.

The window appears without importing torch or diffusers; node code imports them when a run
first needs them, on the engine's worker thread.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from studio.core.resources import resource_path
from studio.ui import theme
from studio.ui.panels.settings import saved_theme
from studio.ui.window import APP_NAME, MainWindow

FIRST_EXAMPLE = "txt2img"


def create_window(workflow: str | None = None) -> MainWindow:
    """The main window with every installed node, showing ``workflow`` (or the txt2img example).

    Work a crashed session autosaved is offered back first; restored, it takes the example's place.
    """
    from studio.runtime import load_plugins

    manager = load_plugins()
    errors = manager.errors()
    window = MainWindow(manager.registry, plugins=manager)
    restored = window.restore_crashed()
    if not workflow:
        opened = bool(restored) or window.open_example(FIRST_EXAMPLE)
    elif not Path(workflow).exists() and is_example(workflow):
        opened = window.open_example(workflow)  # as an untitled copy: saving never overwrites the bundle
    else:
        opened = window.open_file(workflow)
    if errors and opened:  # a failed open has already said why; that message matters more
        window.show_message("Some nodes failed to load: " + "; ".join(errors))
    return window


def is_example(name: str) -> bool:
    """Whether ``name`` is a bundled example (``txt2img``, ``hello`` …) rather than a file."""
    return "/" not in name and "\\" not in name and resource_path("workflows", f"{name}.json").is_file()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the editor until its window closes; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0] if sys.argv else "nuance"])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("Nuance")
    theme.apply_theme(app, saved_theme())  # before any widget exists: nothing is drawn in the other theme first
    window = create_window(args[0] if args else None)
    window.show()
    window.view.fit()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
