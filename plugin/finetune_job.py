"""The fine-tune job of the plugin: its request, its engine command and its task, and the two maps that follow.

Fine-tuning is not a job of the table (models/jobs.py: its input is a labelled vector layer and its output a
model), so the request and the command are made here, for the dock and for Processing alike. The task is a
`JobTask` with another command line: the same engine process (`python -m contrasat finetune ... --progress
json`), progress and cancel. torch is imported only by that process.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aoi_widget import crs_text
from .engine import PACKAGE
from .engine_env import engine_python
from .paths import sibling_outputs, unique_output_path
from .settings import RunSettings
from .tasks import JobRequest, JobTask

FINETUNE_JOB = "finetune"
DEFAULT_BASE = "flood_s1_contrastive"  # the CLI's default: the multimodal pre-trained encoder
DEFAULT_STEPS = 200
# the engine without the training packages: the CLI's own check (torch) or an import that failed (scipy)
MISSING_PACKAGE = re.compile(r"needs torch|No module named '([\w.]+)'")
TRAINING_PACKAGES = ("torch", "scipy")  # what `contrasat finetune` needs beyond the runtime pins


def finetunable(card: Any) -> bool:
    """Bases worth offering to `contrasat finetune`: single-input Sentinel-1 flood networks trained by
    Contrasat (their card names the training code) or fine-tuned from one; not the fixed VH rule, and not
    VH-anchored residual networks or ensembles (the card's recipe names net "resid" or "ensemble"), which
    the engine cannot read back and would refuse only after the user has drawn labels and pressed Run."""
    single_s1 = card.task == "flood" and len(card.inputs) == 1 and card.inputs[0].sensor == "S1"
    trained = bool(card.training.get("code") or card.training.get("base_model"))
    recipe = card.training.get("recipe")
    anchored = isinstance(recipe, dict) and recipe.get("net") in ("resid", "ensemble")
    return single_s1 and trained and not anchored


def labels_geojson(source: Any, field_name: str) -> dict[str, Any]:
    """The features of a layer or feature source (geometry and class field only) as a GeoJSON document in
    the layer's CRS; ValueError when it holds no feature with a geometry."""
    features = []
    for feature in source.getFeatures():
        if not feature.hasGeometry():
            continue
        value = feature[field_name]
        features.append({
            "type": "Feature",
            "properties": {field_name: None if value is None else str(value)},
            "geometry": json.loads(feature.geometry().asJson()),
        })  # fmt: skip
    if not features:
        raise ValueError("the label layer holds no feature with a geometry")
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_text(source.sourceCrs())}},
        "features": features,
    }


def write_geojson(doc: dict[str, Any], folder: Path, name: str = "labels") -> Path:
    path = folder / f"{name}.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def finetune_command(
    python: str | Path,
    rasters: list[Path],
    labels: Path,
    field_name: str,
    out: Path | str,
    base: str | Path,
    steps: int,
    frozen: bool = False,
) -> list[str]:
    """`python -m contrasat finetune ... --progress json`: the one command line of the dock and Processing."""
    command = [str(python), "-m", PACKAGE, "finetune", "--raster", *map(str, rasters), "--labels", str(labels),
               "--field", field_name, "--out", str(out), "--base", str(base), "--steps", str(steps)]  # fmt: skip
    if frozen:
        command.append("--frozen")
    return [*command, "--progress", "json"]


@dataclass
class FinetuneRequest:
    """A fine-tune as collected in the dock (GUI thread): the labels are already read from their layer."""

    rasters: list[Path]
    labels: dict[str, Any]  # GeoJSON document (labels_geojson)
    field: str
    base: Path
    out: Path  # the new model, in the user's models folder
    map_dir: Path  # where the base model's and the new model's maps go
    steps: int = DEFAULT_STEPS
    frozen: bool = False
    layer_name: str = ""  # the first raster's layer name
    settings: RunSettings | None = None
    job: str = FINETUNE_JOB
    options: dict[str, Any] = field(default_factory=dict)  # what JobTask users read; empty here

    @property
    def primary(self) -> Path:
        return self.rasters[0]

    def outputs(self) -> list[Path]:
        return [self.out, self.out.with_name(f"{self.out.stem}_curve.png")]

    def command(self, scratch: Path, python: str | Path | None = None) -> list[str]:
        """The engine command line (the label file is written into `scratch`)."""
        labels = write_geojson(self.labels, scratch)
        return finetune_command(python or engine_python(), self.rasters, labels, self.field, self.out,
                                self.base, self.steps, self.frozen)  # fmt: skip


def training_hint(error: str, python: str | Path) -> str:
    """The engine's error, or one clear message when the engine lacks what fine-tuning needs."""
    found = MISSING_PACKAGE.search(error)
    if found is None:
        return error
    module = found.group(1) or "torch"
    if module.startswith("contrasat.training"):
        return (
            "this copy of the plugin has no training code (contrasat/training): reinstall it from a full zip"
        )
    module = module.split(".")[0]
    if module not in TRAINING_PACKAGES:  # a runtime package: the engine itself is broken, say so as it is
        return error
    return (
        f"Fine-tuning needs {module} in the Contrasat engine ({python}); mapping does not. Install torch and "
        "scipy into it (docs/qgis.md, Fine-tune), or choose an interpreter that has them in "
        "Raster > Contrasat > Settings…"
    )


class FinetuneTask(JobTask):
    """Runs `contrasat finetune` on the engine; its outcome's result is the CLI's summary (output, IoUs)."""

    def command(self, scratch: Path) -> list[str]:
        return self.request.command(scratch)

    def run(self) -> bool:
        ok = super().run()
        if self.outcome.error:
            self.outcome.error = training_hint(self.outcome.error, engine_python())
        return ok


def map_requests(request: FinetuneRequest, model: Path) -> list[JobRequest]:
    """Map floods in the first raster with the base model, then with the new one (two styled layers)."""
    jobs = []
    for label, kind, path in (
        (f"base {request.base.stem}", "flood_base", request.base),
        (f"fine-tuned {model.stem}", "flood_finetuned", model),
    ):
        out = unique_output_path(request.map_dir, request.layer_name or request.primary.stem, kind=kind)
        options = {"model": path, "statistics": sibling_outputs(out)["statistics"]}
        name = f"{request.layer_name}, {label}"
        jobs.append(JobRequest("map_floods", request.primary, out, options, name, request.settings))
    return jobs


def finetune_text(result: dict[str, Any]) -> str:
    """One line for the dock: where the model is and how it scored on the held-back polygons."""
    iou = result.get("heldout_water_iou") or {}
    text = f"Fine-tuned model saved: {result.get('output')}"
    if isinstance(iou, dict) and iou.get("finetuned") is not None:
        base = iou.get("base")
        text += f". Held-back water IoU {iou['finetuned']:.3f}" + (
            f" (base model {base:.3f})" if isinstance(base, int | float) else ""
        )
    return text + ". Mapping the scene with both models…"


def new_model_path(folder: Path, layer_name: str) -> Path:
    """`<folder>/<layer>_finetuned.onnx`, numbered so an earlier model is never overwritten."""
    return unique_output_path(folder, layer_name, suffix=".onnx", kind="finetuned")
