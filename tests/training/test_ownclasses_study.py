"""The protocol file, its refusals, and a tiny run of the study on real sites (fixture windows)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tomllib
from contrasat.training.cli import main
from contrasat.training.ownclasses.cli import DEFAULT_CONFIG
from contrasat.training.ownclasses.config import load_study
from contrasat.training.ownclasses.report import render, summarise
from contrasat.training.ownclasses.study import run_study

REPO = DEFAULT_CONFIG.parents[2]


def test_protocol_loads_with_every_method_of_the_issue():
    cfg = load_study(DEFAULT_CONFIG)
    assert cfg.ks == [1, 3, 5, 10] and len(cfg.seeds) == 5
    assert {"rf_bands", "head_random", "head_simclr", "head_multimodal", "rf_context"} <= set(cfg.methods)
    assert cfg.baselines == ["rf_bands", "rf_context"]
    assert cfg.needs_s1("head_multimodal_s1") and not cfg.needs_s1("head_multimodal")


def _edited(tmp_path, edit) -> Path:
    """The protocol with one edit, written as JSON (the loader reads both)."""
    data = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(bufer=3), "unknown StudyConfig keys: bufer"),
        (lambda d: d["lr"].update(penalty="l1"), "unknown LRConfig keys: penalty"),
        (lambda d: d["methods"].update(x={"features": ["nope"], "classifier": "lr"}), "unknown feature sets"),
        (lambda d: d["methods"].update(y={"features": ["bands"], "classifier": "svm"}), "classifier must be"),
        (lambda d: d["methods"].update(z={"features": ["bands"]}), "needs exactly the keys"),
        (lambda d: d.update(baselines=["rf_magic"]), "are not methods"),
    ],
)
def test_protocol_refuses_unknown_keys_and_values(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        load_study(_edited(tmp_path, edit))


def test_run_refuses_a_bad_protocol_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.json"
    bad = _edited(tmp_path, lambda d: d.update(bufer=3))
    assert main(["ownclasses", "run", "--config", str(bad), "--out", str(out)]) == 2
    assert "unknown StudyConfig keys" in capsys.readouterr().err and not out.exists()


@pytest.fixture(scope="module")
def tiny(fixture_data_root):
    cfg = load_study(DEFAULT_CONFIG)
    keep = ["rf_bands", "head_multimodal", "head_multimodal_s1", "rf_context"]
    cfg = dataclasses.replace(cfg, methods={m: cfg.methods[m] for m in keep})
    sites = ["terramind/282D_485L_3_3", "eolearn/slovenia"]
    return run_study(cfg, fixture_data_root, REPO, sites=sites, ks=[1, 3], seeds=[0, 1], log=lambda _: None)


def test_tiny_run_on_real_sites_gives_the_results_structure(tiny):
    assert set(tiny["sites"]) == {"terramind/282D_485L_3_3", "eolearn/slovenia"}
    slovenia = tiny["sites"]["eolearn/slovenia"]
    assert "cultivated land" in slovenia["left_out_classes"].values()  # 11 pixels: no room for a polygon
    assert not slovenia["has_s1"] and tiny["sites"]["terramind/282D_485L_3_3"]["has_s1"]
    rows = tiny["rows"]
    s1_rows = [r for r in rows if r["method"] == "head_multimodal_s1"]
    assert s1_rows and all(r["site"].startswith("terramind") for r in s1_rows)  # S1 method on S1 sites only
    per_cell = {(r["site"], r["k"], r["seed"]) for r in rows}
    assert len(per_cell) == 2 * 2 * 2
    for r in rows:
        assert 0.0 <= r["miou"] <= 1.0 and r["test_pixels"] > 0
        same = [q for q in rows if (q["site"], q["k"], q["seed"]) == (r["site"], r["k"], r["seed"])]
        assert len({q["train_pixels"] for q in same}) == 1  # every method on the same polygons
    k3 = [r for r in rows if r["k"] == 3 and r["method"] == "rf_bands"]
    assert all(max(r["polygons"].values()) <= 3 for r in k3)
    assert np.mean([r["train_pixels"] for r in k3]) > np.mean(
        [r["train_pixels"] for r in rows if r["k"] == 1 and r["method"] == "rf_bands"]
    )


def test_summary_and_page_follow_the_results(tiny):
    s = summarise(tiny)
    assert s["winner"] in ("rf_bands", "head_multimodal", "rf_context")  # S1-only methods cannot win
    assert s["pooled"]["head_multimodal_s1"]["sites"] == "s1"
    rf = s["pooled"]["rf_bands"]["k"]["1"]
    assert rf["n"] == 2 and rf["mean"] == pytest.approx(  # rounded to 4 decimals
        np.mean([r["miou"] for r in tiny["rows"] if r["method"] == "rf_bands" and r["k"] == 1]), abs=1e-4
    )
    page = render(tiny)
    assert "## Verdict" in page and f"`{s['winner']}`" in page and "eolearn/slovenia" in page


def test_cli_refuses_an_unknown_site_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["ownclasses", "run", "--sites", "mars/crater", "--out", str(out)]) == 2
    assert "contrasat: error:" in capsys.readouterr().err and not out.exists()


def test_cli_report_writes_the_page(tmp_path, tiny):
    res, page = tmp_path / "r.json", tmp_path / "r.md"
    res.write_text(json.dumps(tiny), encoding="utf-8")
    assert main(["ownclasses", "report", "--results", str(res), "--out", str(page)]) == 0
    assert page.read_text(encoding="utf-8").startswith("# Land cover in your own classes")


def test_a_single_class_site_is_skipped_not_scored(fixture_data_root):
    cfg = load_study(DEFAULT_CONFIG)
    cfg = dataclasses.replace(cfg, methods={"rf_bands": cfg.methods["rf_bands"]}, baselines=["rf_bands"])
    res = run_study(
        cfg, fixture_data_root, REPO, sites=["terramind/609U_541L_3_0"], ks=[1], seeds=[0], log=str
    )
    assert "nothing to classify" in res["sites"]["terramind/609U_541L_3_0"]["skipped"] and res["rows"] == []
