"""Exported tree ensembles: ONNX Runtime equals the fitted scikit-learn model on real pixels, NCHW in and out."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from contrasat.models.card import read_card
from contrasat.training.landcover.config import GbmConfig, LandcoverConfig, NetConfig, RfConfig
from contrasat.training.landcover.data import CLIP, load_sites
from contrasat.training.landcover.export import normalised, reference_probs, tree_parity
from contrasat.training.landcover.models import fit_gbm, fit_rf, norm_stats, sample_pixels
from contrasat.training.landcover.onnx_graph import tree_model_onnx


@pytest.fixture(scope="module")
def sites():
    return load_sites()


@pytest.mark.parametrize("kind", ["gbm", "rf"])
def test_tree_onnx_matches_sklearn_on_real_pixels(sites, kind, tmp_path):
    import onnx

    x, y = sample_pixels(sites, 1500, 0)
    if kind == "gbm":
        model = fit_gbm(x, y, GbmConfig(max_iter=15), 0)
    else:
        model = fit_rf(x, y, RfConfig(n_estimators=8), 0)
    mean, std = norm_stats(x)
    path = tmp_path / "m.onnx"
    onnx.save(tree_model_onnx(model, mean, std, CLIP), str(path))
    check = tree_parity(path, model, sites, mean, std)
    assert check["pixels"] == sum(s.label.size for s in sites)
    # features are bit-identical (whole DN) and thresholds exact in float32: no pixel may differ
    assert check["max_diff"] < 1e-5 and check["same_class"] == 1.0
    # one site through the graph as the runtime feeds it: (N, 10, H, W), probabilities summing to 1
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    site = sites[2]
    out = sess.run(None, {"s2": np.concatenate([normalised(site, mean, std)] * 2)})[0]
    assert out.shape == (2, 10, *site.label.shape)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    ref = reference_probs(model, site).T.reshape(10, *site.label.shape)
    np.testing.assert_allclose(out[1], ref, atol=1e-5)
    assert (out[:, 0] == 0).all()  # "no data" is never a fitted class


def test_export_winner_writes_card(sites, tmp_path, monkeypatch):
    import json

    from contrasat.training.landcover import evaluate
    from contrasat.training.landcover.export import export_winner

    cfg = LandcoverConfig(pixels_per_site=800, seeds=(0,), methods=("majority", "gbm"),
                          gbm=GbmConfig(max_iter=10), net=NetConfig(steps=5))  # fmt: skip
    results = evaluate.loso(sites, cfg)
    path = evaluate.write_results(tmp_path / "results.json", results, sites, cfg, {})
    out = export_winner(path, tmp_path / "lc.onnx")
    card = read_card(out)
    assert card.name == "landcover_s2_pixel" and card.task == "land_cover" and len(card.classes) == 10
    assert card.metrics["loso"]["method"] == "gbm"
    doc = json.loads(path.read_text())
    assert card.metrics["loso"]["pooled_miou"] == pytest.approx(
        doc["methods"]["gbm"]["0"]["pooled"]["miou"], abs=1e-4
    )
    assert card.training["parity"]["within_1e-4"] >= 0.999
