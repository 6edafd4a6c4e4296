"""Finding plugins and loading each one on its own.

Where plugins come from, in the order a name is claimed (a later one with a taken name is
reported as shadowed and not loaded):

1. the built-in packs in ``nodes/`` (bare node names; they cannot be disabled or replaced),
2. plugins linked for development (``nuance plugins install --dev FOLDER``),
3. the user's plugins folder (``<data>/plugins``: folders with ``plugin.toml``, or installed
   packages),
4. distributions in the app's environment exposing the entry-point group ``nuance.plugins``,
5. the bundled ``plugins/`` folder (examples shipped with the app).

Loading one plugin: read its manifest (refuse a newer API before any code runs), check its
requirements, put its private packages folder on ``sys.path``, import it, register its nodes all
or nothing. Any failure is recorded on that plugin, what it imported of its own is forgotten and
everything else still loads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from studio.core.nodedef import API_VERSION, NodePack
from studio.core.registry import NodeRegistry
from studio.plugins.importing import forget_modules, import_package, module_name
from studio.plugins.manifest import MANIFEST, Manifest, PluginError, check_name, read_manifest
from studio.plugins.packs import register_nodes
from studio.plugins.state import InstallRecord, PluginState, packages_dir, plugins_dir

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "nuance.plugins"

BUILTIN, DEV, USER, PACKAGE, ENTRY_POINT, BUNDLED = "built-in", "dev", "user", "package", "entry point", "bundled"
LOADED, DISABLED, FAILED, INCOMPATIBLE, SHADOWED, UNLOADED = (
    "loaded", "disabled", "failed", "incompatible", "shadowed", "not loaded")


@dataclass
class Plugin:
    """One plugin found on this machine and what became of it."""

    name: str
    origin: str
    path: Path | None = None
    manifest: Manifest | None = None
    entry_point: str | None = None
    record: InstallRecord | None = None
    status: str = UNLOADED
    error: str | None = None
    node_types: list[str] = field(default_factory=list)
    gui_module: str | None = None
    modules: list[str] = field(default_factory=list)
    stamp: tuple[float, int] | None = None

    @property
    def loaded(self) -> bool:
        return self.status == LOADED

    @property
    def builtin(self) -> bool:
        return self.origin == BUILTIN

    @property
    def version(self) -> str:
        return self.manifest.version if self.manifest else ""

    @property
    def removable(self) -> bool:
        """Whether ``uninstall`` may remove it (only what the plugin manager installed)."""
        return self.origin in (USER, PACKAGE, DEV)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (``nuance plugins list --json``)."""
        manifest = self.manifest
        item: dict[str, Any] = {
            "name": self.name, "status": self.status, "origin": self.origin,
            "version": self.version, "nodes": list(self.node_types),
        }
        if manifest is not None:
            item.update(description=manifest.description, author=manifest.author, homepage=manifest.homepage,
                        api_version=manifest.api_version, requirements=list(manifest.requirements))
        if self.path is not None:
            item["path"] = str(self.path)
        if self.entry_point:
            item["entry_point"] = self.entry_point
        if self.error:
            item["error"] = self.error
        if self.record is not None:
            item["installed"] = self.record.to_toml()
        return item


@dataclass
class Change:
    """What enabling, disabling, installing or reloading did to the running app."""

    message: str
    restart_needed: bool = False
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def bundled_plugins_dir() -> Path | None:
    """The example plugins shipped with the app: ``plugins/`` in a checkout, inside the package in a wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "bundled_plugins", package.parent / "plugins"):
        if candidate.is_dir():
            return candidate
    return None


def folder_stamp(folder: Path) -> tuple[float, int]:
    """Newest modification time and number of a plugin folder's source files (development reloads)."""
    newest, count = 0.0, 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".toml", ".json")):
                try:
                    newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue
                count += 1
    return newest, count


