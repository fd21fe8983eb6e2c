"""The QGIS plugin object: actions, menu and toolbar entries, the dock, the Processing provider and jobs.

Kept thin on purpose: it collects inputs, starts a task and shows the outcome. All computation lives in
`models/` so the CLI and the headless tests exercise the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import Qgis, QgsApplication, QgsMapLayer, QgsMessageLog, QgsRasterLayer
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDialog, QToolBar

from .deps import activate_libs, missing_modules
from .map_floods_dialog import MapFloodsDialog
from .paths import layer_file_path, normalise_output_path
from .results import add_result_layers, summary_text, write_area_csv
from .settings import load_settings
from .tasks import LOG_TAG, JobRequest, JobTask

if TYPE_CHECKING:
    from .dock import ContrasatDock
    from .processing_provider import ContrasatProvider

PLUGIN_DIR = Path(__file__).resolve().parent.parent
ICON_PATH = PLUGIN_DIR / "resources" / "icons" / "contrasat.svg"
MESSAGE_SECONDS = 10  # success/info messages fade; critical ones stay until dismissed (0)
# Marked for lupdate here, translated where shown (self.tr) since the language is known only at run time.
JOB_NAMES = {
    "map_floods": QT_TRANSLATE_NOOP("Contrasat", "Map floods"),
    "land_cover": QT_TRANSLATE_NOOP("Contrasat", "Land cover"),
    "classify_series": QT_TRANSLATE_NOOP("Contrasat", "Classify series"),
}

activate_libs()  # packages from the opt-in installer, before anything imports the runtime


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
        self._tasks: set[JobTask] = set()

    @staticmethod
    def tr(text: str) -> str:
        """Translate in the plugin's context."""
        return QCoreApplication.translate("Contrasat", text)

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
        self.toolbar = self.iface.addToolBar(self.tr("Contrasat"))
        self.toolbar.setObjectName("ContrasatToolbar")  # lets QGIS restore its position between sessions
        icon = QIcon(str(ICON_PATH))
        self.map_floods_action = self._add_action(
            "MapFloods", icon, self.tr("Map floods"),
            self.tr("Map flood water in a Sentinel-1 raster layer with the bundled model"),
            self.show_map_floods_dialog, toolbar=True,
        )  # fmt: skip
        panel = self._add_action(
            "Panel", icon, self.tr("Contrasat panel"),
            self.tr("Flood, land-cover and time-series jobs with an AOI, band mapping and model cards"),
            self.toggle_dock, toolbar=True,
        )  # fmt: skip
        panel.setCheckable(True)
        self._add_action(
            "LandCover", icon, self.tr("Land cover…"),
            self.tr("Map land cover from a Sentinel-2 layer, optionally inside an AOI drawn on the map"),
            lambda: self.show_dock("land_cover"),
        )  # fmt: skip
        self._add_action(
            "ClassifySeries", icon, self.tr("Classify selected layers as a time series"),
            self.tr("Classify the Sentinel-2 layers selected in the Layers panel from their time series"),
            self.classify_selected_layers,
        )  # fmt: skip
        self._add_action(
            "Settings", QIcon(), self.tr("Settings…"), self.tr("Execution provider, threads and tiling"),
            self.show_settings,
        )  # fmt: skip
        self._add_action(
            "Dependencies", QIcon(), self.tr("Check dependencies…"),
            self.tr("Check that onnxruntime, onnx and rasterio are installed in QGIS's Python"),
            lambda: self.check_dependencies(quiet=False),
        )  # fmt: skip
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
        self._tasks.clear()
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
        """The dock, created on first use (building it reads model cards, which needs onnx)."""
        if self.dock is None:
            from .dock import ContrasatDock

            self.dock = ContrasatDock(self.iface, self.start_job, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            panel = self.named_actions.get("Panel")
            if panel is not None:
                self.dock.visibilityChanged.connect(panel.setChecked)
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
        panel = dock.panels.get("classify_series")
        if panel is None:
            self._critical(self.tr("the time-series runtime is not available in this installation"))
            return None
        if layers is None:
            view = self.iface.layerTreeView()
            layers = view.selectedLayers() if view is not None else []
        rasters = [lyr for lyr in layers if isinstance(lyr, QgsRasterLayer)]
        if not rasters:
            self._critical(self.tr("select the Sentinel-2 layers of the series in the Layers panel first"))
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

    def check_dependencies(self, *, quiet: bool) -> list[str]:
        """Missing runtime modules; offers the install dialog. `quiet`: only a message bar entry on load."""
        missing = missing_modules()
        if not missing:
            if not quiet:
                self.iface.messageBar().pushMessage(
                    self.tr("Contrasat"), self.tr("All runtime packages are installed."), Qgis.Success, 5
                )
            return missing
        text = self.tr("Missing Python packages: {}").format(", ".join(missing))
        if quiet:
            # On load a dialog would interrupt QGIS start-up; the menu entry opens it on demand.
            hint = self.tr("{}. Use Raster > Contrasat > Check dependencies… to install them.").format(text)
            self.iface.messageBar().pushMessage(self.tr("Contrasat"), hint, Qgis.Warning, 0)
        else:
            self.show_dependency_dialog(missing)
        return missing

    def show_dependency_dialog(self, missing: list[str]) -> None:
        from .deps_dialog import DependencyDialog

        dialog = DependencyDialog(missing, self.iface.mainWindow())
        try:
            dialog.exec_()
        finally:
            dialog.deleteLater()

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
        """Start mapping floods in `layer` into `out_path` as a background task (the Map floods action).

        `model` is a bundled model name or an .onnx path; None uses the default flood model.
        Returns the queued task (its `outcome` tells tests when and how it ended), or None when the
        inputs were rejected before starting (a critical message explains why).
        """
        source = layer_file_path(layer)
        if source is None:
            name = layer.name() if layer is not None else "?"
            self._critical(self.tr("'{}' is not a raster file that Contrasat can read").format(name))
            return None
        options = {"model": model} if model is not None else {}
        request = JobRequest(
            "map_floods", source, normalise_output_path(out_path), options, layer.name(), load_settings()
        )
        return self.start_job(request)

    def start_job(self, request: JobRequest) -> JobTask | None:
        """Queue `request` in QGIS's task manager; None (with a message) when its folder cannot be made."""
        try:
            request.out.parent.mkdir(parents=True, exist_ok=True)  # the default folder may not exist yet
        except OSError as exc:
            self._critical(
                self.tr("cannot create the output folder {}: {}").format(request.out.parent, exc.strerror)
            )
            return None
        title = self.tr(JOB_NAMES.get(request.job, request.job))
        task = JobTask(
            self.tr("Contrasat: {} ({})").format(title.lower(), request.layer_name), request, self._job_done
        )
        self._tasks.add(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def _job_done(self, task: JobTask) -> None:
        """GUI thread: add the styled layers and report the areas, or say why there are none."""
        self._tasks.discard(task)
        outcome = task.outcome
        if outcome.succeeded:
            result = outcome.result
            if result.statistics is None and task.request.job == "classify_series":
                # the series runtime writes no CSV; the dock's summary is saved beside the map instead
                result.statistics = write_area_csv(
                    result, result.output.with_name(f"{result.output.stem}_areas.csv")
                )
            self._show_result(result, task.layer_name)
        elif outcome.cancelled:
            self.iface.messageBar().pushMessage(
                self.tr("Contrasat"),
                self.tr("{} was cancelled; nothing was written.").format(
                    self.tr(JOB_NAMES.get(task.request.job, task.request.job))
                ),
                Qgis.Info,
                MESSAGE_SECONDS,
            )
        else:
            self._critical(outcome.error or self.tr("the job failed"))
        if self.dock is not None:
            self.dock.job_finished(task)

    def _show_result(self, result: Any, input_name: str) -> list[QgsMapLayer]:
        layers = add_result_layers(result, input_name)
        if not layers:
            self._critical(self.tr("the map was written but QGIS cannot open it: {}").format(result.output))
            return layers
        self.iface.messageBar().pushMessage(
            self.tr("Contrasat"), summary_text(result), Qgis.Success, MESSAGE_SECONDS
        )
        for note in getattr(result, "notes", None) or []:
            # e.g. linear backscatter converted to dB: worth knowing, not an error
            self.iface.messageBar().pushMessage(self.tr("Contrasat"), note, Qgis.Warning, MESSAGE_SECONDS)
        return layers

    def _critical(self, message: str) -> None:
        """A sticky critical message bar entry, mirrored in the log panel."""
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Critical)
        self.iface.messageBar().pushMessage(self.tr("Contrasat"), message, Qgis.Critical, 0)
