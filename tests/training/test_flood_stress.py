"""Stress-set construction and scoring, the VH-anchored network and the LORO scoring (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from contrasat.training.common.flood_data.regions import Chip
from contrasat.training.common.loro.scoring import score_region
from contrasat.training.common.loro.training import augment
from contrasat.training.common.metrics import counts_iou
from contrasat.training.flood import stress
from contrasat.training.flood.region_runs import Recipe
from contrasat.training.flood.safeguard import ThresholdResidual, receptive_field
from contrasat.training.flood.ship import UnionWithRule

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "flood_stress" / "stress.npz"


def _chip(label: np.ndarray, vh_water: float = -28.0, vh_dry: float = -15.0) -> Chip:
    s1 = np.zeros((2, *label.shape), dtype=np.float32)
    s1[0] = np.where(label == 1, -20.0, -9.0)
    s1[1] = np.where(label == 1, vh_water, vh_dry)
    return Chip("t", s1, label.astype(np.int64))


def test_whole_tiles_are_cut_only_inside_one_class(rng):
    label = np.zeros((256, 256), dtype=np.int64)
    label[:, :100] = 1  # 64-px tiles at x = 0 and 32 are all water; x = 64 crosses the shore
    tiles = stress.whole_tiles([_chip(label)], 1, rng, 100)
    assert len(tiles) == 2 * 7 and all(np.all(t[1] == -28.0) for t in tiles)
    dry = stress.whole_tiles([_chip(label)], 0, rng, 5)
    assert len(dry) == 5 and all(np.all(t[1] == -15.0) for t in dry)


def test_vv_raise_touches_vv_on_water_only():
    label = np.array([[1, 0], [0, -1]])[None]
    s1 = np.full((1, 2, 2, 2), -20.0, dtype=np.float32)
    out = stress.vv_raised(s1, label, 6.0)
    assert (
        out[0, 0, 0, 0] == -14.0 and np.all(out[0, 0][label[0] != 1] == -20.0) and np.all(out[0, 1] == -20.0)
    )


def test_water_tile_rule_is_half_the_pixels():
    tiles = np.zeros((2, 2, 4, 4), dtype=np.float32)

    def predict(s1):  # 8 of 16 pixels water in tile 0, 7 in tile 1
        p = np.zeros((2, 4, 4))
        p[0].flat[:8] = 1
        p[1].flat[:7] = 1
        return p

    assert stress.water_tile_rate(predict, tiles) == 0.5


def test_fixture_is_small_real_and_scores_a_vh_rule_as_vv_blind():
    assert FIXTURE.stat().st_size < 3e6
    fx = stress.load_fixture(FIXTURE)
    assert {"a_water_sen1floods11", "a_dry_ETCI_northal", "a_water_ombria", "bc_s1"} <= set(fx)
    assert np.all(fx["bc_label"] >= -1) and (fx["bc_label"] == 1).any() and (fx["bc_label"] == 0).any()
    res = stress.score(lambda s1: (s1[:, 1] < -20).astype(float), fx)
    assert res["water_tile_rate_water_sen1floods11"] == 1.0  # open water: VH far below -20 dB
    assert all(res[f"iou_loss_vv+{d:g}dB_on_water"] == 0 for d in stress.VV_RAISES_DB)
    assert res["iou_loss_gain-3dB"] > 0.03  # an absolute threshold is not offset-invariant: (c) can fail


def test_threshold_residual_starts_as_the_vh_rule():
    mean, std = [-10.0, -17.0], [4.0, 5.0]
    net = ThresholdResidual(mean, std, width=4, layers=3).eval()
    assert receptive_field(net) == 7
    vh = torch.tensor([-25.0, -21.0, -19.0, -12.0])
    x = torch.zeros(1, 2, 1, 4)
    x[0, 1, 0] = (vh - mean[1]) / std[1]
    p = torch.softmax(net(x), dim=1)[0, 1, 0]
    assert torch.equal(p > 0.5, vh < -20)


def test_union_safeguard_is_water_where_either_says_water():
    net = ThresholdResidual([-10.0, -17.0], [4.0, 5.0], width=4).eval()
    with torch.no_grad():
        net.threshold.fill_(-30.0)  # the network alone calls nothing water above -30 dB
    guarded = UnionWithRule(net, -17.0, 5.0).eval()
    x = torch.zeros(1, 2, 1, 3)
    x[0, 1, 0] = (torch.tensor([-35.0, -22.0, -15.0]) + 17.0) / 5.0
    p = torch.softmax(guarded(x), dim=1)[0, 1, 0]
    assert (p > 0.5).tolist() == [True, True, False]


def test_augment_keeps_image_and_label_together(rng):
    label = np.zeros((128, 128), dtype=np.int64)
    label[:, 64:] = 1
    chip = _chip(label)
    recipe = Recipe(name="t", crop=32, gain_db=0.0, vv_water_raise_db=0.0, noise_db=0.0, vv_dropout=0.0)
    for _ in range(20):
        img, lab = augment(chip, recipe, rng)
        assert np.all((img[1] < -20) == (lab == 1))


def test_score_region_uses_the_same_pixels_for_every_method():
    label = np.zeros((64, 64), dtype=np.int64)
    label[:32] = 1
    label[0, 0] = -1
    chip = _chip(label)
    scores = score_region([np.zeros((64, 64), dtype=bool)], [chip])
    assert scores["model"]["tp"] == 0 and scores["model"]["fn"] == 32 * 64 - 1
    assert counts_iou(scores["fixed_vh_-20dB"]) == 1.0 and counts_iou(scores["model_or_vh"]) == 1.0
    assert sum(scores["otsu"].values()) == sum(scores["model"].values()) == 64 * 64 - 1
    vv_only = Chip("o", np.stack([chip.s1[0], np.full((64, 64), np.nan, np.float32)]), chip.label)
    assert score_region([np.zeros((64, 64), dtype=bool)], [vv_only])["fixed_vh_-20dB"] is None
