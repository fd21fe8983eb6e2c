"""Ship the winner: fit it on every site, write ONNX + card, check ONNX Runtime against the fitted model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ...models.card import write_card
from ..common.export import ParityError
from .card import best_method, build_card
from .config import LandcoverConfig
from .data import CLIP, N_CLASSES, Site, load_sites
from .features import features
from .models import fit_gbm, fit_net, fit_rf, norm_stats, sample_pixels

log = logging.getLogger(__name__)
SHIP_SEED = 0
MAX_DIFF = 1e-4  # per-pixel probability difference counted as agreement
MIN_AGREEMENT = 0.999  # share of real pixels that must agree (features and thresholds are exact: expect 1)


def normalised(site: Site, mean: list[float], std: list[float]) -> np.ndarray:
    """(1, 13, H, W) network input exactly as models.preprocess.prepare makes it."""
    m, s = np.float32(mean)[:, None, None], np.float32(std)[:, None, None]
    return ((site.reflectance - m) / s)[None].astype(np.float32)


def reference_probs(model, site: Site) -> np.ndarray:
    """(H·W, 10) probabilities of the fitted scikit-learn model on a site's pixels."""
    refl = site.reflectance.reshape(site.reflectance.shape[0], -1).T
    out = np.zeros((refl.shape[0], N_CLASSES), dtype=np.float64)
    out[:, model.classes_] = model.predict_proba(features(refl))
    return out


def tree_parity(path: Path, model, sites: list[Site], mean: list[float], std: list[float]) -> dict:
    """ORT vs predict_proba on every pixel of the real sites: share agreeing within MAX_DIFF, argmax share."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    close, same, total, worst = 0, 0, 0, 0.0
    for site in sites:
        got = sess.run(None, {"s2": normalised(site, mean, std)})[0][0]
        got = got.reshape(N_CLASSES, -1).T
        ref = reference_probs(model, site)
        diff = np.abs(got - ref).max(1)
        close += int(np.sum(diff < MAX_DIFF))
        same += int(np.sum(got.argmax(1) == ref.argmax(1)))
        total += len(diff)
        worst = max(worst, float(diff.max()))
    return {"pixels": total, "within_1e-4": close / total, "same_class": same / total, "max_diff": worst}


def export_winner(results_path: Path, out: Path, method: str | None = None, root: Path | None = None) -> Path:
    """Fit `method` (default: best pooled mIoU) on every site with the run's recipe and write `out`."""
    import torch
    from threadpoolctl import threadpool_limits

    from ..common.config import from_dict

    results = json.loads(Path(results_path).read_text())
    cfg = from_dict(LandcoverConfig, results["recipe"])
    method = method or best_method(results)
    sites = load_sites(root)
    x, y = sample_pixels(sites, cfg.pixels_per_site, SHIP_SEED)
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(cfg.threads):
        if method in ("gbm", "rf"):
            from .onnx_graph import tree_model_onnx

            model = fit_gbm(x, y, cfg.gbm, SHIP_SEED) if method == "gbm" else fit_rf(x, y, cfg.rf, SHIP_SEED)
            mean, std = norm_stats(x)
            recipe = {"method": method, "seed": SHIP_SEED, "pixels_per_site": cfg.pixels_per_site,
                      method: getattr(cfg, method).__dict__}  # fmt: skip
            card = build_card(results, method, mean, std, recipe)
            tmp = out.with_suffix(".partial.onnx")
            import onnx

            onnx.save(tree_model_onnx(model, mean, std, CLIP), str(tmp))
            write_card(tmp, card)
            check = tree_parity(tmp, model, sites, mean, std)
            if check["within_1e-4"] < MIN_AGREEMENT:
                tmp.unlink(missing_ok=True)
                raise ParityError(f"ONNX Runtime differs from the fitted model: {check}")
            card.training["parity"] = check
            write_card(tmp, card)
            tmp.replace(out)
        elif method == "net":
            from ..common.export import ProbsNet, export_onnx

            net = fit_net(x, y, cfg.net, SHIP_SEED, CLIP)
            recipe = {"method": method, "seed": SHIP_SEED, "pixels_per_site": cfg.pixels_per_site,
                      "net": cfg.net.__dict__}  # fmt: skip
            card = build_card(results, method, net.card_mean, net.card_std, recipe)
            diff = export_onnx(
                ProbsNet(net), card, out, {"s2": (1, 13, 64, 64)},
                {"s2": {0: "n", 2: "h", 3: "w"}, "probs": {0: "n", 2: "h", 3: "w"}},
                [{"s2": (1, 13, 64, 64)}, {"s2": (2, 13, 100, 37)}],
            )  # fmt: skip
            card.training["parity"] = {"max_diff_random_inputs": diff}
            write_card(out, card)
        else:
            raise ValueError(f"cannot ship method {method}")
    log.info("shipped %s: %s (%.0f kB)", method, out, out.stat().st_size / 1024)
    return out
