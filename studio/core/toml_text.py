"""Writing settings.toml: ``tomli_w`` writes TOML (the standard library only reads it); this adds
the two things a settings file needs on top: a write that a crash cannot leave half done, and a
clear error for a value TOML cannot hold."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w


class TomlWriteError(ValueError):
    """A value TOML cannot hold (None, say)."""


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as TOML text; TomlWriteError naming what TOML cannot hold."""
    try:
        return tomli_w.dumps(dict(data))
    except TypeError as exc:
        raise TomlWriteError(f"could not write these settings as TOML ({exc})") from None


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` as TOML in one step: a crash midway leaves the old file whole."""
    text = dumps(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
