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

from .output_set import FORMAT_NAMES


@dataclass(frozen=True)
class Param:
    """One parameter of a job; `name` is the keyword of the runtime function and the CLI option."""

    name: str
    kind: (
        str  # raster, rasters, vector, labels, field, model, output_raster, output_vector, output_table, output_model,
        # dates, int, choice
    )
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    multiple_of: int | None = None
    label: str = ""  # short title for forms (Processing dialogs); the name when empty
    processing: str = ""  # Processing parameter name when it predates the table (e.g. INPUT_S1)
    execution: bool = False  # an execution setting: front ends may fill it from their saved settings

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

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
    function: str  # "module:function" inside contrasat.models
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
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


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
    "tile size in pixels, a multiple of 16 (default: model card)",
    minimum=16,
    multiple_of=16,
    label="Tile size (px)",
    execution=True,
)
OVERLAP = Param(
    "overlap",
    "int",
    "tile overlap in pixels (default: model card)",
    minimum=0,
    label="Tile overlap (px)",
    execution=True,
)
BATCH = Param(
    "batch",
    "int",
    "tiles per inference batch",
    default=4,
    minimum=1,
    label="Tiles per batch",
    execution=True,
)
PROVIDER = Param(
    "provider",
    "choice",
    "ONNX Runtime execution provider",
    default="auto",
    choices=("auto", "cuda", "cpu"),
    label="Execution provider",
    execution=True,
)
THREADS = Param(
    "threads",
    "int",
    "ONNX Runtime threads (0: its default; capped at the number of cores)",
    default=0,
    minimum=0,
    label="Threads",
    execution=True,
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
MIN_POLYGON = Param(
    "min_polygon",
    "int",
    "class polygons: regions smaller than this many pixels are merged into their largest neighbour in the "
    "polygon file only (speckle); the raster and the statistics keep every pixel",
    default=9,  # 3 x 3 px, 0.09 ha at 10 m: smaller regions of a per-pixel SAR map are mostly speckle
    minimum=1,
    label="Smallest polygon (px)",
)
TILED_OPTIONS = (AOI, MODEL, OVERLAP, BATCH, TILE, PROVIDER, THREADS, DEVICE_ID, MIN_POLYGON)

JOBS: tuple[Job, ...] = (
    Job(
        name="map-floods", task="flood", function="pipeline:map_floods", title="Map floods",
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
        name="land-cover", task="land_cover", function="pipeline:land_cover", title="Land cover",
        help="land-cover map from Sentinel-2 (optionally with Sentinel-1)",
        inputs=(
            Param("s2", "raster", "Sentinel-2 raster: bands found by description (B01..B12, B8A), else all 13 L1C "
                  "bands or 12 L2A bands in order; L2A (no B10) works only with models that do not need B10 "
                  "(see `contrasat models`)", required=True, label="Sentinel-2 raster", processing="INPUT_S2"),
            Param("s1", "raster", "Sentinel-1 raster (for fusion models)", label="Sentinel-1 raster",
                  processing="INPUT_S1"),
            Param("labels", "labels", "training polygons or points in your own classes (any CRS): a classifier "
                  "is fitted on the pre-trained encoders' features and maps your classes (the model, if given, "
                  "must then be a feature extractor)", label="Training labels (polygons or points)"),
            Param("field", "field", "class field of the training labels: class names or integer codes "
                  "(default: class); a color/colour field of hex colours styles the classes",
                  label="Class field"),
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
        name="classify-series", task="pixel_timeseries", function="series:classify_series",
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
            Param("tile", "int", "pixel block side, a multiple of 16 (default 64)", minimum=16, multiple_of=16,
                  label="Pixel block side (px)", execution=True),
            PROVIDER, THREADS, DEVICE_ID,
        ),
    ),
)  # fmt: skip


def job(name: str) -> Job:
    """The job called `name`: its CLI command name (map-floods) or its algorithm name (map_floods)."""
    for j in JOBS:
        if name in (j.name, j.algorithm):
            return j
    raise KeyError(name)
