"""Summary, verdict and the results page (docs/results/landcover_own_classes.md) from the results file."""

from __future__ import annotations

from typing import Any

import numpy as np

REFERENCE = "majority"


def _by(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def pooled_by_seed(rows: list[dict], method: str, k: int, sites: list[str]) -> dict[int, float]:
    """Seed -> mean over `sites` of the site's mIoU (each site weighs the same)."""
    seeds = sorted({r["seed"] for r in _by(rows, method=method, k=k)})
    out = {}
    for s in seeds:
        vals = [r["miou"] for r in _by(rows, method=method, k=k, seed=s) if r["site"] in sites]
        if len(vals) == len(sites):
            out[s] = float(np.mean(vals))
    return out


def _stat(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 4), "sd": round(float(np.std(values, ddof=1)), 4)
            if len(values) > 1 else 0.0, "n": len(values)}  # fmt: skip


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Pooled and per-site figures, the protocol's winner and the target check."""
    proto, rows = results["protocol"], results["rows"]
    sites = [s for s, info in results["sites"].items() if "skipped" not in info]
    s1_sites = [s for s in sites if results["sites"][s]["has_s1"]]
    ks = sorted({r["k"] for r in rows})
    methods = [REFERENCE, *[m for m in proto["methods"] if _by(rows, method=m)]]
    everywhere = [m for m in methods if {r["site"] for r in _by(rows, method=m)} == set(sites)]
    pooled, per_site = {}, {}
    for m in methods:
        on = sites if m in everywhere else s1_sites
        pooled[m] = {"sites": "all" if on == sites else "s1", "k": {}}
        for k in ks:
            by_seed = pooled_by_seed(rows, m, k, on)
            pooled[m]["k"][str(k)] = {**_stat(list(by_seed.values())), "by_seed": by_seed}
        per_site[m] = {
            s: {str(k): _stat([r["miou"] for r in _by(rows, method=m, k=k, site=s)]) for k in ks} for s in on
        }
    s1_pooled = {m: {str(k): _stat(list(pooled_by_seed(rows, m, k, s1_sites).values())) for k in ks}
                 for m in methods if s1_sites}  # fmt: skip
    decide = [k for k in proto["decide_ks"] if k in ks]
    candidates = [m for m in everywhere if m != REFERENCE]

    def decisive(m: str) -> float:
        return float(np.mean([pooled[m]["k"][str(k)]["mean"] for k in decide]))

    winner = max(candidates, key=decisive)
    return {
        "ks": ks, "decide_ks": decide, "methods": methods, "s1_sites": s1_sites, "pooled": pooled,
        "pooled_on_s1_sites": s1_pooled, "per_site": per_site,
        "decisive_mean": {m: round(decisive(m), 4) for m in candidates}, "winner": winner,
        "target": {m: target_check(pooled, m, proto["baselines"], decide, proto["target_margin"])
                   for m in candidates if m not in proto["baselines"]},
    }  # fmt: skip


def target_check(pooled: dict, method: str, baselines: list[str], ks: list[int], margin: float) -> dict:
    """Margins of `method` over each baseline per decisive k and seed; met when all are >= `margin`."""
    margins = {}
    for b in baselines:
        for k in ks:
            mine, theirs = pooled[method]["k"][str(k)]["by_seed"], pooled[b]["k"][str(k)]["by_seed"]
            margins[f"{b}@k={k}"] = [round(mine[s] - theirs[s], 4) for s in sorted(mine) if s in theirs]
    worst = min(v for vals in margins.values() for v in vals)
    return {"met": bool(worst >= margin), "worst_margin": round(worst, 4), "margins": margins}


