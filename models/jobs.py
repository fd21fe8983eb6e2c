"""The jobs Contrasat runs, as data: name, inputs, outputs, options and defaults.

One table for every front end: the CLI builds its commands from it, the QGIS plugin builds its Processing
algorithms and every engine command line (dock and Processing) from it, so a job's parameters are named and
explained once. Pure Python: the plugin imports it inside QGIS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .execution import AUTO, MODEL_DEFAULT, PROVIDERS
from .output_set import FORMAT_NAMES
from .registry import FINETUNE_BASE

# What a parameter holds; a front end maps each kind to a widget, an argparse option or a Processing parameter.
KINDS = (
    "raster",  # one raster file
    "rasters",  # one or more raster files
    "scenes",  # a scene list: folders of rasters, raster files, CSV scene lists or STAC items (positional)
    "vector",  # polygons (an area of interest); front ends may hand over their union
    "labels",  # labelled vectors: polygons or points with a class field (every feature), or a label raster
    "field",  # the name of a field of the job's labels
    "model",  # a bundled model name or an .onnx path
    "dates",  # one or more YYYY-MM-DD
    "output_raster",
    "output_vector",
    "output_table",
    "output_model",  # an .onnx model written with its card
    "output_folder",  # a folder the job writes its files into
    "int",
    "float",
    "flag",  # on when given, off by default
    "choice",
    "text",  # one free word (e.g. a scheduler address)
    "texts",  # one or more free words (e.g. NAME=AMOUNT pairs)
)
MANY_KINDS = ("rasters", "scenes", "dates", "texts")


@dataclass(frozen=True)
class Param:
    """One parameter of a job; `name` is the keyword of the runtime function and the CLI option."""

    name: str
    kind: str  # one of KINDS
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    multiple_of: int | None = None
    label: str = ""  # short title for forms (Processing dialogs); the name when empty
    processing: str = ""  # Processing parameter name when it predates the table (e.g. INPUT_S1)
    execution: bool = False  # an execution setting: front ends may fill it from their saved settings
    words: tuple[str, ...] = ()  # an int parameter's values besides numbers (auto, model: decided later)

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def positional(self) -> bool:
        """A scene list is the command's positional argument (`contrasat batch SCENES... --out DIR`)."""
        return self.kind == "scenes"

    @property
    def many(self) -> bool:
        """The parameter takes one or more values."""
        return self.kind in MANY_KINDS

    def arguments(self, value: Any) -> list[str]:
        """The command-line words of one value of this parameter (none for an unset flag)."""
        if self.kind == "flag":
            return [self.option] if value else []
        values = [str(v) for v in (value if self.many and isinstance(value, list | tuple) else [value])]
        return values if self.positional else [self.option, *values]

    @property
    def is_output(self) -> bool:
        return self.kind.startswith("output_")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def processing_name(self) -> str:
        """The parameter's name in the job's Processing algorithm (graphical models and scripts use it)."""
        return self.processing or self.name.upper()

    def problem(self, value: int) -> str | None:
        """Why an int value breaks this parameter's minimum or multiple_of, or None when it is fine."""
        if self.minimum is not None and value < self.minimum:
            return f"{self.option} must be {self.minimum} or more, not {value}"
        if self.multiple_of and value % self.multiple_of:
            return f"{self.option} must be a multiple of {self.multiple_of}, not {value}"
        return None


@dataclass(frozen=True)
class Job:
    """A job: its command name, the model task it runs, the runtime function and its parameters."""

    name: str
    task: str
    function: str  # "module:function", the module relative to the contrasat package (e.g. models.pipeline)
    help: str
    inputs: tuple[Param, ...]
    outputs: tuple[Param, ...]
    options: tuple[Param, ...] = field(default_factory=tuple)
    title: str = ""  # display name (Processing toolbox, dock); from the name when empty

    @property
    def algorithm(self) -> str:
        """The Processing algorithm's name (`contrasat:<algorithm>`) and the plugin's job key."""
        return self.name.replace("-", "_")

    @property
    def display_name(self) -> str:
        return self.title or self.name.replace("-", " ").capitalize()

    @property
    def params(self) -> tuple[Param, ...]:
        return self.inputs + self.outputs + self.options

    def runner(self) -> Callable[..., Any]:
        module, _, name = self.function.partition(":")
        root = __package__.rpartition(".")[0]  # contrasat (or the plugin's folder name inside QGIS)
        return getattr(importlib.import_module(f"{root}.{module}"), name)

    @property
    def execution_params(self) -> tuple[Param, ...]:
        """The parameters that are execution settings (how the job runs, not what it computes)."""
        return tuple(p for p in self.params if p.execution)


