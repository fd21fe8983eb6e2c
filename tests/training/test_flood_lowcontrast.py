"""Low-contrast water stress set (issue 19, item 3): the 4 dB rule on real pixels, the fixture, the scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from contrasat.training.common.flood_data.regions import Chip
from contrasat.training.flood import lowcontrast, lowcontrast_page, lowcontrast_study, stress

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "flood_stress" / "stress.npz"
SAMPLE = REPO / "resources" / "sample"


def _real_crop() -> Chip:
    """A 128x128 crop of the bundled Spain_7370579 chip (real dB and hand labels) at its shoreline."""
    with rasterio.open(SAMPLE / "Spain_7370579_S1Hand.tif") as f:
        s1 = f.read().astype(np.float32)
    with rasterio.open(SAMPLE / "Spain_7370579_LabelHand.tif") as f:
        label = f.read(1).astype(np.int64)
    peak = lowcontrast.land_peak_db(s1[1], label)
    lab = lowcontrast.lowcontrast_label(s1, label, peak, 4.0)
    counts = [
        (lab[y : y + 128, x : x + 128] == 1).sum() for y in range(0, 385, 128) for x in range(0, 385, 128)
    ]
    k = int(np.argmax(counts))
    y, x = 128 * (k // 4), 128 * (k % 4)
    return Chip("Spain_crop", s1[:, y : y + 128, x : x + 128].copy(), label[y : y + 128, x : x + 128].copy())


def test_selected_water_lies_within_the_margin_of_the_real_land_peak():
    chip = _real_crop()
    rule = lowcontrast.SetRule(margin_db=4.0, window=32, min_window_lc=16, min_lc_pixels=0)
    found = list(lowcontrast.windows("Spain", [chip], rule))
    peak = lowcontrast.scene_peak([chip])
    assert found and -20.0 < peak < -10.0  # a dry-land VH peak, not open water
    vh_water = chip.s1[1][chip.label == 1]
    assert (vh_water < peak - 4).any() and (vh_water >= peak - 4).any()  # the crop holds both kinds of water
    for w in found:
        assert w.s1.shape == (2, 32, 32) and w.label.shape == (32, 32) and w.label.dtype == np.int8
        assert (w.label == 1).sum() >= 16 and np.all(w.s1[1][w.label == 1] >= peak - 4)
        y, x = (int(v) for v in w.name.split("_y")[1].split("_x"))
        truth = chip.label[y : y + 32, x : x + 32]
        assert np.all(truth[w.label == 1] == 1) and np.all(truth[w.label == 0] == 0)
        open_water = (truth == 1) & (w.s1[1] < peak - 4)
        assert np.all(w.label[open_water] == -1)  # open water is left out, not counted as either class


def test_land_peak_is_the_mode_of_labelled_dry_vh(rng):
    vh = np.concatenate([rng.normal(-15.0, 1.0, 5000), rng.normal(-25.0, 1.0, 20000)]).astype(np.float32)
    label = np.concatenate([np.zeros(5000), np.ones(20000)]).astype(np.int64)
    assert abs(lowcontrast.land_peak_db(vh, label) - (-15.0)) <= 0.5  # water's larger peak is not taken
    assert lowcontrast.land_peak_db(vh[5000:], label[5000:]) is None  # no dry land: no peak


def test_fixture_low_contrast_crops_keep_the_rule():
    fx = stress.load_fixture(FIXTURE)
    s1, lab, peak = fx["lc_s1"], fx["lc_label"], fx["lc_peak_db"]
    assert s1.shape[1:] == (2, 64, 64) and lab.shape == (len(s1), 64, 64) and len(fx["lc_regions"]) == len(s1)
    assert {"Mekong_333434", "Bolivia_312675", "Somalia_699062"} <= set(fx["lc_regions"])
    for img, la, pk in zip(s1, lab, peak, strict=True):
        assert (la == 1).sum() >= 16 and (la == 0).any()
        assert np.all(img[1][la == 1] >= pk - 4.0 - 0.02)  # float16 storage rounds by < 0.02 dB


def test_low_contrast_scoring_counts_recall_and_iou_per_source():
    lab = np.full((2, 4, 4), -1, dtype=np.int8)
    lab[:, 0] = 1  # 4 low-contrast water pixels per crop
    lab[:, 1] = 0  # 4 dry
    fx = {
        "lc_s1": np.zeros((2, 2, 4, 4), np.float32),
        "lc_label": lab,
        "lc_regions": np.array(["Mekong", "ETCI_x"]),
    }

    def predict(s1):  # crop 0: 2 of its water found, 1 dry false alarm; crop 1: nothing called water
        p = np.zeros((2, 4, 4))
        p[0, 0, :2] = 1
        p[0, 1, 0] = 1
        p[0, 2:] = 1  # ignored pixels (-1) never count
        return p

    res = lowcontrast.score(predict, fx)
    assert res["lowcontrast_water_recall"] == 2 / 8 and res["lowcontrast_iou"] == 2 / 9
    assert (
        res["lowcontrast_water_recall_sen1floods11"] == 0.5 and res["lowcontrast_iou_sen1floods11"] == 2 / 5
    )
    assert res["lowcontrast_water_recall_ETCI_x"] == 0.0


def test_stress_score_includes_the_low_contrast_figures_of_the_vh_rule():
    fx = stress.load_fixture(FIXTURE)
    res = stress.score(lambda s1: (s1[:, 1] < -20).astype(float), fx)
    lab, vh = fx["lc_label"], fx["lc_s1"][:, 1]
    expected = float(((vh < -20) & (lab == 1)).sum() / (lab == 1).sum())
    assert abs(res["lowcontrast_water_recall"] - expected) < 1e-9 and res["lowcontrast_water_recall"] < 0.2


def test_local_stats_ignore_missing_pixels(rng):
    band = rng.normal(-15.0, 2.0, (12, 12)).astype(np.float32)
    band[5, 6] = np.nan
    mean, std = lowcontrast_study.local_stats(band, 5)
    win = band[3:8, 4:9]
    assert abs(mean[5, 6] - np.nanmean(win)) < 1e-4 and abs(std[5, 6] - np.nanstd(win)) < 1e-3


def test_held_out_iou_is_reweighted_to_the_class_totals():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.2, 0.8, 0.1])
    s = lowcontrast_study.held_out_scores(y, p, np.array([1.0, 1.0, 10.0, 10.0]))  # dry drawn 1 in 10
    assert s["auc"] == 0.75 and s["balanced_accuracy"] == 0.5 and s["iou"] == 1 / (1 + 10 + 1)


def test_page_tables_come_from_the_results():
    study = {
        "protocol": {"per_class": 30, "score_per_class": 40, "seed": 0},
        "groups": {"vh": ["vh"]},
        "pixels": {"A": {"lowcontrast_water": 10, "dry": 20}, "B": {"lowcontrast_water": 5, "dry": 9}},
        "results": {
            "vh": {
                "logistic": {
                    r: {"auc": a, "balanced_accuracy": a, "iou": a} for r, a in (("A", 0.7), ("B", 0.5))
                }
            }
        },
    }
    stress_figs = {"m": {"iou_clean": 0.5, "lowcontrast_water_recall": 0.25, "lowcontrast_iou": 0.125}}
    text = lowcontrast_page.page(study, stress_figs)
    assert "| vh | logistic | 0.600 | 0.500 | 0.700 | 0.500 |" in text and "| m | 0.250 | 0.125 |" in text
