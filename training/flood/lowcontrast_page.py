"""docs/results/flood_lowcontrast.md from flood_lowcontrast.json (the study) and flood_stress.json (stress set
(e) figures of each scored model); nothing on the page is typed in."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..common.figures import format_score

STRESS_KEYS = ("lowcontrast_water_recall", "lowcontrast_iou")


def stress_rows(stress: dict[str, dict[str, float]]) -> list[str]:
    """One row per model that has set (e) figures: recall and IoU pooled and per source."""
    scored = {m: v for m, v in stress.items() if "lowcontrast_iou" in v}
    if not scored:
        return ["(no model scored on stress set (e) yet)"]
    keys = [k for k in next(iter(scored.values())) if k.startswith(STRESS_KEYS)]
    lines = ["| model | " + " | ".join(k.replace("lowcontrast_", "") for k in keys) + " |"]
    lines.append("| --- |" + " ---: |" * len(keys))
    default = default_flood_recipe()
    for m, v in scored.items():
        name = f"{m} (the default, {default[0]})" if m == default[1] else m
        lines.append(f"| {name} | " + " | ".join(format_score(v.get(k, math.nan)) for k in keys) + " |")
    return lines


def default_flood_recipe() -> tuple[str, str | None]:
    """(name, recipe) of the bundled default flood model: its stress rows are keyed by its recipe's name."""
    from ...models.card import read_card
    from ...models.registry import default_model_path

    card = read_card(default_model_path("flood"))
    recipe = card.training.get("recipe")
    return card.name, recipe.get("name") if isinstance(recipe, dict) else None


def study_rows(study: dict[str, Any], metric: str) -> list[str]:
    """Feature group x classifier: mean over held-out regions, worst region, and each region."""
    regions = list(study["pixels"])
    lines = [
        "| features | classifier | mean | worst | " + " | ".join(regions) + " |",
        "| --- | --- |" + " ---: |" * (2 + len(regions)),
    ]
    for group, by_kind in study["results"].items():
        for kind, per_region in by_kind.items():
            vals = [per_region[r][metric] for r in regions]
            lines.append(
                f"| {group} | {kind} | {format_score(sum(vals) / len(vals))} | {format_score(min(vals))} | "
                + " | ".join(format_score(v) for v in vals)
                + " |"
            )
    return lines


def mean_metric(per_region: dict[str, dict[str, float]], metric: str) -> float:
    return sum(v[metric] for v in per_region.values()) / len(per_region)


def reading(study: dict[str, Any]) -> list[str]:
    """The study's headline, computed: the best group by mean AUC against VH alone and VV-VH alone."""
    res = study["results"]
    best = max(((g, k) for g in res for k in res[g]), key=lambda gk: mean_metric(res[gk[0]][gk[1]], "auc"))
    b = res[best[0]][best[1]]
    worst = min(b, key=lambda r: b[r]["auc"])

    def line(g: str) -> str:
        return (
            " / ".join(f"{k} {format_score(mean_metric(res[g][k], 'auc'))}" for k in res[g])
            if g in res
            else "—"
        )

    return [
        f"Best: `{best[0]}` with {best[1]}, mean AUC {format_score(mean_metric(b, 'auc'))}, worst region "
        f"{worst} {format_score(b[worst]['auc'])}. Mean AUC of VH alone: {line('vh')}; of VV−VH alone: "
        f"{line('ratio')}; of texture alone: {line('texture')}.",
        "Within 4 dB of the land peak VH by itself barely orders water above dry land (the dry land of the",
        "same windows reaches as low); local statistics carry most of the separation. Part of it is nearness",
        "to open water: a 9×9 mean next to a lake is dark whatever the centre pixel is, so a network with",
        "spatial context can use the same cue, and a pixel-wise rule cannot.",
    ]


def ombria_rows(om: dict[str, Any]) -> list[str]:
    """IoU per held-out OMBRIA group, after only vs after + before (+ change), and pooled."""
    variants = list(om["results"])
    lines = ["| held-out group | flood / dry pixels | " + " | ".join(variants) + " |"]
    lines.append("| --- | --- |" + " ---: |" * len(variants))
    for g, px in om["pixels"].items():
        vals = " | ".join(format_score(om["results"][v][g]["iou"]) for v in variants)
        lines.append(f"| {g} | {px['flood']} / {px['dry']} | {vals} |")
    lines.append(
        "| pooled over the drawn pixels (equal draw per group) | | "
        + " | ".join(format_score(om["pooled_iou"][v]) for v in variants)
        + " |"
    )
    return lines


