"""The user's folders: data (outputs, inputs) and configuration.

Defaults follow each platform's conventions (platformdirs); ``NUANCE_DATA_DIR`` and
``NUANCE_CONFIG_DIR`` override them, which keeps tests and portable installs out of the user's
real folders.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "nuance-studio"


def data_dir() -> Path:
    """Per-user data folder (outputs, inputs, user plugins)."""
    override = os.environ.get("NUANCE_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Per-user configuration folder (settings.toml)."""
    override = os.environ.get("NUANCE_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_output_dir() -> Path:
    """Where saved images and files go unless a run says otherwise."""
    return data_dir() / "output"


def default_input_dir() -> Path:
    """Where images picked in the editor and painted masks are kept."""
    return data_dir() / "input"


def input_file_candidates(name: str, base_dir: Path | None) -> list[Path]:
    """Where a file input (image, mask) named ``name`` may be, in the order they are tried.

    An absolute path is used as it is. A relative name is looked up next to the workflow file,
    in the workflow's ``inputs`` folder, in the user's inputs folder, and last in the current
    folder (handy on the command line).
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    candidates = []
    if base_dir is not None:
        candidates += [base_dir / path, base_dir / "inputs" / path]
    candidates += [default_input_dir() / path, Path.cwd() / path]
    return candidates


def find_input_file(name: str, base_dir: Path | None) -> Path | None:
    """The first existing candidate for ``name``, or None."""
    for candidate in input_file_candidates(name, base_dir):
        if candidate.is_file():
            return candidate
    return None
