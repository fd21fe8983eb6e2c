"""Run the study: every site, k and seed draws one set of polygons; every method is fitted on it and
scored on the site's buffered test pixels (mIoU over the drawable classes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..common.config import to_dict
from ..common.metrics import accuracy, class_confusion, class_iou, miou
from .config import StudyConfig
from .features import feature_stack
from .polygons import draw_squares, drawable_classes, held_out_mask, train_mask
from .sites import Site, load_site


def make_classifier(kind: str, cfg: StudyConfig, seed: int):
    """The head (standardised multinomial logistic regression) or the analysts' random forest."""
    if kind == "lr":
        lr = LogisticRegression(C=cfg.lr.C, class_weight=cfg.lr.class_weight, max_iter=cfg.lr.max_iter)
        return make_pipeline(StandardScaler(), lr)
    return RandomForestClassifier(
        n_estimators=cfg.rf.n_estimators, max_features=cfg.rf.max_features,
        min_samples_leaf=cfg.rf.min_samples_leaf, random_state=seed, n_jobs=1,
    )  # fmt: skip


def score(pred: np.ndarray, true: np.ndarray, classes: list[int]) -> dict[str, Any]:
    """mIoU, accuracy and per-class IoU over the drawable classes (class values, not indexes, as keys)."""
    lut = {c: i for i, c in enumerate(classes)}
    cm = class_confusion(np.vectorize(lut.get)(pred), np.vectorize(lut.get)(true), len(classes))
    return {"miou": miou(cm), "accuracy": accuracy(cm),
            "class_iou": {str(classes[i]): round(v, 4) for i, v in class_iou(cm).items()}}  # fmt: skip


def run_site(
    site: Site, cfg: StudyConfig, extractors: dict[str, Path], methods: list[str], ks: list[int], seeds: list[int],
    site_index: int, log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """(site summary, one row per k x seed x method, plus the majority-class reference as method 'majority')."""
    classes = drawable_classes(site.label, min(cfg.sides), cfg.margin)
    summary = {
        "classes": {str(c): site.class_names.get(c, str(c)) for c in classes},
        "left_out_classes": {str(c): site.class_names.get(c, str(c)) for c in np.unique(site.label)
                             if c > 0 and c not in classes},
        "labelled_pixels": int(np.isin(site.label, classes).sum()), "shape": list(site.label.shape),
        "has_s1": site.s1 is not None,
    }  # fmt: skip
    if len(classes) < 2:  # one class (609U_541L_3_0 is all snow/ice): nothing for an analyst to classify
        summary["skipped"] = f"{len(classes)} drawable class(es): nothing to classify"
        log(f"{site.name}: skipped ({summary['skipped']})")
        return summary, []
    runnable = [m for m in methods if site.s1 is not None or not cfg.needs_s1(m)]
    cache: dict = {}
    rows = []
    for k in ks:
        for seed in seeds:
            rng = np.random.default_rng([seed, k, site_index])
            squares = draw_squares(site.label, classes, k, cfg.sides, cfg.margin, cfg.gap, rng)
            train = train_mask(squares, site.label.shape)
            test = held_out_mask(site.label, classes, squares, cfg.buffer)
            y, truth = site.label[train], site.label[test]
            base = {"site": site.name, "k": k, "seed": seed, "train_pixels": int(train.sum()),
                    "test_pixels": int(test.sum()),
                    "polygons": {str(c): sum(sq.cls == c for sq in squares) for c in classes}}  # fmt: skip
            values, counts = np.unique(truth, return_counts=True)
            rows.append({**base, "method": "majority",
                         **score(np.full_like(truth, values[np.argmax(counts)]), truth, classes)})  # fmt: skip
            for method in runnable:
                spec = cfg.methods[method]
                feats = feature_stack(site, spec["features"], extractors, cache)
                t0 = time.perf_counter()
                clf = make_classifier(spec["classifier"], cfg, seed).fit(feats[:, train].T, y)
                pred = clf.predict(feats[:, test].T)
                seconds = time.perf_counter() - t0
                rows.append(
                    {**base, "method": method, "seconds": round(seconds, 3), **score(pred, truth, classes)}
                )
            log(f"{site.name} k={k} seed={seed}: " + ", ".join(
                f"{r['method']} {r['miou']:.3f}" for r in rows[-len(runnable) - 1 :]))  # fmt: skip
    return summary, rows


def run_study(
    cfg: StudyConfig, data_root: Path, repo_root: Path, sites: list[str] | None = None,
    ks: list[int] | None = None, seeds: list[int] | None = None, log: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """The whole protocol (or a subset of sites/ks/seeds for a quick check): the results document."""
    used = {f for spec in cfg.methods.values() for f in spec["features"]}
    extractors = {name: repo_root / path for name, path in cfg.extractors.items() if name in used}
    missing = [str(p) for p in extractors.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"feature extractor(s) not found: {', '.join(missing)}")
    t0 = time.time()
    methods = list(cfg.methods)
    summaries, rows = {}, []
    for i, name in enumerate(sites or cfg.sites):
        site = load_site(data_root, name, cfg.slovenia_scene)
        summaries[name], site_rows = run_site(site, cfg, extractors, methods, ks or cfg.ks, seeds or cfg.seeds,
                                              cfg.sites.index(name) if name in cfg.sites else i, log)  # fmt: skip
        rows.extend(site_rows)
    return {"protocol": to_dict(cfg), "sites": summaries, "rows": rows, "seconds": round(time.time() - t0, 1)}