def ombria_section(om: dict[str, Any] | None) -> list[str]:
    if not om:
        return []
    feats = "; ".join(f"`{v}` = {' + '.join(f)}" for v, f in om["features"].items())
    pr = om["protocol"]
    return [
        "## Pre-event scene on OMBRIA: IoU with and without the before image (leave-one-group-out)",
        "",
        f"Per-pixel {pr['classifier']} (as above) on OMBRIA's VV after / before pairs in calibrated dB, the",
        f"LORO's labels (dark before and not flood: left out), one place in {pr['step']}, {pr['per_class']} pixels",
        f"per class per training group, {pr['score_pixels']} labelled pixels drawn per held-out group (seed",
        f"{pr['seed']}). Features: {feats}. A study only: the shipped model is unchanged; whether `--pre-event`",
        "enters the product is the lead's decision. The EMS masks are drawn from post-event imagery, often",
        "with a pre-event reference, so part of the before image's gain may mirror how the labels were made.",
        "",
        *ombria_rows(om),
        "",
        "The same question for a network, on the flood LORO's OMBRIA folds with a decision rule fixed before "
        "the runs: [flood_change.md](flood_change.md).",
        "",
    ]


def page(study: dict[str, Any], stress: dict[str, dict[str, float]], om: dict[str, Any] | None = None) -> str:
    pixels, pr = study["pixels"], study["protocol"]
    groups = ", ".join(f"`{g}` = {' + '.join(f)}" for g, f in study["groups"].items())
    return "\n".join(
        [
            "# Low-contrast water: stress set (e) and what separates it from dry land",
            "",
            "Generated by `contrasat train flood lowcontrast-study` from `flood_lowcontrast.json` and the set (e)",
            "figures in `flood_stress.json`; the protocol is `training/configs/lowcontrast.toml`, committed before",
            "the runs. Issue 19, item 3.",
            "",
            "**The set.** Real hand-labelled pixels only. Per scene (a Sen1Floods11 chip or a whole ETCI scene) the",
            "dry-land VH peak is the mode of the labelled-dry VH histogram; low-contrast water is labelled water with",
            "VH ≥ peak − 4 dB. Windows (64×64, no overlap) holding ≥ 16 such pixels keep their labelled-dry pixels as",
            "the dry land beside it; open water below the margin is left out. The fixture keeps the 6 most balanced",
            "windows per region (48 crops); recall is over its low-contrast water, IoU over water and dry together.",
            "ETCI Nebraska's low-contrast 'water' is mostly frozen or ice-covered flood with land-like backscatter",
            "(see the fixture README): no backscatter model is expected to find it, so it has its own column.",
            "",
            "## Stress set (e): low-contrast water recall and IoU (p(water) > 0.5)",
            "",
            *stress_rows(stress),
            "",
            "## Study: separability of low-contrast water from nearby dry land, leave-one-region-out",
            "",
            "Pixels per region (low-contrast water / dry in the same windows): "
            + ", ".join(f"{r} {p['lowcontrast_water']} / {p['dry']}" for r, p in pixels.items())
            + ".",
            "",
            f"Feature groups: {groups}. Texture = mean / standard deviation in dB over k×k (k = 5, 9).",
            "`vh_aligned` adds the runtime's label-free scene level shift (models/levels.py) to VH.",
            f"Fit on {pr['per_class']} pixels per class per training region, scored on at most {pr['score_per_class']}",
            f"per class of the held-out region (IoU reweighted to the region's class totals); seed {pr['seed']}.",
            "",
            *reading(study),
            "",
            "### ROC AUC (primary: threshold-free separability; 0.5 = chance)",
            "",
            *study_rows(study, "auc"),
            "",
            "### Balanced accuracy at p = 0.5",
            "",
            *study_rows(study, "balanced_accuracy"),
            "",
            "### Water IoU at p = 0.5 (low-contrast water vs nearby dry land)",
            "",
            *study_rows(study, "iou"),
            "",
            *ombria_section(om),
            "## Reproduce",
            "",
            "```",
            "contrasat train flood stress-build --out tests/fixtures/flood_stress/stress.npz",
            "contrasat train flood stress-score --model models/weights/flood_s1_anchored.onnx   # rows of flood_stress.json",
            "contrasat train flood lowcontrast-study --out docs/results --ombria",
            "```",
            "",
        ]
    )


def write_page(results: Path, study: dict[str, Any], om: dict[str, Any] | None = None) -> Path:
    """Write flood_lowcontrast.json (the study, and the OMBRIA one under "ombria_pre_event") and .md into
    `results`; the page's path."""
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**study, "ombria_pre_event": om} if om else study, indent=1)
    (results / "flood_lowcontrast.json").write_text(text + "\n", encoding="utf-8")
    stress = json.loads((results / "flood_stress.json").read_text(encoding="utf-8"))
    out = results / "flood_lowcontrast.md"
    out.write_text(page(study, stress, om), encoding="utf-8")
    return out
