"""Installing, updating and uninstalling plugins: ``nuance plugins install`` and the Plugin Manager.

An install runs in two halves. First everything that can refuse: fetch the source into a
temporary folder (archives are checked entry by entry before anything is unpacked), read the
manifest, scan the code, ask for trust, plan the requirements. Only then is anything written to
the user's folders: the plugin folder, its private packages folder and its record in
``plugins.toml``, each replaced whole so a failure leaves the previous state.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.plugins import requirements as reqs
from studio.plugins.archives import extract, is_archive
from studio.plugins.manager import ENTRY_POINT_GROUP, now_text, package_entry_point
from studio.plugins.manifest import MANIFEST, Manifest, PluginError, check_name, read_manifest
from studio.plugins.scan import Finding, scan_folder, summary
from studio.plugins.state import InstallRecord, PluginState, packages_dir, plugins_dir

FOLDER, ARCHIVE, GIT, PACKAGE, DEV = "folder", "archive", "git", "package", "dev"
_GIT_PREFIXES = ("git+", "git://", "ssh://", "git@", "file://", "http://", "https://")
_IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".DS_Store")


class TrustRequired(PluginError):
    """Installing code needs the user's explicit trust; ``findings`` is what the scan saw."""

    def __init__(self, name: str, findings: list[Finding]):
        self.name = name
        self.findings = findings
        super().__init__(f"plugin '{name}' runs Python code with your permissions; the scan found: "
                         f"{summary(findings)}. Install it only if you trust its author (--trust, or tick "
                         "'I trust this code' in the Plugin Manager)")


@dataclass
class Source:
    """What the user asked to install from."""

    kind: str
    location: str
    rev: str = ""

    @property
    def text(self) -> str:
        return f"{self.location}@{self.rev}" if self.rev and self.kind == GIT else self.location


@dataclass
class Staged:
    """A plugin fetched into a temporary folder, checked and ready to move into place."""

    name: str
    manifest: Manifest
    root: Path
    record: InstallRecord
    findings: list[Finding] = field(default_factory=list)
    plan: reqs.Plan = field(default_factory=reqs.Plan)


@dataclass
class InstallResult:
    name: str
    version: str
    record: InstallRecord
    findings: list[Finding]
    packages: dict[str, str]
    path: Path


def parse_source(text: str) -> Source:
    """Tell a folder, an archive, a git URL (``URL[@REV]``) and a package name (``NAME[==VERSION]``) apart."""
    text = text.strip()
    if not text:
        raise PluginError("nothing to install: give a folder, an archive, a git URL or a package name")
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            return Source(FOLDER, str(path.resolve()))
        if path.name.lower().endswith(".whl"):
            return Source(PACKAGE, str(path.resolve()))
        if is_archive(path):
            return Source(ARCHIVE, str(path.resolve()))
        raise PluginError(f"{path}: not a folder, a .zip / .tar.gz archive or a .whl wheel")
    url = text[4:] if text.startswith("git+") else text
    base, at, rev = url.rpartition("@")
    if at and base and rev and "/" not in rev and ":" not in rev and base != "git" and not base.endswith("://git"):
        url = base
        if Path(base).expanduser().is_dir():  # a local repository at a revision
            return Source(GIT, str(Path(base).expanduser().resolve()), rev)
    else:
        rev = ""
    if text.startswith(_GIT_PREFIXES) or url.endswith(".git"):
        if url.startswith(("http://", "https://")) and is_archive(Path(url)):
            raise PluginError(f"{text}: download the archive first and install the file")
        return Source(GIT, url, rev)
    if re.search(r"[\\/]", text) or text.endswith(tuple(".zip .tar .tgz .gz .whl".split())):
        raise PluginError(f"{text}: no such file or folder")
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        raise PluginError(f"{text!r} is not a folder, archive, git URL or package name") from None
    if requirement.url or requirement.marker or requirement.extras:
        raise PluginError(f"{text!r}: give a package as NAME or NAME==VERSION")
    return Source(PACKAGE, text)


