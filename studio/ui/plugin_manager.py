"""The Plugin Manager: every plugin on this machine, and installing, updating, enabling, disabling,
reloading and removing them while the editor runs.

Installing runs in two halves, as :mod:`studio.plugins.install` does: everything that can refuse
(fetch, read, scan, plan the requirements) happens first, in the background, and writes nothing;
then a review shows what the scan found and which packages would go into the plugin's private
folder (or why they cannot), and nothing is written until the user ticks "I trust this code" and
presses Install. Slow work (git, pip) runs on a worker thread so the editor stays responsive;
only its result comes back to the GUI thread, where the manager is told.
"""

from __future__ import annotations

import html
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from itertools import count
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ui.plugin_gui import change_text

if TYPE_CHECKING:
    from studio.plugins.install import Prepared
    from studio.plugins.manager import Change, Plugin, PluginManager
    from studio.ui.plugin_gui import PluginGui

log = logging.getLogger(__name__)

COLUMNS = ("Name", "Version", "Status", "Origin", "Nodes", "Source")
PROBLEM_STATUSES = ("failed", "incompatible", "shadowed")
ERROR_COLOR = "#e05252"
ORIGIN_TEXT = {"dev": "dev (linked)"}
ARCHIVE_FILTER = "Plugin archives (*.zip *.tar.gz *.tgz *.whl);;All files (*)"


def source_text(plugin: Plugin) -> str:
    """Where a plugin came from, short: its recorded source and commit, or where it was found."""
    record = plugin.record
    if record is not None:
        text = record.source or record.path
        if record.commit:
            text += f" @ {record.commit[:10]}"
        elif record.kind == "package" and record.version:
            text += f" == {record.version}"
        return text
    if plugin.entry_point and plugin.origin != "built-in":
        return plugin.entry_point
    return str(plugin.path) if plugin.path is not None and plugin.origin != "built-in" else ""


def details_html(plugin: Plugin, gui_error: str | None = None) -> str:
    """Everything known about one plugin, for the details pane."""
    e = html.escape
    manifest = plugin.manifest
    rows: list[tuple[str, str]] = []
    parts = [f"<h3>{e(plugin.name)} {e(plugin.version)}</h3>"]
    if manifest is not None and manifest.description:
        parts.append(f"<p>{e(manifest.description)}</p>")
    if plugin.error:
        parts.append(f"<p style='color:{ERROR_COLOR}'><b>Error:</b> {e(plugin.error)}</p>")
    if gui_error:
        parts.append(f"<p style='color:{ERROR_COLOR}'>{e(gui_error)}</p>")
    rows.append(("Status", plugin.status))
    rows.append(("Origin", ORIGIN_TEXT.get(plugin.origin, plugin.origin)))
    if manifest is not None:
        if manifest.author:
            rows.append(("Author", e(manifest.author)))
        if manifest.homepage:
            url = e(manifest.homepage)
            rows.append(("Homepage", f"<a href='{url}'>{url}</a>" if manifest.homepage.startswith("http") else url))
        rows.append(("Node API", str(manifest.api_version)))
        rows.append(("Requirements", e(", ".join(manifest.requirements)) or "none"))
    if plugin.path is not None:
        rows.append(("Folder", e(str(plugin.path))))
    record = plugin.record
    if record is not None:
        rows.append(("Installed from", e(f"{record.kind}: {record.source or record.path}")))
        if record.rev:
            rows.append(("Revision", e(record.rev)))
        if record.commit:
            rows.append(("Commit", e(record.commit)))
        if record.version:
            rows.append(("Installed version", e(record.version)))
        if record.installed:
            rows.append(("Installed on", e(record.installed)))
        packages = ", ".join(f"{n}=={v}" for n, v in sorted(record.packages.items()))
        rows.append(("Private packages", e(packages) or "none"))
    parts.append("<table cellspacing='2'>" + "".join(
        f"<tr><td valign='top'><b>{label}</b>&nbsp;&nbsp;</td><td>{value}</td></tr>" for label, value in rows) + "</table>")
    if plugin.node_types:
        parts.append(f"<p><b>{len(plugin.node_types)} node type(s):</b> "
                     + e(", ".join(sorted(plugin.node_types))) + "</p>")
    return "".join(parts)


class _Relay(QObject):
    """Carries a worker thread's outcome to the GUI thread (a queued signal)."""

    done = Signal(int, object, object)


