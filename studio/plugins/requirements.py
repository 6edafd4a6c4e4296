"""Planning and installing a plugin's requirements into its private folder.

Rules, checked before anything is written:

- A requirement on a package the app's environment already has must be met by the installed
  version: the plugin's private folder comes after the app's on ``sys.path``, so installing another
  version could never take effect without changing the app's environment, which we never do.
  Core packages (torch, diffusers, numpy, PySide6 …) get a message that says so.
- Everything the requirements pull in is resolved by pip with the app's packages and the other
  plugins' private packages pinned as constraints, so a plan that would change either fails with
  the conflict named.
- What remains is installed with ``pip install --target <private folder> --no-deps``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.plugins.manifest import PluginError

#: Packages whose version the app depends on directly; named as such in refusals.
CORE_PACKAGES = frozenset({
    "torch", "torchvision", "torchaudio", "diffusers", "transformers", "numpy", "pyside6", "pyside6-essentials",
    "pyside6-addons", "shiboken6", "safetensors", "pillow", "opencv-python-headless", "opencv-python",
    "accelerate", "huggingface-hub", "tokenizers", "nuance-studio", "pip", "setuptools",
})


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def app_paths() -> list[str]:
    """``sys.path`` without the folders of loaded plugins and their private packages."""
    from studio.plugins.state import packages_dir, plugins_dir

    own = (str(plugins_dir()) + os.sep, str(packages_dir("x").parent) + os.sep)
    return [p for p in sys.path if not (p + os.sep).startswith(own)]


def app_packages() -> dict[str, str]:
    """Every distribution in the app's own environment: canonical name → version."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=app_paths()):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


@dataclass
class Plan:
    """What installing a plugin's requirements will do: ``install`` name → version into its folder."""

    install: dict[str, str] = field(default_factory=dict)
    satisfied: list[str] = field(default_factory=list)


def plan(plugin: str, requirements: Sequence[str], others: Mapping[str, Mapping[str, str]],
         pip_args: Sequence[str] = ()) -> Plan:
    """Resolve ``requirements`` without changing the app or another plugin; PluginError naming the conflict.

    ``others``: plugin name → its private packages (name → version).
    """
    from packaging.requirements import Requirement

    result = Plan()
    if not requirements:
        return result
    app = app_packages()
    pinned_by: dict[str, tuple[str, str]] = {}
    for other, packages in others.items():
        if other == plugin:
            continue
        for name, version in packages.items():
            pinned_by.setdefault(canonical(name), (other, version))
    problems: list[str] = []
    wanted: list[str] = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonical(requirement.name)
        if name in app:
            if requirement.specifier and not requirement.specifier.contains(app[name], prereleases=True):
                what = "a core package of Nuance Studio" if name in CORE_PACKAGES else "a package Nuance Studio uses"
                problems.append(f"it needs {text}, but {requirement.name} {app[name]} is {what}; installing another "
                                "version would change the app's own environment, which plugins may not do")
            else:
                result.satisfied.append(f"{requirement.name} {app[name]} (the app's)")
            continue
        if name in pinned_by:
            other, version = pinned_by[name]
            if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"it needs {text}, but plugin '{other}' uses {requirement.name} {version}; "
                                "both share one Python process, so only one version can load")
                continue
        wanted.append(text)
    if problems:
        raise PluginError(f"plugin '{plugin}' cannot be installed: " + "; ".join(problems))
    if not wanted:
        return result
    constraints = {name: version for name, version in app.items()}
    for name, (_, version) in pinned_by.items():
        constraints.setdefault(name, version)
    resolved = _pip_resolve(plugin, wanted, constraints, pip_args)
    for name, version in resolved.items():
        if name in app:
            continue  # pinned to the app's version by the constraints: already there
        result.install[name] = version
    return result


def _pip(args: Sequence[str], what: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    try:
        return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise PluginError(f"{what}: pip is not available in this installation of Nuance Studio") from None
    except subprocess.TimeoutExpired:
        raise PluginError(f"{what}: pip did not finish within {timeout:.0f} s") from None


def pip_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The lines of pip's output that say what went wrong."""
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    keep = [line for line in lines if line.startswith(("ERROR", "The conflict", "Cannot install", "    ")) or
            "requires" in line or "conflict" in line.lower()]
    return " ".join((keep or lines)[-6:])[:1200] or f"pip exited with code {result.returncode}"


def _pip_resolve(plugin: str, wanted: Iterable[str], constraints: Mapping[str, str],
                 pip_args: Sequence[str]) -> dict[str, str]:
    # Wheels only: building a source distribution would run its setup code before anyone trusted it.
    with tempfile.TemporaryDirectory(prefix="nuance-plan-") as tmp:
        constraint_file = Path(tmp) / "constraints.txt"
        constraint_file.write_text("".join(f"{n}=={v}\n" for n, v in sorted(constraints.items())), encoding="utf-8")
        report = Path(tmp) / "report.json"
        result = _pip(["install", "--dry-run", "--ignore-installed", "--only-binary", ":all:", "--quiet", "--report", str(report),
                       "--constraint", str(constraint_file), *pip_args, *wanted], f"plugin '{plugin}'")
        if result.returncode != 0 or not report.is_file():
            raise PluginError(f"plugin '{plugin}' cannot be installed: its requirements cannot be met without "
                              f"changing the app's packages or another plugin's: {pip_failure(result)}")
        data = json.loads(report.read_text(encoding="utf-8"))
    resolved: dict[str, str] = {}
    for item in data.get("install", []):
        metadata = item.get("metadata", {})
        if metadata.get("name") and metadata.get("version"):
            resolved[canonical(metadata["name"])] = metadata["version"]
    return resolved


def install_into(plugin: str, packages: Mapping[str, str], target: Path, pip_args: Sequence[str] = ()) -> None:
    """Install exactly ``packages`` (name → version) into ``target`` with no dependency resolution."""
    if not packages:
        return
    target.mkdir(parents=True, exist_ok=True)
    result = _pip(["install", "--quiet", "--no-deps", "--no-compile", "--only-binary", ":all:", "--target", str(target),
                   *pip_args,
                   *(f"{n}=={v}" for n, v in sorted(packages.items()))], f"plugin '{plugin}'")
    if result.returncode != 0:
        raise PluginError(f"plugin '{plugin}': installing its requirements failed: {pip_failure(result)}")


def download_wheel(spec: str, target: Path, pip_args: Sequence[str] = ()) -> Path:
    """Download the wheel of ``spec`` (a package name, maybe ``==version``) without its dependencies.

    Only wheels: building a source distribution would run its setup code before anyone trusted it.
    """
    result = _pip(["download", "--quiet", "--no-deps", "--only-binary", ":all:", "--dest", str(target),
                   *pip_args, spec], f"package {spec!r}")
    if result.returncode != 0:
        raise PluginError(f"package {spec!r} could not be downloaded: {pip_failure(result)}")
    wheels = sorted(target.glob("*.whl"))
    if not wheels:
        raise PluginError(f"package {spec!r}: pip downloaded no wheel")
    return wheels[0]
