"""Background tasks: run a runtime job off the GUI thread and hand its outcome back on the GUI thread."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..models.errors import Cancelled, ContrasatError

LOG_TAG = "Contrasat"


def load_map_floods() -> Callable[..., Any]:
    """The runtime's `map_floods`, imported on first use.

    Importing it pulls in onnxruntime and rasterio; doing that only when a job runs keeps QGIS start-up
    fast and lets the plugin load (and explain the problem) when those packages are missing.
    """
    from ..models.pipeline import map_floods

    return map_floods


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


class MapFloodsTask(QgsTask):
    """Runs `map_floods(s1, out)` in QGIS's task manager; `on_done(task)` is called on the GUI thread."""

    def __init__(
        self,
        description: str,
        s1: str | Path,
        out: str | Path,
        *,
        model: str | Path | None = None,
        layer_name: str = "",
        on_done: Callable[[MapFloodsTask], None] | None = None,
    ) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self.s1 = Path(s1)
        self.out = Path(out)
        self.model = model
        self.layer_name = layer_name or self.s1.stem  # names the output layer
        self.on_done = on_done
        self.outcome = TaskOutcome()

    def _report_progress(self, fraction: float) -> None:
        """Progress callback given to the runtime (worker thread); QgsTask.setProgress is thread-safe."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.outcome.progress.append(fraction)
        self.setProgress(100.0 * fraction)

    def run(self) -> bool:
        """Worker thread: no access to the project, layers or widgets here."""
        try:
            map_floods = load_map_floods()
            result = map_floods(
                self.s1,
                self.out,
                model=self.model,
                progress=self._report_progress,
                is_cancelled=self.isCanceled,
            )
        except Cancelled:
            self.outcome.cancelled = True
            return False
        except ContrasatError as exc:
            self.outcome.error = str(exc) or type(exc).__name__
            return False
        except ImportError as exc:
            self.outcome.error = (
                f"the Contrasat runtime cannot be loaded ({exc}); check numpy, rasterio, onnx and onnxruntime"
            )
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return False
        except Exception as exc:  # an unexpected bug must reach the user, not kill the task manager thread
            self.outcome.error = f"unexpected error: {type(exc).__name__}: {exc}"
            QgsMessageLog.logMessage(traceback.format_exc(), LOG_TAG, Qgis.Critical)
            return False
        if self.isCanceled():
            # Cancel pressed after the last batch: the user asked for nothing, so leave nothing behind.
            _remove_outputs(result)
            self.outcome.cancelled = True
            return False
        self.outcome.result = result
        return True

    def finished(self, result: bool) -> None:  # noqa: ARG002 - the outcome carries the details
        """GUI thread, called once by the task manager (or by a test after `run()`)."""
        if not self.outcome.succeeded and self.outcome.error is None:
            # Cancelled before `run` started, or the runtime stopped without raising.
            self.outcome.cancelled = True
        self.outcome.done = True
        if self.on_done is not None:
            self.on_done(self)


def _remove_outputs(result: Any) -> None:
    """Delete the files a completed job wrote (used when the job was cancelled at the very end)."""
    for attr in ("output", "probabilities", "polygons"):
        path = getattr(result, attr, None)
        if path:
            Path(path).unlink(missing_ok=True)
