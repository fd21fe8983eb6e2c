"""ONNX export of the two-input fusion model and the land-cover model: parity, cards, the real runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from contrasat.models.card import read_card
from contrasat.models.pipeline import land_cover, map_floods
from contrasat.training.common.export import ProbsNet, parity
from contrasat.training.common.networks.segnet import SegNet
from contrasat.training.contrastive.cards import LANDCOVER_CLASSES, card_for
from contrasat.training.contrastive.export import export_segnet
from contrasat.training.contrastive.pool import specs_from
from contrasat.training.contrastive.scenes import load_terramind
from contrastive_helpers import terramind_root

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


@pytest.fixture(scope="module")
def specs():
    return specs_from(load_terramind(terramind_root()))


def _net(names: list[str], classes: int) -> SegNet:
    torch.manual_seed(0)
    net = SegNet(names, classes, width=8)
    for m in net.modules():  # non-trivial BN statistics, so parity covers them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_fusion_export_parity_and_runtime(specs, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    net = _net(["s1", "s2"], 2)
    path = tmp_path / "fusion.onnx"
    diff = export_segnet(
        net, card_for("flood_fusion", specs, ["s1", "s2"], {"heldout": {"water_iou": 0.5}}, {}), path, tile=64
    )
    assert diff < 1e-4
    assert parity(path, ProbsNet(net), [{"s1": (3, 2, 32, 48), "s2": (3, 13, 32, 48)}]) < 1e-4
    card = read_card(path)
    assert [(i.name, i.sensor, len(i.bands)) for i in card.inputs] == [("s1", "S1", 2), ("s2", "S2L1C", 13)]
    assert card.metrics["heldout"]["water_iou"] == 0.5
    s1, s2 = SAMPLE / "Spain_7370579_S1Hand.tif", SAMPLE / "Spain_7370579_S2Hand.tif"
    result = map_floods(s1, tmp_path / "flood.tif", s2=s2, model=path)
    with rasterio.open(result.output) as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 255}
        assert src.shape == (512, 512)


def test_landcover_export_classes_and_runtime(specs, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    net = _net(["s2"], 10)
    path = tmp_path / "lc.onnx"
    assert export_segnet(net, card_for("landcover_s2", specs, ["s2"], {}, {}), path, tile=64) < 1e-4
    card = read_card(path)
    assert card.task == "land_cover" and [c.name for c in card.classes] == [c.name for c in LANDCOVER_CLASSES]
    assert card.classes[1].name == "water" and card.classes[9].name == "rangeland"
    s2 = SAMPLE / "Spain_7370579_S2Hand.tif"
    result = land_cover(s2, tmp_path / "lc.tif", model=path)
    with rasterio.open(result.output) as src:
        assert set(np.unique(src.read(1))) <= set(range(10)) | {255}
