import math

import numpy as np
from contrasat.training.common.metrics import Counts, confusion, pooled


def test_iou_f1_accuracy_on_hand_made_arrays():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    label = np.array([[1, 0, 0], [1, 1, -1]])
    c = confusion(pred, label)
    # tp: (0,0),(1,1); fp: (0,1); fn: (1,0); tn: (0,2); (1,2) ignored
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 1)
    assert c.iou == 2 / 4
    assert c.f1 == 4 / 6
    assert c.accuracy == 3 / 5


def test_valid_mask_and_ignore_label_drop_pixels():
    pred = np.ones((2, 2), bool)
    label = np.array([[1, 0], [-1, 1]])
    valid = np.array([[True, False], [True, True]])
    c = confusion(pred, label, valid)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 0, 0, 0)
    assert c.iou == 1.0


def test_iou_undefined_without_any_water_and_pooling_sums_counts():
    dry = confusion(np.zeros((3, 3), bool), np.zeros((3, 3), int))
    assert math.isnan(dry.iou) and dry.accuracy == 1.0
    a, b = Counts(tp=3, fp=1, fn=0, tn=5), Counts(tp=1, fp=0, fn=4, tn=2)
    p = pooled([a, b, dry])
    assert p.iou == (3 + 1) / ((3 + 1) + (1 + 0) + (0 + 4))
    assert p.iou != (a.iou + b.iou) / 2  # pooled is not the mean of per-chip IoUs
