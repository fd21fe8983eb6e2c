"""Processing algorithm `contrasat:finetune`: fit a flood model to the user's labelled polygons or points.

Written by hand rather than from the job table (models/jobs.py): the table's vector kind hands the engine the
union of a layer's polygons without attributes and its jobs write maps, whereas fine-tuning needs every
feature with its class field and writes a model. Like every job it runs on the engine, out of QGIS's process
(`python -m contrasat finetune ... --progress json`), with progress and cancel; torch is needed only there.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from .engine import run_engine
from .engine_env import engine_env, engine_python
from .finetune_job import DEFAULT_BASE, finetune_command, labels_geojson, training_hint, write_geojson
from .paths import layer_file_path

ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "contrasat.svg"


def write_labels(source, field: str, folder: Path) -> Path:
    """The label features (geometry and class field only) as a GeoJSON file in the layer's CRS."""
    try:
        return write_geojson(labels_geojson(source, field), folder)
    except ValueError as exc:
        raise QgsProcessingException(str(exc)) from None


class FinetuneAlgorithm(QgsProcessingAlgorithm):
    """contrasat:finetune"""

    RASTERS, LABELS, FIELD, BASE, STEPS, FROZEN, OUTPUT = (
        "INPUT_S1",
        "LABELS",
        "FIELD",
        "BASE",
        "STEPS",
        "FROZEN",
        "OUTPUT",
    )
    HELDOUT = "HELDOUT_WATER_IOU"

    def createInstance(self) -> FinetuneAlgorithm:  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return "finetune"

    def displayName(self) -> str:  # noqa: N802
        return "Fine-tune a flood model on your labels"

    def group(self) -> str:
        return "Training"

    def groupId(self) -> str:  # noqa: N802
        return "training"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "Fits a bundled flood model to water/dry polygons or points drawn on your Sentinel-1 scene "
            "(class field: water/dry or 1/0; any CRS). A quarter of each class's polygons is held back to pick "
            "the weights; the new model's card records the base model, your label counts and the held-back "
            "scores of both models. Needs torch in the Contrasat engine (pip install contrasat[train])."
        )

    def initAlgorithm(self, config: dict | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(self.RASTERS, "Sentinel-1 raster(s) (VV, VH)",
                                                               QgsProcessing.TypeRaster))  # fmt: skip
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.LABELS, "Labels (polygons or points)", [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]
        ))  # fmt: skip
        self.addParameter(
            QgsProcessingParameterField(self.FIELD, "Class field (water/dry or 1/0)", "class", self.LABELS)
        )
        self.addParameter(QgsProcessingParameterString(self.BASE, "Base model", DEFAULT_BASE))
        self.addParameter(QgsProcessingParameterNumber(self.STEPS, "Training steps (at most)",
                                                       QgsProcessingParameterNumber.Integer, 200, False, 1))  # fmt: skip
        self.addParameter(QgsProcessingParameterBoolean(self.FROZEN, "Keep the encoder frozen", False))
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT, "Fine-tuned model", "ONNX models (*.onnx)")
        )
        self.addOutput(
            QgsProcessingOutputString(self.HELDOUT, "Held-back water IoU (JSON: fine-tuned, base)")
        )

    def command(
        self, parameters: dict, context: QgsProcessingContext, scratch: Path, python: Path
    ) -> list[str]:
        """The engine command line (the label file is written into `scratch`)."""
        layers = self.parameterAsLayerList(parameters, self.RASTERS, context)
        rasters = [layer_file_path(layer) for layer in layers]
        if not rasters or any(p is None for p in rasters):
            raise QgsProcessingException("give Sentinel-1 raster files")
        source = self.parameterAsSource(parameters, self.LABELS, context)
        if source is None:
            raise QgsProcessingException("a label layer is required")
        fields = self.parameterAsFields(parameters, self.FIELD, context)
        field = fields[0] if fields else "class"
        labels = write_labels(source, field, scratch)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        base = self.parameterAsString(parameters, self.BASE, context).strip() or DEFAULT_BASE
        steps = self.parameterAsInt(parameters, self.STEPS, context)
        frozen = self.parameterAsBool(parameters, self.FROZEN, context)
        return finetune_command(python, rasters, labels, field, out, base, steps, frozen)

    def processAlgorithm(  # noqa: N802
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
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
            command = self.command(parameters, context, scratch, python)
            feedback.pushCommandInfo(" ".join(command))
            ended = run_engine(command, engine_env(), on_event=on_event, is_cancelled=feedback.isCanceled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if ended.status == "cancelled":
            raise QgsProcessingException("cancelled: nothing was written")
        if ended.status != "done":
            raise QgsProcessingException(training_hint(ended.message, python))
        result = ended.result or {}
        heldout = result.get("heldout_water_iou", {})
        feedback.pushInfo(f"held-back water IoU: {json.dumps(heldout)}")
        return {self.OUTPUT: result.get("output"), self.HELDOUT: json.dumps(heldout)}