AOI = Param(
    "aoi",
    "vector",
    "polygon file (GeoJSON, GeoPackage, ...) in any CRS; invalid polygons are repaired",
    label="Area of interest (polygons)",
)
MODEL = Param(
    "model",
    "model",
    "bundled model name or path to an .onnx file with a Contrasat card",
    label="Model (bundled name or .onnx path; empty = default)",
)
PROBABILITIES = Param(
    "probabilities",
    "output_raster",
    f"also write float32 class probabilities ({FORMAT_NAMES['raster']})",
    label="Class probabilities",
)
POLYGONS = Param(
    "polygons",
    "output_vector",
    f"also write class polygons with true area ({FORMAT_NAMES['vector']})",
    label="Class polygons with area",
)
STATISTICS = Param(
    "statistics",
    "output_table",
    f"also write the true area per class ({FORMAT_NAMES['table']})",
    label="Area per class (CSV)",
)
TILE = Param(
    "tile",
    "int",
    f"tile size in pixels, a multiple of 16 ({MODEL_DEFAULT}: the model card's, the default)",
    default=MODEL_DEFAULT,
    minimum=16,
    multiple_of=16,
    label="Tile size (px)",
    execution=True,
    words=(MODEL_DEFAULT,),
)
OVERLAP = Param(
    "overlap",
    "int",
    f"tile overlap in pixels ({MODEL_DEFAULT}: the model card's, the default)",
    default=MODEL_DEFAULT,
    minimum=0,
    label="Tile overlap (px)",
    execution=True,
    words=(MODEL_DEFAULT,),
)
BATCH = Param(
    "batch",
    "int",
    f"tiles per inference batch (default 4; {AUTO}: chosen for the execution provider)",
    default=4,
    minimum=1,
    label="Tiles per batch",
    execution=True,
    words=(AUTO,),
)
PROVIDER = Param(
    "provider",
    "choice",
    "ONNX Runtime execution provider",
    default=AUTO,
    choices=PROVIDERS,
    label="Execution provider",
    execution=True,
)
THREADS = Param(
    "threads",
    "int",
    f"ONNX Runtime threads, capped at the number of cores ({AUTO}, the default: its own choice, or 1 per "
    "scene on a local batch cluster)",
    default=AUTO,
    minimum=1,
    label="Threads",
    execution=True,
    words=(AUTO,),
)
DEVICE_ID = Param(
    "device_id",
    "int",
    "the GPU CUDA runs on (default 0)",
    default=0,
    minimum=0,
    label="CUDA device",
    execution=True,
)
WORKERS = Param(
    "workers",
    "int",
    f"LocalCluster worker processes ({AUTO}, the default: one per core)",
    default=AUTO,
    minimum=1,
    label="Worker processes",
    execution=True,
    words=(AUTO,),
)
EXECUTION = (OVERLAP, BATCH, TILE, PROVIDER, THREADS, DEVICE_ID)  # the settings of every tiled job
MIN_POLYGON = Param(
    "min_polygon",
    "int",
    "class polygons: regions smaller than this many pixels are merged into their largest neighbour in the "
    "polygon file only (speckle); the raster and the statistics keep every pixel",
    default=9,  # 3 x 3 px, 0.09 ha at 10 m: smaller regions of a per-pixel SAR map are mostly speckle
    minimum=1,
    label="Smallest polygon (px)",
)
TILED_OPTIONS = (AOI, MODEL, *EXECUTION, MIN_POLYGON)

