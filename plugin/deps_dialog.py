"""The engine installer dialog: what will be installed where, consent, the pip log as it runs, the check.

Not modal: QGIS stays usable while pip runs in a background task, and only one installation runs at a
time (engine_install.start_install); reopening the dialog follows the running one.
"""

from __future__ import annotations

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .engine import PLUGIN_DIR
from .engine_env import WHEELHOUSE_KEY, EngineStatus, creation_python, env_dir, log
from .engine_install import (
    RUNTIME_PINS,
    SIZE_MB,
    TRAIN_LOCK,
    InstallPlan,
    InstallTask,
    gpu_engine,
    install_events,
    install_plans,
    lock_applies,
    log_path,
    nvidia_gpus,
    running_install,
    start_install,
)

HELP_PAGE = PLUGIN_DIR / "docs" / "qgis.md"


def pins() -> list[str]:
    """The top-level pins the engine gets (requirements/runtime.txt without comments)."""
    try:
        lines = RUNTIME_PINS.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def open_help() -> bool:
    """Open the plugin's QGIS guide (docs/qgis.md, shipped in the zip) in the desktop's viewer."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(HELP_PAGE)))


class DependencyDialog(QDialog):
    """Explains the engine environment; `Install` (the consent) runs the installer task in the background.

    `installed(status)` is emitted once the installed engine passed its check, so the dock becomes usable
    without restarting QGIS.
    """

    installed = pyqtSignal(object)
    started = pyqtSignal(object)  # the InstallTask, so the plugin can follow it after the dialog closes

    def __init__(
        self,
        status: EngineStatus | None = None,
        parent: QWidget | None = None,
        *,
        gpus: list[str] | None = None,
        training: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatDependencyDialog")
        self.setWindowTitle("Contrasat — engine environment")
        self.setModal(False)
        self.task: InstallTask | None = None
        self.succeeded = False
        self.engine_status = status  # a checked engine of the chosen build gets only training added
        reason = status.message if status is not None and not status.ok else ""
        gpus = nvidia_gpus() if gpus is None and lock_applies() else (gpus or [])
        locked = lock_applies()
        how = (
            "every package, dependencies included, at the exact version and file (checked by its hash) "
            "that was tested"
            if locked
            else "these versions (this platform has no lock file: dependencies may differ from the tested ones)"
        )
        intro = QLabel(
            f"{reason + chr(10) + chr(10) if reason else ''}"
            "Contrasat runs its jobs in a separate Python environment that it manages, so nothing it needs "
            "can clash with QGIS's own libraries. Install creates it in\n"
            f"{env_dir()}\n"
            f"with {creation_python() or 'a Python interpreter (set one in Settings)'} and installs {how} "
            f"(about {SIZE_MB['cpu']} MB to download): {', '.join(pins())}.\n"
            "Nothing is downloaded or installed unless you press Install. It runs in the background: QGIS "
            "stays usable, and the Contrasat panel shows the progress. Without internet access, choose a "
            "folder of wheels (see Help).",
            self,
        )
        intro.setWordWrap(True)
        self.gpu = QCheckBox(
            f"Use the NVIDIA GPU ({gpus[0].split('(')[0].strip() if gpus else ''}): installs the GPU build "
            f"of ONNX Runtime (about {SIZE_MB['gpu']} MB to download; it also runs on the CPU)",
            self,
        )
        self.gpu.setObjectName("ContrasatInstallGpu")
        # opened to add training to a working engine: keep its build unless the user ticks otherwise
        keep = training and status is not None and status.ok
        self.gpu.setChecked(gpu_engine(status) if keep and gpus else bool(gpus))
        self.gpu.setVisible(bool(gpus))
        self.training = QCheckBox(
            f"Add training support (torch CPU, scipy, scikit-learn; about {SIZE_MB['train']} MB more to "
            "download), "
            "needed by the Fine-tune tab",
            self,
        )
        self.training.setObjectName("ContrasatInstallTraining")
        self.training.setChecked(training)
        self.training.setVisible(TRAIN_LOCK.is_file())
        self.wheelhouse = QgsFileWidget(self)
        self.wheelhouse.setStorageMode(QgsFileWidget.GetDirectory)
        self.wheelhouse.setDialogTitle("Folder of wheels (offline install)")
        self.wheelhouse.setFilePath(str(QgsSettings().value(WHEELHOUSE_KEY, "") or ""))
        self.wheelhouse.setToolTip("Leave empty to download from the Python package index")
        self.log_view = QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setObjectName("ContrasatInstallLog")
        self.log_view.setMinimumHeight(220)
        self.status = QLabel(f"The log of the last installation is kept in {log_path()}", self)
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close | QDialogButtonBox.Help, self)
        self.install_button = QPushButton("Install", self)
        self.buttons.addButton(self.install_button, QDialogButtonBox.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.buttons.helpRequested.connect(open_help)
        self.install_button.clicked.connect(self.install)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.gpu)
        layout.addWidget(self.training)
        layout.addWidget(QLabel("Offline: folder of wheels (optional)", self))
        layout.addWidget(self.wheelhouse)
        layout.addWidget(self.log_view, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(680)
        running = running_install()
        if running is not None:
            self._follow(running)

    def plans(self) -> list[InstallPlan]:
        """What Install installs, as chosen: the engine (CPU or GPU), then training support for that build if
        ticked (the engine step left out when the checked engine already is that build)."""
        return install_plans(
            gpu=not self.gpu.isHidden() and self.gpu.isChecked(),
            training=not self.training.isHidden() and self.training.isChecked(),
            status=self.engine_status,
        )

    def install(self) -> InstallTask | None:
        """The user consented: start the installer in the background and stream its log here."""
        wheelhouse = self.wheelhouse.filePath().strip() or None
        QgsSettings().setValue(WHEELHOUSE_KEY, wheelhouse or "")
        self.log_view.clear()
        task = start_install(wheelhouse, self.plans())
        if task is None:  # another installation is running: follow it instead of starting a second pip
            running = running_install()
            if running is not None:
                self._follow(running)
            return None
        self.started.emit(task)
        self._follow(task)
        return task

    def _follow(self, task: InstallTask) -> None:
        """Show a running installation: its log so far, then each new line, and its end."""
        self.task = task
        self.install_button.setEnabled(False)
        self.status.setText("Installing in the background… QGIS stays usable; the log follows below.")
        self.log_view.setPlainText("\n".join(task.lines))
        task.line.connect(self._append)
        install_events().finished.connect(self._finished)

    def _append(self, text: str) -> None:
        if not sip.isdeleted(self):
            self.log_view.appendPlainText(text)

    def _finished(self, task: InstallTask) -> None:
        if sip.isdeleted(self) or task is not self.task:
            return  # the dialog was closed while pip ran; the dock reports the outcome
        self.task = None
        self.succeeded = not task.error and task.status is not None and task.status.ok
        if self.succeeded:
            self.status.setText(f"Installed and checked: {task.status.message}. The dock is ready.")
            log(self.status.text())
            self.installed.emit(task.status)
        else:
            self.status.setText(f"Not installed: {task.error or 'cancelled'}. The log is in {log_path()}")
            log(self.status.text())
            self.install_button.setEnabled(True)
            self.install_button.setText("Retry")

    def reject(self) -> None:
        """Close; a running installation keeps going in the task manager (its progress stays visible)."""
        super().reject()


_OPEN: dict[str, DependencyDialog] = {}


def open_installer(
    status: EngineStatus | None = None, parent: QWidget | None = None, *, training: bool = False
) -> DependencyDialog:
    """Show the installer without blocking QGIS; the one already open is raised instead of a second."""
    dialog = _OPEN.get("dialog")
    if dialog is None or sip.isdeleted(dialog):
        dialog = DependencyDialog(status, parent, training=training)
        _OPEN["dialog"] = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.finished.connect(lambda *_: _OPEN.pop("dialog", None))
    elif training:
        dialog.training.setChecked(True)
        dialog.engine_status = status or dialog.engine_status
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
