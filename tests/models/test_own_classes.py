"""Land cover in the user's own classes, end to end on a real TerraMind site (S2 + polygons drawn inside the
interiors of its real land-cover map), the saved classifier, its card and the validation by polygon."""

from __future__ import annotations

import csv
import json

import fiona
import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.card import read_card
from contrasat.models.own_export import build_classifier
from contrasat.models.own_head import fit_head, validate
from contrasat.models.own_labels import read_labels
from contrasat.models.pipeline import land_cover
from own_classes_helpers import (
    LULC_NAMES,
    TERRAMIND,
    draw_squares,
    make_extractor,
    s1_features_spec,
    s2_features_spec,
    site,
    write_labels,
)
from shapely.geometry import box, mapping

CLASSES = [
    1,
    2,
    4,
    5,
    9,
]  # water, trees, crops, built area, rangeland: every class of the site with interiors
COLOURS = {1: "#1f78b4", 2: "#33a02c", 4: "#ffff99", 5: "#e31a1c", 9: "#b2df8a"}


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    return make_extractor(tmp_path_factory.mktemp("x") / "enc_s2.onnx", s2_features_spec(), dim=16)


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    s2, lulc, transform, crs = site()
    squares = draw_squares(lulc, 4, 7, seed=1, classes=CLASSES)
    labels = write_labels(folder / "training.gpkg", squares, transform, crs, 7,
                          extra=lambda v: {"Colour": COLOURS[v]})  # fmt: skip
    return s2, lulc, labels, squares


