"""The jobs Contrasat runs, as data: name, inputs, outputs, options and defaults.

One table for every front end: the CLI builds its commands from it, and the QGIS plugin can build its
Processing algorithms and dock panels from it, so a job's parameters are named and explained once.
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
        str  # raster, rasters, vector, model, output_raster, output_vector, output_table, dates, int, choice
    )
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    multiple_of: int | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_output(self) -> bool:
        return self.kind.startswith("output_")


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

    @property
    def params(self) -> tuple[Param, ...]:
        return self.inputs + self.outputs + self.options

    def runner(self) -> Callable[..., Any]:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


AOI = Param(
    "aoi", "vector", "polygon file (GeoJSON, GeoPackage, ...) in any CRS; invalid polygons are repaired"
)
MODEL = Param("model", "model", "bundled model name or path to an .onnx file with a Contrasat card")
PROBABILITIES = Param(
    "probabilities", "output_raster", f"also write float32 class probabilities ({FORMAT_NAMES['raster']})"
)
POLYGONS = Param(
    "polygons", "output_vector", f"also write class polygons with true area ({FORMAT_NAMES['vector']})"
)
STATISTICS = Param(
    "statistics", "output_table", f"also write the true area per class ({FORMAT_NAMES['table']})"
)
TILE = Param(
    "tile", "int", "tile size in pixels, a multiple of 16 (default: model card)", minimum=16, multiple_of=16
)
OVERLAP = Param("overlap", "int", "tile overlap in pixels (default: model card)", minimum=0)
BATCH = Param("batch", "int", "tiles per inference batch", default=4, minimum=1)
PROVIDER = Param(
    "provider", "choice", "ONNX Runtime execution provider", default="auto", choices=("auto", "cuda", "cpu")
)
THREADS = Param(
    "threads",
    "int",
    "ONNX Runtime threads (0: its default; capped at the number of cores)",
    default=0,
    minimum=0,
)
TILED_OPTIONS = (AOI, MODEL, OVERLAP, BATCH, TILE, PROVIDER, THREADS)

JOBS: tuple[Job, ...] = (
    Job(
        name="map-floods", task="flood", function="pipeline:map_floods",
        help="flood map from Sentinel-1 (optionally with Sentinel-2)",
        inputs=(
            Param("s1", "raster", "Sentinel-1 raster [VV, VH]: calibrated sigma0 in dB, linear power or amplitude "
                  "(detected, converted with a note); HH/HV or uncalibrated DN are refused", required=True),
            Param("s2", "raster", "Sentinel-2 raster (for fusion models)"),
            Param("pre_event", "raster", "Sentinel-1 raster before the event: separates new flood water (1) from "
                  "permanent water (2)"),
        ),
        outputs=(
            Param("out", "output_raster", "output class GeoTIFF (0 dry, 1 water, 255 nodata)", required=True),
            PROBABILITIES, POLYGONS, STATISTICS,
        ),
        options=TILED_OPTIONS,
    ),
    Job(
        name="land-cover", task="land_cover", function="pipeline:land_cover",
        help="land-cover map from Sentinel-2 (optionally with Sentinel-1)",
        inputs=(
            Param("s2", "raster", "Sentinel-2 raster: bands found by description (B01..B12, B8A), else all 13 L1C "
                  "bands or 12 L2A bands in order; L2A (no B10) works only with models that do not need B10 "
                  "(see `contrasat models`)", required=True),
            Param("s1", "raster", "Sentinel-1 raster (for fusion models)"),
        ),
        outputs=(
            Param("out", "output_raster", "output class GeoTIFF (classes of the model card)", required=True),
            PROBABILITIES, POLYGONS, STATISTICS,
        ),
        options=TILED_OPTIONS,
    ),
    Job(
        name="classify-series", task="pixel_timeseries", function="series:classify_series",
        help="land cover from a multi-date S2 stack (pixel time series)",
        inputs=(
            Param("stack", "rasters", "single-date S2 (or index) rasters dated by name/tag, or one raster with one "
                  "index band per date (a vegetation index such as NDVI, -1..1)", required=True),
            Param("dates", "dates", "YYYY-MM-DD per raster, or per band of a one-file stack"),
        ),
        outputs=(Param("out", "output_raster", "output class GeoTIFF (card classes, 255 nodata)", required=True),),
        options=(
            AOI, MODEL,
            Param("tile", "int", "pixel block side, a multiple of 16 (default 64)", minimum=16, multiple_of=16),
            PROVIDER, THREADS,
        ),
    ),
)  # fmt: skip


def job(name: str) -> Job:
    """The job called `name` (its CLI command name)."""
    for j in JOBS:
        if j.name == name:
            return j
    raise KeyError(name)
