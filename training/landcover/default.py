"""Which land-cover model is the default: the learned per-pixel winner or the reference U-Net it is compared with.

The reference U-Net was fitted on the labels of some sites, so its pooled leave-one-site-out score mixes
held-out and training pixels. The fair comparison pools, for every method, only the sites the reference never
had labels for; the default is the one that wins there (ties go to the per-pixel method, which was scored
leave-one-site-out everywhere).
"""

from __future__ import annotations

import re

import numpy as np

from ..common.metrics import miou
from .card import LEARNED, best_method

TRAIN_SPLIT = re.compile(r"train ([^;]+);")


def reference_key(results: dict) -> str | None:
    """The results key of the (first) reference model, if the run scored one."""
    return next((m for m in results["methods"] if m.startswith("reference:")), None)


def reference_trained_sites(results: dict, key: str) -> list[str]:
    """The sites whose labels the reference was fitted on, read from its card's held-out split."""
    split = results.get("references", {}).get(key, {}).get("heldout", {}).get("split", "")
    match = TRAIN_SPLIT.search(split)
    named = {s.strip() for s in match.group(1).split(",")} if match else set()
    return [s for s in results["sites"] if s in named]


def unseen_comparison(results: dict) -> dict:
    """Pooled mIoU (mean, std over seeds) of every method on the sites the reference never had labels for."""
    key = reference_key(results)
    if key is None:
        return {}
    trained = reference_trained_sites(results, key)
    sites = [s for s in results["sites"] if s not in trained]
    scores = {}
    for method, runs in results["methods"].items():
        values = [
            miou(sum(np.array(r["per_site"][s]["confusion"], dtype=np.int64) for s in sites))
            for r in runs.values()
        ]
        scores[method] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": len(values)}
    return {"reference": key, "reference_trained_on": trained, "sites": sites, "pooled_miou": scores}


def default_choice(results: dict) -> str:
    """'reference:<name>' when the reference beats the best learned method on its unseen sites, else that method."""
    learned = best_method(results)
    cmp = unseen_comparison(results)
    if not cmp or not cmp["reference_trained_on"]:
        return learned  # no reference, or one whose training sites are unknown: no fair comparison to make
    scores = cmp["pooled_miou"]
    best_learned = max((m for m in LEARNED if m in scores), key=lambda m: scores[m]["mean"])
    return cmp["reference"] if scores[cmp["reference"]]["mean"] > scores[best_learned]["mean"] else learned
