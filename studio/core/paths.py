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
