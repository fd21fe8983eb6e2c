"""Processing algorithms built from the job table (models/jobs.py): `contrasat:<job>` for every job.

One class per job (`contrasat:map_floods`, `contrasat:land_cover`, `contrasat:classify_series`,
`contrasat:finetune`, `contrasat:batch`), its parameters mapped from the table's Params. They run through
the same launcher as the dock (the CLI, out of QGIS's process: launcher.py), so batch mode, graphical
models, the Python console (`processing.run`) and `qgis_process` all get the same outputs.
"""

from __future__ import annotations

import json
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
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QIcon

from ..models import jobs
from ..models.jobs import Job, Param
from ..progress import CANCELLED, DONE
from .aoi_widget import crs_text
from .label_layers import labels_geojson
from .launcher import JobRequest, launch
from .paths import layer_file_path
from .results import summary_from_engine
from .settings import load_settings
from .styling import FLOOD_TRANSPARENT_VALUES, polygon_renderer, probability_renderer, style_class_layer

DEFAULT_FIELD = "class"  # the runtime's class field when none is named (models/own_classes.py)
ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "contrasat.svg"


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles an output once Processing has loaded it, as the dock styles the same output (results.py):
    the class raster from the class table, probabilities as a ramp, polygons by class."""

    def __init__(self, kind: str, classes: list[Any], nodata: int, flood: bool) -> None:
        super().__init__()
        self.kind, self.classes, self.nodata, self.flood = kind, classes, nodata, flood

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - Processing API
        if self.kind == "out" and isinstance(layer, QgsRasterLayer):
            transparent = FLOOD_TRANSPARENT_VALUES if self.flood else ()
            style_class_layer(layer, self.classes, self.nodata, transparent_values=transparent)
        elif self.kind == "probabilities" and isinstance(layer, QgsRasterLayer):
            # flood: p(water) is the last band; otherwise the first class's band stands in
            layer.setRenderer(probability_renderer(layer, layer.bandCount() if self.flood else 1))
        elif self.kind == "polygons" and isinstance(layer, QgsVectorLayer):
            layer.setRenderer(polygon_renderer(self.classes))


# Processing keeps only a C++ pointer to a layer post-processor and calls it after the algorithm instance
# that made it (a clone made by QgsProcessingAlgorithm::run) is gone, so Python must hold the stylers
# elsewhere. A short queue outlives any run's loading step without growing for ever.
_LIVE_STYLERS: deque[LayerStyler] = deque(maxlen=64)


def _number(param: Param, name: str, label: str, optional: bool, kind: int) -> QgsProcessingParameterNumber:
    default = None if param.execution else param.default
    minimum = param.minimum if param.minimum is not None else -(2**31)
    return QgsProcessingParameterNumber(name, label, kind, default, optional, minimum)


def _destination(param: Param) -> QgsProcessingParameterDefinition:
    """The Processing destination of an output Param; optional outputs are written only when asked for."""
    name, label, optional, kind = param.processing_name, param.title, not param.required, param.kind
    if kind == "output_raster":
        return QgsProcessingParameterRasterDestination(
            name, label, optional=optional, createByDefault=param.required
        )
    if kind == "output_vector":
        return QgsProcessingParameterVectorDestination(
            name, label, QgsProcessing.TypeVectorPolygon, optional=optional, createByDefault=param.required
        )
    if kind == "output_folder":
        return QgsProcessingParameterFolderDestination(name, label, optional=optional)
    files = "ONNX models (*.onnx)" if kind == "output_model" else "CSV files (*.csv)"
    return QgsProcessingParameterFileDestination(name, label, files, optional=optional,
                                                 createByDefault=param.required)  # fmt: skip


def _definition(param: Param, labels: str) -> QgsProcessingParameterDefinition:
    """The Processing parameter of a Param by its kind (`labels`: the job's labels parameter, a field's parent)."""
    name, label, optional, kind = param.processing_name, param.title, not param.required, param.kind
    if param.is_output:
        return _destination(param)
    if kind == "raster":
        return QgsProcessingParameterRasterLayer(name, label, optional=optional)
    if kind in ("rasters", "scenes"):
        layers = QgsProcessing.TypeRaster if kind == "rasters" else QgsProcessing.TypeFile
        return QgsProcessingParameterMultipleLayers(name, label, layers, optional=optional)
    if kind in ("vector", "labels"):
        points = [QgsProcessing.TypeVectorPoint] if kind == "labels" else []
        return QgsProcessingParameterFeatureSource(
            name, label, [QgsProcessing.TypeVectorPolygon, *points], optional=optional
        )
    if kind == "field":
        return QgsProcessingParameterField(name, label, param.default, labels, optional=optional)
    if kind in ("model", "dates", "text", "texts"):
        return QgsProcessingParameterString(name, label, param.default or "", optional=optional)
    if kind in ("int", "float"):
        number = (
            QgsProcessingParameterNumber.Integer if kind == "int" else QgsProcessingParameterNumber.Double
        )
        return _number(param, name, label, optional, number)
    if kind == "flag":
        return QgsProcessingParameterBoolean(name, label, bool(param.default), optional)
    if kind == "choice":
        default = None if param.execution or param.default is None else param.choices.index(param.default)
        return QgsProcessingParameterEnum(name, label, list(param.choices), False, default, optional)
    raise ValueError(f"parameter {param.name}: no Processing parameter for kind {kind!r}")


def processing_parameter(param: Param, labels: str = "") -> QgsProcessingParameterDefinition:
    """The Processing parameter of one table Param (its kind decides the type; optional unless required).

    Execution settings (tile, provider, ...) have no default here: left empty, the Contrasat settings
    apply, and the table's default after them.
    """
    definition = _definition(param, labels)
    if param.execution:
        definition.setFlags(definition.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    definition.setHelp(param.help)
    return definition


def log_note(feedback: QgsProcessingFeedback, text: str, level: str) -> None:
    """An engine note in the Processing log: a warning (e.g. an uncertain dry-land level: the map may be
    wrong) as a warning, anything else as information."""
    (feedback.pushWarning if level == "warning" else feedback.pushInfo)(text)


def _given(parameters: dict, param: Param) -> bool:
    value = parameters.get(param.processing_name)
    return value is not None and value != ""


class JobAlgorithm(QgsProcessingAlgorithm):
    """The Processing algorithm of one job of the table; `algorithm_class` makes one subclass per job.

    What a run reports once the engine is done depends on what the job writes: a map (MapAlgorithm), a
    model (ModelAlgorithm) or a folder of maps (FolderAlgorithm).
    """

    job: Job
    GROUP = "Mapping"

    def createInstance(self) -> JobAlgorithm:  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return self.job.algorithm

    def displayName(self) -> str:  # noqa: N802
        return self.job.display_name

    def shortHelpString(self) -> str:  # noqa: N802
        lines = [self.job.help[:1].upper() + self.job.help[1:] + "."]
        lines += [f"<b>{p.title}</b>: {p.help}" for p in self.job.params]
        if self.job.execution_params:
            lines.append("Empty execution settings (advanced) come from Raster > Contrasat > Settings….")
        return "<br>".join(lines)

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP.lower()

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def _labels(self) -> Param | None:
        return next((p for p in self.job.params if p.kind == "labels"), None)

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        labels = self._labels()
        parent = labels.processing_name if labels is not None else ""
        # inputs and options first, destinations last: the order of the Processing dialog
        for param in self.job.inputs + self.job.options + self.job.outputs:
            self.addParameter(processing_parameter(param, parent))
        self.add_result_outputs()

    def add_result_outputs(self) -> None:
        """Outputs beyond the table's destinations, read from the engine's summary."""

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

    def _labelled(self, parameters: dict, name: str, context: QgsProcessingContext) -> dict | None:
        """A labels source as a GeoJSON document: every feature with its class field (the job's field)."""
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            return None
        field_param = next(p for p in self.job.params if p.kind == "field")
        field_name = self.value(field_param, parameters, context) or field_param.default or DEFAULT_FIELD
        try:
            return labels_geojson(source, field_name)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _rasters(self, param: Param, parameters: dict, context: QgsProcessingContext) -> list[Path] | None:
        layers = self.parameterAsLayerList(parameters, param.processing_name, context)
        paths = [layer_file_path(layer) for layer in layers]
        if any(p is None for p in paths):
            raise QgsProcessingException(f"{param.title}: give raster files")
        return paths or None

    def _text(self, param: Param, parameters: dict, context: QgsProcessingContext) -> Any:
        text = self.parameterAsString(parameters, param.processing_name, context)
        if param.kind in ("dates", "texts"):
            return [word for word in text.replace(",", " ").split() if word] or None
        return text.strip() or None

    def value(self, param: Param, parameters: dict, context: QgsProcessingContext) -> Any:
        """One table parameter's value as the engine takes it (None: not given)."""
        name, kind = param.processing_name, param.kind
        readers = {
            "raster": lambda: self._raster_path(parameters, name, context),
            "rasters": lambda: self._rasters(param, parameters, context),
            "scenes": lambda: self.parameterAsFileList(parameters, name, context) or None,
            "vector": lambda: self._polygons(parameters, name, context),
            "labels": lambda: self._labelled(parameters, name, context),
            "field": lambda: next(iter(self.parameterAsFields(parameters, name, context)), None),
            "output_raster": lambda: self.parameterAsOutputLayer(parameters, name, context) or None,
            "output_vector": lambda: self.parameterAsOutputLayer(parameters, name, context) or None,
            "flag": lambda: self.parameterAsBool(parameters, name, context),
        }
        if kind in readers:
            return readers[kind]()
        if kind in ("model", "dates", "text", "texts"):
            return self._text(param, parameters, context)
        if param.is_output:
            return self.parameterAsFileOutput(parameters, name, context) or None
        if not _given(parameters, param) and (param.execution or param.default is None):
            return None  # execution settings: the Contrasat settings decide
        if kind == "int":
            return self.parameterAsInt(parameters, name, context)
        if kind == "float":
            return self.parameterAsDouble(parameters, name, context)
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
        ended = launch(
            request, on_progress=lambda fraction: feedback.setProgress(100.0 * fraction),
            on_message=lambda text, level: log_note(feedback, text, level), on_command=lambda command: feedback.pushCommandInfo(" ".join(command)),
            is_cancelled=feedback.isCanceled,
        )  # fmt: skip
        if ended.status == CANCELLED:
            raise QgsProcessingException("cancelled: nothing was written")
        if ended.status != DONE:
            raise QgsProcessingException(ended.message)
        return self.finish(ended.result, request, context, feedback)

    def finish(
        self,
        data: dict[str, Any],
        request: JobRequest,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        """Report the engine's summary and name every output written."""
        raise NotImplementedError


class MapAlgorithm(JobAlgorithm):
    """A job that writes a class map: model used, areas, flooded area; the loaded map is styled."""

    FLOODED_KM2 = "FLOODED_KM2"
    MODEL_NAME = "MODEL_NAME"
    AREAS = "CLASS_AREAS_JSON"

    def add_result_outputs(self) -> None:
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Model used"))
        self.addOutput(QgsProcessingOutputString(self.AREAS, "Area per class (km², JSON)"))
        if self.job.task == "flood":
            self.addOutput(QgsProcessingOutputNumber(self.FLOODED_KM2, "Flooded area (km²)"))

    def finish(
        self,
        data: dict[str, Any],
        request: JobRequest,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        """Report the engine's summary, style the loaded class raster, and name every output written."""
        result = summary_from_engine(data, request)
        for name, area in result.class_area_km2.items():
            feedback.pushInfo(f"{name}: {area:.3f} km²")
        for kind, path in (("out", request.out), ("probabilities", result.probabilities),
                           ("polygons", result.polygons)):  # fmt: skip
            if path is not None and context.willLoadLayerOnCompletion(str(path)):
                styler = LayerStyler(kind, result.classes, result.nodata, result.task == "flood")
                _LIVE_STYLERS.append(styler)
                context.layerToLoadOnCompletionDetails(str(path)).setPostProcessor(styler)
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


class ModelAlgorithm(JobAlgorithm):
    """A job that writes a model (fine-tune): its file and the held-back scores of both models."""

    GROUP = "Training"
    HELDOUT = "HELDOUT_WATER_IOU"

    def add_result_outputs(self) -> None:
        self.addOutput(
            QgsProcessingOutputString(self.HELDOUT, "Held-back water IoU (JSON: fine-tuned, base)")
        )

    def finish(
        self,
        data: dict[str, Any],
        request: JobRequest,
        context: QgsProcessingContext,  # noqa: ARG002
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        heldout = data.get("heldout_water_iou", {})
        feedback.pushInfo(f"held-back water IoU: {json.dumps(heldout)}")
        out = self.job.outputs[0].processing_name
        return {out: data.get("output"), self.HELDOUT: json.dumps(heldout)}


class FolderAlgorithm(JobAlgorithm):
    """A job that maps many scenes into a folder (batch): the folder, the summary table, one line per failure."""

    def finish(
        self,
        data: dict[str, Any],
        request: JobRequest,
        context: QgsProcessingContext,  # noqa: ARG002
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        counts = ", ".join(f"{data.get(k, 0)} {k}" for k in ("done", "skipped", "failed"))
        feedback.pushInfo(f"{data.get('scenes', 0)} scenes: {counts}")
        for row in data.get("results", []):
            if row.get("status") == "failed":
                feedback.reportError(f"{row.get('scene')}: {row.get('error')}")
        outputs = {p.processing_name: None for p in self.job.outputs}
        outputs[self.job.outputs[0].processing_name] = str(request.out)
        summary = next((p for p in self.job.outputs[1:] if p.kind == "output_table"), None)
        if summary is not None:
            outputs[summary.processing_name] = data.get("summary")
        return outputs


# What a job writes (the kind of its first output) decides how a run's summary is reported.
BASES = {"output_raster": MapAlgorithm, "output_model": ModelAlgorithm, "output_folder": FolderAlgorithm}


def algorithm_class(job: Job) -> type[JobAlgorithm]:
    """The Processing algorithm class of one job (MapFloodsAlgorithm for map-floods, ...)."""
    name = "".join(word.capitalize() for word in job.name.split("-")) + "Algorithm"
    base = BASES[job.outputs[0].kind]
    return type(name, (base,), {"job": job, "__doc__": f"contrasat:{job.algorithm}"})


def algorithms() -> list[JobAlgorithm]:
    """One algorithm per job of the table, read when the provider (re)loads its algorithms."""
    return [algorithm_class(job)() for job in jobs.JOBS]
