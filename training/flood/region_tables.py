"""The tables and figure of docs/results/flood.md: per-recipe LORO tables, the protocol's verdict rules,
calibration evidence, stress figures, the LORO bar plot and the README model rows (region_page.py writes the
page from them)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..common.figures import format_score
from ..common.loro.tables import MARGIN, pooled, seeds_iou
from ..common.metrics import counts_iou

NAMES = {"model": "network", "model_or_vh": "network OR VH<-20 (safeguard)", "otsu": "Otsu per chip",
         "fixed_vh_-20dB": "VH < -20 dB", "vh_level": "VH < -20 dB on level-aligned input"}  # fmt: skip


def recipe_table(table: dict[str, Any], recipe: str) -> dict[str, Any]:
    """Per region and pooled counts of each method and seed for one recipe."""
    seeds = sorted(table[recipe], key=int)
    regions = list(table[recipe][seeds[0]])
    rows: dict[str, Any] = {}
    for r in regions:
        per = [table[recipe][s][r]["scores"] for s in seeds if r in table[recipe][s]]
        rows[r] = {"source": table[recipe][seeds[0]][r]["source"], "seeds": per}
    return {"seeds": seeds, "rows": rows}


def clearly_better(t: dict[str, Any], method: str) -> bool:
    """Pooled over the regions with VH, every seed beats VH < -20 dB by more than MARGIN."""
    rows = t["rows"]
    names = [r for r, row in rows.items() if row["source"] != "ombria"]
    rule = counts_iou(pooled(rows, names, "fixed_vh_-20dB", 0))
    vals = [counts_iou(pooled(rows, names, method, k)) for k in range(len(t["seeds"]))]
    return bool(vals) and all(v > rule + MARGIN for v in vals)


def winner(table: dict[str, Any], shipped: str, method: str, model_name: str) -> str:
    """The default the protocol names: the shipped model when it passes both rules, else the VH rule."""
    t = recipe_table(table, shipped)
    return (
        model_name if not criterion(t["rows"], method) and clearly_better(t, method) else "flood_vh_threshold"
    )


def criterion(rows: dict[str, Any], method: str) -> list[str]:
    """Regions with VH where the method's mean-over-seeds IoU is below VH < -20 dB by more than MARGIN."""
    bad = []
    for r, row in rows.items():
        rule = counts_iou(row["seeds"][0]["fixed_vh_-20dB"])
        vals = [counts_iou(s.get(method)) for s in row["seeds"] if s.get(method) is not None]
        if math.isnan(rule) or not vals:
            continue
        m = float(np.nanmean(vals)) if not all(math.isnan(v) for v in vals) else math.nan
        if not math.isnan(m) and m < rule - MARGIN:
            bad.append(f"{r} ({m:.3f} vs {rule:.3f})")
    return bad


def region_lines(t: dict[str, Any], methods: list[str]) -> list[str]:
    rows, n = t["rows"], len(t["seeds"])
    head = (
        "| held-out region | source | water share | "
        + " | ".join(NAMES[m] for m in methods)
        + " | Otsu | VH < -20 dB |"
    )
    lines = [head, "|" + " --- |" * 2 + " ---: |" * (len(methods) + 3)]
    groups = {"sen1floods11": [], "etci2021": [], "ombria": []}
    for r, row in rows.items():
        groups[row["source"]].append(r)
        c0 = row["seeds"][0]["fixed_vh_-20dB"] or row["seeds"][0]["otsu"]
        share = (c0["tp"] + c0["fn"]) / max(1, sum(c0.values()))
        cells = []
        for m in methods:
            mean, sd, each = seeds_iou([s.get(m) for s in row["seeds"]])
            cells.append(
                f"{format_score(mean)} ± {format_score(sd)} ({each})" if n > 1 else format_score(mean)
            )
        lines.append(f"| {r} | {row['source']} | {share:.3f} | " + " | ".join(cells)
                     + f" | {format_score(counts_iou(row['seeds'][0]['otsu']))} | {format_score(counts_iou(row['seeds'][0]['fixed_vh_-20dB']))} |")  # fmt: skip
    sets = [(f"**pooled {g}**", names) for g, names in groups.items() if names]
    sets.append(("**pooled, regions with VH**", groups["sen1floods11"] + groups["etci2021"]))
    sets.append(("**pooled, all regions**", list(rows)))
    for label, names in sets:
        cells = []
        for m in methods:
            mean, sd, each = seeds_iou([pooled(rows, names, m, k) for k in range(n)])
            cells.append(
                f"**{format_score(mean)}** ± {format_score(sd)} ({each})"
                if n > 1
                else f"**{format_score(mean)}**"
            )
        lines.append(f"| {label} | | | " + " | ".join(cells)
                     + f" | {format_score(counts_iou(pooled(rows, names, 'otsu', 0)))} | {format_score(counts_iou(pooled(rows, names, 'fixed_vh_-20dB', 0)))} |")  # fmt: skip
    return lines


def shown_methods(table: dict[str, Any], recipe: str) -> list[str]:
    """The learned methods of a recipe's table, plus the VH rule on aligned input when it was scored."""
    t = recipe_table(table, recipe)
    first = next(iter(t["rows"].values()))["seeds"][0]
    return ["model", "model_or_vh"] + (["vh_level"] if "vh_level" in first else [])


