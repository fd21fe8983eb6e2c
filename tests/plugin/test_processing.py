"""The Processing provider: algorithms listed, run from the console API, in a model, cancelled, styled."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from runtime_helpers import expected_classes

ALGORITHMS = ("contrasat:map_floods", "contrasat:land_cover", "contrasat:classify_series")


@pytest.fixture
def processing(plugin, qgis_processing):
    """processing.run with the plugin's provider registered (as QGIS does after initGui)."""
    import processing as module

    return module


class CancelAtFirstProgress(QgsProcessingFeedback):
    """Feedback whose Cancel is pressed as soon as the algorithm reports progress."""

    def setProgress(self, progress: float) -> None:  # noqa: N802
        super().setProgress(progress)
        if progress > 0:
            self.cancel()


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_provider_and_parameters(processing, plugin):
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("contrasat") is plugin.provider
    for alg_id in ALGORITHMS:
        assert registry.algorithmById(alg_id) is not None, alg_id
    flood = registry.algorithmById("contrasat:map_floods")
    names = [p.name() for p in flood.parameterDefinitions()]
    # the names of the hand-written algorithms stay (graphical models and scripts use them)
    assert names == ["INPUT_S1", "INPUT_S2", "PRE_EVENT_S1", "AOI", "MODEL", "OVERLAP", "BATCH", "TILE", "PROVIDER",
                     "THREADS", "DEVICE_ID", "MIN_POLYGON", "OUTPUT", "PROBABILITIES", "POLYGONS",
                     "STATISTICS"]  # fmt: skip
    optional = {p.name() for p in flood.parameterDefinitions() if p.flags() & p.FlagOptional}
    assert optional == set(names) - {"INPUT_S1", "OUTPUT"}
    series = registry.algorithmById("contrasat:classify_series")
    assert [p.name() for p in series.parameterDefinitions()][:2] == ["INPUT_S2", "DATES"]
    land = registry.algorithmById("contrasat:land_cover")
    assert [p.name() for p in land.parameterDefinitions()][:2] == ["INPUT_S2", "INPUT_S1"]
    assert "FLOODED_KM2" in [o.name() for o in flood.outputDefinitions()]
    assert flood.shortHelpString() and flood.displayName() == "Map floods"
    for alg_id in ALGORITHMS:  # cancellable from the dialog, and offered in batch mode
        flags = registry.algorithmById(alg_id).flags()
        assert flags & flood.FlagCanCancel and flags & flood.FlagSupportsBatch


def test_map_floods_from_console(processing, s1_sample, threshold_model, tmp_path):
    out = tmp_path / "flood.tif"
    result = processing.run(
        "contrasat:map_floods",
        {
            "INPUT_S1": str(s1_sample), "MODEL": str(threshold_model), "OUTPUT": str(out),
            "PROBABILITIES": str(tmp_path / "p.tif"), "POLYGONS": str(tmp_path / "water.gpkg"),
            "STATISTICS": str(tmp_path / "areas.csv"),
        },
    )  # fmt: skip
    assert result["OUTPUT"] == str(out) and result["MODEL_NAME"] == "vh_threshold"
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_sample))
    areas = json.loads(result["CLASS_AREAS_JSON"])
    assert result["FLOODED_KM2"] == pytest.approx(areas["water"]) and areas["water"] > 0
    with open(tmp_path / "areas.csv", encoding="utf-8") as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == ["dry", "water"]
    polygons = QgsVectorLayer(result["POLYGONS"], "p", "ogr")
    assert polygons.isValid() and polygons.featureCount() > 0
    assert QgsRasterLayer(result["PROBABILITIES"], "p").bandCount() == 2


def test_land_cover_with_aoi_layer(processing, s2_sample, lc_model, tmp_path):
    s2 = QgsRasterLayer(str(s2_sample), "s2")
    extent = s2.extent()
    aoi = QgsVectorLayer("Polygon?crs=EPSG:4326", "aoi", "memory")
    feature = QgsFeature()
    box = QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.center().x(), extent.center().y())
    feature.setGeometry(QgsGeometry.fromRect(box))
    aoi.dataProvider().addFeatures([feature])
    result = processing.run(
        "contrasat:land_cover",
        {"INPUT_S2": s2, "AOI": aoi, "MODEL": str(lc_model), "OUTPUT": str(tmp_path / "lc.tif")},
    )
    with rasterio.open(result["OUTPUT"]) as src:
        assert abs(src.width - 256) <= 2 and abs(src.height - 256) <= 2  # the lower-left quarter
        assert set(np.unique(src.read(1))) <= {0, 1, 255}
    assert "FLOODED_KM2" not in result or result["FLOODED_KM2"] is None


