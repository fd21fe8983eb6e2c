"""Leave-one-site-out: every method trained on all sites but one and scored on the held-out one.

Per site and pooled (one confusion matrix summed over every held-out pixel of every fold) for each seed;
the held-out site never steers training (no early stopping, no model selection on it).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..common.metrics import class_confusion, class_summary
from ..common.splits import leave_one_out
from .config import LandcoverConfig
from .data import CLIP, N_CLASSES, NODATA_CLASS, SLOVENIA, Site, slovenia_geotiff
from .models import (
    fit_gbm,
    fit_net,
    fit_rf,
    majority_class,
    predict_net,
    predict_sklearn,
    sample_pixels,
)

log = logging.getLogger(__name__)
STOCHASTIC = ("gbm", "rf", "net")


def fit_predict(method: str, train: list[Site], test: Site, cfg: LandcoverConfig, seed: int) -> np.ndarray:
    """Predicted codes for the labelled pixels of `test` (in Site.pixels() order)."""
    x_test, _ = test.pixels()
    if method == "majority":
        return np.full(len(x_test), majority_class(train), dtype=np.uint8)
    if method == "aoi_majority":  # reads the held-out labels: the "paint the AOI" answer, a reference only
        return np.full(len(x_test), majority_class([test]), dtype=np.uint8)
    x, y = sample_pixels(train, cfg.pixels_per_site, seed)
    if method == "gbm":
        return predict_sklearn(fit_gbm(x, y, cfg.gbm, seed), x_test)
    if method == "rf":
        return predict_sklearn(fit_rf(x, y, cfg.rf, seed), x_test)
    if method == "net":
        return predict_net(fit_net(x, y, cfg.net, seed, CLIP), x_test)
    raise ValueError(f"unknown method {method}")


def _scores(cms: dict[str, np.ndarray]) -> dict:
    pooled = sum(cms.values())
    return {"per_site": {s: class_summary(cm) for s, cm in cms.items()}, "pooled": class_summary(pooled)}


def loso(sites: list[Site], cfg: LandcoverConfig) -> dict:
    """{method: {seed: {"per_site": {site: scores}, "pooled": scores}}} over the leave-one-site-out folds."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(cfg.threads)
    by_name = {s.name: s for s in sites}
    folds = leave_one_out(by_name)
    results: dict[str, dict[str, dict]] = {}
    with threadpool_limits(cfg.threads):
        for method in cfg.methods:
            seeds = cfg.seeds if method in STOCHASTIC else (0,)
            results[method] = {}
            for seed in seeds:
                cms = {}
                for held, _test, train in folds:
                    t0 = time.time()
                    test = by_name[held]
                    pred = fit_predict(method, [by_name[n] for n in train], test, cfg, seed)
                    cms[held] = class_confusion(pred, test.pixels()[1], N_CLASSES, NODATA_CLASS)
                    log.info("%s seed %d held %s: %.1fs", method, seed, held, time.time() - t0)
                results[method][str(seed)] = _scores(cms)
                log.info(
                    "%s seed %d pooled mIoU %.3f", method, seed, results[method][str(seed)]["pooled"]["miou"]
                )
    return results


def reference_model(sites: list[Site], model: Path, root: Path) -> dict:
    """A bundled ONNX model run through the runtime's `land_cover` on each site's S2 file (no training)."""
    import rasterio

    from ...models.pipeline import land_cover

    cms = {}
    with tempfile.TemporaryDirectory() as tmp:
        for site in sites:
            if site.name == SLOVENIA:
                s2 = slovenia_geotiff(Path(tmp) / "slovenia_s2.tif", root)
            else:
                s2 = root / "terramind" / "S2L1C" / f"{site.name}.tif"
            out = Path(tmp) / f"{site.name}_lc.tif"
            land_cover(s2, out, model=model)
            with rasterio.open(out) as ds:
                pred = ds.read(1)
            keep = site.label != 0
            p = pred[keep]
            p = np.where(p < N_CLASSES, p, 0)  # runtime nodata (255) scores as a miss
            cms[site.name] = class_confusion(p, site.label[keep], N_CLASSES, NODATA_CLASS)
    return {"0": _scores(cms)}


def write_results(path: Path, results: dict, sites: list[Site], cfg: LandcoverConfig, extra: dict) -> Path:
    """results.json: recipe, sites (offset, class counts), per-method scores per seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "protocol": "leave-one-site-out; pooled = one confusion matrix over every held-out pixel of every fold",
        "recipe": cfg.to_dict(),
        "sites": {
            s.name: {
                "offset": s.offset,
                "shape": list(s.label.shape),
                "classes": {
                    str(c): int(n)
                    for c, n in enumerate(np.bincount(s.label.ravel(), minlength=N_CLASSES))
                    if c and n
                },
            }
            for s in sites
        },
        "methods": results,
        **extra,
    }
    path.write_text(json.dumps(doc, indent=1))
    return path


def pooled_mean(results: dict, method: str) -> tuple[float, float]:
    """Mean and std over seeds of the pooled mIoU of one method."""
    vals = [r["pooled"]["miou"] for r in results[method].values()]
    return float(np.mean(vals)), float(np.std(vals))