# -- staging ------------------------------------------------------------------------------------
def _plugin_root(folder: Path) -> Path:
    """The folder holding plugin.toml: the top, or the single folder an archive wraps it in."""
    if (folder / MANIFEST).is_file():
        return folder
    children = [c for c in folder.iterdir() if not c.name.startswith(".") and c.name != "__MACOSX"]
    if len(children) == 1 and children[0].is_dir() and (children[0] / MANIFEST).is_file():
        return children[0]
    raise PluginError(f"no {MANIFEST} at the top of the plugin (or in its single top-level folder)")


def _copy_folder(source: Path, target: Path) -> None:
    links = [p for p in source.rglob("*") if p.is_symlink() and ".git" not in p.relative_to(source).parts]
    if links:
        shown = ", ".join(str(p.relative_to(source)) for p in links[:5])
        raise PluginError(f"{source}: refused, nothing was written: it contains symbolic links ({shown}), which "
                          "could point outside the plugin")
    shutil.copytree(source, target, ignore=_IGNORED)


def _git(args: Sequence[str], where: str) -> str:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, env=env, timeout=600, check=False)
    except FileNotFoundError:
        raise PluginError(f"{where}: installing from git needs the 'git' program, which was not found") from None
    except subprocess.TimeoutExpired:
        raise PluginError(f"{where}: git did not finish within 10 minutes") from None
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise PluginError(f"{where}: git {args[0]} failed: {message[-1] if message else result.returncode}")
    return result.stdout.strip()


def stage(source: Source, tmp: Path, pip_args: Sequence[str] = ()) -> Staged:
    """Fetch ``source`` into ``tmp`` and read it; raises before anything is written elsewhere."""
    record = InstallRecord(kind=source.kind, source=source.text, rev=source.rev, installed=now_text())
    if source.kind == PACKAGE:
        return _stage_package(source, tmp, record, pip_args)
    unpacked = tmp / "unpacked"
    if source.kind == FOLDER:
        _copy_folder(Path(source.location), unpacked)
        if (Path(source.location) / ".git").exists():  # a working copy: remember which commit it was
            try:
                record.commit = _git(["-C", source.location, "rev-parse", "HEAD"], source.location)
            except PluginError:
                pass
    elif source.kind == ARCHIVE:
        unpacked.mkdir()
        extract(Path(source.location), unpacked)  # checks every entry first
    elif source.kind == GIT:
        checkout = tmp / "checkout"
        _git(["clone", "--quiet", "--", source.location, str(checkout)], source.location)
        if source.rev:
            _git(["-C", str(checkout), "checkout", "--quiet", source.rev], f"{source.location}@{source.rev}")
        record.commit = _git(["-C", str(checkout), "rev-parse", "HEAD"], source.location)
        _copy_folder(checkout, unpacked)
    root = _plugin_root(unpacked)
    manifest = read_manifest(root)
    record.version = manifest.version
    return Staged(manifest.name, manifest, root, record)


def _stage_package(source: Source, tmp: Path, record: InstallRecord, pip_args: Sequence[str]) -> Staged:
    location = Path(source.location)
    wheel = location if location.is_file() else reqs.download_wheel(source.location, tmp / "download", pip_args)
    unpacked = tmp / "unpacked"
    unpacked.mkdir()
    extract(wheel, unpacked)
    from importlib.metadata import distributions

    points = [(p, d) for d in distributions(path=[str(unpacked)]) for p in d.entry_points
              if p.group == ENTRY_POINT_GROUP]
    if not points:
        raise PluginError(f"{wheel.name}: the package declares no [{ENTRY_POINT_GROUP}] entry point, so it is not a "
                          "Nuance Studio plugin")
    if len(points) > 1:
        names = ", ".join(p.name for p, _ in points)
        raise PluginError(f"{wheel.name}: the package declares several plugins ({names}); one per package, please")
    point, _dist = points[0]
    name = check_name(point.name, f"{wheel.name}: entry point")
    _, manifest = package_entry_point(unpacked, name)
    own = {"nuance-studio"}
    manifest = Manifest(name=name, version=manifest.version, description=manifest.description,
                        author=manifest.author, homepage=manifest.homepage,
                        requirements=tuple(r for r in manifest.requirements if reqs.canonical(_req_name(r)) not in own))
    record.version = manifest.version
    if not location.is_file():
        record.source = point.dist.metadata["Name"] if point.dist is not None else source.location
    return Staged(name, manifest, unpacked, record)


