"""Class rasters are drawn from the model card: names as legend labels, dry and nodata transparent."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.models.card import ClassInfo
from contrasat.plugin.styling import FLOOD_TRANSPARENT_VALUES, parse_color, style_class_layer
from qgis.core import QgsRasterLayer

CLASSES = [ClassInfo(0, "dry", "#d9d9d9ff"), ClassInfo(1, "water", "#1f78b4ff")]


def test_parse_color_reads_alpha_last():
    color = parse_color("#11223344")
    assert (color.red(), color.green(), color.blue(), color.alpha()) == (0x11, 0x22, 0x33, 0x44)
    assert parse_color("1f78b4").alpha() == 255
    with pytest.raises(ValueError):
        parse_color("#12345")


def test_flood_style_from_card(tmp_path, write_raster):
    data = np.array([[[0, 1], [255, 1]]], dtype=np.uint8)
    layer = QgsRasterLayer(str(write_raster(tmp_path / "c.tif", data, nodata=255)), "c", "gdal")
    style_class_layer(layer, CLASSES, 255, transparent_values=FLOOD_TRANSPARENT_VALUES)
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    entries = {c.value: (c.label, c.color) for c in renderer.classes()}
    assert set(entries) == {0, 1}  # no entry for nodata: it stays transparent
    assert entries[0][0] == "dry" and entries[0][1].alpha() == 0  # dry never hides the basemap
    assert entries[1][0] == "water" and entries[1][1].name() == "#1f78b4" and entries[1][1].alpha() == 255
    assert [label for label, _ in renderer.legendSymbologyItems()] == ["dry", "water"]


def test_nodata_set_when_file_has_none(tmp_path, write_raster):
    data = np.array([[[0, 1], [255, 2]]], dtype=np.uint8)
    layer = QgsRasterLayer(str(write_raster(tmp_path / "c.tif", data)), "c", "gdal")
    classes = [*CLASSES, ClassInfo(2, "built", "#ff0000")]
    style_class_layer(layer, classes, 255)
    assert layer.dataProvider().userNoDataValues(1)[0].min() == 255
    colors = {c.value: c.color for c in layer.renderer().classes()}
    assert colors[0].alpha() == 255  # only flood styling makes class 0 transparent
    assert colors[2].name() == "#ff0000"


def test_results_of_the_same_input_get_names_of_their_own(tmp_path, write_raster, qgis_new_project):
    """A second map of one input names its model; a third from the same model gets a number."""
    from contrasat.plugin.results import JobSummary, add_result_layers

    path = write_raster(tmp_path / "flood.tif", np.array([[[0, 1], [1, 0]]], dtype=np.uint8))
    names = []
    for _ in range(3):
        summary = JobSummary("flood", path, model_name="flood_s1_contrastive", classes=CLASSES)
        (layer,) = add_result_layers(summary, "S1 sample")
        names.append(layer.name())
    assert names == [
        "Flood map (S1 sample)",
        "Flood map (S1 sample, flood_s1_contrastive)",
        "Flood map (S1 sample, flood_s1_contrastive #2)",
    ]