def test_land_cover_in_my_classes_from_a_labels_layer(processing, plugin, s2_sample, tmp_path):
    """The table's labels, field and save_model parameters: a map in the layer's classes and colours, and
    the fitted classifier as a model that maps other scenes."""
    import sys
    from pathlib import Path

    from contrasat.models.card import read_card

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from qgis_e2e import LAND_COVER_CLASSES, land_cover_squares

    land = QgsApplication.processingRegistry().algorithmById("contrasat:land_cover")
    names = [p.name() for p in land.parameterDefinitions()]
    assert {"LABELS", "FIELD", "SAVE_MODEL"} <= set(names)
    assert land.parameterDefinition("FIELD").parentLayerParameterName() == "LABELS"
    labels = QgsVectorLayer("Polygon?crs=EPSG:4326&field=kind:string&field=colour:string", "labels", "memory")
    features = []
    for square in land_cover_squares(2):
        feature = QgsFeature(labels.fields())
        ring = [QgsPointXY(x, y) for x, y in square["corners"]]
        feature.setGeometry(QgsGeometry.fromPolygonXY([ring]))
        feature.setAttributes([square["class"], LAND_COVER_CLASSES[square["class"]]])
        features.append(feature)
    labels.dataProvider().addFeatures(features)
    saved = tmp_path / "my_classes.onnx"
    result = processing.run(
        "contrasat:land_cover",
        {"INPUT_S2": str(s2_sample), "LABELS": labels, "FIELD": "kind", "OUTPUT": str(tmp_path / "lc.tif"),
         "STATISTICS": str(tmp_path / "lc.csv"), "SAVE_MODEL": str(saved)},
    )  # fmt: skip
    with rasterio.open(result["OUTPUT"]) as src:
        assert set(np.unique(src.read(1)).tolist()) == {0, 1, 2}  # every class mapped, no nodata
    assert set(json.loads(result["CLASS_AREAS_JSON"])) == set(LAND_COVER_CLASSES)
    assert result["SAVE_MODEL"] == str(saved) and result["MODEL_NAME"] == "my_classes"
    card = read_card(saved)
    assert card.task == "land_cover"
    assert {c.name: c.color[:7] for c in card.classes} == LAND_COVER_CLASSES
    assert card.training["labels"]["field"] == "kind"
    assert set(card.metrics["validation"]["f1"]) == set(LAND_COVER_CLASSES)
    # the saved classifier maps like any model
    again = processing.run(
        "contrasat:land_cover",
        {"INPUT_S2": str(s2_sample), "MODEL": str(saved), "OUTPUT": str(tmp_path / "b.tif")},
    )
    with rasterio.open(again["OUTPUT"]) as a, rasterio.open(result["OUTPUT"]) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_classify_series_from_console(processing, series_stack, series_model, tmp_path):
    result = processing.run(
        "contrasat:classify_series",
        {"INPUT_S2": [str(series_stack)], "MODEL": str(series_model), "OUTPUT": str(tmp_path / "s.tif")},
    )
    with rasterio.open(result["OUTPUT"]) as src:
        assert src.shape == (101, 100)
    assert set(json.loads(result["CLASS_AREAS_JSON"])) == {"stable", "changing"}


def test_bad_input_is_a_processing_error(processing, write_raster, threshold_model, tmp_path):
    path = write_raster(tmp_path / "three.tif", np.zeros((3, 8, 8), np.float32))
    with pytest.raises(QgsProcessingException, match="3 band"):
        processing.run(
            "contrasat:map_floods",
            {"INPUT_S1": str(path), "MODEL": str(threshold_model), "OUTPUT": str(tmp_path / "o.tif")},
        )


