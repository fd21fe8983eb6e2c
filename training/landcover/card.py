"""The model card of the shipped land-cover model, filled from a leave-one-site-out results file."""

from __future__ import annotations

import numpy as np

from ...models.bands import S2L1C_BANDS
from ...models.card import ClassInfo, InputSpec, ModelCard
from .data import CLASS_COLORS, CLASS_NAMES, CLIP, SLOVENIA_TO_TERRAMIND
from .features import INDICES, SURFACE_BANDS

NAME = "landcover_s2_pixel"  # the per-pixel winner; the default is chosen by default.py
LEARNED = ("gbm", "rf", "net")
METHOD_NAMES = {
    "majority": "majority class of the training sites",
    "aoi_majority": "majority class of the held-out site itself (reads its labels; reference only)",
    "gbm": "per-pixel gradient boosting (bands + indices)",
    "rf": "per-pixel random forest (bands + indices)",
    "net": "per-pixel network (1x1 convolutions on bands + indices)",
}
SEPARABLE_IOU, WEAK_IOU = 0.4, 0.1  # pooled held-out IoU bands of the card's class verdicts
DATA = (
    "TerraMesh examples of IBM/NASA TerraMind (Jakubik et al. 2025), Apache-2.0: the 4 sites 282D_485L_3_3, "
    "38D_378R_2_3, 433D_629L_3_1, 609U_541L_3_0 (224 x 224 px each, S2 L1C + LULC); eo-learn example patch, "
    "Sinergise (MIT): Slovenia, 101 x 100 px, one L1C reference scene, LULC mapped onto TerraMind classes "
    f"(Slovenian code -> TerraMind code: {SLOVENIA_TO_TERRAMIND})"
)


def mean_over_seeds(results: dict, method: str) -> dict:
    """Pooled and per-site mIoU, per-class IoU/recall of one method, averaged over its seeds."""
    runs = list(results["methods"][method].values())

    def avg(get) -> float:
        return float(np.mean([get(r) for r in runs]))

    pooled = runs[0]["pooled"]
    return {
        "seeds": len(runs),
        "pooled_miou": avg(lambda r: r["pooled"]["miou"]),
        "pooled_miou_std": float(np.std([r["pooled"]["miou"] for r in runs])),
        "pooled_accuracy": avg(lambda r: r["pooled"]["accuracy"]),
        "per_site_miou": {s: avg(lambda r, s=s: r["per_site"][s]["miou"]) for s in runs[0]["per_site"]},
        "class_iou": {c: avg(lambda r, c=c: r["pooled"]["class_iou"][c]) for c in pooled["class_iou"]},
        "class_recall": {
            c: avg(lambda r, c=c: r["pooled"]["class_recall"][c]) for c in pooled["class_recall"]
        },
    }


def best_method(results: dict) -> str:
    """The learned method with the highest pooled mIoU (mean over seeds)."""
    found = [m for m in LEARNED if m in results["methods"]]
    return max(found, key=lambda m: mean_over_seeds(results, m)["pooled_miou"])


def class_verdicts(results: dict, method: str) -> dict[str, list[str]]:
    """Classes the method separates on unseen sites, weakly, not at all, or that no fold can test."""
    scores = mean_over_seeds(results, method)
    sites_with = {
        c: sum(1 for s in results["sites"].values() if c in s["classes"]) for c in scores["class_iou"]
    }
    out: dict[str, list[str]] = {"separable": [], "weak": [], "not_separable": [], "untestable": []}
    for c, iou in scores["class_iou"].items():
        name = CLASS_NAMES[int(c)]
        if sites_with[c] < 2:
            out["untestable"].append(name)  # held out, it was never in training; trained on, never tested
        elif iou >= SEPARABLE_IOU:
            out["separable"].append(name)
        elif iou >= WEAK_IOU:
            out["weak"].append(name)
        else:
            out["not_separable"].append(name)
    out["never_labelled"] = [CLASS_NAMES[c] for c in CLASS_NAMES if c and str(c) not in scores["class_iou"]]
    return out


def build_card(results: dict, method: str, mean: list[float], std: list[float], recipe: dict) -> ModelCard:
    """The card: inputs and normalisation, class table, leave-one-site-out figures and verdicts."""
    scores = mean_over_seeds(results, method)
    verdicts = class_verdicts(results, method)
    baselines = {m: round(mean_over_seeds(results, m)["pooled_miou"], 4) for m in results["methods"]}
    n_sites = len(results["sites"])
    description = (
        f"{METHOD_NAMES[method].capitalize()} on Sentinel-2 L1C: per-pixel probabilities of TerraMind's "
        f"land-cover classes. Trained on {n_sites} small sites (4 TerraMind sites + Slovenia). Leave-one-site-out "
        f"pooled mIoU {scores['pooled_miou']:.3f} (majority class of the training sites: {baselines['majority']:.3f}). "
        f"Separates on unseen sites: {', '.join(verdicts['separable']) or 'none'}; weakly: "
        f"{', '.join(verdicts['weak']) or 'none'}; not: {', '.join(verdicts['not_separable']) or 'none'}; "
        f"seen at one site only (untested): {', '.join(verdicts['untestable']) or 'none'}."
    )
    spec = InputSpec(
        name="s2", sensor="S2L1C", bands=list(S2L1C_BANDS), units="reflectance_x10000", mean=mean, std=std,
        clip=list(CLIP),
    )  # fmt: skip
    metrics = {
        "loso": {
            "split": f"leave-one-site-out over {n_sites} sites ({', '.join(results['sites'])}); pooled = one "
            "confusion matrix over every held-out pixel; mIoU over the classes present in the labels",
            "method": method,
            **{
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in scores.items()
                if not isinstance(v, dict)
            },
            "per_site_miou": {k: round(v, 4) for k, v in scores["per_site_miou"].items()},
            "class_iou": {CLASS_NAMES[int(k)]: round(v, 4) for k, v in scores["class_iou"].items()},
            "class_recall": {CLASS_NAMES[int(k)]: round(v, 4) for k, v in scores["class_recall"].items()},
            "pooled_miou_all_methods": baselines,
        },
        "classes": verdicts,
    }
    training = {
        "code": "contrasat.training.landcover",
        "data": DATA,
        "sites": list(results["sites"]),
        "features": f"bands {', '.join(SURFACE_BANDS)} (reflectance) and indices "
        + ", ".join(f"{k} ({a}, {b})" for k, (a, b) in INDICES.items())
        + ", computed inside the graph from the normalised input",
        "normalisation": "S2: subtract the +1000 offset when the data carry it (models.preprocess.s2_offset), "
        f"clip to [{CLIP[0]:.0f}, {CLIP[1]:.0f}], then (x - mean) / std with the training pixels' statistics",
        "recipe": recipe,
    }
    return ModelCard(
        name=NAME, task="land_cover", inputs=[spec],
        classes=[ClassInfo(v, CLASS_NAMES[v], CLASS_COLORS[v]) for v in sorted(CLASS_NAMES)],
        tile_size=512, overlap=0,  # one-pixel receptive field: tiles cannot show seams, no overlap needed
        description=description, metrics=metrics, training=training,
    ).validate()  # fmt: skip