def _fmt(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


LABELS = {
    "majority": "majority class (reference; peeks at the test labels)",
    "rf_bands": "(a) random forest on bands + indices",
    "head_random": "(b) head on random-init encoder features",
    "head_simclr": "(c) head on SimCLR-S2 features",
    "head_multimodal": "(d) head on multimodal S2 features",
    "head_multimodal_s1": "(d + S1) head on multimodal S2 + S1 features",
    "rf_context": "(e) random forest on bands + 3x3/7x7 means",
    "rf_multimodal": "small forest on multimodal S2 features",
    "head_multimodal_bands": "head on multimodal S2 features + bands",
}


def verdict_lines(summary: dict, proto: dict) -> list[str]:
    w, tgt = summary["winner"], summary["target"]
    dk = ", ".join(str(k) for k in summary["decide_ks"])
    lines = [f"- **Protocol winner (default): `{w}`** — {LABELS.get(w, w)}; pooled mIoU averaged over "
             f"k = {dk}: {summary['decisive_mean'][w]:.3f}."]  # fmt: skip
    ranked = sorted(summary["decisive_mean"].items(), key=lambda kv: -kv[1])
    lines.append("- Ranking (pooled mIoU averaged over k = " + dk + "): "
                 + ", ".join(f"`{m}` {v:.3f}" for m, v in ranked) + ".")  # fmt: skip
    margin = proto["target_margin"]
    if w in tgt:
        t = tgt[w]
        state = "**met**" if t["met"] else "**not met**"
        lines.append(f"- Target (default ≥ {margin:.2f} mIoU above {', '.join(proto['baselines'])} pooled, "
                     f"every seed, every k in {dk}): {state}; worst margin {t['worst_margin']:+.3f}.")  # fmt: skip
    else:
        lines.append(f"- The winner is a baseline itself: no pre-trained feature set beats "
                     f"{', '.join(proto['baselines'])} on this protocol. An honest negative: with the CPU-sized "
                     "encoders made here (minutes of pre-training on a few dozen small unlabelled scenes, far "
                     "from the paper's million pairs), the band forest is the better default for your own "
                     "classes; the encoders stay an option.")  # fmt: skip
    pre = [m for m in tgt if m.startswith("head_") or m == "rf_multimodal"]
    for m in pre:
        t = tgt[m]
        lines.append(f"- `{m}` vs baselines: worst margin {t['worst_margin']:+.3f} "
                     f"({'meets' if t['met'] else 'misses'} the {margin:.2f} target).")  # fmt: skip
    dm = summary["decisive_mean"]
    if {"head_multimodal", "head_random", "head_simclr"} <= set(dm):
        lines.append(
            f"- Pre-training itself: the head on multimodal features scores {dm['head_multimodal'] - dm['head_random']:+.3f} "
            f"against random-init features and {dm['head_multimodal'] - dm['head_simclr']:+.3f} against SimCLR-S2 "
            f"(pooled, averaged over k = {dk}); against the best band forest it scores "
            f"{dm['head_multimodal'] - max(dm[b] for b in proto['baselines']):+.3f}."
        )  # fmt: skip
    s1 = summary["pooled_on_s1_sites"]
    if "head_multimodal_s1" in s1:

        def on_s1(m: str) -> float:
            return float(np.mean([s1[m][str(k)]["mean"] for k in summary["decide_ks"]]))

        rivals = ", ".join(
            f"`{m}` {on_s1(m):.3f}" for m in [*proto["baselines"], "head_multimodal"] if m in s1
        )
        lines.append(
            f"- With S1 (the {len(summary['s1_sites'])} sites that have it, averaged over k = {dk}): "
            f"`head_multimodal_s1` {on_s1('head_multimodal_s1'):.3f} against {rivals}."
        )
    encoder_based = [m for m in dm if m not in proto["baselines"]]
    if encoder_based:
        best = max(encoder_based, key=dm.get)
        lines.append(f"- Best method on pre-trained features: `{best}` ({dm[best]:.3f}).")
    return lines


def render(results: dict[str, Any]) -> str:
    """The results page as Markdown."""
    summary = summarise(results)
    proto = results["protocol"]
    ks = summary["ks"]
    out = [
        "# Land cover in your own classes: which features and head, from a few polygons",
        "",
        "Generated by `contrasat train ownclasses report` from `docs/results/landcover_own_classes.json` "
        "(written by `contrasat train ownclasses run`); protocol `training/configs/ownclasses.toml`, fixed and "
        "committed before any run.",
        "",
        "## Protocol",
        f"- Sites, each in turn: {', '.join(f'`{s}`' for s in results['sites'])}. A site with fewer than two "
        "drawable classes is skipped (nothing to classify).",
        f"- A simulated analyst draws k = {', '.join(map(str, ks))} square polygons per class (side "
        f"{'/'.join(map(str, proto['sides']))} px, drawn uniformly), each inside its class's interior (square + "
        f"{proto['margin']} px all one class), {proto['gap']} px apart; seeds {proto['seeds']}. All methods "
        "use the same polygons.",
        f"- Test pixels: every other labelled pixel of the drawn classes more than {proto['buffer']} px from every "
        "polygon. A class too small for one smallest square is left out of training and test (listed below).",
        "- Score: mIoU over the drawn classes on the test pixels; pooled = mean over sites (each site weighs "
        "the same), then mean ± sd over seeds.",
        "- Head: multinomial logistic regression on standardised features (scikit-learn, "
        f"C = {proto['lr']['C']}, class_weight {proto['lr']['class_weight']}); forests: "
        f"{proto['rf']['n_estimators']} trees, scikit-learn defaults.",
        "- Encoders: pre-trained without any land-cover label on unlabelled S1/S2 pairs (TerraMind, "
        "Sen1Floods11, BigEarthNet-in-configilm); site 282D_485L_3_3 and Slovenia were never seen in "
        "pre-training, the other three TerraMind sites' images (not labels) were.",
        "",
        "## Verdict",
        *verdict_lines(summary, proto),
        "",
        "## Pooled mIoU (mean ± sd over seeds)",
        "",
        "| method | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "| --- | " + " | ".join("---" for _ in ks) + " |",
    ]
    for m in summary["methods"]:
        p = summary["pooled"][m]
        note = " (S1 sites only)" if p["sites"] == "s1" else ""
        out.append(f"| {LABELS.get(m, m)}{note} | " + " | ".join(_fmt(p["k"][str(k)]) for k in ks) + " |")
    if summary["s1_sites"]:
        out += ["", f"### On the sites with S1 ({', '.join(summary['s1_sites'])}), for the S1 comparison", "",
                "| method | " + " | ".join(f"k = {k}" for k in ks) + " |",
                "| --- | " + " | ".join("---" for _ in ks) + " |"]  # fmt: skip
        for m, stats in summary["pooled_on_s1_sites"].items():
            out.append(f"| {LABELS.get(m, m)} | " + " | ".join(_fmt(stats[str(k)]) for k in ks) + " |")
    out += ["", "## Per site (mIoU, mean ± sd over seeds)", ""]
    for site, info in results["sites"].items():
        if "skipped" in info:
            out += [f"### `{site}`", "", f"Skipped: {info['skipped']} "
                    f"({', '.join(info['classes'].values()) or 'no class'}); left out of the pooled figures.", ""]  # fmt: skip
            continue
        left = ", ".join(info["left_out_classes"].values()) or "none"
        out += [f"### `{site}`", "",
                f"Classes drawn: {', '.join(info['classes'].values())}; left out (no room for a polygon): {left}; "
                f"{info['labelled_pixels']} labelled pixels; S1: {'yes' if info['has_s1'] else 'no'}.", "",
                "| method | " + " | ".join(f"k = {k}" for k in ks) + " |",
                "| --- | " + " | ".join("---" for _ in ks) + " |"]  # fmt: skip
        for m in summary["methods"]:
            if site in summary["per_site"][m]:
                cells = summary["per_site"][m][site]
                out.append(f"| {LABELS.get(m, m)} | " + " | ".join(_fmt(cells[str(k)]) for k in ks) + " |")
        out.append("")
    big = max(ks)
    out += [f"## Fit + predict time per run at k = {big} (seconds, mean over sites and seeds; features "
            "computed once per site and not counted)", "", "| method | seconds |", "| --- | --- |"]  # fmt: skip
    for m in summary["methods"]:
        secs = [
            r["seconds"] for r in results["rows"] if r["method"] == m and r["k"] == big and "seconds" in r
        ]
        if secs:
            out.append(f"| {LABELS.get(m, m)} | {np.mean(secs):.2f} |")
    out += ["", f"Wall time of the study: {results['seconds']:.0f} s on a shared 2-core CPU.", ""]
    return "\n".join(out)
