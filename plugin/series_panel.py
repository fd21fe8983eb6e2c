"""The time-series job of the dock: a set of Sentinel-2 (or index) layers classified per pixel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..models import jobs
from .launcher import JobRequest
from .model_picker import ModelPicker
from .paths import layer_file_path, unique_output_path
from .raster_checklist import RasterChecklist
from .settings import RunSettings

SERIES_JOB = jobs.job("classify_series")
SERIES_TASK = SERIES_JOB.task


class SeriesPanel(QWidget):
    """Checkable list of raster layers (one per date, or one multi-date index stack) and the series model."""

    runRequested = pyqtSignal(object)  # noqa: N815 - emits the panel itself

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatPanel_classify_series")
        self.title = SERIES_JOB.display_name
        box = QGroupBox("Sentinel-2 dates", self)
        self.layers = RasterChecklist(box)
        self.layers.setToolTip("Tick one raster per date (dates from tags or file names), or one index stack")
        hint = QLabel("Tick the layers of the series; dates come from tags or file names.", box)
        hint.setWordWrap(True)
        inner = QVBoxLayout(box)
        inner.addWidget(hint)
        inner.addWidget(self.layers)
        model_box = QGroupBox("Model", self)
        self.model_picker = ModelPicker(SERIES_TASK, model_box)
        QVBoxLayout(model_box).addWidget(self.model_picker)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(model_box)
        project = QgsProject.instance()
        project.layersAdded.connect(self.refresh_layers)
        project.layersRemoved.connect(self.refresh_layers)
        self.refresh_layers()

    def refresh_layers(self, *_args: Any) -> None:
        """List the project's file rasters, keeping ticks on layers still present."""
        self.layers.refresh()

    def checked_layer_ids(self) -> list[str]:
        return self.layers.checked_layer_ids()

    def set_checked(self, layers: list[QgsRasterLayer]) -> None:
        self.layers.set_checked(layers)

    def collect(self, out_dir: Path, aoi: Any, settings: RunSettings | None) -> JobRequest:
        """The job as requested; ValueError with a user message when something is missing."""
        model = self.model_picker.model_path()
        if model is None:
            raise ValueError("No time-series model: pick one (Browse… for an .onnx file).")
        project = QgsProject.instance()
        layers = [project.mapLayer(i) for i in self.checked_layer_ids()]
        paths = [layer_file_path(layer) for layer in layers if layer is not None]
        if not paths or any(p is None for p in paths):
            raise ValueError("Tick the raster layers of the series (one per date, or one stack).")
        tile = settings.tile_size if settings is not None else 0
        problem = (
            next((p.problem(tile) for p in SERIES_JOB.params if p.name == "tile"), None) if tile else None
        )
        if problem:
            raise ValueError(f"Tile size {tile} px cannot run: {problem} (Raster > Contrasat > Settings…).")
        out = unique_output_path(out_dir, layers[0].name(), kind="series")
        options = {"model": model, "aoi": aoi}
        return JobRequest(SERIES_JOB.algorithm, paths, out, options, layers[0].name(), settings)
