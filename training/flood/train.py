"""Train one flood fold (or the final model) and score it and the threshold baselines on the held-out chip."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ...models.card import InputSpec
from ...models.preprocess import prepare
from ..common.augment import sample
from ..common.flood_data.sen1floods11 import Chip, band_stats, s1_spec
from ..common.losses import flood_loss, water_weight
from ..common.metrics import Counts, confusion
from ..common.networks import n_params
from ..common.networks.unet import UNet
from ..common.schedule import scheduler
from .config import FloodConfig
from .evaluate import predict_water, score_chip


@dataclass
class FoldRun:
    """A trained fold: the network, the card input it was trained with, and what it scored."""

    holdout: str | None
    net: UNet
    spec: InputSpec
    counts: dict[str, Counts] = field(default_factory=dict)  # method -> held-out counts
    history: dict[str, list] = field(default_factory=dict)
    seconds: float = 0.0
    otsu_db: float = math.nan


def make_batch(
    chips: list[Chip], cfg: FloodConfig, spec: InputSpec, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented crops from chips drawn uniformly (every region weighs the same), normalised by prepare()."""
    xs, ys = [], []
    for k in rng.integers(len(chips), size=cfg.batch):
        image, label = sample(chips[int(k)], cfg.augment, spec.mean[0], rng)
        xs.append(prepare(image, spec))  # the runtime's own normalisation: train == inference
        ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.int64))


def train_fold(cfg: FloodConfig, chips: list[Chip], holdout: str | None, progress: bool = True) -> FoldRun:
    """Train on every chip except `holdout` (None = all chips) with the fixed recipe."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train = [c for c in chips if c.name != holdout]
    test = next((c for c in chips if c.name == holdout), None)
    if holdout is not None and test is None:
        raise ValueError(f"hold-out chip '{holdout}' is not among {[c.name for c in chips]}")
    spec = s1_spec(*band_stats(train))
    water = sum(int((c.label == 1).sum()) for c in train) / sum(int(c.valid.sum()) for c in train)
    w_water = water_weight(water)

    net = UNet(width=cfg.width, depth=cfg.depth)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = scheduler(opt, cfg.warmup, cfg.steps)
    hist: dict[str, list] = {"step": [], "loss": [], "eval_step": [], "eval_iou": []}
    start = time.time()
    bar = tqdm(range(cfg.steps), desc=f"flood holdout={holdout}", disable=not progress, leave=False)
    for step in bar:
        net.train()
        x, y = make_batch(train, cfg, spec, rng)
        loss = flood_loss(net(x), y, w_water, cfg.dice)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist["step"].append(step + 1)
        value = loss.item()
        hist["loss"].append(value)
        bar.set_postfix(loss=f"{value:.3f}")
        if test is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            c = confusion(predict_water(net, test.s1, spec) > 0.5, test.label, test.valid)
            hist["eval_step"].append(step + 1)
            hist["eval_iou"].append(c.iou)
    run = FoldRun(holdout, net.eval(), spec, history=hist, seconds=time.time() - start)
    run.history["water_weight"] = [w_water]
    if test is not None:
        run.counts, run.otsu_db = score_chip(net, spec, test)
    return run


def save_fold(run: FoldRun, cfg: FloodConfig, folder: Path, train_chips: list[str]) -> Path:
    """Write weights (model.pt) and result.json (config, spec, counts, history) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(run.net.state_dict(), folder / "model.pt")
    result: dict[str, Any] = {
        "holdout": run.holdout,
        "train_chips": train_chips,
        "config": cfg.to_dict(),
        "spec": {"mean": run.spec.mean, "std": run.spec.std, "clip": run.spec.clip},
        "params": n_params(run.net),
        "seconds": round(run.seconds, 1),
        "otsu_db": run.otsu_db,
        "counts": {m: c.summary() for m, c in run.counts.items()},
        "history": run.history,
    }
    path = folder / "result.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return path


def load_fold(folder: Path) -> tuple[dict[str, Any], UNet, InputSpec]:
    """Read back a saved fold: its result dict, the network (eval mode) and its InputSpec."""
    result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    cfg = FloodConfig.from_dict(result["config"])
    net = UNet(width=cfg.width, depth=cfg.depth)
    net.load_state_dict(torch.load(folder / "model.pt", map_location="cpu"))
    spec = s1_spec(result["spec"]["mean"], result["spec"]["std"])
    return result, net.eval(), spec
