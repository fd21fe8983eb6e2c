"""The Contrasat settings dialog: execution provider, threads, tiling, batch and the engine's Python."""

from __future__ import annotations

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox, QWidget

from .engine_env import BASE_PYTHON_KEY, ENGINE_PYTHON_KEY, creation_python, cuda_available, env_dir
from .settings import RunSettings, load_settings, save_settings


class SettingsDialog(QDialog):
    """Edits RunSettings; `accept()` saves them to QgsSettings."""

    def __init__(self, parent: QWidget | None = None, *, cuda: bool | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatSettingsDialog")
        self.setWindowTitle("Contrasat — Settings")
        current = load_settings()

        self.provider = QComboBox(self)
        self.provider.addItem("Auto (GPU when usable)", "auto")
        self.provider.addItem("CPU", "cpu")
        # Offered only when the engine check really ran a model on CUDA (the GPU engine on a usable NVIDIA
        # GPU): offering it elsewhere would only produce a failed job later.
        if cuda_available() if cuda is None else cuda:
            self.provider.addItem("CUDA (GPU)", "cuda")
        index = self.provider.findData(current.provider)
        self.provider.setCurrentIndex(max(index, 0))

        # The lowest value of each box means "let the model / ONNX Runtime decide" and is shown as words.
        self.threads = self._spin(0, 256, current.threads, "Auto", "ONNX Runtime decides when Auto")
        self.tile_size = self._spin(
            0, 4096, current.tile_size, "Model default", "The model card's tile size", step=16
        )
        self.overlap = self._spin(
            -1, 1024, current.overlap, "Model default", "The model card's overlap", step=8
        )
        self.batch_size = self._spin(1, 256, current.batch_size, "", "Tiles per ONNX Runtime call")
        self.device_id = self._spin(0, 64, current.device_id, "", "The GPU CUDA runs on (0: the first)")
        # only meaningful where CUDA is offered
        self.device_id.setEnabled(self.provider.findData("cuda") >= 0)
        self._output_dir = current.output_dir

        settings = QgsSettings()
        self.engine_python = QgsFileWidget(self)
        self.engine_python.setStorageMode(QgsFileWidget.GetFile)
        self.engine_python.setFilePath(str(settings.value(ENGINE_PYTHON_KEY, "") or ""))
        self.engine_python.lineEdit().setPlaceholderText(f"Managed environment ({env_dir()})")
        self.engine_python.setToolTip("An existing Python with the Contrasat runtime; empty: the managed one")
        self.base_python = QgsFileWidget(self)
        self.base_python.setStorageMode(QgsFileWidget.GetFile)
        self.base_python.setFilePath(str(settings.value(BASE_PYTHON_KEY, "") or ""))
        self.base_python.lineEdit().setPlaceholderText(f"Auto ({creation_python() or 'not found'})")
        self.base_python.setToolTip("The Python the managed environment is created from")

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Execution provider", self.provider)
        form.addRow("Threads", self.threads)
        form.addRow("Tile size (px)", self.tile_size)
        form.addRow("Tile overlap (px)", self.overlap)
        form.addRow("Batch size", self.batch_size)
        form.addRow("CUDA device", self.device_id)
        form.addRow("Engine Python", self.engine_python)
        form.addRow("Create the engine with", self.base_python)
        form.addRow(buttons)
        self.setMinimumWidth(560)

    def _spin(self, low: int, high: int, value: int, special: str, tip: str, step: int = 1) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(low, high)
        box.setSingleStep(step)
        if special:
            box.setSpecialValueText(special)  # shown instead of the minimum (0 or -1)
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
            device_id=self.device_id.value(),
        )

    def accept(self) -> None:
        save_settings(self.values())
        settings = QgsSettings()
        settings.setValue(ENGINE_PYTHON_KEY, self.engine_python.filePath().strip())
        settings.setValue(BASE_PYTHON_KEY, self.base_python.filePath().strip())
        super().accept()
