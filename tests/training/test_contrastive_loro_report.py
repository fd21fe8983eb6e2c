"""The flood-LORO section of the contrastive page: complete seeds only, the protocol's rule, marked splice."""

from __future__ import annotations

from contrasat.training.contrastive.region_section import (
    BEGIN,
    END,
    common_seeds,
    compare,
    section,
    write_section,
)


def _scores(tp: int, fp: int, fn: int, vh: bool = True) -> dict:
    c = {"tp": tp, "fp": fp, "fn": fn, "tn": 100}
    return {"model": c, "model_or_vh": c, "otsu": {"tp": 1, "fp": 1, "fn": 1, "tn": 1},
            "fixed_vh_-20dB": {"tp": 5, "fp": 5, "fn": 0, "tn": 90} if vh else None}  # fmt: skip


def _results(mm_tp: list[int], rnd_tp: list[int]) -> dict:
    def start(tps):
        return {str(s): {"A": {"source": "sen1floods11", "scores": _scores(tp, 10, 10)},
                         "B": {"source": "ombria", "scores": _scores(tp, 10, 10, vh=False)}}
                for s, tp in enumerate(tps)}  # fmt: skip

    table = {"multimodal": start(mm_tp), "random": start(rnd_tp)}
    proto = {"starts": ["multimodal", "simclr", "random"], "seeds": [0, 1, 2], "rgb_map": {"B04": [1, 0]},
             "strides": {"ombria": 3}, "folds": [["A"], ["B"]],
             "pretrain": {"sources": ["ombria"], "exclude": [], "steps": 1, "batch": 32, "crop": 48, "lr": 1,
                          "temperature": 0.1, "width": 16},
             "finetune": {"steps": 1, "batch": 1, "crop": 48, "lr": 1, "encoder_lr_scale": 0.3, "dice": 0.5,
                          "gain_db": 3, "vv_water_raise_db": 10, "vv_raise_scope": "all", "vv_dropout": 0.3,
                          "noise_db": 1, "sources": ["ombria"]}}  # fmt: skip
    pre = {"fold0/s0": {"scenes": 5, "ombria": 4, "multimodal": {"seconds": 1, "loss_first10": 3, "loss_last10": 2},
                        "simclr": {"seconds": 1, "loss_first10": 4, "loss_last10": 3}}}  # fmt: skip
    return {"config": "c.toml", "protocol": proto, "pretrain": pre, "table": table}


def test_a_seed_missing_for_one_start_is_left_out_of_every_start():
    res = _results([80, 81, 82], [40, 41])
    assert common_seeds(res["table"]) == ["0", "1"]


def test_rule_needs_a_gap_beyond_the_pooled_seed_sd():
    assert compare((0.60, 0.01), (0.50, 0.01))[2] == "better"
    assert compare((0.50, 0.01), (0.60, 0.01))[2] == "worse"
    assert compare((0.52, 0.05), (0.50, 0.05))[2] == "tie"


def test_verdict_follows_the_numbers():
    helps = "\n".join(section(_results([80, 81, 82], [40, 41, 42])))
    assert "**pre-training helps**" in helps
    none = "\n".join(section(_results([40, 60, 50], [50, 40, 60])))
    assert "**pre-training has no measurable effect**" in none


def test_section_replaces_only_its_marked_part(tmp_path):
    import json

    results = tmp_path / "r.json"
    results.write_text(json.dumps(_results([80, 81, 82], [40, 41, 42])))
    page = tmp_path / "page.md"
    page.write_text(f"# Top\n\nkept text\n\n{BEGIN}\nold section\n{END}\n\ntail\n")
    write_section(results, page)
    text = page.read_text()
    assert text.startswith("# Top\n\nkept text") and text.rstrip().endswith("tail")
    assert "old section" not in text and text.count(BEGIN) == 1
    assert "Pre-training at the new scale: flood LORO" in text


def test_the_whole_page_report_carries_the_section_over():
    from contrasat.training.contrastive.region_section import keep_section

    assert keep_section("# page without the section\n") == ""
    page = f"# old grid page\n\n{BEGIN}\nLORO table\n{END}\n"
    assert keep_section(page) == f"{BEGIN}\nLORO table\n{END}"


def test_the_frozen_diagnostic_sits_beside_the_main_verdict():
    main = _results([80, 81, 82], [40, 41, 42])
    probe = _results([40, 41, 42], [80, 81, 82])
    text = "\n".join(section(main, probe))
    assert text.index("**pre-training helps**") < text.index("Diagnostic: frozen encoders")
    assert "multimodal (S1 enc.) vs random init -" in text and "worse" in text.split("Diagnostic")[1]
