"""Background tasks: run a runtime job off the GUI thread and hand its outcome back on the GUI thread."""

from __future__ import annotations

import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..models.errors import Cancelled, ContrasatError
from .settings import RunSettings

LOG_TAG = "Contrasat"
JOBS = ("map_floods", "land_cover", "classify_series")
OUTPUT_KEYS = ("probabilities", "polygons", "statistics")


def load_job(job: str) -> Callable[..., Any]:
    """The runtime function of `job`, imported on first use.

    Importing it pulls in onnxruntime and rasterio; doing that only when a job runs keeps QGIS start-up
    fast and lets the plugin load (and explain the problem) when those packages are missing.
    """
    if job == "map_floods":
        from ..models.pipeline import map_floods

        return map_floods
    if job == "land_cover":
        from ..models.pipeline import land_cover

        return land_cover
    if job == "classify_series":
        from ..models.series import classify_series

        return classify_series
    raise ValueError(f"unknown job {job!r}")


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
    result: Any = None  # models.pipeline.JobResult on success
    error: str | None = None  # one-line message for the user
    cancelled: bool = False
    progress: list[float] = field(default_factory=list)  # fractions reported by the runtime

    @property
    def succeeded(self) -> bool:
        return self.done and self.result is not None


class JobTask(QgsTask):
    """Runs one runtime job in QGIS's task manager; `on_done(task)` is called on the GUI thread."""

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

    def _report_progress(self, fraction: float) -> None:
        """Progress callback given to the runtime (worker thread); QgsTask.setProgress is thread-safe."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.outcome.progress.append(fraction)
        self.setProgress(100.0 * fraction)

    def _call(self, scratch: Path) -> Any:
        request = self.request
        function = load_job(request.job)
        options = dict(request.options)
        primary = request.primary
        for key, override in request.overrides.items():
            from .band_mapping import build_band_vrt  # GDAL: imported where it is needed

            vrt = build_band_vrt(override.source, override.bands, override.names, scratch)
            if key == "primary":
                primary = vrt
            else:
                options[key] = vrt
        if request.settings is not None:
            options["config"] = request.settings.to_config()
        return function(
            primary, request.out, progress=self._report_progress, is_cancelled=self.isCanceled, **options
        )

    def run(self) -> bool:
        """Worker thread: no access to the project, layers or widgets here."""
        scratch = Path(tempfile.mkdtemp(prefix="contrasat_"))  # band-override VRTs live only for the run
        try:
            result = self._call(scratch)
        except Cancelled:
            self.outcome.cancelled = True
            return False
        except ContrasatError as exc:
            self.outcome.error = str(exc) or type(exc).__name__
            return False
        except ImportError as exc:
            self.outcome.error = (
                f"the Contrasat runtime cannot be loaded ({exc}); use Contrasat > Check dependencies"
            )
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return False
        except Exception as exc:  # an unexpected bug must reach the user, not kill the task manager thread
            self.outcome.error = f"unexpected error: {type(exc).__name__}: {exc}"
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return False
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if self.isCanceled():
            # Cancel pressed after the last batch: the user asked for nothing, so leave nothing behind.
            remove_outputs(result)
            self.outcome.cancelled = True
            return False
        self.outcome.result = result
        return True

    def finished(self, result: bool) -> None:  # noqa: ARG002 - the outcome carries the details
        """GUI thread, called once by the task manager (or by a test after `run()`)."""
        if self.outcome.result is None and self.outcome.error is None:
            # Cancelled before `run` started, or the runtime stopped without raising.
            self.outcome.cancelled = True
        self.outcome.done = True
        if self.on_done is not None:
            self.on_done(self)


class MapFloodsTask(JobTask):
    """`map_floods(s1, out, model=...)` as a task: the short form used by the Map floods action."""

    def __init__(
        self,
        description: str,
        s1: str | Path,
        out: str | Path,
        *,
        model: str | Path | None = None,
        layer_name: str = "",
        on_done: Callable[[JobTask], None] | None = None,
    ) -> None:
        options = {"model": model} if model is not None else {}
        request = JobRequest("map_floods", Path(s1), Path(out), options, layer_name or Path(s1).stem)
        super().__init__(description, request, on_done)


def remove_outputs(result: Any) -> None:
    """Delete the files a completed job wrote (used when the job was cancelled at the very end)."""
    for attr in ("output", "probabilities", "polygons", "statistics"):
        path = getattr(result, attr, None)
        if path:
            Path(path).unlink(missing_ok=True)