JOBS: tuple[Job, ...] = (
    Job(
        name="map-floods", task="flood", function="models.pipeline:map_floods", title="Map floods",
        help="flood map from Sentinel-1 (optionally with Sentinel-2)",
        inputs=(
            Param("s1", "raster", "Sentinel-1 raster [VV, VH]: calibrated sigma0 in dB, linear power or amplitude "
                  "(detected, converted with a note); HH/HV or uncalibrated DN are refused", required=True,
                  label="Sentinel-1 raster (VV, VH)", processing="INPUT_S1"),
            Param("s2", "raster", "Sentinel-2 raster (for fusion models)", label="Sentinel-2 raster",
                  processing="INPUT_S2"),
            Param("pre_event", "raster", "Sentinel-1 raster before the event: separates new flood water (1) from "
                  "permanent water (2)", label="Pre-event Sentinel-1 raster", processing="PRE_EVENT_S1"),
        ),
        outputs=(
            Param("out", "output_raster", "output class GeoTIFF (0 dry, 1 water, 255 nodata)", required=True,
                  label="Flood map", processing="OUTPUT"),
            PROBABILITIES, POLYGONS, STATISTICS,
        ),
        options=TILED_OPTIONS,
    ),
    Job(
        name="land-cover", task="land_cover", function="models.pipeline:land_cover", title="Land cover",
        help="land-cover map from Sentinel-2 (optionally with Sentinel-1)",
        inputs=(
            Param("s2", "raster", "Sentinel-2 raster: bands found by description (B01..B12, B8A), else all 13 L1C "
                  "bands or 12 L2A bands in order; L2A (no B10) works only with models that do not need B10 "
                  "(see `contrasat models`)", required=True, label="Sentinel-2 raster", processing="INPUT_S2"),
            Param("s1", "raster", "Sentinel-1 raster (for fusion models)", label="Sentinel-1 raster",
                  processing="INPUT_S1"),
            Param("labels", "labels", "training polygons or points in your own classes (any CRS): a classifier "
                  "is fitted on them and maps your classes (see the method; with the encoder head, the model, if "
                  "given, must be a feature extractor)", label="Training labels (polygons or points)"),
            Param("field", "field", "class field of the training labels: class names or integer codes "
                  "(default: class); a color/colour field of hex colours styles the classes",
                  label="Class field"),
            Param("method", "choice", "with training labels, how your classes are learnt: bands-context-forest "
                  "(default, the best in our study of a few polygons per class: a random forest on the Sentinel-2 "
                  "bands, NDVI/NDWI/NDBI and their 3x3 and 7x7 neighbourhood means; Sentinel-1 is not used) or "
                  "encoder-head (a logistic-regression head on the pre-trained encoders' features, Sentinel-1 "
                  "too when given)", choices=("bands-context-forest", "encoder-head"),
                  default="bands-context-forest", label="Method for your own classes"),
        ),
        outputs=(
            Param("out", "output_raster", "output class GeoTIFF (classes of the model card)", required=True,
                  label="Land cover", processing="OUTPUT"),
            PROBABILITIES, POLYGONS, STATISTICS,
            Param("save_model", "output_model", "with training labels, also save the fitted classifier as "
                  f"{FORMAT_NAMES['model']} with its card, to run on other scenes as a model",
                  label="Fitted classifier"),
        ),
        options=TILED_OPTIONS,
    ),
    Job(
        name="classify-series", task="pixel_timeseries", function="models.series:classify_series",
        title="Classify time series", help="land cover from a multi-date S2 stack (pixel time series)",
        inputs=(
            Param("stack", "rasters", "single-date S2 (or index) rasters dated by name/tag, or one raster with one "
                  "index band per date (a vegetation index such as NDVI, -1..1)", required=True,
                  label="Sentinel-2 rasters (one per date) or one index stack", processing="INPUT_S2"),
            Param("dates", "dates", "YYYY-MM-DD per raster, or per band of a one-file stack",
                  label="Dates (YYYY-MM-DD, comma-separated)"),
        ),
        outputs=(Param("out", "output_raster", "output class GeoTIFF (card classes, 255 nodata)", required=True,
                       label="Series land cover", processing="OUTPUT"),),
        options=(
            AOI, MODEL,
            Param("tile", "int", "pixel block side, a multiple of 16 (default 64)", default=MODEL_DEFAULT, minimum=16,
                  multiple_of=16, label="Pixel block side (px)", execution=True, words=(MODEL_DEFAULT,)),
            PROVIDER, THREADS, DEVICE_ID,
        ),
    ),
    Job(
        name="finetune", task="flood", function="finetune_runner:finetune",
        title="Fine-tune a flood model on your labels",
        help="fine-tune a flood model on your own labelled polygons (needs torch)",
        inputs=(
            Param("raster", "rasters", "Sentinel-1 raster(s) [VV, VH] the labels lie on", required=True,
                  label="Sentinel-1 raster(s) (VV, VH)", processing="INPUT_S1"),
            Param("labels", "labels", "polygons or points in any CRS (.gpkg, .geojson, ...) with a class field, or "
                  "a label raster (values 0 dry, 1 water; -1/255 unlabelled)", required=True,
                  label="Labelled polygons or points"),
            Param("field", "field", "class field of the label file: water/dry or 1/0 (default class)",
                  default="class", label="Class field (water/dry or 1/0)"),
        ),
        outputs=(Param("out", "output_model", "the fine-tuned model (.onnx, with its card); a _curve.png beside "
                       "it", required=True, label="Fine-tuned model (.onnx)", processing="OUTPUT"),),
        options=(
            Param("base", "model", f"model to start from: bundled name or .onnx (default: {FINETUNE_BASE}, the "
                  "default flood model)", default=FINETUNE_BASE, label="Model to start from"),
            Param("steps", "int", "training steps at most (default 200)", default=200, minimum=1,
                  label="Training steps (at most)"),
            Param("holdout", "float", "share of each class's polygons held back for early stopping (default 0.25)",
                  default=0.25, label="Share of polygons held back"),
            Param("edge", "int", "pixels left out along polygon edges (default 1)", default=1, minimum=0,
                  label="Pixels left out along edges"),
            Param("frozen", "flag", "keep the encoder frozen throughout", label="Keep the encoder frozen"),
            Param("distill", "float", "weight of the term keeping unlabelled pixels near the base model's output "
                  "(default 1; 0 = off)", label="Weight of staying near the base model"),
            Param("prior", "choice", "'scene': move the decision to the scene's water share estimated by EM "
                  "(default none)", choices=("none", "scene"), label="Water share correction"),
            Param("seed", "int", "random seed (default 0)", default=0, minimum=0, label="Random seed"),
            Param("threads", "int", "torch threads (default 1)", default=1, minimum=1, label="Torch threads"),
        ),
    ),
    Job(
        name="batch", task="", function="models.batch:batch_job", title="Map many scenes",
        help="map many scenes with Dask distributed (local cores or a cluster)",
        inputs=(
            Param("scenes", "scenes", "folders of rasters, raster files, CSV scene lists (columns name, s1, s2, "
                  "pre_event) or STAC item JSON with local asset hrefs", required=True, label="Scenes"),
        ),
        outputs=(
            Param("out", "output_folder", "output folder (one <scene>_<task>.tif per scene)", required=True,
                  label="Output folder", processing="OUTPUT"),
            Param("summary", "output_table", "summary CSV (default: OUT/batch_summary.csv)",
                  label="Summary table (CSV)"),
        ),
        options=(
            Param("task", "choice", "what each scene is mapped for (default flood)", default="flood",
                  choices=("flood", "land_cover"), label="Task"),
            Param("model", "model", "bundled model name or path to an .onnx file (default: the task's default)",
                  label="Model (bundled name or .onnx path; empty = the task's default)"),
            Param("polygons", "flag", "also write <scene>_<task>.gpkg class polygons",
                  label="Also write class polygons"),
            Param("statistics", "flag", "also write <scene>_<task>.csv areas per class",
                  label="Also write the area per class"),
            Param("scheduler", "text", "address of an existing Dask scheduler (default: a LocalCluster)",
                  label="Dask scheduler address (empty = this machine)"),
            Param("retries", "int", "re-runs of a scene whose task raised", default=2, minimum=0,
                  label="Retries per scene"),
            Param("resources", "texts", "Dask resources each scene needs, e.g. GPU=1",
                  label="Dask resources per scene (NAME=AMOUNT)"),
            *EXECUTION, WORKERS,
        ),
    ),
)  # fmt: skip


def job(name: str) -> Job:
    """The job called `name`: its CLI command name (map-floods) or its algorithm name (map_floods)."""
    for j in JOBS:
        if name in (j.name, j.algorithm):
            return j
    raise KeyError(name)