class InstallReview(QDialog):
    """What installing (or updating) a prepared plugin would do, and the user's decision.

    Install stays disabled until "I trust this code and its author" is ticked, and for good when
    the requirements conflict (nothing can be installed then; the reason is shown).
    """

    def __init__(self, prepared: Prepared, parent: QWidget | None = None, *, update: bool = False):
        super().__init__(parent)
        self.prepared = prepared
        verb = "Update" if update else "Install"
        manifest = prepared.manifest
        self.setWindowTitle(f"{verb} plugin '{prepared.name}'")
        e = html.escape
        author = f" by {e(manifest.author)}" if manifest.author else ""
        header = f"<h3>{e(prepared.name)} {e(manifest.version)}{author}</h3>"
        if manifest.description:
            header += f"<p>{e(manifest.description)}</p>"
        header += f"<p>From: {e(prepared.record.source or prepared.record.path)}"
        if prepared.record.commit:
            header += f" (commit {e(prepared.record.commit[:12])})"
        header += "</p>"
        if prepared.existing is not None:
            header += f"<p>Replaces the installed version {e(prepared.existing.version or '?')}.</p>"
        self.header = QLabel(header, self)
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)

        from studio.plugins.scan import summary

        findings = prepared.findings
        self.scan_label = QLabel(
            "A plugin runs Python code with your permissions. The scan found: " + summary(findings), self)
        self.scan_label.setWordWrap(True)
        self.findings = QTreeWidget(self)
        self.findings.setHeaderLabels(["What the scan found", "Where"])
        self.findings.setRootIsDecorated(True)
        grouped: dict[str, list[Any]] = defaultdict(list)
        for finding in findings:
            grouped[finding.category].append(finding)
        for category, items in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            top = QTreeWidgetItem([f"{category} ({len(items)})", ""])
            for finding in items:
                where = f"{finding.path}:{finding.line}" if finding.line else finding.path
                child = QTreeWidgetItem(top, [finding.message, where])
                child.setToolTip(0, finding.message)
            self.findings.addTopLevelItem(top)
            top.setExpanded(True)
        self.findings.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.findings.setVisible(bool(findings))

        if prepared.plan_error:
            text = f"<span style='color:{ERROR_COLOR}'><b>Cannot install:</b> {e(prepared.plan_error)}</span>"
        elif prepared.packages:
            listed = ", ".join(f"{n}=={v}" for n, v in sorted(prepared.packages.items()))
            text = f"These packages will be installed into the plugin's private folder: {e(listed)}"
        elif manifest.requirements:
            text = "Its requirements (" + e(", ".join(manifest.requirements)) + ") are already satisfied."
        else:
            text = "It needs no extra packages."
        self.requirements = QLabel(text, self)
        self.requirements.setWordWrap(True)
        self.requirements.setTextFormat(Qt.TextFormat.RichText)

        self.trust = QCheckBox("I trust this code and its author", self)
        self.buttons = QDialogButtonBox(self)
        self.install_button = self.buttons.addButton(verb, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.trust.toggled.connect(self._update_button)
        self._update_button()

        box = QVBoxLayout(self)
        for widget in (self.header, self.scan_label, self.findings, self.requirements, self.trust, self.buttons):
            box.addWidget(widget)
        self.resize(620, 460 if findings else 300)

    @property
    def can_install(self) -> bool:
        return self.trust.isChecked() and not self.prepared.plan_error

    def _update_button(self) -> None:
        self.install_button.setEnabled(self.can_install)


class PluginManagerDialog(QDialog):
    """Lists every plugin and applies changes to the running app through the :class:`PluginManager`.

    The questions it asks (files, text, confirmation) are methods a test may replace, and the review
    is shown with ``open()`` (not ``exec()``), so nothing here blocks a test.
    """

    def __init__(self, window: Any, manager: PluginManager, plugin_gui: PluginGui | None = None):
        super().__init__(window)
        self.setObjectName("PluginManagerDialog")
        self.setWindowTitle("Plugin Manager")
        self.window_ = window
        self.manager = manager
        self.plugin_gui = plugin_gui
        self.review: InstallReview | None = None
        self._tasks: dict[int, Callable[[Any, BaseException | None], None]] = {}
        self._ids = count(1)
        self._relay = _Relay(self)
        self._relay.done.connect(self._finished)
        self._rows: list[Plugin] = []

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.details = QTextBrowser(self)
        self.details.setOpenExternalLinks(True)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setSizes([300, 220])

        self.toggle_button = QPushButton("Disable", self)
        self.toggle_button.clicked.connect(self.toggle_selected)
        self.update_button = QPushButton("Update", self)
        self.update_button.setToolTip("Fetch the plugin again from where it was installed")
        self.update_button.clicked.connect(self.update_selected)
        self.uninstall_button = QPushButton("Uninstall", self)
        self.uninstall_button.clicked.connect(self.uninstall_selected)
        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setToolTip("Read the plugin's files again")
        self.reload_button.clicked.connect(self.reload_selected)
        self.rescan_button = QPushButton("Rescan", self)
        self.rescan_button.setToolTip("Pick up plugins installed from the command line or copied into a plugins folder")
        self.rescan_button.clicked.connect(self.rescan)
        self.install_button = QToolButton(self)
        self.install_button.setText("Install ▾")
        self.install_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.install_menu = QMenu(self.install_button)
        self.install_menu.addAction("From folder…", self.install_from_folder)
        self.install_menu.addAction("From archive…", self.install_from_archive)
        self.install_menu.addAction("From git URL…", self.install_from_git)
        self.install_menu.addAction("From package name…", self.install_from_package)
        self.install_menu.addSeparator()
        self.install_menu.addAction("Link folder for development…", self.link_for_development)
        self.install_button.setMenu(self.install_menu)
        buttons = QHBoxLayout()
        for button in (self.toggle_button, self.update_button, self.uninstall_button, self.reload_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.rescan_button)
        buttons.addWidget(self.install_button)

        self.dev_mode = QCheckBox("Development mode: reload linked plugins when their files change", self)
        self.dev_mode.setChecked(plugin_gui.dev_mode if plugin_gui is not None else False)
        self.dev_mode.setEnabled(plugin_gui is not None)
        self.dev_mode.toggled.connect(self._set_dev_mode)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)  # busy, length unknown
        self.progress.setMaximumHeight(10)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        box.addWidget(splitter, 1)
        box.addLayout(buttons)
        box.addWidget(self.dev_mode)
        box.addWidget(self.progress)
        box.addWidget(self.message)
        box.addWidget(close)
        self.resize(860, 620)
        # Without a PluginGui (tests of the dialog alone) the dialog follows the manager itself.
        self._unsubscribe: Any = manager.subscribe(lambda _change: self.refresh()) if plugin_gui is None else None
        self.refresh()

    # -- the list ----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether background work (fetching, installing) is going on."""
        return bool(self._tasks)

    def selected(self) -> Plugin | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows and rows[0].row() < len(self._rows) else None

    def row_of(self, name: str) -> int:
        """The table row of the plugin ``name`` (the one in use, not a shadowed copy); -1 if none."""
        rows = [i for i, p in enumerate(self._rows) if p.name == name]
        return next((i for i in rows if self._rows[i].status != "shadowed"), rows[0] if rows else -1)

    def select(self, name: str) -> None:
        row = self.row_of(name)
        if row >= 0:
            self.table.selectRow(row)

    def refresh(self) -> None:
        """Show the manager's plugins as they are now, keeping the selection."""
        current = self.selected()
        keep = (current.name, current.origin) if current is not None else None
        self._rows = list(self.manager.plugins)
        self.table.setRowCount(len(self._rows))
        for row, plugin in enumerate(self._rows):
            values = (plugin.name, plugin.version, plugin.status, ORIGIN_TEXT.get(plugin.origin, plugin.origin),
                      str(len(plugin.node_types)), source_text(plugin))
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if plugin.status in PROBLEM_STATUSES:
                    item.setForeground(QBrush(QColor(ERROR_COLOR)))
                    item.setToolTip(plugin.error or plugin.status)
                elif plugin.status == "disabled":
                    item.setForeground(QBrush(QColor("#8a8a8a")))
                self.table.setItem(row, column, item)
        target = next((i for i, p in enumerate(self._rows) if keep and (p.name, p.origin) == keep), -1)
        if target < 0 and self._rows:
            target = 0
        if target >= 0:
            self.table.selectRow(target)
        self._show_selected()

    def _show_selected(self) -> None:
        plugin = self.selected()
        gui_errors = self.plugin_gui.gui_errors if self.plugin_gui is not None else {}
        self.details.setHtml(details_html(plugin, gui_errors.get(plugin.name)) if plugin is not None else "")
        self._update_buttons()

    def _update_buttons(self) -> None:
        plugin = self.selected()
        idle = not self.busy
        usable = plugin is not None and plugin.status != "shadowed"
        disabled = plugin is not None and plugin.status == "disabled"
        self.toggle_button.setText("Enable" if disabled else "Disable")
        self.toggle_button.setEnabled(idle and usable and plugin is not None and not plugin.builtin)
        self.toggle_button.setToolTip("Built-in nodes cannot be disabled" if plugin is not None and plugin.builtin else "")
        self.update_button.setEnabled(idle and usable and plugin is not None and plugin.record is not None
                                      and plugin.record.kind != "dev")
        self.uninstall_button.setEnabled(idle and usable and plugin is not None and plugin.removable)
        self.reload_button.setEnabled(idle and usable and plugin is not None and not plugin.builtin and not disabled)
        self.install_button.setEnabled(idle)

    # -- reporting ---------------------------------------------------------------------------------
    def report(self, text: str, error: bool = False, status_bar: bool = True) -> None:
        """Say what happened here and in the main window's status bar."""
        self.message.setStyleSheet(f"color: {ERROR_COLOR};" if error else "")
        self.message.setText(text)
        if status_bar:
            self.window_.show_message(text)

    def _apply(self, action: Callable[[], Change]) -> Change | None:
        """Run a manager change; its listeners (the editor) refresh, and its message is shown."""
        from studio.core.errors import NuanceError

        try:
            change = action()
        except NuanceError as exc:
            self.report(str(exc), error=True)
            return None
        # The PluginGui listener already put the message in the status bar (with any GUI failure).
        self.report(change_text(change), status_bar=self.plugin_gui is None)
        self.refresh()
        return change

    # -- actions on the selected plugin ------------------------------------------------------------
    def toggle_selected(self) -> Change | None:
        plugin = self.selected()
        if plugin is None or plugin.builtin:
            return None
        name = plugin.name
        if plugin.status == "disabled":
            return self._apply(lambda: self.manager.enable(name))
        return self._apply(lambda: self.manager.disable(name))

    def rescan(self) -> Change | None:
        return self._apply(self.manager.rescan)

    def reload_selected(self) -> Change | None:
        plugin = self.selected()
        if plugin is None or plugin.builtin:
            return None
        name = plugin.name
        return self._apply(lambda: self.manager.reload(name))

    def uninstall_selected(self) -> None:
        plugin = self.selected()
        if plugin is None or not plugin.removable:
            return
        name = plugin.name
        kept = " (its folder stays where it is: it is linked for development)" if plugin.origin == "dev" else ""
        if not self.confirm("Uninstall plugin", f"Uninstall plugin '{name}' and its private packages{kept}? "
                                                "Workflows using its nodes keep them as placeholders."):
            return
        from studio.plugins import install

        def done(_result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.report(f"Uninstalling '{name}' failed: {error}", error=True)
                return
            self._apply(lambda: self.manager.remove(name))

        self.run_in_background(f"Uninstalling {name}…", lambda: install.uninstall(name), done)

    def update_selected(self) -> None:
        plugin = self.selected()
        if plugin is None or plugin.record is None:
            return
        from studio.plugins import install

        name = plugin.name
        self.run_in_background(f"Fetching the new version of {name}…", lambda: install.prepare_update(name),
                               lambda prepared, error: self._prepared(prepared, error, update=True))

    # -- installing --------------------------------------------------------------------------------
    def install_from(self, text: str, *, dev: bool = False) -> None:
        """Start installing from a folder, archive, wheel, git URL or package name (``dev``: link a
        folder in place); a review follows when it has been fetched and checked."""
        text = text.strip()
        if not text:
            return
        from studio.plugins import install

        what = "Linking" if dev else "Fetching and checking"
        self.run_in_background(f"{what} {text}…", lambda: install.prepare(text, dev=dev),
                               lambda prepared, error: self._prepared(prepared, error, update=False))

    def install_from_folder(self) -> None:
        folder = self.choose_folder("Install a plugin from a folder")
        if folder:
            self.install_from(folder)

    def link_for_development(self) -> None:
        folder = self.choose_folder("Link a plugin folder for development")
        if folder:
            self.install_from(folder, dev=True)

    def install_from_archive(self) -> None:
        path = self.choose_file("Install a plugin from an archive or wheel", ARCHIVE_FILTER)
        if path:
            self.install_from(path)

    def install_from_git(self) -> None:
        url = self.ask_text("Install from git", "Repository URL, optionally with @revision (tag, branch or commit):")
        if url:
            self.install_from(url)

    def install_from_package(self) -> None:
        name = self.ask_text("Install from a package", "Package name, optionally NAME==VERSION:")
        if name:
            self.install_from(name)

    def _prepared(self, prepared: Prepared | None, error: BaseException | None, *, update: bool) -> None:
        if error is not None or prepared is None:
            self.report(f"Nothing was installed: {error}", error=True)
            return
        if self.review is not None:
            self.review.prepared.close()
            self.review.deleteLater()
        review = InstallReview(prepared, self, update=update)
        self.review = review
        review.finished.connect(lambda result: self._reviewed(review, result == QDialog.DialogCode.Accepted))
        self.report(f"Review plugin '{prepared.name}' {prepared.manifest.version} before installing it", status_bar=False)
        self.show_review(review)

    def show_review(self, review: InstallReview) -> None:
        """Show the review without blocking (window-modal): its buttons decide."""
        review.open()

    def _reviewed(self, review: InstallReview, accepted: bool) -> None:
        if review is self.review:
            self.review = None
        review.deleteLater()
        prepared = review.prepared
        if not accepted or not review.can_install:
            prepared.close()
            self.report(f"Plugin '{prepared.name}' was not installed", status_bar=False)
            return
        name = prepared.name

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                self.report(f"Installing '{name}' failed, nothing was changed: {error}", error=True)
                return
            change = self._apply(lambda: self.manager.add_installed(result.name))
            if change is not None:
                if result.packages:
                    listed = ", ".join(f"{n}=={v}" for n, v in sorted(result.packages.items()))
                    self.message.setText(self.message.text() + f"; private packages: {listed}")
                self.select(result.name)

        self.run_in_background(f"Installing {name}…", lambda: prepared.commit(trust=True), done)

    # -- background work ---------------------------------------------------------------------------
    def run_in_background(self, text: str, work: Callable[[], Any],
                          done: Callable[[Any, BaseException | None], None]) -> None:
        """Run ``work`` on a worker thread and ``done(result, error)`` back on the GUI thread.

        The worker touches no widget: its outcome travels by a queued signal.
        """
        task = next(self._ids)
        self._tasks[task] = done
        self.progress.show()
        self.report(text, status_bar=False)
        self._update_buttons()
        relay = self._relay

        def worker() -> None:
            try:
                result, error = work(), None
            except BaseException as exc:  # reported in the dialog, never lost in the thread
                result, error = None, exc
            try:
                relay.done.emit(task, result, error)
            except RuntimeError:  # the dialog is gone (the window closed meanwhile)
                log.warning("plugin task finished after its dialog closed: %s", error or "ok")

        threading.Thread(target=worker, name=f"plugin-task-{task}", daemon=True).start()

    def _finished(self, task: int, result: Any, error: Any) -> None:
        done = self._tasks.pop(task, None)
        if not self._tasks:
            self.progress.hide()
        self._update_buttons()
        if done is None:
            return
        if error is not None and not isinstance(error, Exception):
            error = RuntimeError(str(error) or type(error).__name__)
        try:
            done(result, error)
        except Exception as exc:  # a bug in a follow-up must not leave the dialog stuck
            log.exception("plugin manager follow-up failed")
            self.report(f"Something went wrong: {exc}", error=True)

    # -- development mode --------------------------------------------------------------------------
    def _set_dev_mode(self, on: bool) -> None:
        if self.plugin_gui is not None:
            self.plugin_gui.set_dev_mode(on)
        self.report("Development mode on: linked plugins reload when their files change" if on
                    else "Development mode off", status_bar=False)

    # -- questions (replaced in tests) -------------------------------------------------------------
    def choose_folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self, title)

    def choose_file(self, title: str, file_filter: str) -> str:
        chosen, _ = QFileDialog.getOpenFileName(self, title, "", file_filter)
        return chosen

    def ask_text(self, title: str, label: str) -> str:
        text, ok = QInputDialog.getText(self, title, label)
        return text.strip() if ok else ""

    def confirm(self, title: str, text: str) -> bool:
        buttons = QMessageBox.StandardButton
        return QMessageBox.question(self, title, text, buttons.Yes | buttons.No, buttons.No) == buttons.Yes

    # -- closing -----------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """The window is closing: throw away a review not decided, stop listening."""
        if self.review is not None:
            self.review.prepared.close()
            self.review = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._tasks.clear()
        self.hide()
