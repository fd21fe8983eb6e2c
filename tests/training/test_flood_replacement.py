"""Issue 19's rule for one network replacing the ensemble (training/flood/replacement.py) on made-up counts."""

from __future__ import annotations

from contrasat.training.flood.replacement import stress_failures, verdict


def _counts(tp: int, fp: int, fn: int) -> dict[str, int]:
    return {"tp": tp, "fp": fp, "fn": fn, "tn": 1000}


def _table(iou_by_seed: dict[str, dict[str, tuple[int, int, int]]]) -> dict:
    rule = {"A": _counts(50, 50, 0), "B": _counts(50, 50, 0)}  # VH < -20 dB: IoU 0.5 on both regions
    return {
        seed: {r: {"source": "sen1floods11", "seeds": None, "scores": {"model": _counts(*c), "fixed_vh_-20dB": rule[r], "otsu": rule[r]}}
               for r, c in regions.items()}
        for seed, regions in iou_by_seed.items()
    }  # fmt: skip


REF_STRESS = {"water_tile_rate_dry_x": 0.0, "water_tile_rate_water_x": 1.0, "iou_loss_gain+3dB": 0.0}


def test_stress_rule_counts_dry_tiles_one_tile_of_slack_on_water_and_losses():
    assert stress_failures(dict(REF_STRESS), REF_STRESS) == []
    assert stress_failures({**REF_STRESS, "water_tile_rate_water_x": 0.9375}, REF_STRESS) == []
    assert len(stress_failures({**REF_STRESS, "water_tile_rate_water_x": 0.875}, REF_STRESS)) == 1
    assert len(stress_failures({**REF_STRESS, "water_tile_rate_dry_x": 0.0625}, REF_STRESS)) == 1
    assert len(stress_failures({**REF_STRESS, "iou_loss_gain+3dB": 0.06}, REF_STRESS)) == 1


def test_verdict_compares_pooled_iou_on_the_same_seeds_and_bounds_every_region():
    table = {
        "F": _table({"0": {"A": (80, 20, 0), "B": (80, 20, 0)}, "1": {"A": (90, 10, 0), "B": (90, 10, 0)}}),
        "near": _table({"0": {"A": (79, 21, 0), "B": (79, 21, 0)}}),  # 0.79 vs F's 0.80 on seed 0
        "far": _table({"0": {"A": (75, 25, 0), "B": (75, 25, 0)}}),  # 0.75: more than 0.02 below
        "bad_region": _table({"0": {"A": (100, 0, 0), "B": (40, 60, 0)}}),  # pooled 0.70, B 0.40 < 0.5 - 0.05
    }
    stress = {"F (default)": REF_STRESS, "near": REF_STRESS, "far": REF_STRESS, "bad_region": REF_STRESS}
    near = verdict(table, "near", "F", stress, "F (default)")
    assert near["seeds"] == ["0"] and abs(near["reference_pooled"] - 0.8) < 1e-9 and near["replaces"]
    assert not verdict(table, "far", "F", stress, "F (default)")["replaces"]
    bad = verdict(table, "bad_region", "F", stress, "F (default)")
    assert bad["regions_below_rule"] and not bad["replaces"]
    stress["near"] = {**REF_STRESS, "water_tile_rate_dry_x": 0.125}
    assert not verdict(table, "near", "F", stress, "F (default)")["replaces"]


def test_readme_rows_keep_the_replaced_model_and_mark_the_new_default():
    import argparse

    from contrasat.training.flood.region_tables import readme_rows

    table = {
        "F": _table({"0": {"A": (80, 20, 0), "B": (80, 20, 0)}}),
        "near": _table({"0": {"A": (79, 21, 0), "B": (79, 21, 0)}}),
    }
    args = argparse.Namespace(shipped="near", model_name="one_net", default="one_net", safeguard="model",
                              reference="F", reference_model="two_nets")  # fmt: skip
    rows = readme_rows(table, {}, args)
    assert rows[0].startswith("| `one_net` (default) |") and "pooled water IoU 0.790" in rows[0]
    assert rows[1].startswith("| `two_nets` |") and "pooled water IoU 0.800" in rows[1]
    assert "the previous default" in rows[1] and rows[2].startswith("| `flood_vh_threshold` |")


def test_recard_writes_loro_figures_and_speed_without_touching_the_weights(tmp_path):
    import json

    import numpy as np
    import onnxruntime as ort
    from contrasat.models.card import read_card
    from contrasat.models.registry import WEIGHTS_DIR
    from contrasat.training.cli import main as train_main
    from contrasat.training.flood.ship import loro_metrics

    model = tmp_path / "m.onnx"
    model.write_bytes((WEIGHTS_DIR / "flood_s1_ensemble.onnx").read_bytes())
    table = {
        "F": _table({"0": {"A": (80, 20, 0), "B": (60, 40, 0)}, "1": {"A": (90, 10, 0), "B": (70, 30, 0)}})
    }
    results = tmp_path / "loro.json"
    results.write_text(json.dumps(table))
    speed = {"benchmark": "bare", "reference": "ref", "tiles": 9, "tile": 256, "batch": 4, "cpu_count": 2,
             "load_average_before": [1.5, 1, 1], "load_average_after": [1.7, 1, 1],
             "models": {"ref": {"mpx_per_s": 1.0, "speedup_over_reference": 1.0},
                        "F": {"mpx_per_s": 4.0, "speedup_over_reference": 4.0}}}  # fmt: skip
    (tmp_path / "speed.json").write_text(json.dumps(speed))
    x = np.random.default_rng(0).normal(-15, 4, (1, 2, 64, 64)).astype(np.float32)

    def run() -> np.ndarray:
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    before = run()
    argv = ["flood", "recard", "--model", str(model), "--recipe", "F", "--results", str(results),
            "--speed", str(tmp_path / "speed.json")]  # fmt: skip
    assert train_main(argv) == 0
    card = read_card(model)
    assert card.metrics["loro"] == json.loads(json.dumps(loro_metrics(table, "F", "model")))
    assert card.metrics["loro"]["seeds"] == ["0", "1"]
    per = card.metrics["loro"]["per_region_water_iou"]
    below = {r for r, v in per.items() if v["shipped"] < v["fixed_vh_-20dB"]}
    assert set(card.metrics["loro"]["regions_below_vh_rule"]) == below
    assert (
        card.metrics["speed"]["speedup_over_reference"] == 4.0
        and card.metrics["speed"]["load_average_before"] == 1.5
    )
    assert np.array_equal(run(), before)
