"""The model card's metrics as the Map floods panel shows them: the bundled default's leave-one-region-out
figures, speed and stress sets as sentences, from its real card; odd shapes shown as stored."""

from __future__ import annotations

from contrasat.models.card import read_card
from contrasat.models.registry import default_model_path
from contrasat.plugin.card_metrics import metric_lines
from contrasat.plugin.model_picker import card_html


def test_the_default_flood_models_figures_read_as_sentences_from_its_card():
    card = read_card(default_model_path("flood"))
    loro = card.metrics["loro"]
    pooled = loro["pooled_water_iou_regions_with_vh"]
    text = "\n".join(metric_lines(card.metrics))
    assert f"{pooled['shipped']:.3f} ± {pooled['shipped_sd']:.3f}" in text
    assert f"the VH < −20 dB rule: {pooled['fixed_vh_-20dB']:.3f}" in text
    # the worst region against the rule, computed here from the card's own table
    regions = {r: v for r, v in loro["per_region_water_iou"].items() if v.get("fixed_vh_-20dB") is not None}
    worst = min(regions, key=lambda r: regions[r]["shipped"] - regions[r]["fixed_vh_-20dB"])
    assert f"Worst region against the rule: {worst}, {regions[worst]['shipped']:.3f}" in text
    assert f"{card.metrics['speed']['speedup_over_reference']:.2f}× flood_s1_ensemble" in text
    assert "low-contrast water" in text
    below = sorted(r for r, v in regions.items() if v["shipped"] < v["fixed_vh_-20dB"])
    assert f"Below the VH < −20 dB rule on: {', '.join(below)}" in text
    # the table's internal names never reach the analyst
    html = card_html(card)
    assert "fixed_vh" not in html and "shipped" not in html and "per_region" not in html
    assert f"reads {card.context_margin} px around an area of interest" in html


def test_metrics_of_another_shape_are_shown_as_stored():
    lines = metric_lines({"loro": {"pooled_water_iou_regions_with_vh": "n/a"}, "split": "chip X",
                          "speed": {"mpx_per_s": 1.0}})  # fmt: skip
    assert lines == ["loro: pooled_water_iou_regions_with_vh n/a", "split: chip X", "speed: mpx_per_s 1.000"]
