"""Pre-trained encoders as per-pixel feature extractors: the hypercolumn, the B10 drop, the bundled files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from contrasat.models.card import FEATURES, InputSpec, read_card
from contrasat.training.contrastive.encoders import ResNetEncoder
from contrasat.training.contrastive.features import (
    BUNDLED,
    Hypercolumn,
    drop_s2_band,
    export_extractor,
    feature_card,
)

WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights"
L1C = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def _spec() -> InputSpec:
    return InputSpec(
        "s2", "S2L1C", list(L1C), "reflectance_x10000", [1000.0] * 13, [500.0] * 13, [0.0, 15000.0]
    )


@pytest.mark.parametrize("size", [(32, 32), (37, 53), (5, 9)])
def test_hypercolumn_is_per_pixel_at_input_resolution(size):
    torch.manual_seed(0)
    net = Hypercolumn(ResNetEncoder(13, 8))
    out = net(torch.randn(2, 13, *size))
    assert out.shape == (2, 8 + 16 + 32, *size) and net.dim == 56


def test_dropping_b10_equals_feeding_its_mean():
    torch.manual_seed(1)
    enc = ResNetEncoder(13, 8).eval()
    x = torch.randn(1, 13, 24, 24)
    x[:, L1C.index("B10")] = 0.0  # a normalised band at its mean
    with torch.no_grad():
        ref = Hypercolumn(enc)(x)
        small, spec = drop_s2_band(enc, _spec())
        got = Hypercolumn(small)(torch.cat([x[:, :10], x[:, 11:]], dim=1))
    assert "B10" not in spec.bands and len(spec.mean) == len(spec.std) == 12
    assert torch.allclose(ref, got, atol=1e-5)


def test_export_writes_a_features_card_and_matches_torch(tmp_path):
    torch.manual_seed(2)
    enc, spec = drop_s2_band(ResNetEncoder(13, 8).eval(), _spec())
    card = feature_card("t", spec, 56, "random", {})
    path = tmp_path / "t.onnx"
    assert export_extractor(enc, card, path) < 1e-4
    assert read_card(path).task == FEATURES and read_card(path).classes == []
    x = np.random.default_rng(0).normal(size=(1, 12, 41, 30)).astype(np.float32)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"s2": x})[0]
    with torch.no_grad():
        ref = Hypercolumn(enc)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_extractors_are_small_and_say_what_trained_them(name):
    path = WEIGHTS / f"{name}.onnx"
    card = read_card(path)
    assert path.stat().st_size < 2 * 1024 * 1024 and card.task == FEATURES and card.output_kind == "features"
    assert card.training["method"] == "multimodal" and card.training["labels_used"].startswith("none")
    assert any("BigEarthNet" in d for d in card.training["data"]) and "multimodal" in card.description
    (spec,) = card.inputs
    x = np.zeros((1, len(spec.bands), 45, 70), dtype=np.float32)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {spec.name: x})[0]
    assert out.shape == (1, card.metrics["dim"], 45, 70) and 16 <= card.metrics["dim"] <= 64
    assert spec.bands == (["VV", "VH"] if name.startswith("encoder_s1") else [b for b in L1C if b != "B10"])
