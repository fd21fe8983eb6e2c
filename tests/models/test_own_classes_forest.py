"""The default own-classes method, the own-classes study's winner: a random forest on the S2 bands, three
indices and their 3x3 and 7x7 means, computed inside ONE ONNX model. Real TerraMind sites throughout."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models import own_context
from contrasat.models.card import read_card
from contrasat.models.jobs import job
from contrasat.models.own_head import FOREST
from contrasat.models.pipeline import land_cover
from contrasat.training.ownclasses.features import context_features
from contrasat.training.ownclasses.sites import load_site
from own_classes_helpers import DATA, SITE, TERRAMIND, draw_squares, site, write_labels

CLASSES = [1, 2, 4, 5, 9]  # water, trees, crops, built area, rangeland
OTHER = "282D_485L_3_3"  # another scene for the saved classifier


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The CLI with its defaults (no --method): map, saved classifier and the JSON summary."""
    folder = tmp_path_factory.mktemp("forest")
    s2, lulc, transform, crs = site()
    labels = write_labels(folder / "training.gpkg", draw_squares(lulc, 4, 7, seed=1, classes=CLASSES), transform,
                          crs, 7)  # fmt: skip
    out, model = folder / "lc.tif", folder / "MY_LC.onnx"
    args = ["land-cover", "--s2", str(s2), "--labels", str(labels), "--field", "class", "--out", str(out),
            "--save-model", str(model), "--progress", "none", "--json"]  # fmt: skip
    return folder, out, model, main, args


def test_default_method_is_the_forest_and_the_card_names_it(fitted, capsys):
    folder, out, model, run, args = fitted
    method = next(p for p in job("land-cover").inputs if p.name == "method")
    assert method.default == FOREST and set(method.choices) == {FOREST, "encoder-head"}
    assert run(args) == 0
    summary = json.loads(capsys.readouterr().out)
    card = read_card(model)
    assert card.training["method"] == FOREST and card.training["encoders"] == []
    assert card.training["head"]["n_estimators"] == 100 and card.training["head"]["features"] == 48
    assert "random forest" in card.description
    assert [s.name for s in card.inputs] == ["s2"] and len(card.inputs[0].bands) == 13
    assert card.metrics["validation"] == summary["validation"]
    assert (
        summary["validation"]["overall_accuracy"] > 0.5
    )  # 5 classes (chance 0.2), 4 polygons each, held back
    with rasterio.open(out) as src:
        assert src.read(1).max() < len(CLASSES)


def test_onnx_forest_equals_sklearn_on_the_same_pixels(tmp_path):
    """The saved model's probabilities == the forest's predict_proba on the features of the same pixels."""
    from contrasat.models.own_classes import _card
    from contrasat.models.own_export import build_forest_classifier
    from contrasat.models.own_head import fit_head
    from contrasat.models.own_labels import read_labels

    st = load_site(DATA, f"terramind/{SITE}")
    x = np.nan_to_num(st.s2 / 10000.0, nan=0.0).astype(np.float32)[None]  # what prepare() feeds the model
    feats = ort.InferenceSession(own_context.feature_model().SerializeToString()).run(None, {"s2": x})[0][0]
    _, lulc, transform, crs = site()
    labels = write_labels(tmp_path / "l.gpkg", draw_squares(lulc, 3, 7, seed=2, classes=CLASSES), transform,
                          crs, 7)  # fmt: skip
    layer = read_labels(labels, "class")
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, lulc.shape[0], 3000), rng.integers(0, lulc.shape[1], 3000)
    y = rng.integers(0, len(layer.classes), 3000)  # noisy labels: deep trees with many splits to get right
    forest = fit_head(feats[:, rows, cols].T, y, FOREST)
    model = build_forest_classifier(
        forest, _card(layer, [(tmp_path / "f.onnx", own_context.card())], "t", FOREST)
    )
    got = ort.InferenceSession(model.SerializeToString()).run(None, {"s2": x})[0][0]
    want = forest.predict_proba(feats.reshape(48, -1).T).T.reshape(got.shape)
    assert got.shape == (len(layer.classes), *lulc.shape)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_feature_graph_equals_the_study_features():
    st = load_site(DATA, f"terramind/{SITE}")
    x = np.nan_to_num(st.s2 / 10000.0, nan=0.0).astype(np.float32)[None]
    got = ort.InferenceSession(own_context.feature_model().SerializeToString()).run(None, {"s2": x})[0][0]
    np.testing.assert_allclose(got, context_features(st), atol=1e-6)


