"""`contrasat:finetune` in Processing: labelled polygons from a layer (with their class field) fit a model on
the engine, out of QGIS's process; the engine's refusals come back as Processing errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.card import read_card
from contrasat.training.finetune.label_draw import draw_polygons, write_labels
from qgis.core import (
    QgsApplication,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

FLOODS = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "sen1floods11"
CHIP = "Spain_7370579"


@pytest.fixture
def processing(plugin, qgis_processing):
    import processing as module

    return module


@pytest.fixture
def layers(qgis_new_project, tmp_path):
    """The real S1 chip window and 8 polygons drawn from its hand labels, as project layers."""
    s1 = FLOODS / "S1Hand" / f"{CHIP}_S1Hand.tif"
    with rasterio.open(FLOODS / "LabelHand" / f"{CHIP}_LabelHand.tif") as ds:
        polygons = draw_polygons(ds.read(1), ds.transform, 8, np.random.default_rng(3))
        crs = ds.crs
    raster = QgsRasterLayer(str(s1), "s1", "gdal")
    water_only = write_labels(
        [p for p in polygons if p[1] == 1], crs, tmp_path / "water.gpkg", dst_crs="EPSG:3857"
    )
    labels = QgsVectorLayer(
        str(write_labels(polygons, crs, tmp_path / "labels.gpkg", dst_crs="EPSG:3857")), "labels", "ogr"
    )
    water = QgsVectorLayer(str(water_only), "water", "ogr")
    assert raster.isValid() and labels.isValid() and water.isValid()
    QgsProject.instance().addMapLayers([raster, labels, water])
    return raster, labels, water


def test_finetune_algorithm_writes_a_model_from_a_label_layer(processing, layers, tmp_path):
    raster, labels, _ = layers
    assert QgsApplication.processingRegistry().algorithmById("contrasat:finetune") is not None
    out = tmp_path / "mine.onnx"
    params = {"INPUT_S1": [raster], "LABELS": labels, "FIELD": "class", "STEPS": 10, "OUTPUT": str(out)}
    result = processing.run("contrasat:finetune", params)
    assert Path(result["OUTPUT"]) == out and out.is_file()
    card = read_card(out)
    assert card.training["method"] == "fine-tuned on user labels"
    assert (
        card.training["labels"]["train"]["water"]["polygons"]
        + card.training["labels"]["heldout"]["water"]["polygons"]
        == 4
    )
    assert set(json.loads(result["HELDOUT_WATER_IOU"])) == {"finetuned", "base"}


def test_finetune_algorithm_reports_the_engines_refusal(processing, layers, tmp_path):
    raster, _, water = layers
    params = {
        "INPUT_S1": [raster],
        "LABELS": water,
        "FIELD": "class",
        "STEPS": 5,
        "OUTPUT": str(tmp_path / "x.onnx"),
    }
    with pytest.raises(QgsProcessingException, match="only one class"):
        processing.run("contrasat:finetune", params)
    assert not (tmp_path / "x.onnx").exists()


class CancelAtFirstProgress(QgsProcessingFeedback):
    """Feedback whose Cancel is pressed as soon as the engine reports progress."""

    def setProgress(self, progress: float) -> None:  # noqa: N802
        super().setProgress(progress)
        if progress > 0:
            self.cancel()


def test_finetune_algorithm_cancels_and_leaves_nothing(processing, layers, tmp_path):
    raster, labels, _ = layers
    out = tmp_path / "cancelled.onnx"
    params = {"INPUT_S1": [raster], "LABELS": labels, "FIELD": "class", "STEPS": 200, "OUTPUT": str(out)}
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run("contrasat:finetune", params, feedback=CancelAtFirstProgress())
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.suffix == ".onnx"] == []
