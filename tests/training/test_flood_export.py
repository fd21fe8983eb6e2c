import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from contrasat.models.card import read_card
from contrasat.training.common import export as export_mod
from contrasat.training.common.export import export_s1_net
from contrasat.training.common.flood_data.sen1floods11 import s1_spec
from contrasat.training.common.metrics import Counts
from contrasat.training.common.networks.unet import UNet
from contrasat.training.flood.card import flood_card
from contrasat.training.flood.config import FloodConfig


def _card():
    counts = {
        "model": Counts(5, 1, 2, 10),
        "otsu_vh": Counts(4, 3, 3, 8),
        "fixed_vh_-20dB": Counts(0, 0, 0, 9),
    }
    loco = {"per_chip": {"A": counts}, "pooled": counts}
    spec = s1_spec([-12.0, -19.0], [4.0, 5.0])
    return flood_card(spec, FloodConfig(steps=7, seed=3), "A", ["B", "C"], counts, loco, params=123)


def test_export_round_trip_matches_torch_and_card_is_readable(tmp_path):
    torch.manual_seed(0)
    net = UNet(width=4).eval()
    path = tmp_path / "flood.onnx"
    diff = export_s1_net(net, _card(), path, tile=64)
    assert diff < 1e-4
    card = read_card(path)
    assert card.name == "flood_s1_unet" and card.task == "flood"
    assert [(c.value, c.name, c.color) for c in card.classes] == [
        (0, "dry", "#00000000"),
        (1, "water", "#1f78b4ff"),
    ]
    assert card.inputs[0].bands == ["VV", "VH"] and card.inputs[0].clip == [-50.0, 5.0]
    assert card.metrics["heldout"]["water_iou"]["fixed_vh_-20dB"] is None  # undefined IoU is null, not NaN
    assert card.training["steps"] == 7 and card.training["data_license"] == "CC-BY-4.0"
    graph = onnx.load(str(path)).graph
    assert graph.node[-1].op_type == "Softmax"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["s1"] and [o.name for o in sess.get_outputs()] == ["probs"]
    x = np.random.default_rng(0).normal(size=(3, 2, 48, 80)).astype(np.float32)  # dynamic N, H, W
    probs = sess.run(["probs"], {"s1": x})[0]
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    assert probs.shape == (3, 2, 48, 80)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.max(np.abs(probs - ref)) < 1e-4


def test_export_fails_and_removes_file_when_parity_breaks(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "parity", lambda *a, **k: 3e-3)  # as if ORT disagreed with torch
    path = tmp_path / "bad.onnx"
    with pytest.raises(export_mod.ParityError):
        export_s1_net(UNet(width=4).eval(), _card(), path, tile=32)
    assert not path.exists()
