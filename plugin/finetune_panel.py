"""The Fine-tune tab of the dock: Sentinel-1 layer(s), labels (a layer and its class field, or water/dry
polygons drawn on the map), the base model; Fine-tune asks the dock to start the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgisInterface
from qgis.PyQt import sip
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import engine_env
from .cards import WEIGHTS_DIR
from .engine_install import TrainingCheckTask, install_events
from .finetune_job import FINETUNE_JOB, FINETUNE_TITLE, finetunable, new_model_path
from .job_panel import table_param
from .label_drawing import LabelDrawer
from .labels_box import LabelsBox
from .launcher import JobRequest
from .layer_choice import preferred_layer, sensor_score
from .model_picker import ModelPicker
from .paths import layer_file_path
from .raster_checklist import RasterChecklist
from .settings import RunSettings

FIELD_HINT = "Class field (water/dry or 1/0)"
NO_TRAINING = (
    "Fine-tuning needs training support in the engine (torch for the CPU, scikit-learn, scipy), which it "
    "does not have yet."
)


class FinetunePanel(QWidget):
    """Inputs of a fine-tune; `runRequested` (from its Fine-tune button) asks the dock to start it."""

    runRequested = pyqtSignal(object)  # noqa: N815 - emits the panel itself

    def __init__(self, iface: QgisInterface, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatPanel_finetune")
        self.title = FINETUNE_TITLE

        # shown when the engine lacks torch: said when the tab opens, before any drawing
        self.training_box = QWidget(self)
        self.training_label = QLabel(NO_TRAINING, self.training_box)
        self.training_label.setWordWrap(True)
        self.training_button = QPushButton("Add training support…", self.training_box)
        self.training_button.setObjectName("ContrasatAddTraining")
        self.training_button.clicked.connect(self.add_training)
        training_layout = QVBoxLayout(self.training_box)
        training_layout.setContentsMargins(0, 0, 0, 0)
        training_layout.addWidget(self.training_label)
        training_layout.addWidget(self.training_button)
        self.training_box.setVisible(False)
        self.training_present: bool | None = None  # unknown until checked
        self.training_task: TrainingCheckTask | None = None
        # an installation that ends while the tab is open (its own "Add training support…") is checked at
        # once, so the offer goes away without leaving and reopening the tab
        install_events().finished.connect(self._install_ended)

        rasters_box = QGroupBox("Sentinel-1 layers (VV, VH) the labels lie on", self)
        # only layers that look like Sentinel-1 (VV/VH, or two bands): fine-tuning reads S1 backscatter
        self.rasters = RasterChecklist(rasters_box, accept=lambda layer: sensor_score(layer, "S1") > 0)
        self.rasters.setMaximumHeight(110)
        QVBoxLayout(rasters_box).addWidget(self.rasters)

        self.drawer = LabelDrawer(iface.mapCanvas(), self)
        self.labels = LabelsBox(iface.mapCanvas(), "Labels: water / dry", FIELD_HINT, self.drawer, self)
        # the names tests and the end-to-end script use
        self.label_layer, self.class_field = self.labels.label_layer, self.labels.class_field
        self.draw_water, self.draw_dry = self.labels.buttons["water"], self.labels.buttons["dry"]
        self.draw_status = self.labels.draw_status

        model_box = QGroupBox("Base model", self)
        self.model_picker = ModelPicker("flood", model_box, accept=finetunable)
        default = WEIGHTS_DIR / f"{table_param(FINETUNE_JOB, 'base').default}.onnx"
        if self.model_picker.combo.findData(str(default)) >= 0:
            self.model_picker.set_model_path(default)
        self.steps = QSpinBox(model_box)
        steps = table_param(FINETUNE_JOB, "steps")
        self.steps.setRange(steps.minimum, 100000)
        self.steps.setValue(steps.default)
        self.steps.setToolTip(
            "Training steps at most; training stops earlier when held-back polygons stop improving"
        )
        self.frozen = QCheckBox("Keep the encoder frozen", model_box)
        model_layout = QVBoxLayout(model_box)
        model_layout.addWidget(self.model_picker)
        steps_row = QHBoxLayout()
        steps_row.addWidget(QLabel("Steps", model_box))
        steps_row.addWidget(self.steps)
        steps_row.addWidget(self.frozen, 1)
        model_layout.addLayout(steps_row)

        self.run_button = QPushButton("Fine-tune", self)
        self.run_button.setObjectName("ContrasatFinetune")
        self.run_button.clicked.connect(lambda: self.runRequested.emit(self))
        hint = QLabel(
            "The new model is saved in your models folder and offered in every model list; the scene is then "
            "mapped with the base model and with the new one.",
            self,
        )
        hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.training_box)
        layout.addWidget(rasters_box)
        layout.addWidget(self.labels)
        layout.addWidget(model_box)
        layout.addWidget(self.run_button)
        layout.addWidget(hint)
        layout.addStretch(1)
        project = QgsProject.instance()
        project.layersAdded.connect(self.refresh_layers)
        project.layersRemoved.connect(self.refresh_layers)
        self.refresh_layers()

    # ---- training support -----------------------------------------------------------------------------

    def check_training(self) -> TrainingCheckTask | None:
        """Ask the engine, in the background, whether it can train (the tab was opened); None when the
        answer is already yes or a check is running."""
        if self.training_present or self.training_task is not None:
            return None
        task = TrainingCheckTask(
            lambda present: None if sip.isdeleted(self) else self.training_checked(present)
        )
        self.training_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def training_checked(self, present: bool) -> None:
        """GUI thread: offer the installer's training option when the engine lacks it."""
        self.training_task = None
        self.training_present = present
        self.training_box.setVisible(not present)

    def _install_ended(self, _task: Any) -> None:
        if sip.isdeleted(self) or not self.isVisibleTo(self.window()):
            return  # another tab is shown (or the dock is closed): checked when the tab next opens
        self.training_present = None
        self.check_training()

    def add_training(self) -> Any:
        """The installer with "Add training support" ticked (the same consent, log and background rules)."""
        from .deps_dialog import open_installer

        self.training_present = None  # checked again when the tab next opens
        return open_installer(engine_env.last_status(), self.window(), training=True)

    # ---- rasters ------------------------------------------------------------------------------------

    def refresh_layers(self, *_args: Any) -> None:
        """List the project's Sentinel-1 file rasters, keeping ticks; the best one is ticked by default."""
        self.rasters.refresh()
        if not self.checked_layer_ids():
            best = preferred_layer("S1")
            if best is not None:
                self.set_checked([best])
        if hasattr(self, "labels"):  # the scratch layer may just have been removed
            self.labels.update_status()

    def checked_layer_ids(self) -> list[str]:
        return self.rasters.checked_layer_ids()

    def set_checked(self, layers: list[QgsRasterLayer]) -> None:
        self.rasters.set_checked(layers)

    # ---- labels ---------------------------------------------------------------------------------------

    def set_label_layer(self, layer: QgsVectorLayer, field_name: str | None = None) -> None:
        self.labels.set_label_layer(layer, field_name)

    # ---- the job ------------------------------------------------------------------------------------

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:  # noqa: ARG002
        """The fine-tune as requested; ValueError with a user message when something is missing."""
        project = QgsProject.instance()
        layers = [project.mapLayer(i) for i in self.checked_layer_ids()]
        paths = [layer_file_path(layer) for layer in layers if layer is not None]
        if not paths or any(p is None for p in paths):
            raise ValueError("Tick the Sentinel-1 layer(s) the labels lie on.")
        doc, field_name = self.labels.document(
            "Choose a label layer, or draw water and dry polygons on the map.", "water/dry or 1/0"
        )
        base = self.model_picker.model_path()
        if base is None:
            raise ValueError("No base model to fine-tune: pick one (Browse… for an .onnx file).")
        name = layers[0].name()
        options = {"labels": doc, "field": field_name, "base": base, "steps": self.steps.value(),
                   "frozen": self.frozen.isChecked()}  # fmt: skip
        out = new_model_path(engine_env.user_models_dir(), name)
        return JobRequest(FINETUNE_JOB, paths, out, options, name, settings, out_dir=out_dir)

    def cleanup(self) -> None:
        self.labels.cleanup()
        project = QgsProject.instance()
        project.layersAdded.disconnect(self.refresh_layers)
        project.layersRemoved.disconnect(self.refresh_layers)
