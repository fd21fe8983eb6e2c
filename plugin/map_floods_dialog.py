"""The Map floods dialog: pick a Sentinel-1 raster layer and an output file. Built in code (no .ui)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsMapLayer, QgsMapLayerProxyModel, QgsRasterLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from .layer_choice import excluded_layers, preferred_layer, sensor_score
from .paths import default_output_dir, normalise_output_path, unique_output_path


class MapFloodsDialog(QDialog):
    """Input layer + output path. The caller reads `selected_layer()` and `output_path()` after accept."""

    def __init__(self, active_layer: QgsMapLayer | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ContrasatMapFloodsDialog")
        self.setWindowTitle("Contrasat — Map floods")
        self._path_edited = False  # once the user types a path, layer changes stop overwriting it

        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(False)
        self.layer_combo.setExceptedLayerList(excluded_layers())  # outputs and non-file rasters
        self.layer_combo.setToolTip("Sentinel-1 GRD raster: bands VV and VH in dB, as a GeoTIFF file.")

        self.output_widget = QgsFileWidget(self)
        self.output_widget.setStorageMode(QgsFileWidget.SaveFile)
        self.output_widget.setFilter("GeoTIFF (*.tif *.tiff)")
        # an existing file is confirmed once, on Map floods, whether it was typed or browsed (accept)
        self.output_widget.setConfirmOverwrite(False)
        self.output_widget.setDialogTitle("Flood map output")
        self.output_widget.lineEdit().setShowClearButton(False)
        self.output_widget.setToolTip("Class raster written by the job: 0 dry, 1 water, 255 no data.")

        self.hint = QLabel(
            "No usable raster layer: add a Sentinel-1 GeoTIFF (VV, VH in dB) to the project first.",
            self,
        )
        self.hint.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        self.buttons.button(QDialogButtonBox.Ok).setText("Map floods")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Sentinel-1 layer", self.layer_combo)
        form.addRow("Output flood map", self.output_widget)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(560)

        hidden = {lyr.id() for lyr in excluded_layers()}
        usable = isinstance(active_layer, QgsRasterLayer) and active_layer.id() not in hidden
        if usable and sensor_score(active_layer, "S1") > 0:
            self.layer_combo.setLayer(active_layer)
        else:
            self.layer_combo.setLayer(preferred_layer("S1"))  # by bands, never the plugin's own output
        self._set_default_output()
        self.layer_combo.layerChanged.connect(self._on_layer_changed)
        self.output_widget.fileChanged.connect(self._on_path_changed)
        self._update_state()

    def selected_layer(self) -> QgsRasterLayer | None:
        """The chosen input layer, if any."""
        layer = self.layer_combo.currentLayer()
        return layer if isinstance(layer, QgsRasterLayer) else None

    def output_path(self) -> Path | None:
        """The chosen output as an absolute .tif path, or None when the field is empty."""
        text = self.output_widget.filePath().strip()
        return normalise_output_path(text) if text else None

    def accept(self) -> None:
        """Map floods: an existing output file is replaced only when the user says so."""
        path = self.output_path()
        if path is not None and path.exists():
            answer = QMessageBox.question(
                self, "Contrasat — Map floods", f"{path.name} already exists in {path.parent}.\nReplace it?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No,
            )  # fmt: skip
            if answer != QMessageBox.Yes:
                return
        super().accept()

    def _set_default_output(self) -> None:
        layer = self.selected_layer()
        if layer is None:
            return
        path = unique_output_path(default_output_dir(), layer.name())
        self.output_widget.blockSignals(True)  # a default is not a user edit
        self.output_widget.setFilePath(str(path))
        self.output_widget.blockSignals(False)

    def _on_layer_changed(self, _layer: QgsMapLayer | None) -> None:
        if not self._path_edited:
            self._set_default_output()
        self._update_state()

    def _on_path_changed(self, _path: str) -> None:
        self._path_edited = True
        self._update_state()

    def _update_state(self) -> None:
        has_layer = self.selected_layer() is not None
        self.hint.setVisible(not has_layer)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(has_layer and self.output_path() is not None)