def _req_name(text: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(text).name


# -- install / update / uninstall -----------------------------------------------------------------
class Prepared:
    """A plugin fetched, read, scanned and planned, nothing written yet: what the Plugin Manager shows
    before the user decides. ``commit(trust=True)`` installs it; ``close()`` throws it away."""

    def __init__(self, staged: Staged, tmp: tempfile.TemporaryDirectory[str] | None, *, dev: bool, replace: bool,
                 pip_args: Sequence[str], plan_error: str | None, existing: InstallRecord | None):
        self.staged = staged
        self._tmp = tmp
        self.dev = dev
        self.replace = replace
        self.pip_args = list(pip_args)
        #: Why the requirements cannot be installed (a conflict), or None: shown before anything changes.
        self.plan_error = plan_error
        #: The record of the installed plugin this would replace (an update), or None.
        self.existing = existing

    @property
    def name(self) -> str:
        return self.staged.name

    @property
    def manifest(self) -> Manifest:
        return self.staged.manifest

    @property
    def findings(self) -> list[Finding]:
        return self.staged.findings

    @property
    def record(self) -> InstallRecord:
        return self.staged.record

    @property
    def packages(self) -> dict[str, str]:
        """Requirements that will go into the plugin's private folder: name → version."""
        return dict(self.staged.plan.install)

    def commit(self, *, trust: bool) -> InstallResult:
        """Write the plugin into place; refused without trust or with a requirement conflict."""
        staged = self.staged
        if not trust:
            raise TrustRequired(staged.name, staged.findings)
        if self.plan_error is not None:
            raise PluginError(self.plan_error)
        staged.record.trusted = True
        staged.record.packages = dict(staged.plan.install)
        try:
            _write(staged, self.pip_args, dev=self.dev)
            state = PluginState.load()
            state.installed[staged.name] = staged.record
            state.save()
        finally:
            self.close()
        path = Path(staged.record.path) if self.dev else plugins_dir() / staged.name
        return InstallResult(staged.name, staged.manifest.version, staged.record, staged.findings,
                             dict(staged.plan.install), path)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare(source_text: str, *, dev: bool = False, pip_args: Sequence[str] = (), replace: bool = False,
            expect_name: str | None = None) -> Prepared:
    """Everything that can refuse an install, with nothing written to the user's folders.

    ``dev`` links a folder in place (no copy) so edits show up on reload. ``replace`` (update)
    allows swapping an installed plugin for the new files. A requirement conflict does not raise
    here: it is kept on ``plan_error`` so the dialog can show it next to the scan.
    """
    source = parse_source(source_text)
    if dev and source.kind != FOLDER:
        raise PluginError(f"{source_text}: development mode links a folder; give the plugin's folder")
    state = PluginState.load()
    tmp = tempfile.TemporaryDirectory(prefix="nuance-plugin-")
    try:
        if dev:
            folder = Path(source.location)
            manifest = read_manifest(folder)
            staged = Staged(manifest.name, manifest, folder,
                            InstallRecord(kind=DEV, source=str(folder), path=str(folder), version=manifest.version,
                                          installed=now_text()))
        else:
            staged = stage(source, Path(tmp.name), pip_args)
        name = staged.name
        if expect_name is not None and name != expect_name:
            raise PluginError(f"the source now holds plugin {name!r}, not {expect_name!r}; nothing was changed")
        staged.manifest.check_api()
        existing = state.installed.get(name)
        if not replace and (existing is not None or (plugins_dir() / name).exists()):
            raise PluginError(f"plugin '{name}' is already installed; use 'nuance plugins update {name}' or "
                              f"uninstall it first")
        staged.findings = scan_folder(staged.root)
        others = {n: r.packages for n, r in state.installed.items() if n != name}
        plan_error = None
        try:
            staged.plan = reqs.plan(name, staged.manifest.requirements, others, pip_args)
        except PluginError as exc:
            plan_error = str(exc)
    except BaseException:
        tmp.cleanup()
        raise
    return Prepared(staged, tmp, dev=dev, replace=replace, pip_args=pip_args, plan_error=plan_error, existing=existing)


def install(source_text: str, *, trust: bool = False, dev: bool = False, pip_args: Sequence[str] = (),
            replace: bool = False, expect_name: str | None = None) -> InstallResult:
    """Install a plugin: :func:`prepare`, then commit. Refuses without ``trust`` and writes nothing."""
    with prepare(source_text, dev=dev, pip_args=pip_args, replace=replace, expect_name=expect_name) as prepared:
        return prepared.commit(trust=trust)


def _write(staged: Staged, pip_args: Sequence[str], *, dev: bool) -> None:
    name = staged.name
    private = packages_dir(name)
    new_private = private.with_name(f".{name}.new")
    shutil.rmtree(new_private, ignore_errors=True)
    made: list[Path] = []
    try:
        if staged.plan.install:
            new_private.parent.mkdir(parents=True, exist_ok=True)
            reqs.install_into(name, staged.plan.install, new_private, pip_args)
        if not dev:
            target = plugins_dir() / name
            target.parent.mkdir(parents=True, exist_ok=True)
            incoming = target.with_name(f".{name}.new")
            shutil.rmtree(incoming, ignore_errors=True)
            shutil.copytree(staged.root, incoming, ignore=_IGNORED)
            made.append(incoming)
            _swap(incoming, target)
            made.clear()
        if new_private.exists():
            _swap(new_private, private)
        else:
            shutil.rmtree(private, ignore_errors=True)
    except BaseException:
        for path in (*made, new_private):
            shutil.rmtree(path, ignore_errors=True)
        _remove_empty_parents()
        raise


def _swap(new: Path, target: Path) -> None:
    """Put ``new`` where ``target`` is, keeping the old one until the new one is in place."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def update(name: str, *, trust: bool = False, rev: str | None = None, pip_args: Sequence[str] = ()) -> InstallResult:
    """Fetch a plugin again from where it was installed (``rev``: another git revision or package version)."""
    with prepare_update(name, rev=rev, pip_args=pip_args) as prepared:
        return prepared.commit(trust=trust)


def prepare_update(name: str, *, rev: str | None = None, pip_args: Sequence[str] = ()) -> Prepared:
    """:func:`prepare` for an update of an installed plugin from its recorded source."""
    state = PluginState.load()
    record = state.installed.get(name)
    if record is None:
        raise PluginError(f"plugin '{name}' was not installed by the plugin manager, so there is nothing to update "
                          "it from")
    if record.kind == DEV:
        raise PluginError(f"plugin '{name}' is linked for development; it reloads from {record.path} as it is")
    source = record.source
    if record.kind == GIT:
        location = parse_source(source).location if "@" in source else source
        wanted = rev if rev is not None else record.rev
        source = f"{location}@{wanted}" if wanted else location
    elif record.kind == PACKAGE and rev:
        source = f"{record.source}=={rev}"
    elif rev:
        raise PluginError(f"plugin '{name}' came from a {record.kind}; --rev applies to git and package installs")
    if record.kind in (FOLDER, ARCHIVE) and not Path(source).exists():
        raise PluginError(f"plugin '{name}' was installed from {source}, which no longer exists")
    return prepare(source, pip_args=pip_args, replace=True, expect_name=name)


def uninstall(name: str) -> list[Path]:
    """Remove a plugin the manager installed: its folder, private packages and records. A folder
    linked for development is left where it is (it is the author's). Returns what was removed."""
    state = PluginState.load()
    record = state.installed.get(name)
    folder = plugins_dir() / name
    if record is None and not folder.is_dir():
        raise PluginError(f"no installed plugin is named {name!r}; bundled and built-in plugins cannot be uninstalled "
                          "(disable them instead), and packages installed with pip are removed with pip")
    removed = []
    if record is None or record.kind != DEV:
        if folder.exists():
            shutil.rmtree(folder)
            removed.append(folder)
    private = packages_dir(name)
    if private.exists():
        shutil.rmtree(private)
        removed.append(private)
    state.installed.pop(name, None)
    state.disabled.discard(name)
    state.save()
    _remove_empty_parents()
    return removed


def _remove_empty_parents() -> None:
    for folder in (plugins_dir(), packages_dir("x").parent):
        try:
            folder.rmdir()  # only when empty: a folder the install created leaves no trace
        except OSError:
            pass
