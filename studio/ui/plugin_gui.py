"""Glue between the plugin manager and the running editor.

A plugin enabled, disabled, installed, reloaded or removed while the editor is open changes the
node registry under every open canvas. This module makes the editor follow at once, without a
restart: plugin GUI modules are (un)registered, nodes re-layout (a disabled plugin's nodes become
placeholders and come back with their values when it is enabled again), the inspector redraws,
cached outputs of replaced code are dropped, and plugins linked for development reload when
their files change.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer

if TYPE_CHECKING:
    from studio.core.workflow import Workflow
    from studio.plugins.manager import Change, Plugin, PluginManager

log = logging.getLogger(__name__)

#: How often development mode looks at linked plugins' files (milliseconds).
POLL_MS = 1000


def _extensions() -> Any:
    """The process-wide GUI extension registry, or None when ``studio.ui.api`` is not available."""
    try:
        from studio.ui import api
    except ImportError:  # the GUI API is optional for the editor: plugins still work without widgets
        return None
    return api.shared() if hasattr(api, "shared") else None


def change_text(change: Change) -> str:
    """A change's message, saying so when a restart is needed to finish it."""
    text = change.message or "nothing changed"
    if change.restart_needed and "restart" not in text.lower():
        text += " (restart needed: restart Nuance Studio to finish this change)"
    elif change.restart_needed:
        text += " (restart needed)"
    return text


def placeholder_notes(manager: PluginManager | None, workflow: Workflow) -> list[str]:
    """One line per plugin (or unknown type) that the workflow's placeholder nodes need, with what to do.

    Grouped per plugin so a workflow with twenty nodes of a disabled plugin says so once.
    """
    nodes = workflow.graph.nodes
    types = [nodes[node_id].type for node_id in workflow.placeholders if node_id in nodes]
    if not types:
        return []
    if manager is None:
        shown = ", ".join(sorted(set(types))[:5]) + (", …" if len(set(types)) > 5 else "")
        return [f"{len(types)} node(s) of types that are not installed ({shown}) are kept as placeholders"]
    known = workflow.meta.get("plugins") if isinstance(workflow.meta.get("plugins"), dict) else None
    by_plugin: dict[str, list[str]] = defaultdict(list)
    unknown: list[str] = []
    for node_type in types:
        name = manager.provider(node_type)
        (by_plugin[name] if name is not None else unknown).append(node_type)
    notes = []
    for name, group in by_plugin.items():
        why = manager.why_unavailable(name, known)
        if why is not None:
            notes.append(f"{len(group)} node(s) need {why}")
        else:
            notes.append(f"{len(group)} node(s) of plugin '{name}' are placeholders: {manager.explain_missing(group[0], known)}")
    if unknown:
        shown = ", ".join(sorted(set(unknown))[:5]) + (", …" if len(set(unknown)) > 5 else "")
        notes.append(f"{len(unknown)} node(s) of types that are not installed ({shown}) are kept as placeholders")
    return notes


