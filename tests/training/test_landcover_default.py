"""Choosing the default land-cover model from a leave-one-site-out run, on the project's recorded real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from contrasat.training.common.metrics import miou
from contrasat.training.landcover.default import default_choice, reference_trained_sites, unseen_comparison

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "landcover_loso.json"


def _results() -> dict:
    return json.loads(RESULTS.read_text())


def test_pooled_miou_counts_only_labelled_classes():
    confusion = np.array([[0, 0, 0], [0, 3, 1], [0, 1, 3]])
    assert abs(miou(confusion) - 0.6) < 1e-9  # classes 1 and 2: 3 / (4 + 4 - 3) each


def test_comparison_leaves_out_the_reference_training_site():
    res = _results()
    key = next(m for m in res["methods"] if m.startswith("reference:"))
    assert reference_trained_sites(res, key) == ["433D_629L_3_1"]
    cmp = unseen_comparison(res)
    assert "433D_629L_3_1" not in cmp["sites"] and len(cmp["sites"]) == len(res["sites"]) - 1
    assert set(cmp["pooled_miou"]) == set(res["methods"])


def test_default_is_the_reference_only_while_it_wins():
    res = _results()
    key = next(m for m in res["methods"] if m.startswith("reference:"))
    assert default_choice(res) == key  # the recorded run: U-Net 0.253 vs forest 0.206 on unseen sites
    worse = json.loads(json.dumps(res))
    for site in unseen_comparison(res)["sites"]:
        confusion = np.array(worse["methods"][key]["0"]["per_site"][site]["confusion"])
        worse["methods"][key]["0"]["per_site"][site]["confusion"] = np.diag(confusion.sum(1))[
            :, ::-1
        ].tolist()
    assert default_choice(worse) == "rf"  # a reference that gets every pixel wrong loses to the forest