def test_cancel_leaves_no_file(processing, s1_sample, threshold_model, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    params = {
        "INPUT_S1": str(s1_sample), "MODEL": str(threshold_model), "OUTPUT": str(out_dir / "f.tif"),
        "PROBABILITIES": str(out_dir / "p.tif"), "POLYGONS": str(out_dir / "w.gpkg"),
        "STATISTICS": str(out_dir / "a.csv"),
    }  # fmt: skip
    with pytest.raises(QgsProcessingException, match="cancelled"):
        processing.run("contrasat:map_floods", params, feedback=CancelAtFirstProgress())
    assert _files(out_dir) == []


def test_loaded_output_is_styled(processing, s1_sample, threshold_model, tmp_path, qgis_new_project):
    """runAndLoadResults (the toolbox's path) loads the flood map with the class legend."""
    result = processing.runAndLoadResults(
        "contrasat:map_floods",
        {"INPUT_S1": str(s1_sample), "MODEL": str(threshold_model), "OUTPUT": str(tmp_path / "f.tif")},
    )
    layers = QgsProject.instance().mapLayersByName("Flood map")
    assert len(layers) == 1 and layers[0].source() == result["OUTPUT"]
    renderer = layers[0].renderer()
    assert renderer.type() == "paletted" and [c.label for c in renderer.classes()] == ["dry", "water"]
    assert renderer.classes()[0].color.alpha() == 0


def test_runs_inside_a_model(processing, s1_sample, threshold_model, tmp_path):
    """A graphical model with contrasat:map_floods as its child (as built in the modeler)."""
    model = QgsProcessingModelAlgorithm("flood model", "test")
    model.addModelParameter(QgsProcessingParameterRasterLayer("s1", "S1"), QgsProcessingModelParameter("s1"))
    child = QgsProcessingModelChildAlgorithm("contrasat:map_floods")
    child.setChildId("floods")
    child.addParameterSources("INPUT_S1", [QgsProcessingModelChildParameterSource.fromModelParameter("s1")])
    child.addParameterSources(
        "MODEL", [QgsProcessingModelChildParameterSource.fromStaticValue(str(threshold_model))]
    )
    output = QgsProcessingModelOutput("flood", "flood")
    output.setChildOutputName("OUTPUT")
    child.setModelOutputs({"flood": output})
    model.addChildAlgorithm(child)
    out = tmp_path / "model_flood.tif"
    context = QgsProcessingContext()
    results, ok = model.run(
        {"s1": str(s1_sample), "floods:flood": str(out)}, context, QgsProcessingFeedback()
    )
    assert ok and out.is_file()
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(s1_sample))


class Recorded(QgsProcessingFeedback):
    """Feedback that keeps what the algorithm logged, by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def pushInfo(self, info: str) -> None:  # noqa: N802
        super().pushInfo(info)
        self.infos.append(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        super().pushWarning(warning)
        self.warnings.append(warning)


def test_engine_warnings_are_logged_as_warnings(processing, write_raster, threshold_model, tmp_path):
    """A note the engine gives as a warning is a warning in the Processing log, logged once."""
    data = np.full((2, 32, 32), -12.0, dtype=np.float32)
    data[1, :, :16] = -25.0
    path = write_raster(tmp_path / "small.tif", data, descriptions=("VV", "VH"))
    feedback = Recorded()
    processing.run(
        "contrasat:map_floods",
        {"INPUT_S1": str(path), "MODEL": str(threshold_model), "OUTPUT": str(tmp_path / "f.tif")},
        feedback=feedback,
    )
    (warning,) = [w for w in feedback.warnings if "smaller than one" in w]  # once, as it arrived
    assert "smaller than one 128-pixel tile" in warning
    assert not [i for i in feedback.infos if "smaller than one" in i]


def test_loaded_probability_and_polygon_layers_are_styled(
    processing, s1_sample, threshold_model, tmp_path, qgis_new_project
):
    """runAndLoadResults styles the optional layers as the dock does: p(water) as a white-to-blue ramp (not
    two bands shown as red and green) and the polygons by class with the class names."""
    result = processing.runAndLoadResults(
        "contrasat:map_floods",
        {
            "INPUT_S1": str(s1_sample), "MODEL": str(threshold_model), "OUTPUT": str(tmp_path / "f.tif"),
            "PROBABILITIES": str(tmp_path / "p.tif"), "POLYGONS": str(tmp_path / "w.gpkg"),
        },
    )  # fmt: skip
    layers = {lyr.source().split("|")[0]: lyr for lyr in QgsProject.instance().mapLayers().values()}
    probabilities = layers[result["PROBABILITIES"]]
    renderer = probabilities.renderer()
    assert renderer.type() == "singlebandpseudocolor" and renderer.band() == probabilities.bandCount() == 2
    polygons = layers[result["POLYGONS"]]
    assert polygons.renderer().type() == "categorizedSymbol"
    assert [c.label() for c in polygons.renderer().categories()] == ["water"]  # dry is the background
