"""The bundled feature extractors (models/weights/encoder_*.onnx) behind land cover in the user's own classes:
their cards, and the whole job on a real TerraMind site with S2, and with S2 + S1."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from contrasat.models.card import FEATURES, read_card
from contrasat.models.own_classes import EXTRACTORS
from contrasat.models.pipeline import land_cover
from contrasat.models.registry import WEIGHTS_DIR
from own_classes_helpers import TERRAMIND, draw_squares, site, write_labels

PATHS = {sensor: WEIGHTS_DIR / f"{name}.onnx" for sensor, name in EXTRACTORS.items()}
pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in PATHS.values()), reason="bundled feature extractors not installed"
)
UNSEEN = "282D_485L_3_3"  # kept out of the extractors' pre-training pool
CLASSES = [1, 2, 6, 9]  # water, trees, bare ground, rangeland


def test_bundled_extractor_cards():
    for sensor, path in PATHS.items():
        card = read_card(path)
        assert card.task == FEATURES and card.classes == []
        assert card.inputs[0].sensor.startswith(sensor)
        out = ort.InferenceSession(str(path)).get_outputs()[0]
        assert len(out.shape) == 4


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    s2, lulc, transform, crs = site(UNSEEN)
    squares = draw_squares(lulc, 5, 6, seed=0, classes=CLASSES)
    return s2, lulc, squares, write_labels(tmp_path_factory.mktemp("l") / "training.gpkg", squares, transform,
                                           crs, 6)  # fmt: skip


def test_s2_on_a_site_the_encoders_never_saw(tmp_path, labels):
    s2, lulc, squares, path = labels
    result = land_cover(
        s2, tmp_path / "lc.tif", labels=path, save_model=tmp_path / "m.onnx", method="encoder-head"
    )
    v = result.validation
    assert v["overall_accuracy"] > 0.7, v  # 4 classes, 5 polygons each, scored on held-back polygons
    card = read_card(tmp_path / "m.onnx")
    assert [e["name"] for e in card.training["encoders"]] == [EXTRACTORS["S2"]]


def test_s2_and_s1_merge_both_extractors(tmp_path, labels):
    s2, lulc, squares, path = labels
    s1 = TERRAMIND / "S1RTC" / f"{UNSEEN}.tif"
    result = land_cover(
        s2, tmp_path / "lc.tif", s1=s1, labels=path, save_model=tmp_path / "m.onnx", method="encoder-head"
    )
    card = read_card(tmp_path / "m.onnx")
    assert [s.name for s in card.inputs] == ["s2", "s1"]
    dims = sum(read_card(p).metrics.get("dim", 0) for p in PATHS.values())
    assert card.training["head"]["features"] == dims
    assert result.validation["overall_accuracy"] > 0.7
    assert np.isfinite(result.validation["macro_f1"])


def test_classifier_on_the_real_extractors_equals_sklearn(tmp_path, labels):
    """Extractors S2 + S1 + head in one ONNX graph give scikit-learn's probabilities on the same pixels."""
    from contrasat.models.own_classes import _card
    from contrasat.models.own_export import build_classifier
    from contrasat.models.own_head import fit_head
    from contrasat.models.own_labels import read_labels

    rng = np.random.default_rng(0)
    feeds = {read_card(p).inputs[0].name: rng.normal(0, 1, (1, len(read_card(p).inputs[0].bands), 64, 64))
             .astype(np.float32) for p in PATHS.values()}  # fmt: skip
    parts = [ort.InferenceSession(str(p)).run(None, {n: feeds[n] for n in [read_card(p).inputs[0].name]})[0][0]
             for p in PATHS.values()]  # fmt: skip
    feats = np.concatenate(parts).reshape(sum(len(x) for x in parts), -1).T
    y = (feats[:, 0] > np.median(feats[:, 0])).astype(int) + (feats[:, -1] > np.median(feats[:, -1]))
    head = fit_head(feats[::7], y[::7])
    layer = read_labels(labels[3], "class")
    layer.classes = layer.classes[:3]
    card = _card(layer, [(p, read_card(p)) for p in PATHS.values()], "parity")
    model = build_classifier(list(PATHS.values()), head, card)
    probs = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0][0]
    np.testing.assert_allclose(probs.reshape(3, -1).T, head.predict_proba(feats), atol=1e-4)
