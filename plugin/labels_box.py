"""The labels of a job the analyst supplies: a polygon or point layer and its class field, or polygons drawn
on the map, one Draw button per class. The Fine-tune tab uses it for water and dry, the Land cover tab for
the analyst's own classes (added with a name and a colour)."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsFieldProxyModel, QgsMapLayerProxyModel, QgsVectorLayer
from qgis.gui import QgsColorButton, QgsFieldComboBox, QgsMapCanvas, QgsMapLayerComboBox
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from .label_drawing import LABEL_FIELD, LabelDrawer
from .label_layers import labels_geojson

BUTTONS_PER_ROW = 3
GOLDEN = 0.618033988749895  # hue step of the colours offered for new classes: neighbours stay distinct


def said(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class LabelsBox(QGroupBox):
    """Label layer + class field, or drawn polygons in a scratch layer (which then becomes the label layer).

    `editable`: classes are added by the analyst (name and colour); otherwise the drawer's classes are fixed.
    """

    changed = pyqtSignal()  # the label layer, its field or the drawn polygons changed

    def __init__(
        self,
        canvas: QgsMapCanvas,
        title: str,
        field_hint: str,
        drawer: LabelDrawer,
        parent: QWidget | None = None,
        *,
        editable: bool = False,
    ) -> None:
        super().__init__(title, parent)
        self.drawer = drawer
        self.label_layer = QgsMapLayerComboBox(self)
        self.label_layer.setFilters(QgsMapLayerProxyModel.PolygonLayer | QgsMapLayerProxyModel.PointLayer)
        self.label_layer.setAllowEmptyLayer(True)
        self.label_layer.setLayer(None)
        self.class_field = QgsFieldComboBox(self)
        self.class_field.setFilters(QgsFieldProxyModel.AllTypes)
        self.label_layer.layerChanged.connect(self._on_label_layer)
        self.class_field.fieldChanged.connect(lambda *_: self.changed.emit())
        self.buttons: dict[str, QPushButton] = {}
        self.button_grid = QGridLayout()
        self.draw_status = QLabel(self)
        self.draw_status.setWordWrap(True)
        self.drawer.drawingChanged.connect(self._on_drawing)
        self.drawer.labelAdded.connect(self._on_label_added)

        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.addRow("Label layer", self.label_layer)
        form.addRow(field_hint, self.class_field)
        if editable:
            self.class_name = QLineEdit(self)
            self.class_name.setPlaceholderText("Class name, e.g. cropland")
            self.class_colour = QgsColorButton(self)
            self.class_colour.setToolTip("The class's colour in the map and its legend")
            self.add_button = QPushButton("Add class", self)
            self.add_button.clicked.connect(self._add_typed_class)
            self.class_name.returnPressed.connect(self._add_typed_class)
            add_row = QHBoxLayout()
            add_row.addWidget(self.class_name, 1)
            add_row.addWidget(self.class_colour)
            add_row.addWidget(self.add_button)
            form.addRow("Or add classes and draw them", add_row)
            self._next_colour()
        form.addRow(self.button_grid)
        form.addRow(self.draw_status)
        for name in self.drawer.colours:
            self._add_button(name)
        self.update_status()

    # ---- classes and their Draw buttons ---------------------------------------------------------------

    def _add_button(self, name: str) -> None:
        button = QPushButton(swatch(self.drawer.colours[name]), f"Draw {name}", self)
        button.setObjectName(f"ContrasatDraw_{name}")
        button.setCheckable(True)
        button.setToolTip(
            f"Click vertices of a {name} polygon; right click or double click closes it. Draw as many as "
            f"you like; they go into the '{self.drawer.name}' layer."
        )
        button.clicked.connect(
            lambda checked, n=name: self.drawer.start(n) if checked else self.drawer.stop()
        )
        count = len(self.buttons)
        self.button_grid.addWidget(button, count // BUTTONS_PER_ROW, count % BUTTONS_PER_ROW)
        self.buttons[name] = button

    def add_class(self, name: str, colour: str) -> None:
        """A new class to draw (name, '#rrggbb'); ValueError with a user message for an empty or taken name."""
        name = name.strip()
        if not name:
            raise ValueError("Type the class's name first.")
        if name.lower() in (n.lower() for n in self.drawer.colours):
            raise ValueError(f"There is already a class '{name}'.")
        self.drawer.set_colours({**self.drawer.colours, name: colour})
        self._add_button(name)
        self.update_status()
        self.changed.emit()

    def _add_typed_class(self) -> None:
        try:
            self.add_class(self.class_name.text(), self.class_colour.color().name())
        except ValueError as exc:
            self.draw_status.setText(str(exc))
            return
        self.class_name.clear()
        self._next_colour()

    def _next_colour(self) -> None:
        hue = (0.08 + GOLDEN * len(self.drawer.colours)) % 1.0
        self.class_colour.setColor(QColor.fromHsvF(hue, 0.75, 0.85))

    # ---- the label layer --------------------------------------------------------------------------------

    def _on_label_layer(self, layer: Any) -> None:
        self.class_field.setLayer(layer)
        if isinstance(layer, QgsVectorLayer) and LABEL_FIELD in layer.fields().names():
            self.class_field.setField(LABEL_FIELD)
        self.changed.emit()

    def set_label_layer(self, layer: QgsVectorLayer, field_name: str | None = None) -> None:
        self.label_layer.setLayer(layer)
        if field_name:
            self.class_field.setField(field_name)

    def _use_scratch(self) -> None:
        layer = self.drawer.layer_in_project()
        if layer is not None and self.label_layer.currentLayer() is not layer:
            self.set_label_layer(layer, LABEL_FIELD)

    def _on_drawing(self, label_class: str) -> None:
        for name, button in self.buttons.items():
            button.setChecked(name == label_class)
        if label_class:
            self._use_scratch()

    def _on_label_added(self, _label_class: str) -> None:
        self._use_scratch()
        self.update_status()
        self.changed.emit()

    def update_status(self) -> None:
        """How many polygons of each class are drawn, or how to start."""
        counts = self.drawer.counts()
        if self.drawer.layer_in_project() is None:
            start = "Or draw polygons on the map" if self.buttons else "Add a class, then draw its polygons"
            self.draw_status.setText(f"{start}: they go into a scratch layer.")
        else:
            drawn = said([f"{counts.get(name, 0)} {name}" for name in self.drawer.colours])
            self.draw_status.setText(f"{drawn} polygon(s) drawn ('{self.drawer.layer.name()}').")

    def document(self, missing: str, field_hint: str) -> tuple[dict[str, Any], str]:
        """(GeoJSON document of the labels, class field); ValueError with a user message when unusable."""
        labels = self.label_layer.currentLayer()
        if not isinstance(labels, QgsVectorLayer):
            raise ValueError(missing)
        field_name = self.class_field.currentField()
        if not field_name:
            raise ValueError(f"Choose the class field of '{labels.name()}' ({field_hint}).")
        try:
            return labels_geojson(labels, field_name), field_name
        except ValueError as exc:
            raise ValueError(f"'{labels.name()}': {exc}.") from None

    def cleanup(self) -> None:
        self.drawer.cleanup()
