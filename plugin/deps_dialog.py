"""The engine installer dialog: what will be installed where, consent, the pip log as it runs, the check."""

from __future__ import annotations

from qgis.core import QgsApplication, QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .engine import REQUIREMENTS
from .engine_env import WHEELHOUSE_KEY, EngineStatus, InstallTask, creation_python, env_dir, log


def pins() -> list[str]:
    """The exact requirements the engine gets (requirements/runtime.txt without comments)."""
    try:
        lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class DependencyDialog(QDialog):
    """Explains the engine environment; `Install` (the consent) runs the installer task in the background.

    `installed(status)` is emitted once the installed engine passed its check, so the dock becomes usable
    without restarting QGIS.
    """

    installed = pyqtSignal(object)
    started = pyqtSignal(object)  # the InstallTask, so the plugin can follow it after the dialog closes

    def __init__(self, status: EngineStatus | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatDependencyDialog")
        self.setWindowTitle("Contrasat — engine environment")
        self.task: InstallTask | None = None
        self.succeeded = False
        reason = status.message if status is not None and not status.ok else ""
        intro = QLabel(
            f"{reason + chr(10) + chr(10) if reason else ''}"
            "Contrasat runs its jobs in a separate Python environment that it manages, so nothing it needs "
            "can clash with QGIS's own libraries. Install creates it in\n"
            f"{env_dir()}\n"
            f"with {creation_python() or 'a Python interpreter (set one in Settings)'} and installs these exact "
            f"versions with pip (about 400 MB): {', '.join(pins())}.\n"
            "Nothing is downloaded or installed unless you press Install. Without internet access, choose a "
            "folder of wheels (made elsewhere with `pip download -r requirements/runtime.txt -d FOLDER`).",
            self,
        )
        intro.setWordWrap(True)
        self.wheelhouse = QgsFileWidget(self)
        self.wheelhouse.setStorageMode(QgsFileWidget.GetDirectory)
        self.wheelhouse.setDialogTitle("Folder of wheels (offline install)")
        self.wheelhouse.setFilePath(str(QgsSettings().value(WHEELHOUSE_KEY, "") or ""))
        self.wheelhouse.setToolTip("Leave empty to download from the Python package index")
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setObjectName("ContrasatInstallLog")
        self.log_view.setMinimumHeight(220)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.install_button = QPushButton("Install", self)
        self.buttons.addButton(self.install_button, QDialogButtonBox.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.install_button.clicked.connect(self.install)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Offline: folder of wheels (optional)", self))
        layout.addWidget(self.wheelhouse)
        layout.addWidget(self.log_view, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(680)

    def install(self) -> InstallTask:
        """The user consented: start the installer in the background and stream its log here."""
        wheelhouse = self.wheelhouse.filePath().strip() or None
        QgsSettings().setValue(WHEELHOUSE_KEY, wheelhouse or "")
        self.install_button.setEnabled(False)
        self.status.setText("Installing in the background… QGIS stays usable; the log follows below.")
        self.log_view.clear()
        task = InstallTask(wheelhouse)
        task.line.connect(self.log_view.appendPlainText)
        task.taskCompleted.connect(lambda: self._finished(task, True))
        task.taskTerminated.connect(lambda: self._finished(task, False))
        self.task = task
        self.started.emit(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def _finished(self, task: InstallTask, ok: bool) -> None:
        if sip.isdeleted(self) or task is not self.task:
            return  # the dialog was closed while pip ran; the plugin reports the outcome
        self.task = None
        self.succeeded = ok
        if ok and task.status is not None:
            self.status.setText(f"Installed and checked: {task.status.message}. The dock is ready.")
            log(self.status.text())
            self.installed.emit(task.status)
        else:
            self.status.setText(f"Not installed: {task.error or 'cancelled'}")
            log(self.status.text())
            self.install_button.setEnabled(True)

    def reject(self) -> None:
        """Close; a running installation keeps going in the task manager (its progress stays visible)."""
        super().reject()