def calibration_lines(cal: dict[str, Any]) -> list[str]:
    lines = ["| source | band | gain dB/DN | offset dB | fit RMS dB | water median DN → dB | dry median DN → dB | Sen1Floods11 water / dry median dB |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    entries = [("ETCI 2021", b, cal["etci"]["quantiles_dn"][b], cal["etci"]["maps"][b]) for b in ("VV", "VH")]
    for b, m in cal["ombria"]["fits"].items():
        mark = " (taken)" if b == cal["ombria"]["band"] else " (rejected)"
        entries.append((f"OMBRIA as {b}{mark}", b, cal["ombria"]["quantiles_dn"], m))
    for name, b, q, m in entries:
        w, d = q["water"][4], q["dry"][4]
        ref = cal["reference_db"][b]
        lines.append(f"| {name} | {b} | {m['gain']:.4f} | {m['offset']:.2f} | {m['rms_db']:.2f} | "
                     f"{w:.0f} → {w * m['gain'] + m['offset']:.1f} | {d:.0f} → {d * m['gain'] + m['offset']:.1f} | "
                     f"{ref['water'][4]:.1f} / {ref['dry'][4]:.1f} |")  # fmt: skip
    return lines


def stress_lines(stress: dict[str, dict[str, float]]) -> list[str]:
    keys = list(next(iter(stress.values())))
    lines = ["| figure | " + " | ".join(stress) + " |", "| --- |" + " ---: |" * len(stress)]
    for k in keys:
        lines.append(
            f"| {k} | " + " | ".join(format_score(v.get(k, math.nan)) for v in stress.values()) + " |"
        )
    return lines


def plot(t: dict[str, Any], path: Path, methods: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = t["rows"]
    names = list(rows)
    all_m = [*methods, "otsu", "fixed_vh_-20dB"]
    fig, ax = plt.subplots(figsize=(12, 4))
    x = np.arange(len(names))
    w = 0.8 / len(all_m)
    for i, m in enumerate(all_m):
        vals = [seeds_iou([s.get(m) for s in rows[r]["seeds"]])[0] for r in names]
        ax.bar(x + (i - len(all_m) / 2 + 0.5) * w, np.nan_to_num(vals), w, label=NAMES[m])
    ax.set_xticks(x, [n.replace("_", "\n", 1) for n in names], fontsize=7)
    ax.set_ylabel("held-out water IoU (mean over seeds)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _model_row(
    table: dict[str, Any], recipe: str, name: str, method: str, default: str, what: str = ""
) -> str:
    """One README row: a bundled flood model and its LORO figures (mean over seeds)."""
    rows = recipe_table(table, recipe)["rows"]
    seeds = recipe_table(table, recipe)["seeds"]
    vh = [r for r, row in rows.items() if row["source"] != "ombria"]
    m, sd, _ = seeds_iou([pooled(rows, vh, method, k) for k in range(len(seeds))])
    rule = counts_iou(pooled(rows, vh, "fixed_vh_-20dB", 0))
    otsu = counts_iou(pooled(rows, vh, "otsu", 0))
    bad = criterion(rows, method)
    note = (
        f"worse than the rule by > {MARGIN} on {', '.join(bad)}"
        if bad
        else f"never worse than the rule by > {MARGIN}"
    )
    return (f"| `{name}`{' (default)' if default == name else ''} | flood, S1 VV/VH | {what}leave-one-region-out "
            f"(Sen1Floods11 chips + ETCI scenes, {len(seeds)} seeds) pooled water IoU {m:.3f} ± {sd:.3f} vs {rule:.3f} "
            f"(VH < -20 dB) and {otsu:.3f} (Otsu); {note}; stress sets in the results page | [flood.md](docs/results/flood.md) |")  # fmt: skip


def readme_rows(table: dict[str, Any], stress: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The README model-table rows of the flood models that come from this protocol."""
    t = recipe_table(table, args.shipped)
    rows = t["rows"]
    vh = [r for r, row in rows.items() if row["source"] != "ombria"]
    rule = counts_iou(pooled(rows, vh, "fixed_vh_-20dB", 0))
    replaced = []
    reference = getattr(args, "reference", None)
    if reference and reference != args.shipped:  # the model the shipped one replaced stays bundled
        replaced = [_model_row(table, reference, args.reference_model, "model", args.default,
                               "the previous default, two networks (a level-anchored residual net and a U-Net) "
                               "averaged; ")]  # fmt: skip
    old = []
    if args.model_name != "flood_s1_unet" and "flood_s1_unet" in stress:
        st = stress["flood_s1_unet"]
        old = [f"| `flood_s1_unet` | flood, S1 VV/VH | an earlier default (U-Net, 6 Sen1Floods11 chips); stress sets: "
               f"whole-water tiles mapped {st['water_tile_rate_water_ETCI_northal']:.0%} (ETCI North Alabama), IoU lost "
               f"{st['iou_loss_vv+10dB_on_water']:.3f} with VV +10 dB on water | [flood.md](docs/results/flood.md) |"]  # fmt: skip
    return [
        _model_row(table, args.shipped, args.model_name, args.safeguard, args.default),
        *replaced,
        f"| `flood_vh_threshold`{' (default)' if args.default == 'flood_vh_threshold' else ''} | flood, S1 VH | the "
        f"fixed rule; same protocol pooled IoU {rule:.3f}; the protocol's winner when no model is clearly better | "
        "[flood.md](docs/results/flood.md) |",
        *old,
    ]  # fmt: skip