class PluginGui(QObject):
    """Keeps one main window in step with its :class:`PluginManager`.

    Made by the window when it is given a manager; ``close()`` (from the window's close) stops
    listening and takes this window's plugin widgets away again.
    """

    def __init__(self, window: Any, manager: PluginManager):
        super().__init__(window)
        self.setObjectName("PluginGui")
        self.window_ = window
        self.manager = manager
        #: Plugins whose GUI module is registered, and the plugin object it was registered for (a
        #: reload makes a new one, which must register again with the new code).
        self._registered: dict[str, Plugin] = {}
        #: Why a plugin's GUI module failed, by plugin name (shown in the Plugin Manager too).
        self.gui_errors: dict[str, str] = {}
        self.dialog: Any = None
        self.watcher = QTimer(self)
        self.watcher.setInterval(POLL_MS)
        self.watcher.timeout.connect(self.poll)
        self._unsubscribe: Any = manager.subscribe(self._on_change)
        failures = self.sync_gui_modules()
        if failures:
            window.show_message("; ".join(failures))

    # -- plugin GUI modules ------------------------------------------------------------------------
    def sync_gui_modules(self) -> list[str]:
        """Register the GUI module of every loaded plugin not yet registered, and drop those of
        plugins that went away; returns a message per module that failed."""
        extensions = _extensions()
        if extensions is None:
            return []
        wanted = {plugin.name: (plugin, module) for plugin, module in self.manager.gui_modules()}
        for name, plugin in list(self._registered.items()):
            current = wanted.get(name)
            if current is None or current[0] is not plugin:
                self._unregister(extensions, name)
        failures = []
        for name, (plugin, module) in wanted.items():
            if name in self._registered:
                continue
            problem = self._register(extensions, plugin, module)
            if problem:
                failures.append(problem)
        return failures

    def _register(self, extensions: Any, plugin: Plugin, module_name: str) -> str | None:
        self.gui_errors.pop(plugin.name, None)
        try:
            module = importlib.import_module(module_name)
            register = getattr(module, "register_gui", None)
            if not callable(register):
                raise AttributeError(f"{module_name} has no register_gui(gui) function")
            extensions.remove_plugin(plugin.name)  # a reload replaces what the old code added
            register(extensions.for_plugin(plugin.name))
        except Exception as exc:  # a plugin's editor extension must never take the editor down
            log.exception("the GUI module of plugin %r failed", plugin.name)
            try:
                extensions.remove_plugin(plugin.name)  # nothing half-registered stays
            except Exception:
                log.exception("could not drop the widgets of plugin %r", plugin.name)
            text = (f"the editor extension of plugin '{plugin.name}' failed ({type(exc).__name__}: {exc}); "
                    "its nodes work without it")
            self.gui_errors[plugin.name] = text
            self._registered[plugin.name] = plugin  # not retried until the plugin changes
            return text
        self._registered[plugin.name] = plugin
        return None

    def _unregister(self, extensions: Any, name: str) -> None:
        self._registered.pop(name, None)
        self.gui_errors.pop(name, None)
        try:
            extensions.remove_plugin(name)
        except Exception:
            log.exception("could not drop the widgets of plugin %r", name)

    # -- following changes -------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        failures = self.sync_gui_modules()
        self.refresh_editor(change.removed)
        self.window_.show_message("; ".join([change_text(change), *failures]))
        if self.dialog is not None:
            self.dialog.refresh()

    def refresh_editor(self, removed: Iterable[str] = ()) -> None:
        """Make everything that read the registry read it again: canvases, placeholders, inspector.

        The palette reads the registry each time it opens, so one that is open is closed (its
        list may name node types that are gone).
        """
        registry = self.manager.registry
        for tab in self.window_.workflow_tabs():
            workflow = tab.document.workflow
            workflow.placeholders = [node_id for node_id, node in workflow.graph.nodes.items()
                                     if registry.spec(node.type) is None]
            palette = getattr(tab.view, "palette_popup", None)
            if palette is not None and palette.isVisible():
                palette.close_palette()
            for item in list(tab.scene.nodes.values()):
                item.refresh()  # a placeholder ↔ node: new sockets, widgets and size
        if list(removed):
            self._drop_cached_outputs()
        self._refresh_inspector()

    def _drop_cached_outputs(self) -> None:
        """Cached outputs were made by code that is gone now."""
        self.window_.runs.clear_cache()

    def _refresh_inspector(self) -> None:
        try:
            from studio.ui import panels

            inspector = panels.of(self.window_).inspector
        except (ImportError, LookupError, AttributeError):
            return
        if inspector.node_id is not None:
            inspector.show_node(inspector.node_id, commit=False)

    # -- development mode --------------------------------------------------------------------------
    @property
    def dev_mode(self) -> bool:
        return self.watcher.isActive()

    def set_dev_mode(self, on: bool) -> None:
        """Reload plugins linked for development when their files change (polled every second)."""
        if on:
            self.manager.changed_plugins()  # take the current files as the starting point
            self.watcher.start()
        else:
            self.watcher.stop()

    def poll(self) -> list[str]:
        """Reload every linked plugin whose files changed; returns their names."""
        try:
            changed = self.manager.changed_plugins()
        except Exception:
            log.exception("could not check plugin files")
            return []
        for name in changed:
            try:
                self.manager.reload(name)  # listeners (this object included) refresh the editor
            except Exception as exc:
                log.exception("reloading plugin %r failed", name)
                self.window_.show_message(f"Reloading plugin '{name}' failed: {exc}")
        return changed

    # -- the Plugin Manager dialog -----------------------------------------------------------------
    def open_manager(self) -> Any:
        """Show the Plugin Manager (one per window, kept while the window lives)."""
        if self.dialog is None:
            from studio.ui.plugin_manager import PluginManagerDialog

            self.dialog = PluginManagerDialog(self.window_, self.manager, self)
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def close(self) -> None:
        """The window is closing: stop listening and watching, drop this window's plugin widgets."""
        self.watcher.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.dialog is not None:
            self.dialog.shutdown()
        extensions = _extensions()
        if extensions is not None:
            for name in list(self._registered):
                self._unregister(extensions, name)
