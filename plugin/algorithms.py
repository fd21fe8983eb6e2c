"""Processing algorithms `contrasat:map_floods`, `contrasat:land_cover` and `contrasat:classify_series`.

They run the same engine command as the dock (the CLI, out of QGIS's process), so batch mode, graphical models, the Python
console (`processing.run`) and `qgis_process` all get the same outputs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from .aoi_widget import crs_text
from .engine import job_command, run_engine
from .engine_env import engine_env, engine_python
from .paths import layer_file_path
from .results import summary_from_engine
from .settings import load_settings
from .styling import FLOOD_TRANSPARENT_VALUES, style_class_layer
from .tasks import JobRequest, engine_arguments

ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "contrasat.svg"


class ClassStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles the class raster from the output class table once Processing has loaded it."""

    def __init__(self, classes: list[Any], nodata: int, flood: bool) -> None:
        super().__init__()
        self.classes, self.nodata, self.flood = classes, nodata, flood

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - Processing API
        if isinstance(layer, QgsRasterLayer):
            transparent = FLOOD_TRANSPARENT_VALUES if self.flood else ()
            style_class_layer(layer, self.classes, self.nodata, transparent_values=transparent)


# Processing keeps only a C++ pointer to a layer post-processor and calls it after the algorithm instance
# that made it (a clone made by QgsProcessingAlgorithm::run) is gone, so Python must hold the stylers
# elsewhere. A short queue outlives any run's loading step without growing for ever.
_LIVE_STYLERS: deque[ClassStyler] = deque(maxlen=64)


