"""The Contrasat settings dialog: execution provider (CUDA only when usable), threads, tiling, batch."""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox, QWidget

from .settings import RunSettings, cuda_usable, load_settings, save_settings


def tr(text: str) -> str:
    """Translate in the dialog's context."""
    return QCoreApplication.translate("SettingsDialog", text)


class SettingsDialog(QDialog):
    """Edits RunSettings; `accept()` saves them to QgsSettings."""

    def __init__(self, parent: QWidget | None = None, *, cuda: bool | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatSettingsDialog")
        self.setWindowTitle(tr("Contrasat — Settings"))
        current = load_settings()

        self.provider = QComboBox(self)
        self.provider.addItem(tr("Automatic (GPU when usable)"), "auto")
        self.provider.addItem(tr("CPU"), "cpu")
        # Offering CUDA where ONNX Runtime cannot use it would only produce a failed job later.
        if cuda_usable() if cuda is None else cuda:
            self.provider.addItem(tr("CUDA (GPU)"), "cuda")
        index = self.provider.findData(current.provider)
        self.provider.setCurrentIndex(max(index, 0))

        self.threads = self._spin(0, 256, current.threads, tr("0 = ONNX Runtime decides"))
        self.tile_size = self._spin(0, 4096, current.tile_size, tr("0 = the model card's tile size"), step=16)
        self.overlap = self._spin(-1, 1024, current.overlap, tr("-1 = the model card's overlap"), step=8)
        self.batch_size = self._spin(1, 256, current.batch_size, tr("tiles per ONNX Runtime call"))
        self._output_dir = current.output_dir

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(tr("Execution provider"), self.provider)
        form.addRow(tr("Threads"), self.threads)
        form.addRow(tr("Tile size (px)"), self.tile_size)
        form.addRow(tr("Tile overlap (px)"), self.overlap)
        form.addRow(tr("Batch size"), self.batch_size)
        form.addRow(buttons)

    def _spin(self, low: int, high: int, value: int, tip: str, step: int = 1) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    def values(self) -> RunSettings:
        """The settings as currently shown."""
        return RunSettings(
            provider=self.provider.currentData(),
            threads=self.threads.value(),
            tile_size=self.tile_size.value(),
            overlap=self.overlap.value(),
            batch_size=self.batch_size.value(),
            output_dir=self._output_dir,
        )

    def accept(self) -> None:
        save_settings(self.values())
        super().accept()
