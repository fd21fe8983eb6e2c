"""A job request and its one engine run: the launcher every front end of the plugin starts jobs with.

The dock's tasks (tasks.py) and the Processing algorithms (algorithms.py) collect a `JobRequest` keyed by
the job table's parameter names (models/jobs.py) and hand it to `launch`, which checks that the engine is
installed, writes the job's small side files (polygons as GeoJSON, band-override VRTs) into a scratch
folder, runs `python -m contrasat <job> ... --progress json` out of QGIS's process (engine.py), passes on
progress and notes, cancels on request, and reports a crash with its last lines in the log panel. No
raster is read and no runtime module is imported here.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog

from ..progress import CANCELLED, DONE, ERROR, MESSAGE, PROGRESS
from .engine import EngineOutcome, job_command, run_engine, table_job
from .engine_env import LOG_TAG, engine_env, engine_python, training_hint
from .settings import RunSettings, cuda_refusal

NOT_INSTALLED = "the Contrasat engine is not installed: use Raster > Contrasat > Check dependencies…"


@dataclass
class BandOverride:
    """Read `bands` (1-based) of `source` in this order, named `names` (the model's band names)."""

    source: Path
    bands: list[int]
    names: list[str]


@dataclass
class JobRequest:
    """Everything one run needs, collected on the GUI thread (the worker touches no layer or widget)."""

    job: str  # a job of the table (models/jobs.py) by its algorithm name: map_floods, finetune, ...
    primary: Path | list[Path]  # the job's first input: S1 for map_floods, S2 for land_cover, the stack ...
    out: Path
    options: dict[str, Any] = field(default_factory=dict)  # other table parameters by name (s2, aoi, ...)
    layer_name: str = ""  # names the output layers
    settings: RunSettings | None = None
    overrides: dict[str, BandOverride] = field(default_factory=dict)  # 'primary' or an option key
    out_dir: Path | None = None  # the dock's output folder: where maps made after this job go

    def values(self) -> dict[str, Any]:
        """Every parameter of the request by its table name; ValueError for a name the job does not have."""
        job = table_job(self.job)
        values = {job.inputs[0].name: self.primary, "out": self.out, **self.options}
        unknown = set(values) - {p.name for p in job.params}
        if unknown:
            raise ValueError(f"{job.name} has no parameter {', '.join(sorted(unknown))}")
        return values


def trains(job: str) -> bool:
    """A job that trains a model (fine-tune): its main output is a model, and it needs torch in the engine.
    (Land cover may also save the classifier it fits, without torch: its main output is a map.)"""
    return table_job(job).outputs[0].kind == "output_model"


def write_geojson(doc: dict[str, Any], folder: Path, name: str) -> Path:
    """`<folder>/<name>.geojson` holding `doc`."""
    path = folder / f"{name}.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def write_aoi(aoi: tuple[dict[str, Any], str], folder: Path, name: str = "aoi") -> Path:
    """A drawn AOI (or any polygon input) as a GeoJSON file in its own CRS (the legacy `crs` member GDAL reads)."""
    geometry, crs = aoi
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs}},
        "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
    }
    return write_geojson(doc, folder, name)


def engine_values(request: JobRequest, scratch: Path) -> dict[str, Any]:
    """The request's parameters as the engine takes them: band overrides become VRTs, a polygon input
    given as (GeoJSON geometry, CRS) and labels given as a GeoJSON document become GeoJSON files; keyed by
    table name, ready for `job_command`."""
    values = request.values()
    job = table_job(request.job)
    for key, override in request.overrides.items():
        from .band_mapping import build_band_vrt  # QGIS's own GDAL writes a small XML file

        vrt = build_band_vrt(override.source, override.bands, override.names, scratch)
        values[job.inputs[0].name if key == "primary" else key] = vrt
    for param in job.params:
        value = values.get(param.name)
        if param.kind == "vector" and isinstance(value, tuple):
            values[param.name] = write_aoi(value, scratch, param.name)
        elif param.kind == "labels" and isinstance(value, dict):
            values[param.name] = write_geojson(value, scratch, param.name)
    return values


def request_command(request: JobRequest, scratch: Path, python: str | Path | None = None) -> list[str]:
    """The engine command line of a request (side files written into `scratch`)."""
    run = request.settings.to_cli() if request.settings is not None else {}
    return job_command(python or engine_python(), request.job, engine_values(request, scratch), run)


ARGPARSE_PREFIX = re.compile(r"\bargument (--[\w-]+)(?:/-\w+)?: ")
OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")


def user_words(message: str, job: str) -> str:
    """An engine message in the GUI's words: each command-line option of the job (`--tile`) becomes its
    form label ('Tile size (px)') and argparse's "argument --tile: " preamble goes, so no front end of the
    plugin shows a flag."""
    try:
        titles = {p.option: p.title for p in table_job(job).params}
    except (KeyError, ValueError):
        return message
    text = ARGPARSE_PREFIX.sub("", message)
    return OPTION.sub(lambda m: f"'{titles[m.group(0)]}'" if m.group(0) in titles else m.group(0), text)


def _reader(on_progress: Callable[[float], None], on_message: Callable[[str, str], None] | None):
    """The engine's progress events as calls: a fraction (0..1) to `on_progress`, a note's text and level
    ('info' or 'warning') to `on_message`."""

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == PROGRESS:
            try:
                fraction = min(max(float(event.get("fraction", 0.0)), 0.0), 1.0)
            except (TypeError, ValueError):
                return
            on_progress(fraction)
        elif event["event"] == MESSAGE and on_message is not None:
            on_message(str(event.get("text", "")), str(event.get("level", "info")))

    return on_event


def launch(
    request: JobRequest,
    *,
    on_progress: Callable[[float], None],
    on_message: Callable[[str, str], None] | None = None,
    on_command: Callable[[list[str]], None] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
) -> EngineOutcome:
    """Run `request` on the engine to its end (worker thread: no layer or widget is touched).

    Never raises for what the user can fix: an engine that is not installed, side files that cannot be
    written or a crash all come back as an outcome whose `message` is one text for the user.
    """
    python = engine_python()
    if not python.is_file():
        return EngineOutcome(ERROR, None, message=NOT_INSTALLED)
    refusal = cuda_refusal(request.settings)
    if refusal is not None:
        return EngineOutcome(ERROR, None, message=refusal)
    scratch = Path(tempfile.mkdtemp(prefix="contrasat_"))  # side files live only for the run
    try:
        command = request_command(request, scratch, python)
        if on_command is not None:
            on_command(command)
        on_event = _reader(on_progress, on_message)
        ended = run_engine(command, engine_env(), on_event=on_event, is_cancelled=is_cancelled)
    except (OSError, ValueError) as exc:
        return EngineOutcome(ERROR, None, message=f"cannot prepare the job: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if ended.status not in (DONE, CANCELLED):
        ended.message = user_words(ended.message, request.job)
        if trains(request.job):  # a job that writes a model needs torch, which the runtime pins lack
            ended.message = training_hint(ended.message, python)
        if ended.tail:
            QgsMessageLog.logMessage("\n".join(ended.tail), LOG_TAG, Qgis.Warning)
    return ended
