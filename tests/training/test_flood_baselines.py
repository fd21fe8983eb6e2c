import numpy as np
from contrasat.training.common.flood_data.baselines import FIXED_VH_DB, fixed_vh, otsu_threshold, otsu_vh
from contrasat.training.common.metrics import confusion


def test_otsu_splits_two_modes(rng):
    values = np.concatenate([rng.normal(-25, 1.5, 4000), rng.normal(-15, 1.5, 6000)])
    t = otsu_threshold(values)
    assert -22 < t < -18
    assert otsu_threshold(np.append(values, np.nan)) == t  # NaN nodata is ignored


def test_fixed_threshold_treats_nan_as_not_water():
    s1 = np.full((2, 2, 2), -25.0, np.float32)
    s1[1, 0, 0] = np.nan
    s1[1, 1, 1] = -10
    assert fixed_vh(s1).tolist() == [[False, True], [True, False]]


def test_baselines_on_a_real_chip(india):
    otsu_mask, t = otsu_vh(india.s1)
    water = india.label == 1
    dry = india.label == 0
    vh = india.s1[1]
    # Otsu's cut falls between the typical VH of water and of dry land on this bimodal chip
    assert np.median(vh[water]) < t < np.median(vh[dry])
    for mask in (otsu_mask, fixed_vh(india.s1, FIXED_VH_DB)):
        c = confusion(mask, india.label, india.valid)
        share = (c.tp + c.fp) / (c.tp + c.fp + c.fn + c.tn)
        assert c.iou > 0.5, c  # far better than chance on half-water chip
        assert 0.2 < share < 0.8
