"""The dock's Land cover tab: "My classes" first (classes added and drawn on the map, or a labelled layer), a
real run on the bundled S2 sample styled in those classes with its accuracy report, "Save classifier" into
the pickers, and the one honest line on the bundled fixed-class model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from canvas_helpers import click
from contrasat.models import own_labels
from contrasat.models.card import read_card
from contrasat.plugin.cards import WEIGHTS_DIR
from contrasat.plugin.label_layers import COLOUR_FIELDS
from contrasat.plugin.land_cover_panel import MISSING_LABELS, SCRATCH_NAME, trained_sites_line
from contrasat.plugin.launcher import request_command
from contrasat.plugin.tasks import JobTask
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from qgis_e2e import LAND_COVER_CLASSES, land_cover_squares  # noqa: E402

# two squares of water and vegetation, one of bare: the single-polygon class gets a warning
PER_CLASS = {"water": 2, "vegetation": 2, "bare": 1}


@pytest.fixture
def dock(plugin, tmp_path, models_dir):
    instance = plugin.show_dock("land_cover")
    instance.output_dir.setFilePath(str(tmp_path / "out"))
    return instance


@pytest.fixture
def s2(qgis_iface, add_raster, s2_sample):
    layer = add_raster(s2_sample, "S2 sample", qgis_iface)
    canvas = qgis_iface.mapCanvas()
    canvas.resize(700, 700)
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    canvas.refresh()
    return layer


def test_colour_fields_are_the_runtimes():
    assert own_labels.COLOUR_FIELDS == COLOUR_FIELDS


def test_the_tab_leads_with_my_classes_and_says_what_the_bundled_model_learned_from(dock):
    panel = dock.panels["land_cover"]
    assert (
        panel.own.isChecked() and panel.labels.isVisibleTo(panel) and not panel.model_box.isVisibleTo(panel)
    )
    layout = panel.layout()
    assert layout.indexOf(panel.own) == 0 and layout.indexOf(panel.labels) < layout.indexOf(panel.model_box)
    card = read_card(WEIGHTS_DIR / "landcover_s2.onnx")
    unseen = card.metrics["unseen_sites"]
    line = panel.fixed_note.text()
    assert line == trained_sites_line(card) and "\n" not in line
    assert line.startswith("landcover_s2 learned its fixed classes from 1 labelled site;")
    assert f"on the 4 sites it never saw it scores a pooled mIoU of {unseen['pooled_miou']:.2f}" in line
    assert f"{unseen['pooled_miou_all_methods']['aoi_majority']:.2f}" in line
    panel.use_own_classes(False)
    assert panel.model_box.isVisibleTo(panel) and not panel.labels.isVisibleTo(panel)
    assert panel.model_picker.card().name == "landcover_s2"


def test_my_classes_without_labels_says_what_to_do(dock, s2, plugin):
    panel = dock.panels["land_cover"]
    assert dock.run_panel(panel) is None and dock.message.text() == MISSING_LABELS
    panel.labels.class_name.setText("")
    panel.labels.add_button.click()
    assert panel.labels.draw_status.text() == "Type the class's name first."
    assert not [t for t in plugin._tasks if isinstance(t, JobTask)]


def test_a_labelled_layer_with_a_colour_field_builds_the_command(dock, s2, tmp_path, models_dir):
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=kind:string&field=Colour:string", "fields", "memory")
    features = []
    for square in land_cover_squares(2):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPolygonXY([[QgsPointXY(x, y) for x, y in square["corners"]]]))
        feature.setAttributes([square["class"], LAND_COVER_CLASSES[square["class"]]])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    QgsProject.instance().addMapLayer(layer)
    panel = dock.panels["land_cover"]
    panel.labels.set_label_layer(layer, "kind")
    request = panel.collect(tmp_path / "out", None, None)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = request_command(request, scratch, python="/engine/python")
    out = tmp_path / "out" / "S2_sample_landcover.tif"
    assert command == [
        "/engine/python", "-m", "contrasat", "land-cover", "--s2", str(s2.source()),
        "--labels", str(scratch / "labels.geojson"), "--field", "kind", "--out", str(out),
        "--statistics", str(out.with_name("S2_sample_landcover_areas.csv")),
        "--save-model", str(tmp_path / "out" / "S2_sample_classes.onnx"), "--progress", "json",
    ]  # fmt: skip
    doc = json.loads((scratch / "labels.geojson").read_text(encoding="utf-8"))
    assert doc["features"][0]["properties"] == {"kind": "water", "Colour": "#1f78b4"}
    assert len(doc["features"]) == 6


def test_drawn_classes_map_in_those_classes_with_accuracy_and_a_saved_classifier(
    dock, plugin, s2, qgis_iface, models_dir, wait_task
):
    panel = dock.panels["land_cover"]
    canvas = qgis_iface.mapCanvas()
    for name, colour in LAND_COVER_CLASSES.items():  # typed into the tab as a user does
        panel.labels.class_name.setText(name)
        panel.labels.class_colour.setColor(QColor(colour))
        panel.labels.add_button.click()
    assert list(panel.labels.buttons) == list(LAND_COVER_CLASSES)
    for square in land_cover_squares(PER_CLASS):
        button = panel.labels.buttons[square["class"]]
        if not button.isChecked():
            button.click()
        assert canvas.mapTool() is panel.drawer.tool
        corners = [QgsPointXY(x, y) for x, y in square["corners"]]
        zoom = QgsGeometry.fromPolygonXY([corners]).boundingBox()
        zoom.scale(5)  # zoomed in on the spot, as an analyst draws a small square
        canvas.setExtent(zoom)
        for corner in corners:
            click(panel.drawer.tool, corner)
        click(panel.drawer.tool, corners[0], Qt.RightButton)
    panel.labels.buttons["bare"].click()  # done drawing
    assert canvas.mapTool() is not panel.drawer.tool
    scratch = panel.labels.label_layer.currentLayer()
    assert scratch.name() == SCRATCH_NAME and panel.labels.class_field.currentField() == "class"
    assert [(f["class"], f["color"]) for f in scratch.getFeatures()] == [
        (name, LAND_COVER_CLASSES[name]) for name, n in PER_CLASS.items() for _ in range(n)
    ]
    assert panel.labels.draw_status.text().startswith("2 water, 2 vegetation and 1 bare polygon(s) drawn")

    before = list(QgsProject.instance().mapLayers().values())
    outcome = wait_task(dock.run_panel(panel))
    assert outcome.succeeded, outcome.error
    (new,) = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr not in before]
    assert new.name() == "Land cover (S2 sample, my classes)"
    legend = [(c.label, c.color.name()) for c in new.renderer().classes()]
    assert sorted(legend) == sorted(LAND_COVER_CLASSES.items())  # the user's names and colours
    with rasterio.open(new.source()) as ds:
        values = set(np.unique(ds.read(1)).tolist())
    assert {c.value for c in new.renderer().classes()} <= values
    rows = [dock.summary.item(i, 0).text() for i in range(dock.summary.rowCount())]
    assert rows[-1] == "Total" and set(rows[:-1]) == set(LAND_COVER_CLASSES)  # the mapped classes, a total
    assert all(float(dock.summary.item(i, 1).text()) > 0 for i in range(len(rows)))
    report = dock.accuracy.text()
    assert (
        dock.accuracy.isVisibleTo(dock) and "Accuracy on held-back labels" in report and "overall" in report
    )
    for name in LAND_COVER_CLASSES:
        assert f"<td>{name}</td>" in report
    assert "class &#x27;bare&#x27; has a single polygon" in report  # the runtime's warning, shown

    button = dock.save_classifier_button
    assert button.isVisibleTo(dock) and button.isEnabled()
    assert dock.classifier is not None and dock.classifier.parent == Path(dock.output_folder())
    button.click()
    saved = models_dir / "S2_sample_classes.onnx"
    assert saved.is_file() and not button.isEnabled()
    assert "every land-cover model list offers it" in dock.message.text()
    card = read_card(saved)
    assert card.task == "land_cover" and sorted(c.name for c in card.classes) == sorted(LAND_COVER_CLASSES)
    picker = panel.model_picker
    listed = [picker.combo.itemText(i) for i in range(picker.combo.count())]
    assert "S2_sample_classes (your model)" in listed and picker.model_path() == saved
    flood = dock.panels["map_floods"].model_picker
    assert not [
        flood.combo.itemText(i) for i in range(flood.combo.count()) if "S2_sample" in flood.combo.itemText(i)
    ]

    # a new Map floods run clears the report and the button
    dock.clear_result()
    assert not dock.accuracy.isVisibleTo(dock) and not button.isVisibleTo(dock)
