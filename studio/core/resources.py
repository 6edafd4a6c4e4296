"""Where the bundled resources (schemas, example workflows, model configs) are.

In a wheel they are installed inside the package as ``studio/resources``; in a source checkout
(and an editable install) they are the repository's top-level ``resources/`` folder. Looking in
both places keeps one code path for users and developers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def resources_dir() -> Path:
    """The folder holding the bundled resources; raises if the installation lacks it."""
    for candidate in (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "resources"):
        if (candidate / "schema").is_dir():
            return candidate
    raise FileNotFoundError(
        f"Nuance Studio's resources folder is missing (looked in {_PACKAGE_DIR / 'resources'} and "
        f"{_PACKAGE_DIR.parent / 'resources'}); reinstall the package"
    )


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource, e.g. ``resource_path("workflows", "hello.json")``."""
    return resources_dir().joinpath(*parts)
