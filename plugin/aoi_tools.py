"""Map tools that draw an area of interest on the canvas: a rectangle (drag) or a polygon (clicks)."""

from __future__ import annotations

from qgis.core import QgsGeometry, QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QKeyEvent

OUTLINE = QColor(230, 85, 13)
FILL = QColor(230, 85, 13, 50)


class _AoiTool(QgsMapTool):
    """Shared rubber band handling; `aoiDrawn(geometry)` is emitted in canvas CRS when a shape is done."""

    aoiDrawn = pyqtSignal(QgsGeometry)  # noqa: N815 - Qt signal naming

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.rubber = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.rubber.setStrokeColor(OUTLINE)
        self.rubber.setFillColor(FILL)
        self.rubber.setWidth(2)
        self.setCursor(Qt.CrossCursor)

    def reset(self) -> None:
        self.rubber.reset(QgsWkbTypes.PolygonGeometry)

    def deactivate(self) -> None:
        self.reset()
        super().deactivate()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key_Escape:
            self.reset()

    def _emit(self, geometry: QgsGeometry) -> None:
        self.reset()
        if not geometry.isEmpty() and geometry.area() > 0:
            self.aoiDrawn.emit(geometry)


class RectangleAoiTool(_AoiTool):
    """Press, drag and release: the dragged rectangle becomes the AOI."""

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.start: QgsPointXY | None = None

    def _rectangle(self, end: QgsPointXY) -> QgsRectangle:
        return QgsRectangle(self.start, end)

    def canvasPressEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.LeftButton:
            self.start = self.toMapCoordinates(event.pos())

    def canvasMoveEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if self.start is not None:
            rect = self._rectangle(self.toMapCoordinates(event.pos()))
            self.rubber.setToGeometry(QgsGeometry.fromRect(rect), None)

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if self.start is None or event.button() != Qt.LeftButton:
            return
        rect = self._rectangle(self.toMapCoordinates(event.pos()))
        self.start = None
        self._emit(QgsGeometry.fromRect(rect))


class PolygonAoiTool(_AoiTool):
    """Left click adds a vertex, right click (or double click) closes the polygon; Esc starts over."""

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.points: list[QgsPointXY] = []

    def reset(self) -> None:
        self.points = []
        super().reset()

    def _show(self, extra: QgsPointXY | None = None) -> None:
        ring = self.points + ([extra] if extra is not None else [])
        if len(ring) >= 2:
            self.rubber.setToGeometry(QgsGeometry.fromPolygonXY([ring]), None)

    def canvasMoveEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if self.points:
            self._show(self.toMapCoordinates(event.pos()))

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.LeftButton:
            self.points.append(self.toMapCoordinates(event.pos()))
            self._show()
        elif event.button() == Qt.RightButton:
            self.finish()

    def canvasDoubleClickEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        self.finish()

    def finish(self) -> None:
        """Close the ring and emit it when it has at least three vertices."""
        points = list(self.points)
        if len(points) < 3:
            self.reset()
            return
        geometry = QgsGeometry.fromPolygonXY([points])
        if not geometry.isGeosValid():
            geometry = geometry.makeValid()  # a self-crossing click path still means "this area"
        self._emit(geometry)
