"""Processing algorithms built from the job table (models/jobs.py): `contrasat:<job>` for every job.

One class per job (`contrasat:map_floods`, `contrasat:land_cover`, `contrasat:classify_series`), its
parameters mapped from the table's Params. They run the same engine command as the dock (the CLI, out of
QGIS's process, built by `tasks.request_command`), so batch mode, graphical models, the Python console
(`processing.run`) and `qgis_process` all get the same outputs.
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
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..models import jobs
from ..models.jobs import Job, Param
from .aoi_widget import crs_text
from .engine import run_engine
from .engine_env import engine_env, engine_python
from .paths import layer_file_path
from .results import summary_from_engine
from .settings import load_settings
from .styling import FLOOD_TRANSPARENT_VALUES, style_class_layer
from .tasks import JobRequest, request_command

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


def processing_parameter(param: Param) -> QgsProcessingParameterDefinition:
    """The Processing parameter of one table Param (its kind decides the type; optional unless required).

    Execution settings (tile, provider, ...) have no default here: left empty, the Contrasat settings
    apply, and the table's default after them.
    """
    name, label, optional = param.processing_name, param.title, not param.required
    kind = param.kind
    if kind == "raster":
        definition = QgsProcessingParameterRasterLayer(name, label, optional=optional)
    elif kind == "rasters":
        definition = QgsProcessingParameterMultipleLayers(
            name, label, QgsProcessing.TypeRaster, optional=optional
        )
    elif kind == "vector":
        definition = QgsProcessingParameterFeatureSource(
            name, label, [QgsProcessing.TypeVectorPolygon], optional=optional
        )
    elif kind in ("model", "dates"):
        definition = QgsProcessingParameterString(name, label, param.default or "", optional=optional)
    elif kind == "output_raster":
        definition = QgsProcessingParameterRasterDestination(
            name, label, optional=optional, createByDefault=param.required
        )
    elif kind == "output_vector":
        definition = QgsProcessingParameterVectorDestination(
            name, label, QgsProcessing.TypeVectorPolygon, optional=optional, createByDefault=param.required
        )
    elif kind == "output_table":
        definition = QgsProcessingParameterFileDestination(
            name, label, "CSV files (*.csv)", optional=optional, createByDefault=param.required
        )
    elif kind == "int":
        default = None if param.execution else param.default
        definition = QgsProcessingParameterNumber(
            name, label, QgsProcessingParameterNumber.Integer, default, optional,
            param.minimum if param.minimum is not None else -(2**31),
        )  # fmt: skip
    elif kind == "choice":
        default = None if param.execution or param.default is None else param.choices.index(param.default)
        definition = QgsProcessingParameterEnum(name, label, list(param.choices), False, default, optional)
    else:
        raise ValueError(f"parameter {param.name}: no Processing parameter for kind {kind!r}")
    if param.execution:
        definition.setFlags(definition.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    definition.setHelp(param.help)
    return definition


def _given(parameters: dict, param: Param) -> bool:
    value = parameters.get(param.processing_name)
    return value is not None and value != ""


class JobAlgorithm(QgsProcessingAlgorithm):
    """The Processing algorithm of one job of the table; `algorithm_class` makes one subclass per job."""

    FLOODED_KM2 = "FLOODED_KM2"
    MODEL_NAME = "MODEL_NAME"
    AREAS = "CLASS_AREAS_JSON"

    job: Job

    def createInstance(self) -> JobAlgorithm:  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return self.job.algorithm

    def displayName(self) -> str:  # noqa: N802
        return self.job.display_name

    def shortHelpString(self) -> str:  # noqa: N802
        lines = [self.job.help[:1].upper() + self.job.help[1:] + "."]
        lines += [f"<b>{p.title}</b>: {p.help}" for p in self.job.params]
        lines.append("Empty execution settings (advanced) come from Raster > Contrasat > Settings….")
        return "<br>".join(lines)

    def group(self) -> str:
        return "Mapping"

    def groupId(self) -> str:  # noqa: N802
        return "mapping"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        # inputs and options first, destinations last: the order of the Processing dialog
        for param in self.job.inputs + self.job.options + self.job.outputs:
            self.addParameter(processing_parameter(param))
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Model used"))
        self.addOutput(QgsProcessingOutputString(self.AREAS, "Area per class (km², JSON)"))
        if self.job.task == "flood":
            self.addOutput(QgsProcessingOutputNumber(self.FLOODED_KM2, "Flooded area (km²)"))

    def checkParameterValues(self, parameters: dict, context: QgsProcessingContext) -> tuple[bool, str]:  # noqa: N802
        """The table's rules Processing cannot express (multiple_of), before anything runs."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        for param in self.job.params:
            if param.kind == "int" and _given(parameters, param):
                problem = param.problem(self.parameterAsInt(parameters, param.processing_name, context))
                if problem:
                    return False, f"{param.title}: {problem}"
        return True, ""

    # ---- reading parameters -------------------------------------------------------------------------

    def _raster_path(self, parameters: dict, name: str, context: QgsProcessingContext) -> Path | None:
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            return None
        path = layer_file_path(layer)
        if path is None:
            raise QgsProcessingException(f"{layer.name()} is not a raster file Contrasat can read")
        return path

    def _polygons(
        self, parameters: dict, name: str, context: QgsProcessingContext
    ) -> tuple[dict, str] | None:
        """A polygon source as (GeoJSON geometry of their union, CRS): written to a file for the engine."""
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            return None
        request = QgsFeatureRequest().setNoAttributes()
        geometries = [f.geometry() for f in source.getFeatures(request) if f.hasGeometry()]
        if not geometries:
            raise QgsProcessingException(f"the {name} layer holds no polygon")
        return json.loads(QgsGeometry.unaryUnion(geometries).asJson()), crs_text(source.sourceCrs())

    def value(self, param: Param, parameters: dict, context: QgsProcessingContext) -> Any:
        """One table parameter's value as the engine takes it (None: not given)."""
        name, kind = param.processing_name, param.kind
        if kind == "raster":
            return self._raster_path(parameters, name, context)
        if kind == "rasters":
            layers = self.parameterAsLayerList(parameters, name, context)
            paths = [layer_file_path(layer) for layer in layers]
            if any(p is None for p in paths):
                raise QgsProcessingException(f"{param.title}: give raster files")
            return paths or None
        if kind == "vector":
            return self._polygons(parameters, name, context)
        if kind == "model":
            return self.parameterAsString(parameters, name, context).strip() or None
        if kind == "dates":
            text = self.parameterAsString(parameters, name, context)
            return [d for d in text.replace(",", " ").split() if d] or None
        if kind in ("output_raster", "output_vector"):
            return self.parameterAsOutputLayer(parameters, name, context) or None
        if kind == "output_table":
            return self.parameterAsFileOutput(parameters, name, context) or None
        if not _given(parameters, param) and (param.execution or param.default is None):
            return None  # execution settings: the Contrasat settings decide
        if kind == "int":
            return self.parameterAsInt(parameters, name, context)
        if kind == "choice":
            return param.choices[self.parameterAsEnum(parameters, name, context)]
        raise QgsProcessingException(f"parameter {param.name}: unsupported kind {kind!r}")

    def request(self, parameters: dict, context: QgsProcessingContext) -> JobRequest:
        """The job request of these parameters, keyed by the table's names."""
        values = {p.name: self.value(p, parameters, context) for p in self.job.params}
        primary = values.pop(self.job.inputs[0].name)
        if primary is None:
            raise QgsProcessingException(f"{self.job.inputs[0].title} is required")
        out = Path(values.pop("out"))
        options = {k: v for k, v in values.items() if v is not None}
        return JobRequest(self.job.algorithm, primary, out, options, out.stem, load_settings())

    # ---- running --------------------------------------------------------------------------------

    def processAlgorithm(  # noqa: N802
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        request = self.request(parameters, context)
        python = engine_python()
        if not python.is_file():
            raise QgsProcessingException(
                "the Contrasat engine is not installed: use Raster > Contrasat > Check dependencies… in QGIS"
            )

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "progress":
                feedback.setProgress(100.0 * float(event.get("fraction", 0.0)))
            elif event.get("event") == "message":
                feedback.pushInfo(str(event.get("text", "")))

        scratch = Path(tempfile.mkdtemp(prefix="contrasat_"))
        try:
            command = request_command(request, scratch, python)
            feedback.pushCommandInfo(" ".join(command))
            ended = run_engine(command, engine_env(), on_event=on_event, is_cancelled=feedback.isCanceled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if ended.status == "cancelled":
            raise QgsProcessingException("cancelled: nothing was written")
        if ended.status != "done":
            raise QgsProcessingException(ended.message)
        return self.finish(ended.result, request, context, feedback)

    def finish(
        self,
        data: dict[str, Any],
        request: JobRequest,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        """Report the engine's summary, style the loaded class raster, and name every output written."""
        result = summary_from_engine(data, request)
        for note in result.notes:
            feedback.pushInfo(note)
        for name, area in result.class_area_km2.items():
            feedback.pushInfo(f"{name}: {area:.3f} km²")
        out = str(request.out)
        if context.willLoadLayerOnCompletion(out):
            styler = ClassStyler(result.classes, result.nodata, result.task == "flood")
            _LIVE_STYLERS.append(styler)
            context.layerToLoadOnCompletionDetails(out).setPostProcessor(styler)
        outputs: dict[str, Any] = {
            self.MODEL_NAME: result.model_name,
            self.AREAS: json.dumps(result.class_area_km2),
        }
        for param in self.job.outputs:
            written = result.output if param.name == "out" else getattr(result, param.name, None)
            if (
                written is None
                and request.options.get(param.name)
                and Path(request.options[param.name]).exists()
            ):
                written = Path(request.options[param.name])
            outputs[param.processing_name] = str(written) if written else None
        if result.flooded_km2 is not None:
            outputs[self.FLOODED_KM2] = result.flooded_km2
        return outputs


def algorithm_class(job: Job) -> type[JobAlgorithm]:
    """The Processing algorithm class of one job (MapFloodsAlgorithm for map-floods, ...)."""
    name = "".join(word.capitalize() for word in job.name.split("-")) + "Algorithm"
    return type(name, (JobAlgorithm,), {"job": job, "__doc__": f"contrasat:{job.algorithm}"})


def algorithms() -> list[JobAlgorithm]:
    """One algorithm per job of the table, read when the provider (re)loads its algorithms."""
    return [algorithm_class(job)() for job in jobs.JOBS]