def test_saved_forest_runs_on_another_scene(fitted, tmp_path):
    folder, out, model, run, args = fitted
    if not model.exists():
        assert run(args) == 0
    again = tmp_path / "again.tif"
    s2_other = TERRAMIND / "S2L1C" / f"{OTHER}.tif"
    assert main(["land-cover", "--s2", str(s2_other), "--model", str(model), "--out", str(again),
                 "--progress", "none"]) == 0  # fmt: skip
    with rasterio.open(again) as src, rasterio.open(s2_other) as ref:
        classes = src.read(1)
        assert classes.shape == (ref.height, ref.width)
    assert len(np.unique(classes)) >= 2


def test_encoder_head_still_works_with_the_option(tmp_path, monkeypatch):
    from contrasat.models import own_classes
    from own_classes_helpers import make_extractor, s2_features_spec

    make_extractor(tmp_path / "encoder_s2_multimodal.onnx", s2_features_spec(), dim=8)
    monkeypatch.setattr(own_classes, "WEIGHTS_DIR", tmp_path)
    s2, lulc, transform, crs = site()
    labels = write_labels(tmp_path / "l.gpkg", draw_squares(lulc, 3, 7, seed=0, classes=[1, 2, 4]), transform,
                          crs, 7)  # fmt: skip
    assert main(["land-cover", "--s2", str(s2), "--labels", str(labels), "--out", str(tmp_path / "lc.tif"),
                 "--save-model", str(tmp_path / "m.onnx"), "--method", "encoder-head", "--progress", "none"]) == 0  # fmt: skip
    card = read_card(tmp_path / "m.onnx")
    assert card.training["method"] == "encoder-head"
    assert [e["name"] for e in card.training["encoders"]] == ["encoder_s2_multimodal"]
    assert card.training["head"]["features"] == 8


def test_forest_refuses_a_feature_extractor_and_ignores_s1(tmp_path, capsys):
    s2, lulc, transform, crs = site()
    labels = write_labels(
        tmp_path / "l.gpkg", draw_squares(lulc, 2, 7, seed=0, classes=[1, 2]), transform, crs, 7
    )
    code = main(["land-cover", "--s2", str(s2), "--labels", str(labels), "--out", str(tmp_path / "lc.tif"),
                 "--model", str(tmp_path / "x.onnx"), "--progress", "none"])  # fmt: skip
    assert code == 2 and "encoder-head method only" in capsys.readouterr().err
    assert not (tmp_path / "lc.tif").exists()
    result = land_cover(s2, tmp_path / "lc.tif", s1=TERRAMIND / "S1RTC" / f"{SITE}.tif", labels=labels)
    assert any("Sentinel-1 is not used" in n for n in result.notes)


def test_l2a_input_uses_its_twelve_bands(tmp_path):
    """L2A (no B10): the forest uses the 12 bands it has (45 features) instead of refusing the raster."""
    s2, lulc, transform, crs = site()
    l2a = tmp_path / "l2a.tif"
    with rasterio.open(s2) as src:
        profile, data = src.profile, src.read()
    keep = [i for i in range(13) if i != 10]  # B10 is the 11th L1C band
    profile.update(count=12)
    with rasterio.open(l2a, "w", **profile) as dst:
        dst.write(data[keep])  # no descriptions: 12 bands are taken in L2A order
    labels = write_labels(
        tmp_path / "l.gpkg", draw_squares(lulc, 3, 7, seed=0, classes=[1, 2, 4]), transform, crs, 7
    )
    result = land_cover(l2a, tmp_path / "lc.tif", labels=labels, save_model=tmp_path / "m.onnx")
    card = read_card(tmp_path / "m.onnx")
    assert (
        card.inputs[0].bands == [b for b in card.inputs[0].bands if b != "B10"]
        and len(card.inputs[0].bands) == 12
    )
    assert card.training["head"]["features"] == 45
    assert any("L2A" in n for n in result.notes)