class ContrasatAlgorithm(QgsProcessingAlgorithm):
    """Shared parameter handling, progress, cancel and error mapping; subclasses declare their inputs."""

    INPUT_S1 = "INPUT_S1"
    INPUT_S2 = "INPUT_S2"
    PRE_EVENT_S1 = "PRE_EVENT_S1"
    AOI = "AOI"
    MODEL = "MODEL"
    OUTPUT = "OUTPUT"
    PROBABILITIES = "PROBABILITIES"
    POLYGONS = "POLYGONS"
    STATISTICS = "STATISTICS"
    FLOODED_KM2 = "FLOODED_KM2"
    MODEL_NAME = "MODEL_NAME"
    AREAS = "CLASS_AREAS_JSON"

    job = ""
    task = ""

    def createInstance(self) -> ContrasatAlgorithm:  # noqa: N802
        return type(self)()

    def group(self) -> str:
        return "Mapping"

    def groupId(self) -> str:  # noqa: N802
        return "mapping"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    # ---- parameters -----------------------------------------------------------------------------

    def _add_aoi_model(self) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.AOI, "Area of interest (polygons)", [QgsProcessing.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.MODEL, "Model (bundled name or .onnx path; empty = default)", "", optional=True
            )
        )

    def _add_outputs(self, title: str) -> None:
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, title))
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.PROBABILITIES, "Class probabilities", optional=True, createByDefault=False
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.POLYGONS, "Class polygons with area", QgsProcessing.TypeVectorPolygon,
                optional=True, createByDefault=False,
            )
        )  # fmt: skip
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.STATISTICS, "Area per class (CSV)", "CSV files (*.csv)",
                optional=True, createByDefault=False,
            )
        )  # fmt: skip
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Model used"))
        self.addOutput(QgsProcessingOutputString(self.AREAS, "Area per class (km², JSON)"))

    # ---- running --------------------------------------------------------------------------------

    def _raster_path(self, parameters: dict, name: str, context: QgsProcessingContext) -> Path | None:
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            return None
        path = layer_file_path(layer)
        if path is None:
            raise QgsProcessingException(f"{layer.name()} is not a raster file Contrasat can read")
        return path

    def _aoi(self, parameters: dict, context: QgsProcessingContext) -> tuple[dict, str] | None:
        source = self.parameterAsSource(parameters, self.AOI, context)
        if source is None:
            return None
        request = QgsFeatureRequest().setNoAttributes()
        geometries = [f.geometry() for f in source.getFeatures(request) if f.hasGeometry()]
        if not geometries:
            raise QgsProcessingException("the AOI layer holds no polygon")
        return json.loads(QgsGeometry.unaryUnion(geometries).asJson()), crs_text(source.sourceCrs())

    def _optional_output(self, parameters: dict, name: str, context: QgsProcessingContext) -> str | None:
        if name == self.STATISTICS:
            value = self.parameterAsFileOutput(parameters, name, context)
        else:
            value = self.parameterAsOutputLayer(parameters, name, context)
        return value or None

    def _common(self, parameters: dict, context: QgsProcessingContext) -> dict[str, Any]:
        model = self.parameterAsString(parameters, self.MODEL, context).strip()
        return {
            "aoi": self._aoi(parameters, context),
            "model": model or None,
            "probabilities": self._optional_output(parameters, self.PROBABILITIES, context),
            "polygons": self._optional_output(parameters, self.POLYGONS, context),
            "statistics": self._optional_output(parameters, self.STATISTICS, context),
        }

    def job_arguments(self, parameters: dict, context: QgsProcessingContext) -> tuple[Any, dict[str, Any]]:
        """(first positional argument, keyword arguments) of the runtime call."""
        raise NotImplementedError

    def processAlgorithm(  # noqa: N802
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        primary, options = self.job_arguments(parameters, context)
        out = Path(self.parameterAsOutputLayer(parameters, self.OUTPUT, context))
        python = engine_python()
        if not python.is_file():
            raise QgsProcessingException(
                "the Contrasat engine is not installed: use Raster > Contrasat > Check dependencies… in QGIS"
            )
        request = JobRequest(
            self.job, primary, out, {k: v for k, v in options.items() if v}, out.stem, load_settings()
        )

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "progress":
                feedback.setProgress(100.0 * float(event.get("fraction", 0.0)))
            elif event.get("event") == "message":
                feedback.pushInfo(str(event.get("text", "")))

        scratch = Path(tempfile.mkdtemp(prefix="contrasat_"))
        try:
            engine_primary, engine_options = engine_arguments(request, scratch)
            command = job_command(
                python, self.job, engine_primary, out, engine_options, request.settings.to_cli()
            )
            feedback.pushCommandInfo(" ".join(command))
            ended = run_engine(command, engine_env(), on_event=on_event, is_cancelled=feedback.isCanceled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if ended.status == "cancelled":
            raise QgsProcessingException("cancelled: nothing was written")
        if ended.status != "done":
            raise QgsProcessingException(ended.message)
        result = summary_from_engine(ended.result, request)
        for note in result.notes:
            feedback.pushInfo(note)
        for name, area in result.class_area_km2.items():
            feedback.pushInfo(f"{name}: {area:.3f} km²")
        if context.willLoadLayerOnCompletion(str(out)):
            styler = ClassStyler(result.classes, result.nodata, result.task == "flood")
            _LIVE_STYLERS.append(styler)
            context.layerToLoadOnCompletionDetails(str(out)).setPostProcessor(styler)
        outputs: dict[str, Any] = {
            self.OUTPUT: str(result.output),
            self.MODEL_NAME: result.model_name,
            self.AREAS: json.dumps(result.class_area_km2),
        }
        for key in (self.PROBABILITIES, self.POLYGONS, self.STATISTICS):
            written = getattr(result, key.lower())
            outputs[key] = str(written) if written else None
        if result.flooded_km2 is not None:
            outputs[self.FLOODED_KM2] = result.flooded_km2
        return outputs


class MapFloodsAlgorithm(ContrasatAlgorithm):
    """contrasat:map_floods"""

    job = "map_floods"
    task = "flood"

    def name(self) -> str:
        return "map_floods"

    def displayName(self) -> str:  # noqa: N802
        return "Map floods"

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "Maps open flood water (0 dry, 1 water, 255 no data) from a Sentinel-1 GRD raster (VV, VH in dB) "
            "with a bundled ONNX model; Sentinel-2 is used when the model reads it. With a pre-event "
            "Sentinel-1 raster the map separates new flood water (1) from permanent water (2). Execution "
            "settings (provider, threads, tiling) come from the Contrasat settings."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT_S1, "Sentinel-1 raster (VV, VH)"))
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT_S2, "Sentinel-2 raster", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.PRE_EVENT_S1, "Pre-event Sentinel-1 raster", optional=True)
        )
        self._add_aoi_model()
        self._add_outputs("Flood map")
        self.addOutput(QgsProcessingOutputNumber(self.FLOODED_KM2, "Flooded area (km²)"))

    def job_arguments(self, parameters: dict, context: QgsProcessingContext) -> tuple[Any, dict[str, Any]]:
        options = self._common(parameters, context)
        options["s2"] = self._raster_path(parameters, self.INPUT_S2, context)
        options["pre_event"] = self._raster_path(parameters, self.PRE_EVENT_S1, context)
        return self._raster_path(parameters, self.INPUT_S1, context), options


