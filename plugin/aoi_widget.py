"""AOI chooser: draw a rectangle or polygon on the canvas, or take the selected features of a layer."""

from __future__ import annotations

import json
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsGeometry,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgisInterface, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QGridLayout, QLabel, QPushButton, QWidget

from .aoi_tools import FILL, OUTLINE, PolygonAoiTool, RectangleAoiTool


def crs_text(crs: QgsCoordinateReferenceSystem) -> str:
    """A CRS string the runtime (rasterio) reads: the authority id, else WKT for custom CRSs."""
    return crs.authid() or crs.toWkt()


class AoiWidget(QWidget):
    """Holds at most one AOI geometry with its CRS and shows it on the canvas."""

    aoiChanged = pyqtSignal()  # noqa: N815 - Qt signal naming

    def __init__(self, iface: QgisInterface, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.geometry: QgsGeometry | None = None
        self.crs = QgsCoordinateReferenceSystem()
        self.rectangle_tool = RectangleAoiTool(self.canvas)
        self.polygon_tool = PolygonAoiTool(self.canvas)
        for tool in (self.rectangle_tool, self.polygon_tool):
            tool.aoiDrawn.connect(self._on_drawn)
        self.shown = QgsRubberBand(self.canvas, QgsWkbTypes.PolygonGeometry)
        self.shown.setStrokeColor(OUTLINE)
        self.shown.setFillColor(FILL)
        self.shown.setWidth(2)
        self._previous_tool: QgsMapTool | None = None

        self.rectangle_button = QPushButton("Draw rectangle", self)
        self.polygon_button = QPushButton("Draw polygon", self)
        self.selection_button = QPushButton("From selected features", self)
        self.clear_button = QPushButton("Clear", self)
        self.rectangle_button.setToolTip("Drag a rectangle on the map")
        self.polygon_button.setToolTip("Click vertices; right click or double click closes the polygon")
        self.selection_button.setToolTip("Union of the selected polygons of the active vector layer")
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.rectangle_button, 0, 0)
        grid.addWidget(self.polygon_button, 0, 1)
        grid.addWidget(self.selection_button, 1, 0)
        grid.addWidget(self.clear_button, 1, 1)
        grid.addWidget(self.status, 2, 0, 1, 2)
        self.rectangle_button.clicked.connect(lambda: self.start_tool(self.rectangle_tool))
        self.polygon_button.clicked.connect(lambda: self.start_tool(self.polygon_tool))
        self.selection_button.clicked.connect(self.use_selected_features)
        self.clear_button.clicked.connect(self.clear)
        self._update_status()

    def start_tool(self, tool: QgsMapTool) -> None:
        """Make `tool` the canvas tool; the previous tool comes back once the shape is drawn."""
        current = self.canvas.mapTool()
        if current not in (self.rectangle_tool, self.polygon_tool):
            self._previous_tool = current
        self.canvas.setMapTool(tool)

    def _on_drawn(self, geometry: QgsGeometry) -> None:
        self.set_aoi(geometry, self.canvas.mapSettings().destinationCrs(), "drawn on the map")
        tool = self.canvas.mapTool()
        if tool in (self.rectangle_tool, self.polygon_tool):
            if self._previous_tool is not None:
                self.canvas.setMapTool(self._previous_tool)
            else:
                self.canvas.unsetMapTool(tool)

    def use_selected_features(self, layer: QgsVectorLayer | None = None) -> bool:
        """AOI = union of the selected polygons of `layer` (default: the active layer)."""
        layer = layer if isinstance(layer, QgsVectorLayer) else self.iface.activeLayer()
        if not isinstance(layer, QgsVectorLayer) or layer.geometryType() != QgsWkbTypes.PolygonGeometry:
            self.status.setText("Select polygons in a vector layer and make it the active layer.")
            return False
        geometries = [f.geometry() for f in layer.selectedFeatures() if f.hasGeometry()]
        if not geometries:
            self.status.setText(f"No feature is selected in '{layer.name()}'.")
            return False
        self.set_aoi(
            QgsGeometry.unaryUnion(geometries),
            layer.crs(),
            f"{len(geometries)} selected feature(s) of '{layer.name()}'",
        )
        return True

    def set_aoi(self, geometry: QgsGeometry, crs: QgsCoordinateReferenceSystem, origin: str = "") -> None:
        """Use `geometry` (in `crs`) as the AOI and outline it on the canvas."""
        self.geometry = QgsGeometry(geometry)
        self.crs = QgsCoordinateReferenceSystem(crs)
        self._origin = origin
        self.shown.setToGeometry(self.geometry, self.crs)
        self._update_status()
        self.aoiChanged.emit()

    def clear(self) -> None:
        self.geometry = None
        self.shown.reset(QgsWkbTypes.PolygonGeometry)
        self._update_status()
        self.aoiChanged.emit()

    def aoi(self) -> tuple[dict[str, Any], str] | None:
        """(GeoJSON geometry, CRS string) as the runtime takes it, or None for the whole raster."""
        if self.geometry is None or self.geometry.isEmpty():
            return None
        return json.loads(self.geometry.asJson()), crs_text(self.crs)

    def _update_status(self) -> None:
        if self.geometry is None:
            self.status.setText("No AOI: the whole raster is mapped.")
        else:
            self.status.setText("AOI {} ({})".format(self._origin, self.crs.authid() or "custom CRS"))

    def cleanup(self) -> None:
        """Remove the outline and the tools from the canvas (plugin unload)."""
        for tool in (self.rectangle_tool, self.polygon_tool):
            if self.canvas.mapTool() is tool:
                self.canvas.unsetMapTool(tool)
            tool.reset()
        self.canvas.scene().removeItem(self.shown)
        for tool in (self.rectangle_tool, self.polygon_tool):
            self.canvas.scene().removeItem(tool.rubber)
