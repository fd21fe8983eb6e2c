"""The fine-tuning study end to end on a real fixture chip: polygons only on labelling blocks, scores on
the others, and the results page generated from the results file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.registry import resolve_model
from contrasat.training.finetune.base_weights import load_base
from contrasat.training.finetune.label_draw import draw_polygons
from contrasat.training.finetune.study.design import SIMCLR
from contrasat.training.finetune.study.protocol import run_study, simclr_model
from contrasat.training.finetune.study.report import write_report
from contrasat.training.finetune.study.scoring import blocks
from rasterio.features import rasterize

CHIP = "Spain_7370579"


def test_polygons_stay_on_labelling_blocks_and_inside_their_class(floods_root):
    with rasterio.open(floods_root / "LabelHand" / f"{CHIP}_LabelHand.tif") as ds:
        label, transform = ds.read(1), ds.transform
    allowed = blocks(label.shape)
    drawn = draw_polygons(label, transform, 10, np.random.default_rng(0), allowed)
    assert len(drawn) == 10
    for geom, cls in drawn:
        mask = rasterize([(geom, 1)], out_shape=label.shape, transform=transform) > 0
        assert mask.sum() > 0 and allowed[mask].all() and (label[mask] == cls).all()


@pytest.fixture(scope="module")
def simclr(tmp_path_factory):
    """The SimCLR start built by the contrastive kit's commands, 2 steps each (the study runs 150 / 100)."""
    return simclr_model(tmp_path_factory.mktemp("simclr"), steps=2)


def test_simclr_start_fits_the_base_network(simclr):
    """Same network and inputs as flood_s1_contrastive, loadable for fine-tuning; built once, then reused."""
    base, base_card = load_base(resolve_model("flood_s1_contrastive", "flood"))
    net, card = load_base(simclr)
    assert net.kind == base.kind == "segnet" and card.name == SIMCLR
    assert {k: v.shape for k, v in net.state_dict().items()} == {
        k: v.shape for k, v in base.state_dict().items()
    }
    assert [i.bands for i in card.inputs] == [i.bands for i in base_card.inputs]
    assert "simclr" in json.dumps(card.training).lower()
    mtime = simclr.stat().st_mtime_ns
    assert simclr_model(simclr.parent) == simclr and simclr.stat().st_mtime_ns == mtime


def test_study_runs_and_writes_its_page(tmp_path, simclr):
    kw = {"chips": (CHIP,), "counts": (2,), "seeds": (0,), "steps": 4, "simclr": simclr.parent}
    path = run_study(tmp_path / "study", overrides={"distill": 1.0}, **kw)
    results = json.loads(path.read_text())
    run = results["runs"][f"{CHIP}/2/0/base+distill=1.0"]
    assert run["drawn"] == 2 and 0.0 <= run["score"]["iou"] <= 1.0 and run["seconds_finetune"] > 0
    assert {r["init"] for r in results["runs"].values()} == {
        f"{i}+distill=1.0" for i in ("base", "simclr", "random")
    }
    assert set(results["references"]) == {
        f"{CHIP}/{m}" for m in ("flood_s1_contrastive", "flood_vh_threshold", SIMCLR)
    }
    assert results["protocol"]["recipe"]["distill"] == 1.0 and results["protocol"]["recipe"]["steps"] == 4
    page = write_report(path, tmp_path / "finetune.md", recipes=path)
    text = page.read_text()
    assert (
        f"## {CHIP}" in text and "| 2 | simclr+distill=1.0 |" in text and page.with_suffix(".png").is_file()
    )
    assert (
        "## Choosing the recipe" in text
        and "Chosen: **distill=1.0**" in text
        and "contrastive pretrain" in text
    )
    mtime = path.stat().st_mtime_ns
    run_study(tmp_path / "study", overrides={"distill": 1.0}, **kw)  # resumed: nothing reruns
    assert json.loads(path.read_text())["runs"] == results["runs"] and path.stat().st_mtime_ns == mtime


def test_merge_joins_runs_split_by_chip_and_refuses_other_protocols(tmp_path):
    from contrasat.training.common.errors import UsageError
    from contrasat.training.finetune.study.protocol import merge_results

    def part(chip: str, steps: int) -> Path:
        path = tmp_path / f"{chip}_{steps}.json"
        proto = {"chips": [chip], "seeds": [0], "recipe": {"steps": steps}}
        path.write_text(json.dumps({"protocol": proto, "runs": {f"{chip}/2/0/base": {"chip": chip}},
                                    "references": {f"{chip}/vh": {"iou": 0.5}}}))  # fmt: skip
        return path

    out = merge_results([part("A", 200), part("B", 200)], tmp_path / "m.json")
    merged = json.loads(out.read_text())
    assert merged["protocol"]["chips"] == ["A", "B"] and set(merged["runs"]) == {"A/2/0/base", "B/2/0/base"}
    assert set(merged["references"]) == {"A/vh", "B/vh"}
    with pytest.raises(UsageError, match="protocol differs"):
        merge_results([part("A", 200), part("B", 100)], tmp_path / "n.json")
