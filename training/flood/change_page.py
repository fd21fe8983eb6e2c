"""docs/results/flood_change.md and .json: the OMBRIA pre-event study's table and decision, from its summary."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

LABELS = {
    "with_before": "network (b): after + before + difference",
    "after": "network (a): after only",
    "today": "today's `--pre-event`: default on both dates, water after and not before",
    "today_after": "default on the after image only",
    "forest_with_before": "per-pixel forest, with before",
    "forest_after": "per-pixel forest, after only",
    "with_before_loro": "post hoc: network (b) on (a)'s training labels",
}


def _f(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def table(summary: dict[str, Any]) -> list[str]:
    regions = summary["regions"]
    head = "| method | pooled | " + " | ".join(r.removeprefix("OMBRIA_") for r in regions) + " |"
    lines = [head, "| --- | ---: |" + " ---: |" * len(regions)]
    for m in [k for k in LABELS if k in summary["methods"]]:
        res = summary["methods"][m]
        cells = " | ".join(_f(res["regions"][r]) for r in regions)
        lines.append(f"| {LABELS[m]} | **{_f(res['pooled'])}** | {cells} |")
    return lines


def seed_table(summary: dict[str, Any]) -> list[str]:
    regions = summary["regions"]
    lines = ["| network | seed | pooled | " + " | ".join(r.removeprefix("OMBRIA_") for r in regions) + " |",
             "| --- | ---: | ---: |" + " ---: |" * len(regions)]  # fmt: skip
    for v in ("after", "with_before", "with_before_loro"):
        for seed, res in summary["methods"].get(v, {}).get("per_seed", {}).items():
            cells = " | ".join(_f(res["regions"][r]) for r in regions)
            lines.append(f"| {v} | {seed} | {_f(res['pooled'])} | {cells} |")
    return lines


def pixels(summary: dict[str, Any]) -> str:
    counts = summary["methods"].get("today", {}).get("counts", {})
    parts = [
        f"{r.removeprefix('OMBRIA_')} {c['tp'] + c['fn']} / {c['fp'] + c['tn']}" for r, c in counts.items()
    ]
    return ", ".join(parts)


def facts_text(summary: dict[str, Any]) -> str:
    facts = summary.get("facts")
    if not facts:
        return ""
    parts = [f"{r.removeprefix('OMBRIA_')} {f['dark_before_share']:.0%}" for r, f in facts.items()]
    return (
        "Share of the EMS flood pixels (scored places) already dark before the event (VV < −14 dB, the rule "
        "that marks pre-event water): " + ", ".join(parts) + ". These pixels are scored as flood, while the "
        "dark-before pixels outside the masks are ignored: among scored pixels, dark before means flood. A "
        "change detector (today's method, network (b)) cannot see them as new water; a model that reads the "
        "before image and learns from these labels (the forest, the post-hoc network) can learn 'dark before "
        "means flood', which these labels reward and a real pre-event map must not do (there it is "
        "permanent water)."
    )


def reading(summary: dict[str, Any]) -> list[str]:
    """Differences the table holds, in pooled IoU (no new numbers)."""
    m = summary["methods"]

    def gap(x: str, y: str) -> str | None:
        return f"{m[x]['pooled'] - m[y]['pooled']:+.3f}" if x in m and y in m else None

    pairs = [
        ("network: with before − after only", gap("with_before", "after")),
        ("forest: with before − after only", gap("forest_with_before", "forest_after")),
        ("post hoc network on (a)'s labels − after only", gap("with_before_loro", "after")),
        ("default: both dates (today's) − after only", gap("today", "today_after")),
    ]
    lines = [f"- {name}: {g}" for name, g in pairs if g is not None]
    return ["### What the before image changes (pooled IoU)", "", *lines, ""] if lines else []


def decision_text(summary: dict[str, Any]) -> list[str]:
    d = summary.get("decision")
    if d is None:
        return ["No decision: the runs are not complete."]
    m = summary["methods"]
    b, a, t = m["with_before"]["pooled"], m["after"]["pooled"], m["today"]["pooled"]
    worst = min(d["region_minus_today"].items(), key=lambda kv: kv[1])
    c = d["checks"]
    lines = [
        f"- pooled IoU of (b) {_f(b)} vs (a) {_f(a)}: {'beats' if c['beats_after'] else 'does not beat'} (a).",
        f"- pooled IoU of (b) {_f(b)} vs today's method {_f(t)}: "
        f"{'beats' if c['beats_today'] else 'does not beat'} it.",
        f"- the group where (b) is lowest against today's method: {worst[0].removeprefix('OMBRIA_')}, (b) − today "
        f"= {worst[1]:+.3f} (limit −0.05): {'passed' if c['no_region_below_today'] else 'failed'}.",
    ]
    verdict = ("**(b) wins the protocol**: it ships as the model `map-floods --pre-event` uses."
               if d["ships"] else "**(b) does not win the protocol: nothing ships**; `--pre-event` stays as it is.")  # fmt: skip
    return [verdict, "", *lines]


def write_page(folder: Path, summary: dict[str, Any], config: Path) -> Path:
    """Write flood_change.json and flood_change.md into `folder`; returns the .md path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flood_change.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    r = summary["recipe"]
    seeds = ", ".join(str(s) for s in summary["seeds"]) or "none yet"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = [
        "# Flood change: does the pre-event scene help? (OMBRIA, leave-one-group-out)",
        "",
        "Generated by `contrasat train flood change-loro` from `flood_change.json`; the protocol is "
        f"`{config.as_posix()}`, committed before any run. Issue 19, item 3.",
        "",
        "## Protocol",
        "",
        "- Data: OMBRIA's before/after pairs (one 8-bit polarisation, mapped to VV dB by the flood kit's "
        "OMBRIA calibration), 6 groups: the OmbriaS1 train and test splits and the four 2021 events.",
        "- Folds: "
        + "; ".join(" + ".join(x.removeprefix("OMBRIA_") for x in f) for f in summary["folds"])
        + " (the flood LORO's OMBRIA folds); every group is scored on its own, pooled = counts summed over the "
        "6 groups.",
        f"- Scored pixels, the same for every method: one place in {summary['eval_step']} of the held-out groups; "
        "EMS flood = positive, dry = negative, pixels dark before (VV < −14 dB) and not flood-labelled ignored "
        "(the flood LORO's OMBRIA labels). Metric: IoU of new flood (p > 0.5).",
        f"- Networks: U-Net width {r['width']}, depth {r['depth']}, {r['steps']} steps of {r['batch']} crops "
        f"{r['crop']}×{r['crop']}, AdamW {r['lr']:g} one-cycle, CE + {r['dice']:g} Dice, region-balanced; "
        f"offset ±{r['gain_db']:g} dB on both dates, ±{r['date_db']:g} dB per date, noise ≤ {r['noise_db']:g} dB; "
        "one thread. (a) reads the after image only (trained on the scored labels, pre-event water ignored); "
        "(b) after, before and after − before (trained on the EMS masks as given: pre-event water is not new "
        f"flood). Seeds used: {seeds}; network rows are the mean over them.",
        "- Today's method: the shipped default `flood_s1_ensemble` on each date through the runtime's session "
        "(no VH in OMBRIA: it enters as missing); new flood = water after and not water before. The default "
        "was trained on every region including OMBRIA, so this baseline is in-sample (favoured). It is also "
        "out of its domain here: it reads [VV, VH] and OMBRIA has VV only, so on both dates it works without "
        "VH; how it does with VH on real pairs is not measured by this page.",
        "- Per-pixel forest: the low-contrast study's OMBRIA features and forest, on these folds and pixels "
        "(reported, not in the decision).",
        "- Decision rule (fixed in the config): (b) ships only if its pooled IoU beats (a) and today's method "
        "and no group is more than 0.05 below today's method.",
        *(
            [
                "- Post hoc (added after the protocol's runs to explain them; not in the decision, cannot ship): "
                "network (b) trained on (a)'s labels (pre-event water ignored), so that (a) and it differ by the "
                "before image only; same recipe and folds; seeds "
                + ", ".join(str(x) for x in summary["methods"]["with_before_loro"].get("seeds", []))
                + "."
            ]
            if "with_before_loro" in summary["methods"]
            else []
        ),
        "",
        "## IoU of new flood per held-out group and pooled",
        "",
        *table(summary),
        "",
        f"Labelled pixels scored (flood / dry): {pixels(summary)}.",
        "",
        facts_text(summary),
        "",
        "### Networks per seed",
        "",
        *seed_table(summary),
        "",
        *reading(summary),
        "## Decision",
        "",
        *decision_text(summary),
        "",
        "Caveat: the EMS masks are drawn from post-event imagery, often against a pre-event reference, so part "
        "of what the before image adds may mirror how the labels were made.",
        "",
        f"Load average when the page was written: {load} (2 shared cores; every run nice'd, one thread).",
        "",
        "## Reproduce",
        "",
        "```",
        f"nice -n 19 contrasat train flood change-loro --config {config.as_posix()} --out runs/flood_change "
        "--page docs/results" + (" --post-hoc" if "with_before_loro" in summary["methods"] else ""),
        "```",
        "",
    ]
    path = folder / "flood_change.md"
    path.write_text("\n".join(text), encoding="utf-8")
    return path
