"""Background tasks: a job of the dock runs through the launcher in QGIS's task manager; its outcome comes
back on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsTask

from ..progress import CANCELLED, DONE
from .engine_env import LOG_TAG
from .launcher import JobRequest, launch


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

    def _on_progress(self, fraction: float) -> None:
        """Engine progress (worker thread); QgsTask.setProgress is thread-safe."""
        self.outcome.progress.append(fraction)
        self.setProgress(100.0 * fraction)

    def run(self) -> bool:
        """Worker thread: no access to the project, layers or widgets here."""
        ended = launch(
            self.request, on_progress=self._on_progress, is_cancelled=self.isCanceled,
            on_command=lambda command: QgsMessageLog.logMessage(" ".join(command), LOG_TAG, Qgis.Info),
        )  # fmt: skip
        self.outcome.messages = ended.messages
        if ended.status == DONE:
            self.outcome.result = ended.result
            return True
        if ended.status == CANCELLED:
            # A clean stop is not a failure: returning False would make QGIS (3.22) announce "Task failed"
            # for any run longer than a few seconds, on top of the plugin's own "Cancelled". The outcome
            # carries the cancel; the task ends Complete.
            self.outcome.cancelled = True
            return True
        self.outcome.error = ended.message
        return False

    def finished(self, result: bool) -> None:  # noqa: ARG002 - the outcome carries the details
        """GUI thread, called once by the task manager (or by a test after `run()`)."""
        if self.outcome.result is None and self.outcome.error is None:
            # Cancelled before `run` started, or stopped by cancel.
            self.outcome.cancelled = True
        if self.outcome.cancelled:
            # QGIS reads the description for its own end-of-task notice after this call: say it was cancelled
            self.setDescription(f"{self.description()}: cancelled")
        self.outcome.done = True
        if self.on_done is not None:
            self.on_done(self)
