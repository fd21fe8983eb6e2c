"""The missing-dependencies dialog: the exact pip command, and an Install button that only runs on consent."""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .deps import LIBS_DIR, command_text, install_command, run_install


def tr(text: str) -> str:
    """Translate in the dialog's context."""
    return QCoreApplication.translate("DependencyDialog", text)


class DependencyDialog(QDialog):
    """Shows which modules are missing and the pip command; `Install` runs it, `Close` changes nothing."""

    def __init__(self, missing: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatDependencyDialog")
        self.setWindowTitle(tr("Contrasat — missing Python packages"))
        self.missing = list(missing)
        self.command = install_command(self.missing)
        self.installed = False

        intro = QLabel(
            tr(
                "Contrasat needs these Python packages in the Python that QGIS uses: {}.\n"
                "You can run this command yourself, or press Install to put pinned versions into the "
                "plugin's own folder ({}). Nothing is installed unless you press Install."
            ).format(", ".join(self.missing), LIBS_DIR),
            self,
        )
        intro.setWordWrap(True)
        self.command_box = QPlainTextEdit(command_text(self.command), self)
        self.command_box.setReadOnly(True)
        self.command_box.setMaximumHeight(80)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.install_button = QPushButton(tr("Install"), self)
        self.copy_button = QPushButton(tr("Copy command"), self)
        self.buttons.addButton(self.install_button, QDialogButtonBox.ActionRole)
        self.buttons.addButton(self.copy_button, QDialogButtonBox.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.install_button.clicked.connect(self.install)
        self.copy_button.clicked.connect(self.copy_command)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.command_box)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(620)

    def copy_command(self) -> None:
        QApplication.clipboard().setText(command_text(self.command))

    def install(self) -> None:
        """Run pip (the user pressed Install); blocks with a busy cursor since nothing works until it ends."""
        self.status.setText(tr("Installing… this can take a few minutes."))
        self.install_button.setEnabled(False)
        QApplication.processEvents()
        ok, output = run_install(self.command)
        self.installed = ok
        if ok:
            self.status.setText(tr("Installed. Restart QGIS if a job still reports a missing package."))
        else:
            self.status.setText(tr("pip failed:\n{}").format(output))
            self.install_button.setEnabled(True)
