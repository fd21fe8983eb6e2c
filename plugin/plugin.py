"""The QGIS plugin object: actions, menu and toolbar entries, the dock, the Processing provider and jobs.

Kept thin on purpose: it collects inputs, starts an engine process (tasks.py) and shows the outcome. All
computation runs in `python -m contrasat` on the plugin's own environment, never in QGIS's process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsMapLayer,
    QgsMessageLog,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
)
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDialog, QProgressBar, QPushButton, QToolBar

from ..models import jobs
from .deps_dialog import open_help
from .engine_env import LOG_TAG, EngineCheckTask, EngineStatus, last_status
from .finetune_job import FINETUNE_JOB, FINETUNE_TITLE, map_requests
from .launcher import JobRequest, trains
from .map_floods_dialog import MapFloodsDialog
from .paths import layer_file_path, normalise_output_path, release_output, reserve_output
from .results import add_result_layers, summary_from_engine, summary_text, write_area_csv
from .settings import load_settings
from .tasks import JobTask

if TYPE_CHECKING:
    from .dock import ContrasatDock
    from .processing_provider import ContrasatProvider

PLUGIN_DIR = Path(__file__).resolve().parent.parent
ICONS = PLUGIN_DIR / "resources" / "icons"
MESSAGE_SECONDS = 10  # success/info messages fade; critical ones stay until dismissed (0)
JOB_NAMES = {job.algorithm: job.display_name for job in jobs.JOBS} | {FINETUNE_JOB: FINETUNE_TITLE}
OUTPUT_PROPERTY = "contrasat/output"  # set on every layer the plugin adds: never offered as an input


class ContrasatPlugin:
    """Created by `classFactory(iface)`; QGIS calls `initGui` on load and `unload` on unload/reload.

    qgis_process creates it with no interface and calls only `initProcessing`.
    """

    MENU = "&Contrasat"

    def __init__(self, iface: QgisInterface | None) -> None:
        self.iface = iface
        self.toolbar: QToolBar | None = None
        self.map_floods_action: QAction | None = None
        self.actions: list[QAction] = []
        self.named_actions: dict[str, QAction] = {}
        self.dock: ContrasatDock | None = None
        self.provider: ContrasatProvider | None = None
        # Python must keep running tasks referenced, or their wrappers can be collected mid-run.
        self._tasks: set[QgsTask] = set()
        self._progress_items: dict[int, Any] = {}
        self._follow_ups: dict[int, list[JobRequest]] = {}  # jobs to start once a task has succeeded

    # ---- QGIS entry points -------------------------------------------------------------------------

    def initProcessing(self) -> None:  # noqa: N802 - name fixed by QGIS
        """Register the `contrasat` Processing provider (GUI and qgis_process)."""
        if self.provider is not None:
            return
        from .processing_provider import ContrasatProvider

        self.provider = ContrasatProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - name fixed by QGIS
        """Toolbar, Raster menu entries, the (hidden) dock and the Processing provider."""
        self.initProcessing()
        self.toolbar = self.iface.addToolBar("Contrasat")
        self.toolbar.setObjectName("ContrasatToolbar")  # lets QGIS restore its position between sessions
        self.map_floods_action = self._add_action(
            "MapFloods", QIcon(str(ICONS / "contrasat.svg")), "Map floods",
            "Map flood water in a Sentinel-1 raster layer with the bundled model",
            self.show_map_floods_dialog, toolbar=True,
        )  # fmt: skip
        panel = self._add_action(
            "Panel", QIcon(str(ICONS / "panel.svg")), "Contrasat panel",
            "Flood, land-cover and time-series jobs with an AOI, band mapping and model cards",
            self.toggle_dock, toolbar=True,
        )  # fmt: skip
        panel.setCheckable(True)
        self._add_action(
            "LandCover", QIcon(str(ICONS / "panel.svg")), "Land cover…",
            "Map land cover from a Sentinel-2 layer, optionally inside an AOI drawn on the map",
            lambda: self.show_dock("land_cover"),
        )  # fmt: skip
        self._add_action(
            "ClassifySeries", QIcon(), "Classify selected layers as a time series",
            "Classify the Sentinel-2 layers selected in the Layers panel from their time series",
            self.classify_selected_layers,
        )  # fmt: skip
        self._add_action(
            "Settings", QIcon(), "Settings…", "Execution provider, threads, tiling and the engine's Python",
            self.show_settings,
        )  # fmt: skip
        self._add_action(
            "Dependencies", QIcon(), "Check dependencies…",
            "Check (by running it) the Python environment Contrasat's jobs run in, and install it",
            lambda: self.check_dependencies(quiet=False),
        )  # fmt: skip
        self._add_action(
            "Help", QIcon(), "Help…", "The Contrasat guide for QGIS (shipped with the plugin)", open_help
        )
        self.check_dependencies(quiet=True)

    def _add_action(
        self, name: str, icon: QIcon, text: str, tip: str, slot: Any, *, toolbar: bool = False
    ) -> QAction:
        action = QAction(icon, text, self.iface.mainWindow())
        action.setObjectName(f"Contrasat{name}")
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda *_: slot())
        if toolbar:
            self.toolbar.addAction(action)
        self.iface.addPluginToRasterMenu(self.MENU, action)
        self.actions.append(action)
        self.named_actions[name] = action
        return action

    def unload(self) -> None:
        """Remove every action, menu entry, the dock, the toolbar and the provider; stop running jobs."""
        for task in list(self._tasks):
            task.on_done = None  # the iface may be gone by the time the task finishes
            task.cancel()
            if isinstance(task, JobTask):
                release_output(task.request.out)
        self._tasks.clear()
        self._follow_ups.clear()
        for item in self._progress_items.values():
            self.iface.messageBar().popWidget(item)
        self._progress_items.clear()
        if self.dock is not None:
            self.dock.cleanup()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        for action in self.actions:
            self.iface.removePluginRasterMenu(self.MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions.clear()
        self.named_actions.clear()
        self.map_floods_action = None
        if self.toolbar is not None:
            # `del self.toolbar` would leave the C++ toolbar (owned by the main window) on screen.
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    # ---- dock, settings, dependencies --------------------------------------------------------------

    def ensure_dock(self) -> ContrasatDock:
        """The dock, created on first use."""
        if self.dock is None:
            from .dock import ContrasatDock

            self.dock = ContrasatDock(self.iface, self.start_job, self.iface.mainWindow())
            self.dock.installRequested.connect(lambda: self.check_dependencies(quiet=False))
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            panel = self.named_actions.get("Panel")
            if panel is not None:
                self.dock.visibilityChanged.connect(panel.setChecked)
            status = last_status()
            if status is not None:
                self.dock.set_engine_status(status)
        return self.dock

    def show_dock(self, job: str | None = None) -> ContrasatDock:
        dock = self.ensure_dock()
        if job in dock.panels:
            dock.tabs.setCurrentWidget(dock.panels[job])
        dock.show()
        dock.raise_()
        return dock

    def toggle_dock(self) -> None:
        if self.dock is not None and not self.dock.isHidden():
            self.dock.hide()
        else:
            self.show_dock()

    def classify_selected_layers(self, layers: list[QgsMapLayer] | None = None) -> JobTask | None:
        """Run the time-series job on `layers` (default: raster layers selected in the Layers panel)."""
        dock = self.show_dock("classify_series")
        panel = dock.panels["classify_series"]
        if layers is None:
            view = self.iface.layerTreeView()
            layers = view.selectedLayers() if view is not None else []
        rasters = [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer)]
        if not rasters:
            self._critical("select the Sentinel-2 layers of the series in the Layers panel first")
            return None
        panel.set_checked(rasters)
        return dock.run_panel(panel)

    def show_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.iface.mainWindow())
        try:
            dialog.exec_()
        finally:
            dialog.deleteLater()

    def check_dependencies(self, *, quiet: bool) -> EngineCheckTask:
        """Check the engine by running a real job in it, in the background (QGIS stays usable). `quiet` (on
        load): a message bar hint only; otherwise the installer opens when the check fails."""

        def done(status: EngineStatus) -> None:
            self._engine_checked(status, quiet=quiet)
            if not quiet and not status.ok:
                self.show_dependency_dialog(status)

        task = EngineCheckTask(done)
        self._tasks.add(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def _engine_checked(self, status: EngineStatus, quiet: bool = True) -> None:
        self._tasks = {t for t in self._tasks if not isinstance(t, EngineCheckTask)}
        if self.dock is not None:
            self.dock.set_engine_status(status)
        if status.ok:
            if not quiet:
                self.iface.messageBar().pushMessage("Contrasat", status.message, Qgis.Success, 5)
        elif quiet:
            # On load a dialog would interrupt QGIS start-up; the menu entry opens it on demand.
            hint = "The Contrasat engine is not installed yet: Raster > Contrasat > Check dependencies… installs it."
            self.iface.messageBar().pushMessage("Contrasat", hint, Qgis.Info, MESSAGE_SECONDS)

    def show_dependency_dialog(self, status: EngineStatus | None = None) -> Any:
        """The installer, without blocking QGIS (the one already open is raised instead of a second)."""
        from .deps_dialog import open_installer

        dialog = open_installer(status, self.iface.mainWindow())
        dialog.started.connect(self._follow_install)
        return dialog

    def _follow_install(self, task: QgsTask) -> None:
        """Keep the installer referenced and make the dock usable as soon as it has passed its check."""
        self._tasks.add(task)

        def ended(ok: bool) -> None:
            self._tasks.discard(task)
            if task.status is not None:
                self._engine_checked(task.status, quiet=False)
            elif not ok:
                self._critical(f"the engine was not installed: {task.error or 'cancelled'}")

        task.taskCompleted.connect(lambda: ended(True))
        task.taskTerminated.connect(lambda: ended(False))

    # ---- jobs ---------------------------------------------------------------------------------------

    def show_map_floods_dialog(self) -> None:
        """Ask for the input layer and output path, then start the job."""
        dialog = MapFloodsDialog(self.iface.activeLayer(), self.iface.mainWindow())
        try:
            if dialog.exec_() != QDialog.Accepted:
                return
            layer, out_path = dialog.selected_layer(), dialog.output_path()
        finally:
            dialog.deleteLater()  # parented to the main window: would otherwise live until QGIS exits
        if layer is not None and out_path is not None:
            self.run_map_floods(layer, out_path)

    def run_map_floods(
        self, layer: QgsMapLayer, out_path: str | Path, *, model: str | Path | None = None
    ) -> JobTask | None:
        """Start mapping floods in `layer` into `out_path` on the engine (the Map floods action).

        `model` is a bundled model name or an .onnx path; None uses the default flood model.
        Returns the queued task (its `outcome` tells tests when and how it ended), or None when the
        inputs were rejected before starting (a critical message explains why).
        """
        source = layer_file_path(layer)
        if source is None:
            name = layer.name() if layer is not None else "?"
            self._critical(f"'{name}' is not a raster file that Contrasat can read")
            return None
        out = normalise_output_path(out_path)
        options: dict[str, Any] = {"statistics": out.with_name(f"{out.stem}_areas.csv")}
        if model is not None:
            options["model"] = model
        request = JobRequest("map_floods", source, out, options, layer.name(), load_settings())
        return self.start_job(request)

    def start_job(self, request: JobRequest) -> JobTask | None:
        """Queue `request` in QGIS's task manager; None (with a message) when its folder cannot be made."""
        try:
            request.out.parent.mkdir(parents=True, exist_ok=True)  # the default folder may not exist yet
        except OSError as exc:
            self._critical(f"cannot create the output folder {request.out.parent}: {exc.strerror}")
            return None
        title = JOB_NAMES.get(request.job, request.job)
        task = JobTask(f"Contrasat: {title.lower()} ({request.layer_name})", request, self._job_done)
        self._tasks.add(task)
        reserve_output(request.out)  # until it ends, no other run's default name is this one
        self._show_progress(task, title)
        QgsApplication.taskManager().addTask(task)
        return task

    def _show_progress(self, task: JobTask, title: str) -> None:
        """A message bar entry with a progress bar and Cancel: visible wherever the dock is scrolled."""
        bar = self.iface.messageBar()
        item = bar.createMessage("Contrasat", f"{title} ({task.layer_name})…")
        progress = QProgressBar(item)
        progress.setRange(0, 100)
        progress.setObjectName("ContrasatMessageProgress")
        cancel = QPushButton("Cancel", item)
        cancel.clicked.connect(task.cancel)
        item.layout().addWidget(progress)
        item.layout().addWidget(cancel)
        task.progressChanged.connect(lambda value: progress.setValue(int(value)))
        self._progress_items[id(task)] = bar.pushWidget(item, Qgis.Info)

    def _job_done(self, task: JobTask) -> None:
        """GUI thread: add the styled layers and report the areas, or say why there are none."""
        self._tasks.discard(task)
        release_output(task.request.out)
        item = self._progress_items.pop(id(task), None)
        if item is not None:
            self.iface.messageBar().popWidget(item)
        outcome = task.outcome
        name = JOB_NAMES.get(task.request.job, task.request.job)
        summary = None
        follow_ups = self._follow_ups.pop(id(task), [])
        if outcome.succeeded and trains(task.request.job):
            follow_ups = self._model_done(task)
        elif outcome.succeeded:
            summary = summary_from_engine(outcome.result or {}, task.request)
            if summary.statistics is None and summary.class_area_km2:
                # the series job writes no CSV; the dock's summary is saved beside the map instead
                summary.statistics = write_area_csv(
                    summary, summary.output.with_name(f"{summary.output.stem}_areas.csv")
                )
            self._show_result(summary, task.layer_name)
        elif outcome.cancelled:
            self.iface.messageBar().pushMessage(
                "Contrasat", f"{name} was cancelled; nothing was written.", Qgis.Info, MESSAGE_SECONDS
            )
            # QGIS then adds its own notice for a task that ran 5 s or more ("Task complete: <description>");
            # the message above says it already
            description = task.description()
            QTimer.singleShot(0, lambda: self._drop_task_notice(description))
        else:
            self._critical(f"{name} failed: {outcome.error or 'the job failed'}")
        if self.dock is not None:
            self.dock.job_finished(task, summary)
        if follow_ups and not outcome.cancelled:  # a failed base map must not stop the new model's map
            self._start_chain(follow_ups)

    def _drop_task_notice(self, description: str) -> None:
        """Take QGIS's end-of-task notice about one of our tasks (its text is the task's description) off the
        message bar."""
        bar = self.iface.messageBar()
        for item in list(bar.items()):
            if item.text() == description:
                bar.popWidget(item)

    def _start_chain(self, requests: list[JobRequest]) -> None:
        """Start the first request; the others follow one by one (two maps at once would share 2 cores)."""
        task = self.start_job(requests[0])
        if task is not None and requests[1:]:
            self._follow_ups[id(task)] = requests[1:]

    def _model_done(self, task: JobTask) -> list[JobRequest]:
        """A new model: listed in the dock's pickers; returns the two maps to make (base, then new model)."""
        result = task.outcome.result or {}
        model = Path(result.get("output") or task.request.out)
        if self.dock is not None:
            self.dock.model_added(model)
        self.iface.messageBar().pushMessage(
            "Contrasat", f"Fine-tuned model saved: {model}", Qgis.Success, MESSAGE_SECONDS
        )
        return map_requests(task.request, model)

    def _show_result(self, result: Any, input_name: str) -> list[QgsMapLayer]:
        layers = add_result_layers(result, input_name)
        if not layers:
            self._critical(f"the map was written but QGIS cannot open it: {result.output}")
            return layers
        for layer in layers:
            layer.setCustomProperty(OUTPUT_PROPERTY, True)
        self._zoom_if_outside(layers[0])
        self.iface.messageBar().pushMessage("Contrasat", summary_text(result), Qgis.Success, MESSAGE_SECONDS)
        for note in result.notes:
            # an info (e.g. linear backscatter converted to dB) is worth knowing, not a problem; a warning
            # (e.g. a raster smaller than a tile, an uncertain dry-land level) says the map may be wrong
            level = Qgis.Warning if note in result.warnings else Qgis.Info
            self.iface.messageBar().pushMessage("Contrasat", note, level, MESSAGE_SECONDS)
        return layers

    def _zoom_if_outside(self, layer: QgsMapLayer) -> None:
        """Zoom to a result the user cannot see; a result already in view leaves the view alone."""
        canvas = self.iface.mapCanvas()
        if canvas is None:
            return
        to_canvas = QgsCoordinateTransform(
            layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance()
        )
        try:
            extent = to_canvas.transformBoundingBox(layer.extent())
        except Exception:  # noqa: BLE001 - a CRS QGIS cannot transform: leave the view as it is
            return
        if canvas.extent().isEmpty() or not canvas.extent().intersects(extent):
            canvas.setExtent(extent)
            canvas.refresh()

    def _critical(self, message: str) -> None:
        """A sticky critical message bar entry, mirrored in the log panel."""
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Critical)
        self.iface.messageBar().pushMessage("Contrasat", message, Qgis.Critical, 0)
