"""Write the fair comparison of a leave-one-site-out run into the reference model's card (description included),
so `contrasat models` and the README say what the run measured about the default land-cover model."""

from __future__ import annotations

from pathlib import Path

from ...models.card import read_card, write_card
from .card import METHOD_NAMES, best_method
from .default import unseen_comparison

LEAD_END = "(My classes)."


def lead_line(cmp: dict, pooled: float, scores: dict) -> str:
    """One line first in the card (and so in the dock): how many sites trained it and its held-out figure."""
    n = len(cmp["reference_trained_on"])
    own = scores.get("aoi_majority")
    versus = f", against {own['mean']:.2f} for painting each site with its own majority class" if own else ""
    return (
        f"Fixed classes, trained on the labels of {n} site{'s' * (n != 1)}; on {len(cmp['sites'])} sites it never "
        f"saw, pooled mIoU {pooled:.2f}{versus}. For your own classes, draw a few polygons instead {LEAD_END}"
    )


def recard_reference(results: dict, model: Path) -> dict:
    """Add `metrics['unseen_sites']` to `model`'s card and restate its description from the run; returns it."""
    cmp = unseen_comparison(results)
    if not cmp:
        raise ValueError("the run scored no reference model: nothing to write")
    card = read_card(model)
    if f"reference:{model.stem}" != cmp["reference"] and model.stem not in cmp["reference"]:
        raise ValueError(f"the run's reference is {cmp['reference']}, not {model.name}")
    scores = cmp["pooled_miou"]
    learned = best_method(results)
    ref = scores[cmp["reference"]]
    block = {
        "split": f"pooled over the sites whose labels it never saw ({', '.join(cmp['sites'])}); it was fitted on "
        f"the labels of {', '.join(cmp['reference_trained_on'])}; per-pixel methods scored leave-one-site-out "
        "on the same pixels",
        "pooled_miou": round(ref["mean"], 4),
        "best_per_pixel_method": learned,
        "best_per_pixel_pooled_miou": round(scores[learned]["mean"], 4),
        "majority_of_training_sites_pooled_miou": round(scores["majority"]["mean"], 4),
        "pooled_miou_all_methods": {m: round(v["mean"], 4) for m, v in scores.items()},
    }
    card.metrics["unseen_sites"] = block
    head = card.description.split(LEAD_END)[-1].strip().split(" Trained on ")[0].split(" Fine-tuned on ")[0]
    card.description = (
        f"{lead_line(cmp, ref['mean'], scores)} {head} Fine-tuned on the labels of {', '.join(cmp['reference_trained_on'])} only (its encoder was "
        "pre-trained without labels on TerraMind, Sen1Floods11 and BigEarthNet imagery). On the "
        f"{len(cmp['sites'])} sites whose labels it never saw: pooled mIoU {ref['mean']:.3f}, against "
        f"{scores[learned]['mean']:.3f} for the best {METHOD_NAMES[learned]} (leave-one-site-out) and "
        f"{scores['majority']['mean']:.3f} for the majority class of the training sites. A small model for small "
        "AOIs: read the per-class figures in docs/results/landcover.md."
    )
    write_card(model, card.validate())
    return block
