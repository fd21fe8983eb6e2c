"""The pre-event change kit (flood_change.toml): the two network variants and the decision rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from contrasat.training.common.flood_data.regions import Chip
from contrasat.training.flood.change_data import Pair
from contrasat.training.flood.change_loro import ChangeNet, training_chips
from contrasat.training.flood.change_page import write_page
from contrasat.training.flood.change_summary import decide

REGIONS = ["OMBRIA_A", "OMBRIA_B"]


def test_after_variant_ignores_the_before_image_and_with_before_reads_it():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 32, 32)
    y = x.clone()
    y[:, 1] += 3.0  # only the before image changes
    with torch.no_grad():
        after, both = (
            ChangeNet("after", width=4, depth=2).eval(),
            ChangeNet("with_before", width=4, depth=2).eval(),
        )
        assert after(x).shape == (2, 2, 32, 32)
        assert torch.equal(after(x), after(y))
        assert not torch.allclose(both(x), both(y))
    with pytest.raises(ValueError, match="unknown network"):
        ChangeNet("before")


def _method(pooled: float, a: float, b: float) -> dict:
    return {"pooled": pooled, "regions": {"OMBRIA_A": a, "OMBRIA_B": b}}


def test_decision_rule_needs_both_wins_and_no_group_far_below_today():
    today = _method(0.40, 0.40, 0.40)
    win = decide({"with_before": _method(0.55, 0.60, 0.50), "after": _method(0.50, 0.5, 0.5), "today": today},
                 REGIONS)  # fmt: skip
    assert win["ships"]
    below_after = decide({"with_before": _method(0.45, 0.5, 0.4), "after": _method(0.50, 0.5, 0.5), "today": today},
                         REGIONS)  # fmt: skip
    assert not below_after["ships"] and not below_after["checks"]["beats_after"]
    one_group = decide({"with_before": _method(0.60, 0.90, 0.34), "after": _method(0.5, 0.5, 0.5), "today": today},
                       REGIONS)  # fmt: skip
    assert not one_group["ships"] and not one_group["checks"]["no_region_below_today"]
    assert one_group["region_minus_today"]["OMBRIA_B"] == pytest.approx(-0.06)


def _pair() -> Pair:
    """A place whose left half is pre-event water (dark before, not flood: LORO label -1, EMS 0)."""
    label = np.zeros((8, 8), dtype=np.int64)
    label[:, :4] = -1
    label[0, 6] = 1
    ems = label == 1
    return Pair(Chip("p", np.zeros((2, 8, 8), np.float32), label), ems)


def test_network_b_learns_pre_event_water_as_not_new_flood_and_the_post_hoc_variant_ignores_it():
    pair = _pair()
    after, b, post_hoc = (
        training_chips([pair], v)[0].label for v in ("after", "with_before", "with_before_loro")
    )
    assert (after[:, :4] == -1).all() and np.array_equal(post_hoc, after)
    assert (b[:, :4] == 0).all() and b[0, 6] == 1 and b.dtype == np.int64


def test_page_states_the_decision_and_every_method(tmp_path):
    today = _method(0.17, 0.19, 0.13)
    methods = {"with_before": _method(0.36, 0.36, 0.31), "after": _method(0.46, 0.47, 0.48), "today": today}
    summary = {
        "regions": REGIONS, "seeds": [0, 1], "folds": [REGIONS], "eval_step": 3, "methods": methods,
        "recipe": {"width": 8, "depth": 3, "steps": 600, "batch": 16, "crop": 64, "lr": 3e-3, "dice": 0.5,
                   "gain_db": 3.0, "date_db": 1.0, "noise_db": 1.0},
        "decision": decide(methods, REGIONS),
        "facts": {"OMBRIA_A": {"flood_pixels": 10, "dark_before_share": 0.25}},
    }  # fmt: skip
    text = write_page(tmp_path, summary, Path("training/configs/flood_change.toml")).read_text()
    assert "does not win the protocol: nothing ships" in text
    assert "| network (b): after + before + difference | **0.360** | 0.360 | 0.310 |" in text
    assert "A 25%" in text and "dark before means flood" in text
    assert (tmp_path / "flood_change.json").is_file()
