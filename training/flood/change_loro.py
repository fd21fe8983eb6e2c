"""Does the flood network gain from the pre-event scene? OMBRIA leave-one-group-out, with and without it.

Protocol: training/configs/flood_change.toml (fixed before the runs). Each OMBRIA place is a `Chip` whose
two "bands" are the two dates, [VV after, VV before] in calibrated dB, so the LORO kit's loop, augmentation
(the same crop and flips on both dates) and prediction are reused as they are. Two networks of the same
architecture: `after` reads the first band only, `with_before` both and their difference. Baselines on
the same pixels: the shipped default run on each date (today's `--pre-event`) and the per-pixel forest.

    nice -n 19 contrasat train flood change-loro --out runs/flood_change --page docs/results
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...models.card import InputSpec
from ..common.flood_data.regions import Chip
from ..common.loro.training import predict, train_region_balanced
from ..common.metrics import counts_iou
from ..common.networks.unet import UNet
from .change_baselines import baselines, facts
from .change_data import POST_HOC, VARIANTS, ChangeRecipe, Pair, load_pairs, load_plan, region_counts, scored
from .change_summary import summarise

NETS = {"after": "after", "with_before": "with_before", "with_before_loro": "with_before"}


@dataclass
class _Augment:
    """The recipe as the LORO kit's augmentation reads it (no VV raise, no dropout: both bands are VV)."""

    crop: int
    gain_db: float
    band_db: float
    noise_db: float
    vv_water_raise_db: float = 0.0
    vv_raise_scope: str = "water"
    vv_dropout: float = 0.0


class ChangeNet(nn.Module):
    """(N, 2, H, W) normalised [VV after, VV before] -> logits (N, 2, H, W) for [not new flood, new flood].

    `after`: the U-Net reads the after image only. `with_before`: after, before and after - before (formed
    here from the two normalised dates, which share one mean and std, so it is the change in std units).
    """

    def __init__(self, variant: str, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown network '{variant}' (known: {', '.join(VARIANTS)})")
        self.variant = variant
        self.unet = UNet(in_ch=1 if variant == "after" else 3, width=width, depth=depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        after, before = x[:, 0:1], x[:, 1:2]
        if self.variant == "after":
            return self.unet(after)
        return self.unet(torch.cat([after, before, after - before], dim=1))


def date_spec(pairs: list[Pair], clip: tuple[float, float]) -> InputSpec:
    """Both dates normalised with the VV mean and std of the training places' after images (clipped dB)."""
    v = np.clip(np.concatenate([p.after_db.ravel() for p in pairs]).astype(np.float64), *clip)
    mean, std = round(float(v.mean()), 6), round(float(v.std()), 6)
    return InputSpec(name="s1_pair", sensor="S1", bands=["VV", "VV"], units="dB", mean=[mean, mean],
                     std=[std, std], clip=list(clip))  # fmt: skip


def training_chips(pairs: list[Pair], variant: str) -> list[Chip]:
    """`after` learns from the LORO labels (pre-event water ignored: it cannot know it); `with_before` from the
    EMS mask as given (its target is new flood, and pre-event water is not new flood)."""
    if variant in ("after", "with_before_loro"):
        return [p.chip for p in pairs]
    return [replace(p.chip, label=p.ems.astype(np.int64)) for p in pairs]


def train_variant(
    variant: str, recipe: ChangeRecipe, data: dict[str, list[Pair]], seed: int
) -> tuple[ChangeNet, InputSpec]:
    """One network trained on the given regions (region-balanced draw, the LORO kit's loop and loss)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spec = date_spec([p for n in sorted(data) for p in data[n]], recipe.clip_db)
    net = ChangeNet(NETS[variant], recipe.width, recipe.depth)
    chips = {n: training_chips(pairs, variant) for n, pairs in data.items()}
    aug = _Augment(recipe.crop, recipe.gain_db, recipe.date_db, recipe.noise_db)
    groups = [{"params": list(net.parameters()), "lr": recipe.lr}]
    train_region_balanced(net, groups, chips, aug, spec, recipe.steps, recipe.batch, recipe.dice, rng)
    return net.eval(), spec


def run(
    config: Path, out: Path, seeds: list[int] | None = None, forest: bool = True, post_hoc: bool = False
) -> dict[str, Any]:
    """Every (seed, variant, fold) not yet saved under `out`, the baselines once; returns the summary.
    `post_hoc`: also the POST_HOC variants, after the protocol's."""
    plan = load_plan(config)
    regions = [r for fold in plan.folds for r in fold]
    data = {r: load_pairs(r) for r in regions}
    print("loaded " + ", ".join(f"{r} ({len(p)})" for r, p in data.items()), flush=True)
    baselines(plan, data, out, forest)
    facts(plan, data, out)
    todo = [(seed, v) for seed in (seeds if seeds is not None else plan.seeds) for v in VARIANTS]
    if post_hoc:
        todo += [(seed, v) for seed in (seeds if seeds is not None else plan.seeds) for v in POST_HOC]
    recipe_json = json.loads(json.dumps(asdict(plan.recipe)))  # as saved (tuples become lists)
    for seed, variant in todo:
        for k, held in enumerate(plan.folds):
            path = out / variant / f"seed{seed}" / f"fold{k}.json"
            if path.is_file() and json.loads(path.read_text())["recipe"] == recipe_json:
                continue
            train = {r: data[r] for r in regions if r not in held}
            start = time.time()
            net, spec = train_variant(variant, plan.recipe, train, seed)
            scores = {}
            for h in held:
                pairs = scored(data[h], plan.eval_step)
                scores[h] = region_counts(predict(net, spec, [p.chip for p in pairs]), pairs)
            res = {"recipe": asdict(plan.recipe), "variant": variant, "seed": seed, "held_out": held,
                   "seconds": round(time.time() - start, 1), "scores": scores}  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(res, indent=1), encoding="utf-8")
            ious = ", ".join(f"{h} {counts_iou(c):.3f}" for h, c in scores.items())
            print(f"{variant} seed{seed} fold{k} {res['seconds']:.0f}s: {ious}", flush=True)
    return summarise(plan, out)