def test_cli_end_to_end_on_a_real_site(tmp_path, extractor, real_site, capsys):
    s2, lulc, labels, squares = real_site
    out, model = tmp_path / "lc.tif", tmp_path / "MY_LC.onnx"
    args = ["land-cover", "--s2", str(s2), "--labels", str(labels), "--field", "class", "--out", str(out),
            "--model", str(extractor), "--method", "encoder-head", "--statistics", str(tmp_path / "a.csv"), "--polygons",
            str(tmp_path / "lc.gpkg"), "--probabilities", str(tmp_path / "p.tif"), "--save-model", str(model),
            "--progress", "json", "--json"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    done = json.loads(captured.err.strip().splitlines()[-1])
    assert done["event"] == "done" and done["result"]["validation"] == summary["validation"]
    names = sorted(LULC_NAMES[v] for v in CLASSES)
    assert [c["name"] for c in summary["classes"]] == names
    assert summary["outputs"]["classifier"] == str(model)
    v = summary["validation"]
    assert set(v["f1"]) == set(names) and 0 <= v["overall_accuracy"] <= 1
    matrix = np.array(v["confusion_matrix"])
    assert matrix.shape == (5, 5) and matrix.sum() == v["held_out_pixels"]
    # the user's colours (field 'Colour') and names in the raster, the CSV and the polygons
    with rasterio.open(out) as src:
        classes = src.read(1)
        cmap = src.colormap(1)
    assert cmap[names.index("water")][:3] == (0x1F, 0x78, 0xB4)
    assert set(np.unique(classes)) <= set(range(5))
    with open(tmp_path / "a.csv", encoding="utf-8") as fh:
        assert sorted(r["name"] for r in csv.DictReader(fh)) == names
    with fiona.open(tmp_path / "lc.gpkg") as src:
        assert {f["properties"]["name"] for f in src} <= set(names)
    # the labelled squares are mapped mostly as drawn (fitted on them; a sanity check of class order)
    hits = [classes[r + 3, c + 3] == names.index(LULC_NAMES[v]) for v, r, c in squares]
    assert np.mean(hits) > 0.6
    # the saved classifier runs like any bundled model and gives the same map
    assert main(["land-cover", "--s2", str(s2), "--model", str(model), "--out", str(tmp_path / "again.tif"),
                 "--progress", "none"]) == 0  # fmt: skip
    with rasterio.open(tmp_path / "again.tif") as src:
        np.testing.assert_array_equal(src.read(1), classes)
    text = capsys.readouterr().out
    assert "water" in text


def test_card_of_the_saved_classifier(tmp_path, extractor, real_site):
    s2, _, labels, squares = real_site
    result = land_cover(s2, tmp_path / "lc.tif", labels=labels, field="class", model=extractor, method="encoder-head",
                        save_model=tmp_path / "mine.onnx")  # fmt: skip
    card = read_card(tmp_path / "mine.onnx")
    assert card.task == "land_cover" and card.name == "mine"
    assert [c.name for c in card.classes] == sorted(LULC_NAMES[v] for v in CLASSES)
    assert {c.name: c.color for c in card.classes}["built area"] == COLOURS[5]
    train = card.training
    assert train["labels"]["file"] == "training.gpkg" and train["labels"]["field"] == "class"
    counts = train["labels"]["classes"]
    assert all(counts[LULC_NAMES[v]]["features"] == sum(s[0] == v for s in squares) for v in CLASSES)
    assert all(c["pixels"] == 25 * c["features"] for c in counts.values())  # 7 x 7 squares, 1 px edge rule
    assert train["encoders"] == [{"name": "enc_s2", "file": "enc_s2.onnx"}]
    assert card.metrics["validation"] == result.validation
    assert card.inputs[0].bands == s2_features_spec().bands


def _tile(path):
    """The site's 224 x 224 S2 as the runtime prepares it for the extractor: (1, 13, 224, 224)."""
    from contrasat.models.preprocess import prepare
    from contrasat.models.rasters import open_input
    from rasterio.windows import Window

    raster = open_input(path, s2_features_spec(), "S2")
    try:
        raw, _ = raster.read(Window(0, 0, 224, 224))
        return prepare(raw, raster.spec)[None]
    finally:
        raster.close()


@pytest.mark.parametrize("n_classes", [2, 4])
def test_onnx_classifier_equals_sklearn_probabilities(tmp_path, extractor, n_classes):
    s2, lulc, _, _ = site()
    x = _tile(s2)
    sess = ort.InferenceSession(str(extractor))
    feats = sess.run(None, {"s2": x})[0][0].reshape(16, -1).T
    rng = np.random.default_rng(0)
    pick = rng.choice(len(feats), 600, replace=False)
    y = rng.integers(0, n_classes, 600)
    y[feats[pick, 0] > np.median(feats[pick, 0])] %= max(n_classes - 1, 1)  # some signal, all classes kept
    head = fit_head(feats[pick], y)
    labels = tmp_path / "l.gpkg"
    squares = [(v, 10 * i, 10 * i) for i, v in enumerate([1, 2, 4, 5][:n_classes])]
    write_labels(labels, squares, *site()[2:], 5)
    card = _card_for(read_labels(labels, "class"), extractor)
    model = build_classifier([extractor], head, card)
    probs = ort.InferenceSession(model.SerializeToString()).run(None, {"s2": x})[0][0]
    assert probs.shape == (n_classes, 224, 224)
    np.testing.assert_allclose(probs.reshape(n_classes, -1).T, head.predict_proba(feats), atol=2e-5)


def _card_for(layer, *extractors):
    from contrasat.models.own_classes import _card

    return _card(layer, [(p, read_card(p)) for p in extractors], "test")


def test_two_extractors_s2_and_s1_merge_into_one_model(tmp_path, extractor):
    s1x = make_extractor(tmp_path / "enc_s1.onnx", s1_features_spec(), dim=4, seed=3)
    name = "433D_629L_3_1"
    s2, lulc, transform, crs = site(name)
    labels = write_labels(
        tmp_path / "l.gpkg", draw_squares(lulc, 3, 6, 0, classes=[1, 2, 4]), transform, crs, 6
    )
    card = _card_for(read_labels(labels, "class"), extractor, s1x)
    x2 = _tile(s2)
    x1 = np.random.default_rng(0).normal(0, 1, (1, 2, 224, 224)).astype(np.float32)
    f2 = ort.InferenceSession(str(extractor)).run(None, {"s2": x2})[0][0]
    f1 = ort.InferenceSession(str(s1x)).run(None, {"s1": x1})[0][0]
    feats = np.concatenate([f2, f1]).reshape(20, -1).T
    y = (feats[:, 0] > np.median(feats[:, 0])).astype(int) + (feats[:, 17] > 0)
    head = fit_head(feats[::50], y[::50])
    model = build_classifier([extractor, s1x], head, card)
    probs = ort.InferenceSession(model.SerializeToString()).run(None, {"s2": x2, "s1": x1})[0][0]
    np.testing.assert_allclose(probs.reshape(3, -1).T, head.predict_proba(feats), atol=2e-5)


def test_s1_adds_the_s1_extractor_end_to_end(tmp_path, monkeypatch):
    """With S1 given and no model named, the bundled S2 and S1 extractors both feed the head."""
    from contrasat.models import own_classes

    make_extractor(tmp_path / "encoder_s2_multimodal.onnx", s2_features_spec(), dim=8)
    make_extractor(tmp_path / "encoder_s1_multimodal.onnx", s1_features_spec(), dim=4, seed=3)
    monkeypatch.setattr(own_classes, "WEIGHTS_DIR", tmp_path)
    name = "433D_629L_3_1"
    s2, lulc, transform, crs = site(name)
    labels = write_labels(
        tmp_path / "l.gpkg", draw_squares(lulc, 3, 6, 0, classes=[1, 2, 4]), transform, crs, 6
    )
    result = land_cover(s2, tmp_path / "lc.tif", s1=TERRAMIND / "S1RTC" / f"{name}.tif", labels=labels,
                        field="class", save_model=tmp_path / "m.onnx", method="encoder-head")  # fmt: skip
    card = read_card(tmp_path / "m.onnx")
    assert [s.name for s in card.inputs] == ["s2", "s1"]
    assert [e["name"] for e in card.training["encoders"]] == [
        "encoder_s2_multimodal",
        "encoder_s1_multimodal",
    ]
    assert card.training["head"]["features"] == 12
    assert result.shape == (224, 224)


def test_validation_holds_back_whole_polygons():
    """Each polygon's pixels share a signature unrelated to its class: held back by pixel, a head would
    recognise the polygon (accuracy near 1); held back by polygon it is at chance, as it must be."""
    from contrasat.models.card import ClassInfo

    rng = np.random.default_rng(0)
    n_groups, per = 40, 50
    signature = rng.normal(0, 3, (n_groups, 64))  # 64 > 40 groups: linearly separable
    group_class = np.arange(n_groups) % 2
    groups = np.repeat(np.arange(n_groups), per)
    x = signature[groups] + rng.normal(0, 0.1, (len(groups), 64))
    y = group_class[groups]
    classes = [ClassInfo(0, "a", "#000000"), ClassInfo(1, "b", "#ffffff")]
    scores = validate(x, y, groups, classes)
    assert scores["overall_accuracy"] < 0.75
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score

    by_pixel = cross_val_score(
        LogisticRegression(max_iter=500), x, y, cv=KFold(5, shuffle=True, random_state=0)
    )
    assert by_pixel.mean() > 0.95  # the leak the polygon split avoids


def test_integer_codes_points_and_another_crs(tmp_path, extractor, real_site):
    s2, lulc, _, _ = real_site
    _, _, transform, crs = site()
    squares = draw_squares(lulc, 6, 3, seed=2, classes=[1, 2, 4])
    labels = write_labels(tmp_path / "pts.geojson", squares, transform, crs, 3, field="code", field_type="int",
                          points=True, to_crs="EPSG:4326")  # fmt: skip
    result = land_cover(s2, tmp_path / "lc.tif", labels=labels, field="code", model=extractor, method="encoder-head",
                        statistics=tmp_path / "a.csv")  # fmt: skip
    assert [c.name for c in result.classes] == ["1", "2", "4"]
    assert result.labels["codes"] == {"1": 1, "2": 2, "4": 4}
    assert all(c["pixels"] == c["features"] == 6 for c in result.labels["classes"].values())
    with rasterio.open(tmp_path / "lc.tif") as src:
        classes = src.read(1)
    hits = [classes[r + 1, c + 1] == [1, 2, 4].index(v) for v, r, c in squares]
    assert np.mean(hits) > 0.8  # each point's own pixel, after the reprojection to UTM and back


def test_warns_on_a_class_with_one_polygon_and_few_pixels(tmp_path, extractor, real_site, capsys):
    s2, lulc, _, _ = real_site
    _, _, transform, crs = site()
    squares = draw_squares(lulc, 3, 8, seed=0, classes=[2, 4]) + draw_squares(lulc, 1, 4, seed=0, classes=[1])
    labels = write_labels(tmp_path / "l.gpkg", squares, transform, crs, 8)
    args = ["land-cover", "--s2", str(s2), "--labels", str(labels), "--out", str(tmp_path / "lc.tif"), "--method", "encoder-head", "--model",
            str(extractor), "--progress", "none"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "holding back whole label features" in text and "overall accuracy" in text
    assert any(line.strip().startswith("water") and "F1" in line for line in text.splitlines())
    assert "class 'water' has a single polygon" in text
    assert "class 'water' has only" in text
    assert "'trees' has a single" not in text


def test_map_over_an_aoi_while_labels_lie_anywhere_on_the_raster(tmp_path, extractor, real_site):
    """Labels train wherever they are; only the AOI is mapped (its window, pixels outside it nodata)."""
    s2, _, labels, _ = real_site
    _, _, transform, crs = site()
    x0, y0 = transform * (50, 60)
    x1, y1 = transform * (150, 140)
    aoi = tmp_path / "aoi.gpkg"
    with fiona.open(
        aoi, "w", driver="GPKG", crs=crs, schema={"geometry": "Polygon", "properties": {}}
    ) as dst:
        dst.write({"type": "Feature", "properties": {},
                   "geometry": mapping(box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))})  # fmt: skip
    result = land_cover(
        s2, tmp_path / "lc.tif", labels=labels, model=extractor, method="encoder-head", aoi=aoi
    )
    whole = land_cover(s2, tmp_path / "whole.tif", labels=labels, model=extractor, method="encoder-head")
    assert result.shape == (80, 100)
    assert result.validation == whole.validation  # the same labels, the same fit
    with rasterio.open(tmp_path / "lc.tif") as a, rasterio.open(tmp_path / "whole.tif") as w:
        inner = a.read(1)[2:-2, 2:-2]
        np.testing.assert_array_equal(inner, w.read(1)[62:138, 52:148])


def test_a_label_file_without_crs_is_taken_in_the_raster_crs(tmp_path, extractor, real_site):
    s2, lulc, _, _ = real_site
    _, _, transform, crs = site()
    squares = draw_squares(lulc, 3, 6, seed=3, classes=[1, 2])
    labels = write_labels(tmp_path / "nocrs.gpkg", squares, transform, crs, 6)
    with fiona.open(labels) as src:
        feats, schema = list(src), src.schema
    bare = tmp_path / "bare.gpkg"
    with fiona.open(bare, "w", driver="GPKG", schema=schema) as dst:  # no CRS at all
        dst.writerecords(feats)
    result = land_cover(s2, tmp_path / "lc.tif", labels=bare, model=extractor, method="encoder-head")
    assert any("names no CRS" in n for n in result.notes)
    assert all(c["pixels"] == 16 * c["features"] for c in result.labels["classes"].values())
