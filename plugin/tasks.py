"""Background tasks: a job runs as an engine process; its outcome comes back on the GUI thread.

The task thread only writes the job's small side files (AOI GeoJSON, band-override VRTs) and watches the
engine process; no raster is read and no runtime module is imported in QGIS's process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from .engine import run_engine, table_job
from .engine_env import engine_env, engine_python
from .settings import RunSettings

LOG_TAG = "Contrasat"


@dataclass
class BandOverride:
    """Read `bands` (1-based) of `source` in this order, named `names` (the model's band names)."""

    source: Path
    bands: list[int]
    names: list[str]


@dataclass
class JobRequest:
    """Everything one run needs, collected on the GUI thread (the worker touches no layer or widget)."""

    job: str  # a job of the table (models/jobs.py) by its algorithm name: map_floods, land_cover, ...
    primary: Path | list[Path]  # the job's first input: S1 for map_floods, S2 for land_cover, the stack ...
    out: Path
    options: dict[str, Any] = field(
        default_factory=dict
    )  # other table parameters by name (s2, aoi, model, ...)
    layer_name: str = ""  # names the output layers
    settings: RunSettings | None = None
    overrides: dict[str, BandOverride] = field(default_factory=dict)  # 'primary' or an option key

    def values(self) -> dict[str, Any]:
        """Every parameter of the request by its table name; ValueError for a name the job does not have."""
        job = table_job(self.job)
        values = {job.inputs[0].name: self.primary, "out": self.out, **self.options}
        unknown = set(values) - {p.name for p in job.params}
        if unknown:
            raise ValueError(f"{job.name} has no parameter {', '.join(sorted(unknown))}")
        return values

    def outputs(self) -> list[Path]:
        """Every file the job may write."""
        job = table_job(self.job)
        extra = [
            Path(self.options[p.name]) for p in job.outputs if p.name != "out" and self.options.get(p.name)
        ]
        return [self.out, *extra]


@dataclass
class TaskOutcome:
    """What a finished job left behind. Held apart from the QgsTask so it survives the task's deletion."""

    done: bool = False
    result: dict[str, Any] | None = None  # the engine's job summary on success
    error: str | None = None  # message for the user
    cancelled: bool = False
    progress: list[float] = field(default_factory=list)  # fractions reported by the engine
    messages: list[dict[str, Any]] = field(default_factory=list)  # the engine's info/warning events

    @property
    def succeeded(self) -> bool:
        return self.done and self.result is not None


def write_aoi(aoi: tuple[dict[str, Any], str], folder: Path, name: str = "aoi") -> Path:
    """A drawn AOI (or any polygon input) as a GeoJSON file in its own CRS (the legacy `crs` member GDAL reads)."""
    geometry, crs = aoi
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs}},
        "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
    }
    path = folder / f"{name}.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def engine_values(request: JobRequest, scratch: Path) -> dict[str, Any]:
    """The request's parameters as the engine takes them: band overrides become VRTs, a polygon input
    given as (GeoJSON geometry, CRS) a GeoJSON file; keyed by table name, ready for `job_command`."""
    values = request.values()
    job = table_job(request.job)
    for key, override in request.overrides.items():
        from .band_mapping import build_band_vrt  # QGIS's own GDAL writes a small XML file

        vrt = build_band_vrt(override.source, override.bands, override.names, scratch)
        values[job.inputs[0].name if key == "primary" else key] = vrt
    for param in job.params:
        if param.kind == "vector" and isinstance(values.get(param.name), tuple):
            values[param.name] = write_aoi(values[param.name], scratch, param.name)
    return values


def request_command(request: JobRequest, scratch: Path, python: str | Path | None = None) -> list[str]:
    """The engine command line of a request (side files written into `scratch`): the dock's tasks and the
    Processing algorithms both start their jobs with it."""
    from .engine import job_command

    run = request.settings.to_cli() if request.settings is not None else {}
    return job_command(python or engine_python(), request.job, engine_values(request, scratch), run)


class JobTask(QgsTask):
    """Runs one job on the engine in QGIS's task manager; `on_done(task)` is called on the GUI thread."""

    def __init__(
        self,
        description: str,
        request: JobRequest,
        on_done: Callable[[JobTask], None] | None = None,
    ) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self.request = request
        primary = request.primary if isinstance(request.primary, Path) else None
        self.layer_name = request.layer_name or (primary.stem if primary else request.out.stem)
        self.on_done = on_done
        self.outcome = TaskOutcome()

    def _on_event(self, event: dict[str, Any]) -> None:
        """Engine progress (worker thread); QgsTask.setProgress is thread-safe."""
        if event.get("event") == "progress":
            try:
                fraction = min(max(float(event.get("fraction", 0.0)), 0.0), 1.0)
            except (TypeError, ValueError):
                return
            self.outcome.progress.append(fraction)
            self.setProgress(100.0 * fraction)

    def command(self, scratch: Path) -> list[str]:
        """The engine command line of this job (side files written into `scratch`)."""
        return request_command(self.request, scratch)

    def run(self) -> bool:
        """Worker thread: no access to the project, layers or widgets here."""
        scratch = Path(tempfile.mkdtemp(prefix="contrasat_"))  # AOI file and band VRTs live only for the run
        try:
            python = engine_python()
            if not python.is_file():
                self.outcome.error = (
                    "the Contrasat engine is not installed: use Raster > Contrasat > Check dependencies…"
                )
                return False
            command = self.command(scratch)
            QgsMessageLog.logMessage(" ".join(command), LOG_TAG, Qgis.Info)
            ended = run_engine(command, engine_env(), on_event=self._on_event, is_cancelled=self.isCanceled)
        except (OSError, ValueError) as exc:
            self.outcome.error = f"cannot prepare the job: {exc}"
            return False
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.outcome.messages = ended.messages
        if ended.status == "done":
            self.outcome.result = ended.result
            return True
        if ended.status == "cancelled":
            self.outcome.cancelled = True
            return False
        self.outcome.error = ended.message
        if ended.tail:
            QgsMessageLog.logMessage("\n".join(ended.tail), LOG_TAG, Qgis.Warning)
        return False

    def finished(self, result: bool) -> None:  # noqa: ARG002 - the outcome carries the details
        """GUI thread, called once by the task manager (or by a test after `run()`)."""
        if self.outcome.result is None and self.outcome.error is None:
            # Cancelled before `run` started, or stopped by cancel.
            self.outcome.cancelled = True
        self.outcome.done = True
        if self.on_done is not None:
            self.on_done(self)
