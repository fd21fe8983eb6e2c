"""The QGIS plugin object: actions, menu and toolbar entries, and the Map floods flow.

Kept thin on purpose: it collects inputs, starts a task and shows the outcome. All computation lives in
`models/` so the CLI and the headless tests exercise the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qgis.core import Qgis, QgsApplication, QgsMapLayer, QgsMessageLog, QgsProject, QgsRasterLayer
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDialog, QToolBar

from .map_floods_dialog import MapFloodsDialog
from .paths import layer_file_path, normalise_output_path
from .styling import FLOOD_TRANSPARENT_VALUES, style_class_layer
from .tasks import LOG_TAG, MapFloodsTask

if TYPE_CHECKING:  # the runtime is imported only when a job runs (see tasks.load_map_floods)
    from ..models.pipeline import JobResult

PLUGIN_DIR = Path(__file__).resolve().parent.parent
ICON_PATH = PLUGIN_DIR / "resources" / "icons" / "contrasat.svg"
MESSAGE_SECONDS = 10  # success/info messages fade; critical ones stay until dismissed (0)


class ContrasatPlugin:
    """Created by `classFactory(iface)`; QGIS calls `initGui` on load and `unload` on unload/reload."""

    MENU = "&Contrasat"

    def __init__(self, iface: QgisInterface) -> None:
        self.iface = iface
        self.toolbar: QToolBar | None = None
        self.map_floods_action: QAction | None = None
        self.actions: list[QAction] = []
        # Python must keep running tasks referenced, or their wrappers can be collected mid-run.
        self._tasks: set[MapFloodsTask] = set()

    @staticmethod
    def tr(text: str) -> str:
        """Translate in the plugin's context."""
        return QCoreApplication.translate("Contrasat", text)

    # ---- QGIS entry points -------------------------------------------------------------------------

    def initGui(self) -> None:  # noqa: N802 - name fixed by QGIS
        """Create the Contrasat toolbar and the Map floods action (toolbar + Raster menu)."""
        self.toolbar = self.iface.addToolBar(self.tr("Contrasat"))
        self.toolbar.setObjectName("ContrasatToolbar")  # lets QGIS restore its position between sessions

        action = QAction(QIcon(str(ICON_PATH)), self.tr("Map floods"), self.iface.mainWindow())
        action.setObjectName("ContrasatMapFloods")
        action.setToolTip(self.tr("Map flood water in a Sentinel-1 raster layer with the bundled model"))
        action.setStatusTip(action.toolTip())
        action.triggered.connect(self.show_map_floods_dialog)
        self.toolbar.addAction(action)
        self.iface.addPluginToRasterMenu(self.MENU, action)
        self.map_floods_action = action
        self.actions.append(action)

    def unload(self) -> None:
        """Remove every action, menu entry and the toolbar; stop running jobs."""
        for task in list(self._tasks):
            task.on_done = None  # the iface may be gone by the time the task finishes
            task.cancel()
        self._tasks.clear()
        for action in self.actions:
            self.iface.removePluginRasterMenu(self.MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions.clear()
        self.map_floods_action = None
        if self.toolbar is not None:
            # `del self.toolbar` would leave the C++ toolbar (owned by the main window) on screen.
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None

    # ---- Map floods --------------------------------------------------------------------------------

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
    ) -> MapFloodsTask | None:
        """Start mapping floods in `layer` into `out_path` as a background task.

        `model` is a bundled model name or an .onnx path; None uses the default flood model.
        Returns the queued task (its `outcome` tells tests when and how it ended), or None when the
        inputs were rejected before starting (a critical message explains why).
        """
        source = layer_file_path(layer)
        if source is None:
            name = layer.name() if layer is not None else "?"
            self._critical(self.tr("'{}' is not a raster file that Contrasat can read").format(name))
            return None
        out = normalise_output_path(out_path)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)  # the default output folder may not exist yet
        except OSError as exc:
            self._critical(self.tr("cannot create the output folder {}: {}").format(out.parent, exc.strerror))
            return None
        task = MapFloodsTask(
            self.tr("Contrasat: map floods in {}").format(layer.name()),
            source,
            out,
            model=model,
            layer_name=layer.name(),
            on_done=self._map_floods_done,
        )
        self._tasks.add(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def _map_floods_done(self, task: MapFloodsTask) -> None:
        """GUI thread: add the styled layer and report the area, or say why there is none."""
        self._tasks.discard(task)
        outcome = task.outcome
        if outcome.succeeded:
            self._add_flood_layer(outcome.result, task.layer_name)
        elif outcome.cancelled:
            self.iface.messageBar().pushMessage(
                self.tr("Contrasat"),
                self.tr("Map floods was cancelled; nothing was written."),
                Qgis.Info,
                MESSAGE_SECONDS,
            )
        else:
            self._critical(outcome.error or self.tr("the job failed"))

    def _add_flood_layer(self, result: JobResult, input_name: str) -> QgsRasterLayer | None:
        """Load the class raster, style it from the model card and report the flooded area."""
        card = result.card
        layer = QgsRasterLayer(str(result.output), self.tr("Flood map ({})").format(input_name), "gdal")
        if not layer.isValid():
            self._critical(
                self.tr("the flood map was written but QGIS cannot open it: {}").format(result.output)
            )
            return None
        transparent = FLOOD_TRANSPARENT_VALUES if card.task == "flood" else ()
        style_class_layer(layer, card.classes, card.output_nodata, transparent_values=transparent)
        QgsProject.instance().addMapLayer(layer)
        area = result.flooded_km2
        area_text = f"{area:.2f}" if area is not None else self.tr("unknown")
        self.iface.messageBar().pushMessage(
            self.tr("Contrasat"),
            self.tr("Flooded area: {} km² (model {}, {})").format(
                area_text, result.model_name, result.provider
            ),
            Qgis.Success,
            MESSAGE_SECONDS,
        )
        for note in getattr(result, "notes", None) or []:
            # e.g. linear backscatter converted to dB: worth knowing, not an error
            self.iface.messageBar().pushMessage(self.tr("Contrasat"), note, Qgis.Warning, MESSAGE_SECONDS)
        return layer

    def _critical(self, message: str) -> None:
        """A sticky critical message bar entry, mirrored in the log panel."""
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Critical)
        self.iface.messageBar().pushMessage(self.tr("Contrasat"), message, Qgis.Critical, 0)
