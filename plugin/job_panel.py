"""One job of the dock (Map floods or Land cover): input layers with band mapping, model, optional outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import QgsMapLayer, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QVBoxLayout, QWidget

from ..models import jobs
from .band_mapping_widget import BandMappingWidget
from .launcher import JobRequest
from .layer_choice import excluded_layers, preferred_layer
from .model_picker import ModelPicker
from .paths import layer_file_path, sibling_outputs, unique_output_path
from .settings import RunSettings


@dataclass
class Slot:
    """One input of a job: its table name ('primary' = the job's first input), its sensor and label."""

    key: str
    sensor: str
    label: str
    required: bool


@dataclass
class JobKind:
    """What distinguishes the two raster jobs; job, task and title come from the job table."""

    job: str  # the table job's algorithm name
    task: str  # model card task
    title: str
    kind: str  # output file suffix
    slots: list[Slot]


def _job_kind(name: str, kind: str, slots: list[Slot]) -> JobKind:
    entry = jobs.job(name)
    inputs = {p.name for p in entry.inputs[1:]}
    strays = {s.key for s in slots} - {"primary"} - inputs
    if strays:
        raise KeyError(
            f"{entry.name} has no input {', '.join(sorted(strays))}"
        )  # a dock input must be in the table
    return JobKind(entry.algorithm, entry.task, entry.display_name, kind, slots)


SENSORS = {"S1": "Sentinel-1", "S2": "Sentinel-2"}  # a slot's sensor in the user's words


def job_kinds() -> dict[str, JobKind]:
    """Map floods and Land cover (the widgets are made by hand; what they send is named by the table)."""
    return {
        "map_floods": _job_kind("map_floods", "flood", [
            Slot("primary", "S1", "Sentinel-1 layer", True),
            Slot("s2", "S2", "Sentinel-2 layer (optional)", False),
            Slot("pre_event", "S1", "Pre-event Sentinel-1 (optional)", False),
        ]),
        "land_cover": _job_kind("land_cover", "landcover", [
            Slot("primary", "S2", "Sentinel-2 layer", True),
            Slot("s1", "S1", "Sentinel-1 layer (optional)", False),
        ]),
    }  # fmt: skip


def table_param(job: str, name: str) -> jobs.Param | None:
    """The parameter `name` of a table job, None when the job has none."""
    return next((p for p in jobs.job(job).params if p.name == name), None)


def check_tiling(settings: RunSettings | None, card: Any, job: str = "map_floods") -> None:
    """The tile size against the table's rule (minimum, multiple_of) and the overlap against the runtime's
    (below half a tile), checked before a run: ValueError with the reason."""
    if settings is None:
        return
    tile = settings.tile_size or card.tile_size
    overlap = card.overlap if settings.overlap < 0 else settings.overlap
    rule = table_param(job, "tile")
    problem = rule.problem(tile) if rule is not None else None
    if problem or not 0 <= overlap < tile // 2:
        reason = problem or f"the overlap must be below half of the tile size ({tile // 2} px)"
        raise ValueError(
            f"Tile size {tile} px with overlap {overlap} px cannot run: {reason} (Raster > Contrasat > Settings…)."
        )


class JobPanel(QWidget):
    """Inputs and options of one job; `runRequested` asks the dock to start it."""

    runRequested = pyqtSignal(object)  # noqa: N815 - emits the panel itself

    def __init__(self, kind: JobKind, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.title = kind.title
        self.setObjectName(f"ContrasatPanel_{kind.job}")
        self.layer_combos: dict[str, QgsMapLayerComboBox] = {}
        self.band_widgets: dict[str, BandMappingWidget] = {}
        self._user_chosen: set[str] = set()

        self.inputs_box = inputs = QGroupBox("Inputs", self)
        form = QFormLayout(inputs)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)  # long labels go above their combo in a narrow dock
        for slot in kind.slots:
            combo = QgsMapLayerComboBox(inputs)
            combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
            combo.setAllowEmptyLayer(not slot.required)
            bands = BandMappingWidget(inputs)
            form.addRow(slot.label, combo)
            form.addRow(bands)
            combo.layerChanged.connect(lambda _layer, key=slot.key: self._refresh_bands(key))
            self.layer_combos[slot.key] = combo
            self.band_widgets[slot.key] = bands

        self.model_box = model_box = QGroupBox("Model", self)
        self.model_picker = ModelPicker(kind.task, model_box)
        QVBoxLayout(model_box).addWidget(self.model_picker)
        self.model_picker.modelChanged.connect(self.refresh)

        self.probabilities = QCheckBox("Probability layer", self)
        self.polygons = QCheckBox("Polygons with area", self)
        extras = QHBoxLayout()
        extras.addWidget(self.probabilities)
        extras.addWidget(self.polygons)

        layout = QVBoxLayout(self)
        layout.addWidget(inputs)
        layout.addWidget(model_box)
        layout.addLayout(extras)
        layout.addStretch(1)
        project = QgsProject.instance()
        project.layersAdded.connect(self.choose_layers)
        project.layersRemoved.connect(self.choose_layers)
        self.choose_layers()
        self.refresh()  # every slot's band mapping, the empty ones hidden
        for key, combo in self.layer_combos.items():
            # a layer the user picks is kept; only automatic choices follow newly added layers
            combo.activated.connect(lambda _i, k=key: self._user_chosen.add(k))

    def cleanup(self) -> None:
        project = QgsProject.instance()
        project.layersAdded.disconnect(self.choose_layers)
        project.layersRemoved.disconnect(self.choose_layers)

    def choose_layers(self, *_args: Any) -> None:
        """Hide outputs and unreadable rasters; pre-select the layer that looks like each slot's sensor."""
        hidden = excluded_layers()
        for slot in self.kind.slots:
            combo = self.layer_combos[slot.key]
            combo.setExceptedLayerList(hidden)
            if slot.key in self._user_chosen and combo.currentLayer() is not None:
                continue
            taken = [self.layer_combos[s.key].currentLayer() for s in self.kind.slots if s.key != slot.key]
            best = (
                preferred_layer(slot.sensor, [lyr for lyr in taken if lyr is not None])
                if slot.required
                else None
            )
            combo.setLayer(best)

    def slot(self, key: str) -> Slot:
        return next(s for s in self.kind.slots if s.key == key)

    def refresh(self) -> None:
        """Re-guess every band mapping (model or layers changed)."""
        for key in self.layer_combos:
            self._refresh_bands(key)

    def input_card(self) -> Any:
        """The card whose inputs the layers are read for (band mapping, checks): the chosen model's."""
        return self.model_picker.card()

    def _refresh_bands(self, key: str) -> None:
        card = self.input_card()
        spec = card.input_for(self.slot(key).sensor) if card is not None else None
        layer = self.layer_combos[key].currentLayer()
        self.band_widgets[key].set_input(layer_file_path(layer), spec)

    def set_layer(self, key: str, layer: QgsRasterLayer | QgsMapLayer | None) -> None:
        self._user_chosen.add(key)
        self.layer_combos[key].setLayer(layer)

    def collect_inputs(self, card: Any) -> tuple[dict[str, Path], dict[str, Any]]:
        """The input files by slot and their band overrides, read for `card`; ValueError when one is missing."""
        paths: dict[str, Path] = {}
        overrides = {}
        for slot in self.kind.slots:
            layer = self.layer_combos[slot.key].currentLayer()
            needed = slot.required or (card.input_for(slot.sensor) is not None and slot.key != "pre_event")
            if layer is None:
                if needed:
                    raise ValueError(
                        f"Model {card.name} needs a {SENSORS.get(slot.sensor, slot.sensor)} layer too: "
                        f"choose one in '{slot.label.removesuffix(' (optional)')}'."
                        if not slot.required
                        else f"Choose a layer for '{slot.label}'."
                    )
                continue
            path = layer_file_path(layer)
            if path is None:
                raise ValueError(f"'{layer.name()}' is not a raster file that Contrasat can read.")
            paths[slot.key] = path
            bands = self.band_widgets[slot.key]
            if card.input_for(slot.sensor) is not None:
                if bands.mapping() is None:
                    raise ValueError(f"Choose the bands of '{layer.name()}'.")
                override = bands.override()
                if override is not None:
                    overrides[slot.key] = override
        return paths, overrides

    def map_options(self, out: Path, paths: dict[str, Path], aoi: Any) -> dict[str, Any]:
        """The options every map of this panel has: the other inputs, the AOI and the outputs asked for."""
        options: dict[str, Any] = {k: v for k, v in paths.items() if k != "primary"}
        extras = sibling_outputs(out)
        options.update(aoi=aoi, statistics=extras["statistics"])
        if self.probabilities.isChecked():
            options["probabilities"] = extras["probabilities"]
        if self.polygons.isChecked():
            options["polygons"] = extras["polygons"]
        return options

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:
        """The job as requested in the panel; ValueError with a user message when it cannot run."""
        card = self.model_picker.card()
        model = self.model_picker.model_path()
        if card is None or model is None:
            raise ValueError(f"No {self.kind.task} model: pick one (Browse… for an .onnx file).")
        paths, overrides = self.collect_inputs(card)
        check_tiling(settings, card, self.kind.job)
        primary_layer = self.layer_combos["primary"].currentLayer()
        out = unique_output_path(out_dir, primary_layer.name(), kind=self.kind.kind)
        options = {"model": model, **self.map_options(out, paths, aoi)}
        return JobRequest(
            self.kind.job, paths["primary"], out, options, primary_layer.name(), settings, overrides
        )
