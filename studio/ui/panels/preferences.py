"""Edit > Preferences: models folders, device, output cache size and theme, saved in settings.toml.

Everything applies without a restart: model lists are read from the folders each time they are
shown, the next run uses the device chosen, a smaller cache gives memory back at once, and every
open canvas repaints in the theme chosen.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import NuanceError
from studio.core.paths import data_dir
from studio.models.devices import DEVICE_CHOICES
from studio.models.folders import settings_path
from studio.ui import theme
from studio.ui.panels.model_lists import refresh_model_lists
from studio.ui.panels.settings import Preferences, load_preferences, save_preferences

DEVICE_TEXT = {"auto": "auto (CUDA, then Apple MPS, then the CPU)", "cpu": "cpu", "cuda": "cuda (NVIDIA GPU)",
               "mps": "mps (Apple GPU)"}
THEME_TEXT = {"dark": "Dark", "light": "Light"}


class PreferencesDialog(QDialog):
    """Shows preferences; ``preferences()`` reads back what the user set."""

    def __init__(self, prefs: Preferences, problem: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("PreferencesDialog")
        self.setMinimumWidth(520)

        models = QGroupBox("Models", self)
        self.models_dir = QLineEdit(prefs.models_dir, models)
        self.models_dir.setPlaceholderText(str(data_dir() / "models"))
        self.models_dir.setToolTip("Where model files go (sub-folders checkpoints, loras, vae …); empty: the default")
        browse = QPushButton("Browse…", models)
        browse.clicked.connect(self._browse_models_dir)
        row = QHBoxLayout()
        row.addWidget(self.models_dir, 1)
        row.addWidget(browse)
        self.extra = QListWidget(models)
        self.extra.addItems(prefs.extra_paths)
        self.extra.setToolTip("More folders searched for models, e.g. an existing ComfyUI or AUTOMATIC1111 models folder")
        self.add_button = QPushButton("Add folder…", models)
        self.add_button.clicked.connect(self._add_folder)
        self.remove_button = QPushButton("Remove", models)
        self.remove_button.clicked.connect(self._remove_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        form = QFormLayout(models)
        form.addRow("Models folder", row)
        form.addRow("Extra folders", self.extra)
        form.addRow("", buttons)
        override = os.environ.get("NUANCE_MODELS_DIR")
        if override:
            note = QLabel(f"NUANCE_MODELS_DIR is set, so {override} is used instead of the models folder above.", models)
            note.setWordWrap(True)
            form.addRow("", note)

        runs = QGroupBox("Runs", self)
        self.device = QComboBox(runs)
        for device in DEVICE_CHOICES:
            self.device.addItem(DEVICE_TEXT.get(device, device), device)
        self.device.setCurrentIndex(max(0, self.device.findData(prefs.device)))
        self.cache = QSpinBox(runs)
        self.cache.setRange(64, 1024 * 1024)
        self.cache.setSingleStep(256)
        self.cache.setSuffix(" MB")
        self.cache.setValue(prefs.cache_mb)
        self.cache.setToolTip("How much memory finished results may keep, so a changed value re-runs only what depends on it")
        run_form = QFormLayout(runs)
        run_form.addRow("Device", self.device)
        run_form.addRow("Output cache", self.cache)

        look = QGroupBox("Appearance", self)
        look_form = QFormLayout(look)
        self.theme = QComboBox(look)
        for name in theme.THEMES:
            self.theme.addItem(THEME_TEXT.get(name, name.capitalize()), name)
        self.theme.setCurrentIndex(max(0, self.theme.findData(prefs.theme)))
        self.theme.setToolTip("Dark suits judging pictures; light suits a bright room")
        look_form.addRow("Theme", self.theme)

        note = QLabel("Changes apply at once, no restart needed: model lists read the new folders, the next run uses "
                      f"the new device, the cache size and the theme change now. Saved in {settings_path()}.", self)
        note.setWordWrap(True)
        self.problem = QLabel(problem, self)
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.FAILED.name()}")
        self.problem.setVisible(bool(problem))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)
        box = QVBoxLayout(self)
        for widget in (models, runs, look, note, self.problem, self.buttons):
            box.addWidget(widget)

    def preferences(self) -> Preferences:
        return Preferences(
            models_dir=self.models_dir.text().strip(),
            extra_paths=[self.extra.item(i).text() for i in range(self.extra.count())],
            device=str(self.device.currentData()),
            cache_mb=self.cache.value(),
            theme=str(self.theme.currentData()),
        )

    def _browse_models_dir(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir.text() or str(data_dir()))
        if chosen:
            self.models_dir.setText(chosen)

    def _add_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a folder to search for models", os.path.expanduser("~"))
        existing = {self.extra.item(i).text() for i in range(self.extra.count())}
        if chosen and chosen not in existing:
            self.extra.addItem(chosen)

    def _remove_folder(self) -> None:
        for item in self.extra.selectedItems():
            self.extra.takeItem(self.extra.row(item))


class PreferencesController(QObject):
    """Loads the preferences at start, applies them, and runs the dialog."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.window_ = window
        self.dialog: PreferencesDialog | None = None
        self.problem = ""
        try:
            self.current = load_preferences()
        except NuanceError as exc:
            self.problem = f"{exc}. The defaults are in use; saving is disabled until the file is fixed."
            self.current = Preferences()
            window.show_message(f"Settings not read: {exc}")
        self.apply(self.current)

    def apply(self, prefs: Preferences) -> None:
        """Use ``prefs`` now. The theme is the whole application's: every open window and tab
        follows it (the views listen to ``theme.changes()``)."""
        self.current = prefs
        self.window_.runs.configure(device=prefs.device, cache_bytes=prefs.cache_bytes)
        app = QApplication.instance()
        if isinstance(app, QApplication) and prefs.theme != theme.current_theme():
            theme.apply_theme(app, prefs.theme)

    def open_dialog(self) -> PreferencesDialog:
        """Show the dialog (window-modal, without blocking); OK saves and applies."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        dialog = PreferencesDialog(self.current, self.problem, self.window_)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._accepted(dialog))
        dialog.finished.connect(lambda _result: self._forget(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _forget(self, dialog: PreferencesDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def _accepted(self, dialog: PreferencesDialog) -> None:
        prefs = dialog.preferences()
        try:
            path = save_preferences(prefs)
        except (NuanceError, OSError, ValueError) as exc:
            self.window_.warn("Preferences not saved", str(exc))
            return
        self.apply(prefs)
        refresh_model_lists(self.window_, quiet=True)
        self.window_.show_message(f"Preferences saved in {path}")