class LandCoverAlgorithm(ContrasatAlgorithm):
    """contrasat:land_cover"""

    job = "land_cover"
    task = "land_cover"

    def name(self) -> str:
        return "land_cover"

    def displayName(self) -> str:  # noqa: N802
        return "Land cover"

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "Maps land cover (classes of the model card) from a Sentinel-2 raster, with Sentinel-1 when the "
            "model reads it. Bands are found by their descriptions or by the full Sentinel-2 band order."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT_S2, "Sentinel-2 raster"))
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT_S1, "Sentinel-1 raster", optional=True)
        )
        self._add_aoi_model()
        self._add_outputs("Land cover")

    def job_arguments(self, parameters: dict, context: QgsProcessingContext) -> tuple[Any, dict[str, Any]]:
        options = self._common(parameters, context)
        options["s1"] = self._raster_path(parameters, self.INPUT_S1, context)
        return self._raster_path(parameters, self.INPUT_S2, context), options


class ClassifySeriesAlgorithm(ContrasatAlgorithm):
    """contrasat:classify_series"""

    job = "classify_series"
    task = "pixel_timeseries"
    DATES = "DATES"

    def name(self) -> str:
        return "classify_series"

    def displayName(self) -> str:  # noqa: N802
        return "Classify time series"

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "Classifies every pixel from its Sentinel-2 index time series: give one raster per date (dates "
            "from tags or file names, or DATES as comma-separated YYYY-MM-DD) or one multi-band index stack."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT_S2, "Sentinel-2 rasters (one per date) or one index stack",
                QgsProcessing.TypeRaster,
            )
        )  # fmt: skip
        self.addParameter(
            QgsProcessingParameterString(self.DATES, "Dates (YYYY-MM-DD, comma-separated)", optional=True)
        )
        self._add_aoi_model()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Series land cover"))
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Model used"))
        self.addOutput(QgsProcessingOutputString(self.AREAS, "Area per class (km², JSON)"))

    def job_arguments(self, parameters: dict, context: QgsProcessingContext) -> tuple[Any, dict[str, Any]]:
        layers = self.parameterAsLayerList(parameters, self.INPUT_S2, context)
        paths = [layer_file_path(layer) for layer in layers]
        if not paths or any(p is None for p in paths):
            raise QgsProcessingException("give raster files: one per date, or one index stack")
        dates = [d.strip() for d in self.parameterAsString(parameters, self.DATES, context).split(",")]
        model = self.parameterAsString(parameters, self.MODEL, context).strip()
        options = {
            "aoi": self._aoi(parameters, context),
            "model": model or None,
            "dates": [d for d in dates if d] or None,
        }
        return paths, options
