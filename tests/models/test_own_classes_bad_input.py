"""Bad training labels (and inputs) for land cover in the user's own classes: one `contrasat: error:` line,
exit code 2, before any model runs, and nothing written."""

from __future__ import annotations

import json

import fiona
import numpy as np
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models import own_features
from own_classes_helpers import draw_squares, make_extractor, s2_features_spec, site
from shapely.geometry import box, mapping

LOCAL_CRS = 'LOCAL_CS["Site grid",UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    return make_extractor(tmp_path_factory.mktemp("x") / "enc.onnx", s2_features_spec())


@pytest.fixture
def no_model_runs(monkeypatch):
    """Fail the test if a feature extractor runs: every refusal here comes before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model ran before the bad input was refused")

    monkeypatch.setattr(own_features, "run_extractor", refuse)


def _write(path, features, schema_props, crs="EPSG:32718", geometry="Polygon", driver=None, crs_wkt=None):
    kwargs = {"crs_wkt": crs_wkt} if crs_wkt else {"crs": crs}
    with fiona.open(path, "w", driver=driver or "GPKG", schema={"geometry": geometry, "properties": schema_props},
                    **kwargs) as dst:  # fmt: skip
        for geom, props in features:
            dst.write({"type": "Feature", "geometry": mapping(geom), "properties": props})
    return path


def _squares(n=2, side=7):
    """n 7 x 7 px squares per class of the real site, as (shapely box, class name)."""
    s2, lulc, t, crs = site()
    out = []
    for value, r, c in draw_squares(lulc, n, side, 0, classes=[1, 2]):
        x0, y0 = t * (c, r)
        x1, y1 = t * (c + side, r + side)
        out.append((box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), {1: "water", 2: "trees"}[value]))
    return out


def _run(tmp_path, labels, extractor, capsys, *extra, s2=None):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    args = ["land-cover", "--s2", str(s2 or site()[0]), "--labels", str(labels), "--out", str(out / "lc.tif"),
            "--statistics", str(out / "a.csv"), "--polygons", str(out / "p.gpkg"), "--save-model",
            str(out / "m.onnx"), "--model", str(extractor), "--method", "encoder-head", "--progress", "json", *extra]  # fmt: skip
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    event = json.loads(err[-1])
    assert event["event"] == "error"
    assert list(out.iterdir()) == [], "something was written"
    message = event["message"]
    assert "\n" not in message and len(message) < 300
    return message


def test_labels_outside_the_raster(tmp_path, extractor, capsys, no_model_runs):
    far = [(geom.__class__(np.array(geom.exterior.coords) + [50_000, 0]), {"class": name})
           for geom, name in _squares()]  # fmt: skip
    labels = _write(tmp_path / "far.gpkg", far, {"class": "str"})
    assert "lie outside the raster" in _run(tmp_path, labels, extractor, capsys, "--field", "class")


def test_a_single_class(tmp_path, extractor, capsys, no_model_runs):
    labels = _write(tmp_path / "one.gpkg", [(g, {"class": "water"}) for g, _ in _squares()], {"class": "str"})
    assert "single class (water)" in _run(tmp_path, labels, extractor, capsys, "--field", "class")


def test_a_class_left_without_pixels_by_the_edge_rule(tmp_path, extractor, capsys, no_model_runs):
    squares = _squares()
    thin = [(g, {"class": n}) for g, n in squares if n == "water"]
    g = next(g for g, n in squares if n == "trees")
    x0, y0, _, _ = g.bounds
    thin.append((box(x0, y0, x0 + 20, y0 + 20), {"class": "trees"}))  # 2 x 2 px: nothing left inside 1 px
    labels = _write(tmp_path / "thin.gpkg", thin, {"class": "str"})
    message = _run(tmp_path, labels, extractor, capsys, "--field", "class")
    assert "class 'trees'" in message and "no labelled pixel" in message


def test_a_feature_without_class_value(tmp_path, extractor, capsys, no_model_runs):
    features = [(g, {"class": n}) for g, n in _squares()]
    features[1] = (features[1][0], {"class": None})
    labels = _write(tmp_path / "null.gpkg", features, {"class": "str"})
    message = _run(tmp_path, labels, extractor, capsys, "--field", "class")
    assert (
        "1 feature(s)" in message and "no value in class field 'class'" in message and "feature 2" in message
    )


def test_a_class_field_of_mixed_types_geojson(tmp_path, extractor, capsys, no_model_runs):
    from rasterio.warp import transform_geom

    feats = []
    for i, (g, n) in enumerate(_squares()):
        geom = transform_geom("EPSG:32718", "EPSG:4326", mapping(g))
        feats.append({"type": "Feature", "geometry": geom, "properties": {"class": 3 if i == 0 else n}})
    labels = tmp_path / "mixed.geojson"
    labels.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    assert "mixed types" in _run(tmp_path, labels, extractor, capsys, "--field", "class")


def test_a_class_field_mixing_codes_and_names(tmp_path, extractor, capsys, no_model_runs):
    features = [(g, {"class": "4" if i == 0 else n}) for i, (g, n) in enumerate(_squares())]
    labels = _write(tmp_path / "mixed.gpkg", features, {"class": "str"})
    assert "mixes integer codes and other values" in _run(
        tmp_path, labels, extractor, capsys, "--field", "class"
    )


def test_a_label_crs_that_cannot_be_transformed(tmp_path, extractor, capsys, no_model_runs):
    features = [(g, {"class": n}) for g, n in _squares()]
    labels = _write(tmp_path / "local.gpkg", features, {"class": "str"}, crs_wkt=LOCAL_CRS)
    message = _run(tmp_path, labels, extractor, capsys, "--field", "class")
    assert "(Site grid) cannot be transformed to the raster's (EPSG:32718)" in message


def test_s2_lacking_bands_the_encoder_needs(tmp_path, extractor, capsys, no_model_runs):
    s2, _, _, _ = site()
    with rasterio.open(s2) as src:
        profile, data = src.profile, src.read([2, 3, 4, 8])
    profile.update(count=4)
    rgbn = tmp_path / "rgbn.tif"
    with rasterio.open(rgbn, "w", **profile) as dst:
        dst.write(data)
    labels = _write(tmp_path / "ok.gpkg", [(g, {"class": n}) for g, n in _squares()], {"class": "str"})
    message = _run(tmp_path, labels, extractor, capsys, "--field", "class", s2=rgbn)
    assert "has 4 band(s); the model needs B01/" in message


def test_a_field_missing_from_the_layer_lists_the_fields(tmp_path, extractor, capsys, no_model_runs):
    features = [(g, {"landuse": n, "note": "x"}) for g, n in _squares()]
    labels = _write(tmp_path / "f.gpkg", features, {"landuse": "str", "note": "str"})
    message = _run(tmp_path, labels, extractor, capsys, "--field", "class")
    assert "no field 'class'" in message and "fields: landuse, note" in message


def test_a_land_cover_model_with_labels_is_refused(tmp_path, capsys, no_model_runs):
    from contrasat.models.registry import WEIGHTS_DIR

    labels = _write(tmp_path / "ok.gpkg", [(g, {"class": n}) for g, n in _squares()], {"class": "str"})
    message = _run(tmp_path, labels, WEIGHTS_DIR / "landcover_s2.onnx", capsys, "--field", "class")
    assert "must be a feature extractor" in message


def test_saving_a_classifier_without_labels_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = main(["land-cover", "--s2", str(site()[0]), "--out", str(out / "lc.tif"), "--save-model",
                 str(out / "m.onnx"), "--progress", "none"])  # fmt: skip
    assert code == 2 and "needs training labels" in capsys.readouterr().err
    assert list(out.iterdir()) == []
