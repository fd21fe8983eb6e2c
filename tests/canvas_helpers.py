"""Mouse clicks on a QGIS map tool, as a user makes them (shared by the dock tests that draw on the map)."""

from __future__ import annotations

from qgis.core import QgsPointXY
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt


def click(tool, point: QgsPointXY, button=Qt.LeftButton) -> QgsPointXY:
    """Release `button` over `point` (map coordinates) on `tool`; where the click landed, rounded to a pixel."""
    canvas = tool.canvas()
    pixel = canvas.getCoordinateTransform().transform(point)
    event = QgsMapMouseEvent(
        canvas, QEvent.MouseButtonRelease, QPoint(round(pixel.x()), round(pixel.y())), button
    )
    tool.canvasReleaseEvent(event)
    return tool.toMapCoordinates(event.pos())
