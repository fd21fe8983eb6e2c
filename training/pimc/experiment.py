"""The PIMC experiment: per seed, pre-train, then score every method on classification and forecasting.

Writes one JSON with per-seed scores, the pre-training loss curves, and the split; the report script turns it
into docs/results/pimc.md. The fine-tuned PIMC classifier of each seed is saved for export.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .data import SPLIT_NAME, TEST_BLOCKS, VAL_BLOCKS, PixelSet, build_pixels, load_slovenia
from .evaluate import persistence_rmse
from .networks import RPEncoder, SeriesCNN
from .train import Norm, PimcConfig, pretrain, train_classifier, train_forecaster

# method -> (input kind, encoder init, frozen encoder)
METHODS: dict[str, tuple[str, str, bool]] = {
    "PIMC linear probe": ("rp", "pimc", True),
    "PIMC fine-tuned": ("rp", "pimc", False),
    "RP CNN random init, probe": ("rp", "random", True),
    "RP CNN random init, trained": ("rp", "random", False),
    "1-D CNN on raw series": ("raw", "random", False),
}


def run_seed(ps: PixelSet, cfg: PimcConfig, seed: int, log=print) -> tuple[dict, dict]:
    """All methods for one seed: ({task: {method: scores}}, state dict of the fine-tuned PIMC classifier)."""
    norm = Norm.fit(ps, np.flatnonzero(ps.split == 0))
    t0 = time.perf_counter()
    pimc, curve = pretrain(ps, cfg, seed, norm)
    log(f"seed {seed}: pre-training {time.perf_counter() - t0:.0f} s, loss {curve[0]:.3f} -> {curve[-1]:.3f}")
    channels = ps.rp.shape[1]
    out: dict = {"pretrain_loss": curve, "classification": {}, "forecasting": {}}
    product = None
    for name, (kind, init, freeze) in METHODS.items():
        for task in ("classification", "forecasting"):
            torch.manual_seed(seed + 1000)  # the same random init for the probe and the trained variant
            enc = RPEncoder(channels) if kind == "rp" else SeriesCNN(channels)
            if init == "pimc":
                enc = copy.deepcopy(pimc.rp)
            t0 = time.perf_counter()
            if task == "classification":
                scores, model = train_classifier(ps, kind, enc, freeze, cfg, seed, norm)
                if name == "PIMC fine-tuned":
                    product = {"state": model.state_dict(), "norm": asdict(norm), "scores": scores}
            else:
                scores = train_forecaster(ps, kind, enc, freeze, cfg, seed, norm)
            out[task][name] = scores
            log(f"seed {seed}: {task:<14} {name:<28} {scores} ({time.perf_counter() - t0:.0f} s)")
    out["forecasting"]["Persistence (last value)"] = {
        "rmse": persistence_rmse(ps, 2),
        "val_rmse": persistence_rmse(ps, 1),
    }
    return out, product


def run(
    out_dir: str | Path, seeds: list[int], cfg: PimcConfig | None = None, data: str | None = None
) -> Path:
    """Run all seeds and write results.json (+ pimc_classifier_seed<k>.pt) into `out_dir`."""
    torch.set_num_threads(1)  # shared 2-core machine
    cfg = cfg or PimcConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ps = build_pixels(load_slovenia(data))
    results = {
        "data": "eo-learn Slovenia patch (101×100 px, 68 dates, NDVI), Sinergise, MIT",
        "split": {"name": SPLIT_NAME, "val_blocks": sorted(VAL_BLOCKS), "test_blocks": sorted(TEST_BLOCKS),
                  "pixels": {k: int(np.sum(ps.split == i)) for i, k in enumerate(("train", "val", "test"))}},
        "config": asdict(cfg),
        "seeds": {},
    }  # fmt: skip
    for seed in seeds:
        res, product = run_seed(ps, cfg, seed)
        results["seeds"][str(seed)] = res
        torch.save(product, out_dir / f"pimc_classifier_seed{seed}.pt")
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    return out_dir / "results.json"
