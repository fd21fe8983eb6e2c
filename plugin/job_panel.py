"""One job of the dock (Map floods or Land cover): input layers with band mapping, model, optional outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .band_mapping_widget import BandMappingWidget
from .model_picker import ModelPicker
from .paths import layer_file_path, sibling_outputs, unique_output_path
from .settings import RunSettings
from .tasks import JobRequest


def tr(text: str) -> str:
    """Translate in the panel's context."""
    return QCoreApplication.translate("JobPanel", text)


@dataclass
class Slot:
    """One input of a job: the runtime keyword ('primary' = first positional), its sensor and label."""

    key: str
    sensor: str
    label: str
    required: bool


@dataclass
class JobKind:
    """What distinguishes the two raster jobs."""

    job: str  # runtime function
    task: str  # model card task
    title: str
    kind: str  # output file suffix
    slots: list[Slot]


def job_kinds() -> dict[str, JobKind]:
    """Map floods and Land cover (built on call so their labels are translated)."""
    return {
        "map_floods": JobKind(
            "map_floods", "flood", tr("Map floods"), "flood",
            [
                Slot("primary", "S1", tr("Sentinel-1 layer"), True),
                Slot("s2", "S2", tr("Sentinel-2 layer (optional)"), False),
                Slot("pre_event", "S1", tr("Pre-event Sentinel-1 (optional)"), False),
            ],
        ),
        "land_cover": JobKind(
            "land_cover", "land_cover", tr("Land cover"), "landcover",
            [
                Slot("primary", "S2", tr("Sentinel-2 layer"), True),
                Slot("s1", "S1", tr("Sentinel-1 layer (optional)"), False),
            ],
        ),
    }  # fmt: skip


class JobPanel(QWidget):
    """Inputs and options of one job; `runRequested` asks the dock to start it."""

    runRequested = pyqtSignal(object)  # noqa: N815 - emits the panel itself

    def __init__(self, kind: JobKind, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName(f"ContrasatPanel_{kind.job}")
        self.layer_combos: dict[str, QgsMapLayerComboBox] = {}
        self.band_widgets: dict[str, BandMappingWidget] = {}

        inputs = QGroupBox(tr("Inputs"), self)
        form = QFormLayout(inputs)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)  # long labels go above their combo in a narrow dock
        for slot in kind.slots:
            combo = QgsMapLayerComboBox(inputs)
            combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
            combo.setAllowEmptyLayer(not slot.required)
            if not slot.required:
                combo.setLayer(None)
            bands = BandMappingWidget(inputs)
            form.addRow(slot.label, combo)
            form.addRow(bands)
            combo.layerChanged.connect(lambda _layer, key=slot.key: self._refresh_bands(key))
            self.layer_combos[slot.key] = combo
            self.band_widgets[slot.key] = bands

        model_box = QGroupBox(tr("Model"), self)
        self.model_picker = ModelPicker(kind.task, model_box)
        QVBoxLayout(model_box).addWidget(self.model_picker)
        self.model_picker.modelChanged.connect(self.refresh)

        self.probabilities = QCheckBox(tr("Probability layer"), self)
        self.polygons = QCheckBox(tr("Polygons with area"), self)
        self.run_button = QPushButton(kind.title, self)
        self.run_button.setObjectName(f"ContrasatRun_{kind.job}")
        self.run_button.clicked.connect(lambda: self.runRequested.emit(self))
        extras = QHBoxLayout()
        extras.addWidget(self.probabilities)
        extras.addWidget(self.polygons)

        layout = QVBoxLayout(self)
        layout.addWidget(inputs)
        layout.addWidget(model_box)
        layout.addLayout(extras)
        layout.addWidget(self.run_button)
        layout.addStretch(1)
        self.refresh()

    def slot(self, key: str) -> Slot:
        return next(s for s in self.kind.slots if s.key == key)

    def refresh(self) -> None:
        """Re-guess every band mapping (model or layers changed)."""
        for key in self.layer_combos:
            self._refresh_bands(key)

    def _refresh_bands(self, key: str) -> None:
        card = self.model_picker.card()
        spec = card.input_for(self.slot(key).sensor) if card is not None else None
        layer = self.layer_combos[key].currentLayer()
        self.band_widgets[key].set_input(layer_file_path(layer), spec)

    def set_layer(self, key: str, layer: QgsRasterLayer | None) -> None:
        self.layer_combos[key].setLayer(layer)

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:
        """The job as requested in the panel; ValueError with a user message when something is missing."""
        card = self.model_picker.card()
        model = self.model_picker.model_path()
        if card is None or model is None:
            raise ValueError(tr("No {} model: pick one (Browse… for an .onnx file).").format(self.kind.task))
        paths: dict[str, Path] = {}
        overrides = {}
        for slot in self.kind.slots:
            layer = self.layer_combos[slot.key].currentLayer()
            if layer is None:
                if slot.required:
                    raise ValueError(tr("Choose a layer for '{}'.").format(slot.label))
                continue
            path = layer_file_path(layer)
            if path is None:
                raise ValueError(
                    tr("'{}' is not a raster file that Contrasat can read.").format(layer.name())
                )
            paths[slot.key] = path
            bands = self.band_widgets[slot.key]
            if card.input_for(slot.sensor) is not None:
                if bands.mapping() is None:
                    raise ValueError(tr("Choose the bands of '{}'.").format(layer.name()))
                override = bands.override()
                if override is not None:
                    overrides[slot.key] = override
        primary_layer = self.layer_combos["primary"].currentLayer()
        out = unique_output_path(out_dir, primary_layer.name(), kind=self.kind.kind)
        options: dict[str, Any] = {k: v for k, v in paths.items() if k != "primary"}
        extras = sibling_outputs(out)
        options.update(model=model, aoi=aoi, statistics=extras["statistics"])
        if self.probabilities.isChecked():
            options["probabilities"] = extras["probabilities"]
        if self.polygons.isChecked():
            options["polygons"] = extras["polygons"]
        return JobRequest(
            self.kind.job, paths["primary"], out, options, primary_layer.name(), settings, overrides
        )
