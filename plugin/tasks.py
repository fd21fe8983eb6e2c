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

from .engine import run_engine
from .engine_env import engine_env, engine_python
from .settings import RunSettings

LOG_TAG = "Contrasat"
JOBS = ("map_floods", "land_cover", "classify_series")
OUTPUT_KEYS = ("probabilities", "polygons", "statistics")


@dataclass
class BandOverride:
    """Read `bands` (1-based) of `source` in this order, named `names` (the model's band names)."""

    source: Path
    bands: list[int]
    names: list[str]


@dataclass
class JobRequest:
    """Everything one run needs, collected on the GUI thread (the worker touches no layer or widget)."""

    job: str  # one of JOBS
    primary: Path | list[Path]  # S1 for map_floods, S2 for land_cover, the stack for classify_series
    out: Path
    options: dict[str, Any] = field(default_factory=dict)  # s1/s2/pre_event/aoi/model/outputs/dates
    layer_name: str = ""  # names the output layers
    settings: RunSettings | None = None
    overrides: dict[str, BandOverride] = field(default_factory=dict)  # 'primary' or an option key

    def outputs(self) -> list[Path]:
        """Every file the job may write."""
        return [self.out] + [Path(self.options[k]) for k in OUTPUT_KEYS if self.options.get(k)]


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


def write_aoi(aoi: tuple[dict[str, Any], str], folder: Path) -> Path:
    """The drawn AOI as a GeoJSON file in its own CRS (named in the legacy `crs` member GDAL reads)."""
    geometry, crs = aoi
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs}},
        "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
    }
    path = folder / "aoi.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def engine_arguments(request: JobRequest, scratch: Path) -> tuple[Path | list[Path], dict[str, Any]]:
    """Inputs as files the engine opens: band overrides become VRTs, a drawn AOI a GeoJSON file."""
    options = dict(request.options)
    primary = request.primary
    for key, override in request.overrides.items():
        from .band_mapping import build_band_vrt  # QGIS's own GDAL writes a small XML file

        vrt = build_band_vrt(override.source, override.bands, override.names, scratch)
        if key == "primary":
            primary = vrt
        else:
            options[key] = vrt
    if isinstance(options.get("aoi"), tuple):
        options["aoi"] = write_aoi(options["aoi"], scratch)
    return primary, options


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
        from .engine import job_command

        primary, options = engine_arguments(self.request, scratch)
        run = self.request.settings.to_cli() if self.request.settings is not None else {}
        return job_command(engine_python(), self.request.job, primary, self.request.out, options, run)

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
        except OSError as exc:
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
