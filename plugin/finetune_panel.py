"""The Fine-tune tab of the dock: Sentinel-1 layer(s), labels (a layer and its class field, or water/dry
polygons drawn on the map), the base model; Fine-tune asks the dock to start the job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsFieldProxyModel, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgisInterface, QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import engine_env
from .cards import WEIGHTS_DIR
from .finetune_job import FINETUNE_JOB, FINETUNE_TITLE, finetunable, labels_geojson, new_model_path
from .job_panel import table_param
from .label_drawing import LABEL_FIELD, LabelDrawer
from .launcher import JobRequest
from .layer_choice import is_output, preferred_layer
from .model_picker import ModelPicker
from .paths import layer_file_path
from .settings import RunSettings


class FinetunePanel(QWidget):
    """Inputs of a fine-tune; `runRequested` (from its Fine-tune button) asks the dock to start it."""

    runRequested = pyqtSignal(object)  # noqa: N815 - emits the panel itself

    def __init__(self, iface: QgisInterface, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatPanel_finetune")
        self.title = FINETUNE_TITLE

        rasters_box = QGroupBox("Sentinel-1 layers (VV, VH) the labels lie on", self)
        self.rasters = QListWidget(rasters_box)
        self.rasters.setMaximumHeight(110)
        QVBoxLayout(rasters_box).addWidget(self.rasters)

        labels_box = QGroupBox("Labels: water / dry", self)
        self.label_layer = QgsMapLayerComboBox(labels_box)
        self.label_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer | QgsMapLayerProxyModel.PointLayer)
        self.label_layer.setAllowEmptyLayer(True)
        self.label_layer.setLayer(None)
        self.class_field = QgsFieldComboBox(labels_box)
        self.class_field.setFilters(QgsFieldProxyModel.AllTypes)
        self.label_layer.layerChanged.connect(self._on_label_layer)
        self.drawer = LabelDrawer(iface.mapCanvas(), self)
        self.draw_water = QPushButton("Draw water", labels_box)
        self.draw_dry = QPushButton("Draw dry", labels_box)
        for button, name in ((self.draw_water, "water"), (self.draw_dry, "dry")):
            button.setCheckable(True)
            button.setToolTip(
                f"Click vertices of a {name} polygon; right click or double click closes it. Draw as many as "
                "you like; they go into the 'Fine-tune labels' layer."
            )
            button.clicked.connect(
                lambda checked, n=name: self.drawer.start(n) if checked else self.drawer.stop()
            )
        self.drawer.drawingChanged.connect(self._on_drawing)
        self.drawer.labelAdded.connect(self._on_label_added)
        self.draw_status = QLabel(labels_box)
        self.draw_status.setWordWrap(True)
        form = QFormLayout(labels_box)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.addRow("Label layer", self.label_layer)
        form.addRow("Class field (water/dry or 1/0)", self.class_field)
        draw_row = QHBoxLayout()
        draw_row.addWidget(self.draw_water)
        draw_row.addWidget(self.draw_dry)
        form.addRow(draw_row)
        form.addRow(self.draw_status)

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
        layout.addWidget(rasters_box)
        layout.addWidget(labels_box)
        layout.addWidget(model_box)
        layout.addWidget(self.run_button)
        layout.addWidget(hint)
        layout.addStretch(1)
        project = QgsProject.instance()
        project.layersAdded.connect(self.refresh_layers)
        project.layersRemoved.connect(self.refresh_layers)
        self.refresh_layers()
        self._update_draw_status()

    # ---- rasters ------------------------------------------------------------------------------------

    def refresh_layers(self, *_args: Any) -> None:
        """List the project's file rasters, keeping ticks; the best Sentinel-1 layer is ticked by default."""
        ticked = set(self.checked_layer_ids())
        self.rasters.clear()
        for layer in QgsProject.instance().mapLayers().values():
            if (
                isinstance(layer, QgsRasterLayer)
                and layer_file_path(layer) is not None
                and not is_output(layer)
            ):
                item = QListWidgetItem(layer.name(), self.rasters)
                item.setData(Qt.UserRole, layer.id())
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if layer.id() in ticked else Qt.Unchecked)
        if not self.checked_layer_ids():
            best = preferred_layer("S1")
            if best is not None:
                self.set_checked([best])
        if hasattr(self, "draw_status"):  # the scratch layer may just have been removed
            self._update_draw_status()

    def checked_layer_ids(self) -> list[str]:
        items = [self.rasters.item(i) for i in range(self.rasters.count())]
        return [i.data(Qt.UserRole) for i in items if i.checkState() == Qt.Checked]

    def set_checked(self, layers: list[QgsRasterLayer]) -> None:
        wanted = {layer.id() for layer in layers}
        for i in range(self.rasters.count()):
            item = self.rasters.item(i)
            item.setCheckState(Qt.Checked if item.data(Qt.UserRole) in wanted else Qt.Unchecked)

    # ---- labels -------------------------------------------------------------------------------------

    def _on_label_layer(self, layer: Any) -> None:
        self.class_field.setLayer(layer)
        if isinstance(layer, QgsVectorLayer) and LABEL_FIELD in layer.fields().names():
            self.class_field.setField(LABEL_FIELD)

    def set_label_layer(self, layer: QgsVectorLayer, field_name: str | None = None) -> None:
        self.label_layer.setLayer(layer)
        if field_name:
            self.class_field.setField(field_name)

    def _on_drawing(self, label_class: str) -> None:
        self.draw_water.setChecked(label_class == "water")
        self.draw_dry.setChecked(label_class == "dry")
        layer = self.drawer.layer_in_project()
        if label_class and layer is not None and self.label_layer.currentLayer() is not layer:
            self.set_label_layer(layer, LABEL_FIELD)

    def _on_label_added(self, _label_class: str) -> None:
        layer = self.drawer.layer_in_project()
        if layer is not None and self.label_layer.currentLayer() is not layer:
            self.set_label_layer(layer, LABEL_FIELD)
        self._update_draw_status()

    def _update_draw_status(self) -> None:
        counts = self.drawer.counts()
        if self.drawer.layer_in_project() is None:
            self.draw_status.setText("Or draw polygons on the map: they go into a scratch layer.")
        else:
            self.draw_status.setText(
                f"{counts.get('water', 0)} water and {counts.get('dry', 0)} dry polygon(s) drawn "
                f"('{self.drawer.layer.name()}')."
            )

    # ---- the job ------------------------------------------------------------------------------------

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:  # noqa: ARG002
        """The fine-tune as requested; ValueError with a user message when something is missing."""
        project = QgsProject.instance()
        layers = [project.mapLayer(i) for i in self.checked_layer_ids()]
        paths = [layer_file_path(layer) for layer in layers if layer is not None]
        if not paths or any(p is None for p in paths):
            raise ValueError("Tick the Sentinel-1 layer(s) the labels lie on.")
        labels = self.label_layer.currentLayer()
        if not isinstance(labels, QgsVectorLayer):
            raise ValueError("Choose a label layer, or draw water and dry polygons on the map.")
        field_name = self.class_field.currentField()
        if not field_name:
            raise ValueError(f"Choose the class field of '{labels.name()}' (water/dry or 1/0).")
        try:
            doc = labels_geojson(labels, field_name)
        except ValueError as exc:
            raise ValueError(f"'{labels.name()}': {exc}.") from None
        base = self.model_picker.model_path()
        if base is None:
            raise ValueError("No base model to fine-tune: pick one (Browse… for an .onnx file).")
        name = layers[0].name()
        options = {"labels": doc, "field": field_name, "base": base, "steps": self.steps.value(),
                   "frozen": self.frozen.isChecked()}  # fmt: skip
        out = new_model_path(engine_env.user_models_dir(), name)
        return JobRequest(FINETUNE_JOB, paths, out, options, name, settings, out_dir=out_dir)

    def cleanup(self) -> None:
        self.drawer.cleanup()
        project = QgsProject.instance()
        project.layersAdded.disconnect(self.refresh_layers)
        project.layersRemoved.disconnect(self.refresh_layers)
