"""A tick-box list of the project's file rasters: the inputs of the fine-tune and time-series tabs.

Outputs of Contrasat and rasters with no file are never offered; ticks survive a refresh (layers added or
removed); `accept` narrows the list (the fine-tune tab offers only layers that look like Sentinel-1).
"""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QListWidget, QListWidgetItem, QWidget

from .layer_choice import is_output
from .paths import layer_file_path


class RasterChecklist(QListWidget):
    """The project's usable rasters, one tick box each."""

    def __init__(self, parent: QWidget | None = None, accept: Callable[[QgsRasterLayer], bool] | None = None):
        super().__init__(parent)
        self.accept = accept or (lambda layer: True)

    def refresh(self) -> None:
        """List the project's file rasters again, keeping the ticks of layers still present."""
        ticked = set(self.checked_layer_ids())
        self.clear()
        for layer in QgsProject.instance().mapLayers().values():
            usable = isinstance(layer, QgsRasterLayer) and layer_file_path(layer) is not None
            if usable and not is_output(layer) and self.accept(layer):
                item = QListWidgetItem(layer.name(), self)
                item.setData(Qt.UserRole, layer.id())
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if layer.id() in ticked else Qt.Unchecked)

    def checked_layer_ids(self) -> list[str]:
        items = [self.item(i) for i in range(self.count())]
        return [i.data(Qt.UserRole) for i in items if i.checkState() == Qt.Checked]

    def set_checked(self, layers: list[QgsRasterLayer]) -> None:
        wanted = {layer.id() for layer in layers}
        for i in range(self.count()):
            item = self.item(i)
            item.setCheckState(Qt.Checked if item.data(Qt.UserRole) in wanted else Qt.Unchecked)
