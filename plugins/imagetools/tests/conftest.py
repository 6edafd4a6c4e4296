"""Shared fixtures. Every test gets its own user data and config folders, so nothing a test
writes reaches the real user's folders (and no test depends on what is there).

A copy of the app's ``tests/conftest.py`` fixture: a plugin's tests stand on their own and never
import from the app's test folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("NUANCE_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("NUANCE_CONFIG_DIR", str(root / "config"))
    monkeypatch.delenv("NUANCE_MODELS_DIR", raising=False)