class PluginManager:
    """Every plugin on this machine, loaded into one registry, each isolated from the others.

    ``community=False`` loads the built-in packs only (tests, and ``create_registry``).
    """

    def __init__(self, registry: NodeRegistry | None = None, *, community: bool = True,
                 bundled_dir: Path | bool | None = True):
        self.registry = registry if registry is not None else NodeRegistry()
        self.registry.missing_hint = self.explain_missing
        self.community = community
        self._bundled_dir = bundled_plugins_dir() if bundled_dir is True else (bundled_dir or None)
        self.plugins: list[Plugin] = []
        self.state = PluginState()
        self._listeners: list[Callable[[Change], None]] = []

    # -- queries ---------------------------------------------------------------------------
    def get(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name and p.status != SHADOWED), None)

    def errors(self) -> list[str]:
        """One line per plugin that did not load for a reason the user should hear about."""
        return [f"plugin {p.name!r}: {p.error}" for p in self.plugins
                if p.status in (FAILED, INCOMPATIBLE, SHADOWED) and p.error]

    def provider(self, node_type: str) -> str | None:
        """The plugin a namespaced node type belongs to (``imagetools.Levels`` → ``imagetools``)."""
        spec = self.registry.spec(node_type)
        if spec is not None:
            return spec.pack
        prefix, dot, _ = node_type.partition(".")
        return prefix if dot and prefix else None

    def explain_missing(self, node_type: str, known: dict[str, Any] | None = None) -> str:
        """Why ``node_type`` is not available and what to do, for placeholders.

        ``known`` is a workflow's record of the plugins it used (``meta.plugins``), which names a
        plugin's version and where to get it on a machine that never had it.
        """
        name = self.provider(node_type)
        if name is None:
            return (f"no installed node or plugin provides {node_type!r} (install the plugin that does, "
                    "or remove the node)")
        why = self.why_unavailable(name, known)
        if why is not None:
            return f"{node_type} comes from {why}"
        plugin = self.get(name)
        assert plugin is not None
        return (f"plugin '{name}' {plugin.version} is installed but has no node {node_type.partition('.')[2]!r} "
                "(it may have been renamed or removed in this version)")

    def why_unavailable(self, name: str, known: dict[str, Any] | None = None) -> str | None:
        """``plugin 'x', which is …`` and what to do, for a plugin whose nodes are missing; None when
        it is loaded (its nodes are there)."""
        plugin = self.get(name)
        info = (known or {}).get(name) or {}
        if plugin is None:
            where = info.get("homepage") or info.get("source") or ""
            version = f" {info['version']}" if info.get("version") else ""
            hint = f" (get it from {where})" if where else ""
            return f"plugin '{name}'{version}, which is not installed{hint}"
        if plugin.status == DISABLED:
            return (f"plugin '{name}', which is disabled: enable it in the Plugin Manager "
                    f"or with 'nuance plugins enable {name}'")
        if plugin.status in (FAILED, INCOMPATIBLE, SHADOWED):
            return f"plugin '{name}', which failed to load: {plugin.error}"
        return None

    def used_plugins(self, node_types: Iterable[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``meta.plugins`` record of a workflow using ``node_types``: name → version and where from.

        Entries of plugins that are missing here are kept from ``previous``, so a workflow saved on a
        machine without the plugin still says where to get it.
        """
        used: dict[str, Any] = {}
        for node_type in node_types:
            name = self.provider(node_type)
            if name is None or name in used:
                continue
            plugin = self.get(name)
            if plugin is not None and plugin.loaded and not plugin.builtin:
                entry: dict[str, Any] = {"version": plugin.version}
                if plugin.manifest is not None and plugin.manifest.homepage:
                    entry["homepage"] = plugin.manifest.homepage
                if plugin.record is not None and plugin.record.kind in ("git", "package"):
                    entry["source"] = plugin.record.source
                used[name] = entry
            elif previous and name in previous:
                used[name] = previous[name]
        return used

    # -- change notifications (the GUI refreshes palettes and canvases) --------------------
    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, change: Change) -> Change:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a broken listener must not undo the change
                log.exception("plugin change listener failed")
        return change

    # -- discovery --------------------------------------------------------------------------
    def discover(self) -> list[Plugin]:
        """Every plugin on this machine, first claim of a name wins; nothing is imported."""
        found: list[Plugin] = list(self._builtin_candidates())
        if self.community:
            self.state = PluginState.load()
            found += self._dev_candidates()
            found += self._user_candidates()
            found += self._entry_point_candidates()
            if self._bundled_dir is not None:
                found += self._folder_candidates(self._bundled_dir, BUNDLED)
        claimed: dict[str, Plugin] = {}
        for plugin in found:
            first = claimed.get(plugin.name)
            if first is not None:
                plugin.status = SHADOWED
                plugin.error = (f"not loaded: the {first.origin} plugin of the same name "
                                f"({first.path or first.entry_point}) comes first")
                continue
            claimed[plugin.name] = plugin
        return found

    def _builtin_candidates(self) -> Iterable[Plugin]:
        import pkgutil

        import nodes

        for info in sorted(pkgutil.iter_modules(nodes.__path__), key=lambda i: i.name):
            if info.ispkg:
                yield Plugin(info.name, BUILTIN, Path(nodes.__path__[0]) / info.name, entry_point=f"nodes.{info.name}")

    def _dev_candidates(self) -> Iterable[Plugin]:
        for name, record in sorted(self.state.installed.items()):
            if record.kind == "dev":
                yield self._installed_plugin(name, record)

    def _installed_plugin(self, name: str, record: InstallRecord | None) -> Plugin:
        """A plugin the manager installed, found where its record says (a linked folder, a package
        unpacked into the plugins folder, or a copied folder)."""
        if record is not None and record.kind == "dev":
            return self._folder_plugin(Path(record.path), DEV, name=name, record=record)
        if record is not None and record.kind == "package":
            return self._package_plugin(plugins_dir() / name, record)
        return self._folder_plugin(plugins_dir() / name, USER, record=record)

    def _user_candidates(self) -> Iterable[Plugin]:
        root = plugins_dir()
        if not root.is_dir():
            return
        for folder in sorted(root.iterdir()):
            if not folder.is_dir() or folder.name.startswith((".", "_")):
                continue
            record = self.state.installed.get(folder.name)
            if record is not None and record.kind == "package":
                yield self._package_plugin(folder, record)
            else:
                yield self._folder_plugin(folder, USER, record=record)

    def _folder_candidates(self, root: Path, origin: str) -> Iterable[Plugin]:
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith((".", "_")) and (folder / MANIFEST).is_file():
                yield self._folder_plugin(folder, origin)

    def _folder_plugin(self, folder: Path, origin: str, *, name: str | None = None,
                       record: InstallRecord | None = None) -> Plugin:
        plugin = Plugin(name or folder.name, origin, folder, record=record)
        try:
            plugin.manifest = read_manifest(folder)
            plugin.name = plugin.manifest.name
        except PluginError as exc:
            plugin.status, plugin.error = FAILED, str(exc)
        return plugin

    def _package_plugin(self, folder: Path, record: InstallRecord) -> Plugin:
        plugin = Plugin(folder.name, PACKAGE, folder, record=record)
        try:
            plugin.entry_point, plugin.manifest = package_entry_point(folder, folder.name)
        except PluginError as exc:
            plugin.status, plugin.error = FAILED, str(exc)
        return plugin

    def _entry_point_candidates(self) -> Iterable[Plugin]:
        from studio.plugins.requirements import app_paths

        try:  # the app's environment only: package plugins installed into the plugins folder are listed there
            points = list({(p.name, p.value): p for d in importlib.metadata.distributions(path=app_paths())
                           for p in d.entry_points if p.group == ENTRY_POINT_GROUP}.values())
        except Exception as exc:  # a broken distribution's metadata must not stop start-up
            log.warning("could not read entry points: %s", exc)
            return
        for point in sorted(points, key=lambda p: p.name):
            plugin = Plugin(point.name, ENTRY_POINT, entry_point=point.value)
            dist = getattr(point, "dist", None)
            try:
                check_name(point.name, f"entry point {point.name} = {point.value}")
                plugin.manifest = _dist_manifest(point.name, dist)
            except PluginError as exc:
                plugin.status, plugin.error = FAILED, str(exc)
            yield plugin

    # -- loading ----------------------------------------------------------------------------
    def load_all(self) -> None:
        """Discover and load everything; each plugin's outcome is on ``self.plugins``."""
        self.plugins = self.discover()
        for plugin in self.plugins:
            if plugin.status == UNLOADED:
                self._load(plugin)
        for error in self.errors():
            log.warning("%s", error)

    def _load(self, plugin: Plugin) -> None:
        plugin.error = None
        if not plugin.builtin and plugin.name in self.state.disabled:
            plugin.status = DISABLED
            return
        before = set(sys.modules)
        added_path: str | None = None
        if plugin.path is not None and plugin.origin == DEV:
            plugin.stamp = folder_stamp(plugin.path)  # before importing: a failed load is retried on the next edit
        try:
            if plugin.manifest is not None:
                try:
                    plugin.manifest.check_api()
                except PluginError as exc:
                    plugin.status, plugin.error = INCOMPATIBLE, str(exc).replace(f"plugin {plugin.name!r} ", "")
                    return
                added_path = self._add_packages_path(plugin)
                missing = missing_requirements(plugin.manifest.requirements, packages_dir(plugin.name))
                if missing:
                    raise PluginError(
                        "its requirements are not installed (" + ", ".join(missing) + "); reinstall it with "
                        "'nuance plugins install' or the Plugin Manager, which puts them in its private folder")
            pack = self._import_pack(plugin)
            if pack.api_version > API_VERSION:
                plugin.status = INCOMPATIBLE
                raise PluginError(f"needs node API version {pack.api_version}, but this Nuance Studio provides "
                                  f"version {API_VERSION}; update Nuance Studio to use it")
            if plugin.manifest is None:
                version = pack.version
                if plugin.builtin and version == "0":
                    from studio import __version__ as version  # built-in packs ship with the app
                plugin.manifest = Manifest(name=plugin.name, version=version, description=pack.description,
                                           api_version=pack.api_version, gui=pack.gui)
            namespace = None if plugin.builtin else plugin.name
            plugin.node_types = register_nodes(self.registry, pack, namespace)
            gui = getattr(pack, "gui", None) or plugin.manifest.gui
            plugin.gui_module = _gui_module_name(plugin, gui) if gui else None
        except Exception as exc:  # one bad plugin never stops the others
            plugin.status = INCOMPATIBLE if plugin.status == INCOMPATIBLE else FAILED
            plugin.error = _failure_text(exc)
            plugin.node_types = []
            self._forget(plugin, before)
            for folder in (added_path, str(plugin.path) if plugin.origin == PACKAGE else None):
                if folder is not None and folder in sys.path:
                    sys.path.remove(folder)
            return
        plugin.modules = sorted(set(sys.modules) - before)
        plugin.status = LOADED

    def _add_packages_path(self, plugin: Plugin) -> str | None:
        private = packages_dir(plugin.name)
        if private.is_dir() and str(private) not in sys.path:
            sys.path.append(str(private))  # after the app's own folders: a core package is never shadowed
            return str(private)
        return None

    def _import_pack(self, plugin: Plugin) -> NodePack:
        if plugin.origin in (USER, DEV, BUNDLED):
            assert plugin.path is not None
            module: Any = import_package(plugin.path, module_name(plugin.name))
            pack = getattr(module, "NODE_PACK", None)
        else:
            assert plugin.entry_point is not None
            if plugin.origin == PACKAGE and plugin.path is not None and str(plugin.path) not in sys.path:
                sys.path.append(str(plugin.path))
            module_path, _, attr = plugin.entry_point.partition(":")
            module = importlib.import_module(module_path)
            pack = module
            for part in attr.split(".") if attr else []:
                pack = getattr(pack, part)
            if isinstance(pack, ModuleType):
                pack = getattr(pack, "NODE_PACK", None)
            elif callable(pack) and not isinstance(pack, NodePack):
                pack = pack()
        if not isinstance(pack, NodePack):
            raise PluginError("it does not expose NODE_PACK = studio.api.NodePack(...) (see the plugin guide)")
        if not plugin.builtin and pack.name != plugin.name:
            raise PluginError(f"its NODE_PACK is named {pack.name!r} but the plugin is {plugin.name!r}; "
                              "use the same name in both")
        return pack

    def _forget(self, plugin: Plugin, before: set[str] | None) -> bool:
        """Forget the modules this plugin brought in (those new since ``before``, or any): its own
        package and anything imported from its folders. True when a compiled extension was among
        them (those cannot be reloaded, so they stay)."""
        roots = [str(p) for p in (plugin.path, packages_dir(plugin.name)) if p is not None]
        own = module_name(plugin.name)
        compiled = False
        for key in sorted(set(sys.modules) - before) if before is not None else list(sys.modules):
            module = sys.modules.get(key)
            if module is None:
                continue
            path = getattr(module, "__file__", None) or ""
            if key == own or key.startswith(own + ".") or any(path.startswith(r + os.sep) for r in roots):
                if path.endswith((".so", ".pyd", ".dylib")):
                    compiled = True
                    continue
                del sys.modules[key]
        forget_modules(own)
        return compiled

    # -- changes at run time -----------------------------------------------------------------
    def unload(self, plugin: Plugin) -> Change:
        """Take a loaded plugin's nodes out of the registry and forget its modules."""
        removed = [t for t in plugin.node_types if t in self.registry]
        for type_id in removed:
            self.registry.unregister(type_id)
        compiled = self._forget(plugin, None) if plugin.loaded else False
        for folder in (str(packages_dir(plugin.name)), str(plugin.path) if plugin.origin == PACKAGE else None):
            if folder in sys.path:
                sys.path.remove(folder)
        plugin.node_types, plugin.modules = [], []
        plugin.status = UNLOADED
        message = f"plugin '{plugin.name}' unloaded ({len(removed)} node type(s) removed)"
        if compiled:
            message += "; it had loaded compiled modules, which stay in memory until Nuance Studio restarts"
        return Change(message, restart_needed=compiled, removed=removed)

    def disable(self, name: str) -> Change:
        plugin = self._require(name)
        if plugin.builtin:
            raise PluginError(f"'{name}' is a built-in node pack and cannot be disabled")
        self.state = PluginState.load()
        self.state.disabled.add(name)
        self.state.save()
        change = self.unload(plugin) if plugin.loaded else Change("")
        plugin.status = DISABLED
        change.message = f"plugin '{name}' disabled; its nodes are no longer available"
        return self._notify(change)

    def enable(self, name: str) -> Change:
        plugin = self._require(name)
        self.state = PluginState.load()
        self.state.disabled.discard(name)
        self.state.save()
        if plugin.loaded:
            return Change(f"plugin '{name}' is already enabled")
        plugin.status = UNLOADED
        self._load(plugin)
        if not plugin.loaded:
            return self._notify(Change(f"plugin '{name}' is enabled but failed to load: {plugin.error}"))
        return self._notify(Change(f"plugin '{name}' enabled: {len(plugin.node_types)} node type(s) added",
                                   added=list(plugin.node_types)))

    def reload(self, name: str) -> Change:
        """Read a plugin's files again (development mode, or after an update)."""
        plugin = self._require(name)
        removed: list[str] = []
        restart = False
        if plugin.loaded:
            change = self.unload(plugin)
            removed, restart = change.removed, change.restart_needed
        fresh = self._rediscover(plugin)
        index = self.plugins.index(plugin)
        self.plugins[index] = fresh
        self._load(fresh)
        if fresh.loaded:
            message = f"plugin '{name}' reloaded: {len(fresh.node_types)} node type(s)"
        elif fresh.status == DISABLED:
            message = f"plugin '{name}' is disabled"
        else:
            message = f"plugin '{name}' failed to reload: {fresh.error}"
        if restart:
            message += "; restart Nuance Studio to reload its compiled modules"
        return self._notify(Change(message, restart_needed=restart, added=list(fresh.node_types), removed=removed))

    def add_installed(self, name: str) -> Change:
        """Load a plugin that was just installed or updated, in place of any copy loaded before
        (an older version, or a bundled plugin of the same name, which it now shadows)."""
        self.state = PluginState.load()
        plugin = self._installed_plugin(name, self.state.installed.get(name))
        removed: list[str] = []
        restart = False
        existing = self.get(name)
        if existing is not None:
            if existing.loaded:
                unloaded = self.unload(existing)
                removed, restart = unloaded.removed, unloaded.restart_needed
            if existing.origin in (USER, PACKAGE, DEV):
                self.plugins.remove(existing)
            else:
                existing.status = SHADOWED
                existing.error = f"not loaded: the installed plugin of the same name ({plugin.path}) comes first"
        self.plugins.append(plugin)
        if plugin.status == UNLOADED:
            self._load(plugin)
        verb = "updated" if existing is not None and existing.origin in (USER, PACKAGE, DEV) else "installed"
        if plugin.loaded:
            message = f"plugin '{name}' {plugin.version} {verb} and loaded: {len(plugin.node_types)} node type(s)"
        else:
            message = f"plugin '{name}' {verb} but not loaded: {plugin.error or plugin.status}"
        if restart:
            message += "; restart Nuance Studio to drop the compiled modules of the old version"
        return self._notify(Change(message, restart_needed=restart, added=list(plugin.node_types), removed=removed))

    def remove(self, name: str) -> Change:
        """Forget an uninstalled plugin (its files are already gone)."""
        plugin = self.get(name)
        change = Change(f"plugin '{name}' uninstalled")
        if plugin is not None:
            if plugin.loaded:
                unloaded = self.unload(plugin)
                change.removed, change.restart_needed = unloaded.removed, unloaded.restart_needed
            self.plugins.remove(plugin)
            # A plugin it was shadowing (say the bundled copy) may load now.
            for other in self.plugins:
                if other.name == name and other.status == SHADOWED:
                    other.status = UNLOADED
                    self._load(other)
                    change.added = list(other.node_types)
                    break
        return self._notify(change)

    def rescan(self) -> Change:
        """Pick up what changed on disk while the app ran: plugins installed from the command line
        or dropped into a plugins folder are loaded, and ones removed from disk are unloaded."""
        found = self.discover()
        known = {(p.name, p.origin, str(p.path)) for p in self.plugins}
        there = {(p.name, p.origin, str(p.path)) for p in found}
        added: list[str] = []
        removed: list[str] = []
        restart = False
        for plugin in [p for p in self.plugins if (p.name, p.origin, str(p.path)) not in there and not p.builtin]:
            if plugin.loaded:
                change = self.unload(plugin)
                removed += change.removed
                restart = restart or change.restart_needed
            self.plugins.remove(plugin)
        for plugin in found:
            if (plugin.name, plugin.origin, str(plugin.path)) in known:
                continue
            if plugin.status == UNLOADED and self.get(plugin.name) is not None:
                plugin.status = SHADOWED  # a copy of that name is loaded already
                plugin.error = f"not loaded: a plugin named {plugin.name!r} is loaded already"
            self.plugins.append(plugin)
            if plugin.status == UNLOADED:
                self._load(plugin)
                added += plugin.node_types
        for plugin in self.plugins:  # a disabled or enabled state changed on the command line
            if plugin.builtin:
                continue
            if plugin.loaded and plugin.name in self.state.disabled:
                removed += self.unload(plugin).removed
                plugin.status = DISABLED
            elif plugin.status == DISABLED and plugin.name not in self.state.disabled:
                plugin.status = UNLOADED
                self._load(plugin)
                added += plugin.node_types
        message = (f"rescanned the plugin folders: {len(added)} node type(s) added, {len(removed)} removed"
                   if added or removed else "rescanned the plugin folders: nothing changed")
        return self._notify(Change(message, restart_needed=restart, added=added, removed=removed))

    def changed_plugins(self) -> list[str]:
        """Loaded folder plugins whose files changed since they were loaded (development mode)."""
        changed = []
        for plugin in self.plugins:
            if plugin.origin == DEV and plugin.path is not None and plugin.status in (LOADED, FAILED):
                stamp = folder_stamp(plugin.path)
                if plugin.stamp is None:
                    plugin.stamp = stamp
                elif stamp != plugin.stamp:
                    changed.append(plugin.name)
        return changed

    def _rediscover(self, plugin: Plugin) -> Plugin:
        self.state = PluginState.load()
        record = self.state.installed.get(plugin.name, plugin.record)
        if plugin.origin == PACKAGE and plugin.path is not None and record is not None:
            return self._package_plugin(plugin.path, record)
        if plugin.path is not None and plugin.origin in (USER, DEV, BUNDLED):
            fresh = self._folder_plugin(plugin.path, plugin.origin, name=plugin.name, record=record)
            if fresh.name != plugin.name and fresh.status != FAILED:
                fresh.status, fresh.error = FAILED, (f"its plugin.toml now names it {fresh.name!r}; "
                                                     f"a plugin cannot change its name (was {plugin.name!r})")
                fresh.name = plugin.name
            return fresh
        return Plugin(plugin.name, plugin.origin, plugin.path, plugin.manifest, plugin.entry_point, record)

    def _require(self, name: str) -> Plugin:
        plugin = self.get(name)
        if plugin is None:
            names = ", ".join(p.name for p in self.plugins if not p.builtin) or "none"
            raise PluginError(f"no plugin named {name!r} is installed (installed: {names})")
        return plugin

    def gui_modules(self) -> list[tuple[Plugin, str]]:
        """Loaded plugins with a GUI extension module, for the editor to import."""
        return [(p, p.gui_module) for p in self.plugins if p.loaded and p.gui_module]


def _gui_module_name(plugin: Plugin, gui: str) -> str:
    if plugin.origin in (USER, DEV, BUNDLED):
        return f"{module_name(plugin.name)}.{gui}"
    if plugin.builtin:
        return f"nodes.{plugin.name}.{gui}"
    return gui


def _failure_text(exc: BaseException) -> str:
    from studio.core.errors import NuanceError

    if isinstance(exc, NuanceError):
        return str(exc)
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<"):  # skip the import machinery's frozen frames
            where = f" ({Path(filename).name}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return f"failed while loading: {type(exc).__name__}: {exc}{where}"


def missing_requirements(requirements: Iterable[str], private: Path) -> list[str]:
    """Requirements that neither the plugin's private folder nor the app's environment satisfies.

    Looks each one up by name (no scan of every installed distribution: this runs at start-up).
    """
    missing: list[str] = []
    for text in requirements:
        from packaging.requirements import Requirement  # only when there is one: it costs 50 ms at start-up

        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        found = next(iter(importlib.metadata.distributions(name=requirement.name, path=[str(private)])), None)
        version = found.version if found is not None else None
        if version is None:
            try:
                version = importlib.metadata.version(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                version = None
        if version is None or (requirement.specifier and not requirement.specifier.contains(version, prereleases=True)):
            missing.append(text if version is None else f"{text} (found {version})")
    return missing


def package_entry_point(folder: Path, name: str) -> tuple[str, Manifest]:
    """The ``nuance.plugins`` entry point and manifest of a package installed into ``folder``."""
    for dist in importlib.metadata.distributions(path=[str(folder)]):
        for point in dist.entry_points:
            if point.group == ENTRY_POINT_GROUP and point.name == name:
                return point.value, _dist_manifest(name, dist)
    raise PluginError(f"{folder}: no installed package there declares the entry point "
                      f"[{ENTRY_POINT_GROUP}] {name} = ...")


def _dist_manifest(name: str, dist: Any) -> Manifest:
    """A manifest made from a distribution's metadata (package plugins have no plugin.toml)."""
    if dist is None:
        return Manifest(name=name)
    meta = dist.metadata
    requires = tuple(r for r in (meta.get_all("Requires-Dist") or []) if "extra ==" not in r)
    return Manifest(name=name, version=dist.version or "0",
                    description=meta.get("Summary") or "", author=meta.get("Author") or meta.get("Author-email") or "",
                    homepage=meta.get("Home-page") or _project_url(meta), requirements=requires)


def _project_url(meta: Any) -> str:
    for line in meta.get_all("Project-URL") or []:
        label, _, url = line.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository"):
            return url.strip()
    return ""


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
