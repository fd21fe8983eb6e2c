"""Drawing labelled polygons on the map into a scratch memory layer with a `class` field.

The polygon map tool is the AOI one (aoi_tools.PolygonAoiTool: clicks, right click closes, Esc starts
over); here it stays active after each polygon so that an analyst can draw several, and each polygon goes
into the scratch layer with the class being drawn. The Fine-tune tab draws water and dry; the Land cover
tab the analyst's own classes, whose colours also go into a `color` field (the runtime styles the map with
them).
"""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFillSymbol,
    QgsGeometry,
    QgsProject,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.gui import QgsMapCanvas, QgsMapTool
from qgis.PyQt.QtCore import QObject, pyqtSignal
from qgis.PyQt.QtGui import QColor

from .aoi_tools import PolygonAoiTool

LABEL_FIELD = "class"
COLOUR_FIELD = "color"  # one of the runtime's colour fields (models/own_labels.py: COLOUR_FIELDS)
SCRATCH_NAME = "Fine-tune labels"
CLASS_COLORS = {"water": "#1f78b4", "dry": "#e6550d"}


def class_renderer(colours: dict[str, str]) -> QgsCategorizedSymbolRenderer:
    """One see-through category per class (the image under the labels stays visible)."""
    categories = []
    for name, color in colours.items():
        rgb = QColor(color)
        fill = f"{rgb.red()},{rgb.green()},{rgb.blue()},100"
        symbol = QgsFillSymbol.createSimple({"color": fill, "outline_color": color, "outline_width": "0.6"})
        categories.append(QgsRendererCategory(name, symbol, name))
    return QgsCategorizedSymbolRenderer(LABEL_FIELD, categories)


def scratch_layer(
    canvas: QgsMapCanvas,
    name: str = SCRATCH_NAME,
    colours: dict[str, str] | None = None,
    colour_field: bool = False,
) -> QgsVectorLayer:
    """An empty polygon memory layer in the canvas CRS with a text `class` field (and a `color` field when
    asked), styled by class."""
    crs = canvas.mapSettings().destinationCrs()
    uri = f"Polygon?field={LABEL_FIELD}:string(64)"
    if colour_field:
        uri += f"&field={COLOUR_FIELD}:string(9)"
    if crs.authid():
        uri += f"&crs={crs.authid()}"
    layer = QgsVectorLayer(uri, name, "memory")
    if not crs.authid():
        layer.setCrs(crs)
    layer.setRenderer(class_renderer(CLASS_COLORS if colours is None else colours))
    return layer


class LabelDrawer(QObject):
    """Owns the polygon tool and the scratch layer; `labelAdded(class)` after each polygon is stored."""

    labelAdded = pyqtSignal(str)  # noqa: N815 - Qt signal naming
    drawingChanged = pyqtSignal(str)  # noqa: N815 - the class being drawn, '' when the tool is off

    def __init__(
        self,
        canvas: QgsMapCanvas,
        parent: QObject | None = None,
        *,
        name: str = SCRATCH_NAME,
        colours: dict[str, str] | None = None,
        colour_field: bool = False,
    ) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.name = name
        self.colours = dict(CLASS_COLORS if colours is None else colours)  # class -> '#rrggbb', in order
        self.colour_field = colour_field
        self.tool = PolygonAoiTool(canvas)
        self.tool.aoiDrawn.connect(self._on_drawn)
        self.tool.deactivated.connect(lambda: self._set_class(""))
        self.label_class = ""
        self.layer: QgsVectorLayer | None = None
        self._previous_tool: QgsMapTool | None = None

    def _set_class(self, name: str) -> None:
        self.label_class = name
        self.drawingChanged.emit(name)

    def layer_in_project(self) -> QgsVectorLayer | None:
        """The scratch layer while it is still in the project (the user may have removed it)."""
        if self.layer is None:
            return None
        try:
            alive = QgsProject.instance().mapLayer(self.layer.id()) is self.layer
        except RuntimeError:  # deleted with the project
            alive = False
        if not alive:
            self.layer = None
        return self.layer

    def ensure_layer(self) -> QgsVectorLayer:
        """The scratch layer, created and added to the project when missing."""
        layer = self.layer_in_project()
        if layer is None:
            layer = scratch_layer(self.canvas, self.name, self.colours, self.colour_field)
            QgsProject.instance().addMapLayer(layer)
            self.layer = layer
        return layer

    def set_colours(self, colours: dict[str, str]) -> None:
        """The classes and their colours changed (a class added): restyle the scratch layer."""
        self.colours = dict(colours)
        layer = self.layer_in_project()
        if layer is not None:
            layer.setRenderer(class_renderer(self.colours))
            layer.triggerRepaint()

    def start(self, label_class: str) -> None:
        """Draw polygons of `label_class` until another tool is chosen or `stop()`."""
        current = self.canvas.mapTool()
        if current is not self.tool:
            self._previous_tool = current
        self.ensure_layer()
        self.canvas.setMapTool(self.tool)
        self.tool.rubber.setStrokeColor(QColor(self.colours.get(label_class, "#e6550d")))
        self._set_class(label_class)

    def stop(self) -> None:
        """Hand the canvas back to the tool it had before drawing started."""
        if self.canvas.mapTool() is self.tool:
            if self._previous_tool is not None:
                self.canvas.setMapTool(self._previous_tool)
            else:
                self.canvas.unsetMapTool(self.tool)
        self._set_class("")

    def add_polygon(self, geometry: QgsGeometry, label_class: str) -> bool:
        """Store `geometry` (canvas CRS) as a polygon of `label_class` in the scratch layer."""
        layer = self.ensure_layer()
        geometry = QgsGeometry(geometry)
        to_layer = QgsCoordinateTransform(
            self.canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance()
        )
        if geometry.transform(to_layer) != 0:
            return False
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttribute(LABEL_FIELD, label_class)
        if self.colour_field:
            feature.setAttribute(COLOUR_FIELD, self.colours.get(label_class))
        ok, _ = layer.dataProvider().addFeatures([feature])
        if ok:
            layer.updateExtents()
            layer.triggerRepaint()
            self.labelAdded.emit(label_class)
        return ok

    def _on_drawn(self, geometry: QgsGeometry) -> None:
        if self.label_class:
            self.add_polygon(geometry, self.label_class)

    def counts(self) -> dict[str, int]:
        """Polygons per class in the scratch layer."""
        layer = self.layer_in_project()
        found = dict.fromkeys(self.colours, 0)
        if layer is not None:
            for feature in layer.getFeatures():
                name = str(feature[LABEL_FIELD])
                found[name] = found.get(name, 0) + 1
        return found

    def cleanup(self) -> None:
        """Take the tool off the canvas and its outline off the scene (plugin unload)."""
        if self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self.tool.reset()
        self.canvas.scene().removeItem(self.tool.rubber)
