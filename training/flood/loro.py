"""Leave-one-region-out over every labelled flood source, next to VH < -20 dB and per-chip Otsu.

Recipes and folds are fixed in a TOML file committed before the runs (training/configs/flood_loro.toml).
Each (recipe, seed, fold) trains on every region outside the fold and scores each held-out region
separately; results are saved per fold as JSON, so a rerun resumes. Baselines run through the same scoring
code on the same pixels. A region without VH (OMBRIA: VV only) has no VH rule; its Otsu runs on VV.

    nice python -m contrasat.training.flood.loro --config training/configs/flood_loro.toml --out runs/loro
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from ...models.card import InputSpec
from ...models.levels import scene_shift
from ...models.preprocess import prepare
from ..common.losses import flood_loss, water_weight
from ..common.metrics import Counts, confusion
from .data import S1_BANDS, band_stats, s1_spec
from .evaluate import FIXED_VH_DB, otsu_threshold
from .networks import UNet
from .safeguard import ThresholdResidual
from .sources import IGNORE, Chip, load_region, present_bands, regions

METHODS = ("model", "model_or_vh", "otsu", "fixed_vh_-20dB")  # model_or_vh: ship.UnionWithRule
LEVEL_METHOD = "vh_level"  # VH < -20 dB on level-aligned input (recipes with `level` only)


@dataclass
class Recipe:
    """One training recipe; every field is fixed before its LORO run."""

    name: str
    net: str = "resid"  # "resid" (safeguard.ThresholdResidual) or "unet"
    width: int = 16
    layers: int = 3
    steps: int = 600
    batch: int = 16
    crop: int = 64
    lr: float = 3e-3
    dice: float = 0.5
    gain_db: float = 3.0  # same +- offset on both bands (calibration, incidence)
    vv_water_raise_db: float = 10.0  # VV raised by U(0, this), half the samples, on...
    vv_raise_scope: str = "water"  # ..."water" pixels only, or "all" pixels (then VV level is no water cue)
    dilations: list[int] | None = None  # resid net: one 3x3 layer per entry (None: `layers` undilated)
    vv_dropout: float = 0.2  # VV replaced by missing (the training mean after prepare)
    noise_db: float = 1.0
    sources: list[str] = field(default_factory=lambda: ["sen1floods11", "etci2021", "ombria"])
    seeds: list[int] = field(default_factory=lambda: [0])
    level: dict[str, Any] | None = None  # models/levels.py rule: each chip (scene) aligned before use
    members: list[str] | None = None  # net "ensemble": recipes of the same plan whose p(water) is averaged


def load_plan(path: Path) -> tuple[list[Recipe], list[list[str]], dict[str, int]]:
    """Recipes, folds (lists of held-out regions) and per-source scoring strides from the TOML plan."""
    plan = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Recipe(**r) for r in plan["recipe"]], [list(f) for f in plan["folds"]], plan.get("eval_step", {})


class MeanOfMembers(torch.nn.Module):
    """Logits whose softmax gives the mean of the members' p(water) (members share one input spec)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.stack([torch.softmax(m(x), dim=1)[:, 1:2] for m in self.members]).mean(0)
        z = torch.log(p.clamp(1e-6, 1 - 1e-6)) - torch.log1p(-p.clamp(1e-6, 1 - 1e-6))
        return torch.cat([torch.zeros_like(z), z], dim=1)


def train_recipe(
    recipe: Recipe, plan: dict[str, Recipe], data: dict[str, list[Chip]], seed: int
) -> tuple[torch.nn.Module, InputSpec]:
    """`train`, or for an ensemble each member trained as its own recipe (same data, seed), averaged."""
    if recipe.net != "ensemble":
        return train(recipe, data, seed)
    members = [plan[name] for name in recipe.members or []]
    if not members or any(m.level != recipe.level or m.members for m in members):
        raise ValueError(f"{recipe.name}: members must be plain recipes with the ensemble's level rule")
    trained = [train(m, data, seed) for m in members]
    specs = {(tuple(s.mean), tuple(s.std)) for _, s in trained}
    if len(specs) != 1:
        raise ValueError(f"{recipe.name}: members normalise differently")
    return MeanOfMembers([net for net, _ in trained]).eval(), trained[0][1]


def build_net(recipe: Recipe, spec: InputSpec) -> torch.nn.Module:
    if recipe.net == "resid":
        return ThresholdResidual(spec.mean, spec.std, width=recipe.width, layers=recipe.layers,
                                 dilations=recipe.dilations)  # fmt: skip
    if recipe.net == "unet":
        return UNet(width=recipe.width, depth=recipe.layers)
    raise ValueError(f"unknown net '{recipe.net}'")


def augment(chip: Chip, r: Recipe, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random crop with a dihedral flip/rotation and the recipe's radiometric changes (dB, NaN = missing)."""
    h, w = chip.label.shape
    y0, x0 = int(rng.integers(0, h - r.crop + 1)), int(rng.integers(0, w - r.crop + 1))
    img = chip.s1[:, y0 : y0 + r.crop, x0 : x0 + r.crop].copy()
    lab = chip.label[y0 : y0 + r.crop, x0 : x0 + r.crop].copy()
    k = int(rng.integers(4))
    img, lab = np.rot90(img, k, axes=(1, 2)), np.rot90(lab, k)
    if rng.random() < 0.5:
        img, lab = img[:, :, ::-1], lab[:, ::-1]
    img, lab = np.ascontiguousarray(img), np.ascontiguousarray(lab)
    img += rng.uniform(-r.gain_db, r.gain_db)
    if rng.random() < 0.5:
        img[0][(lab == 1) | (r.vv_raise_scope == "all")] += rng.uniform(0, r.vv_water_raise_db)
    if r.noise_db > 0:
        img += rng.normal(0, rng.uniform(0, r.noise_db), img.shape).astype(np.float32)
    if rng.random() < r.vv_dropout:
        img[0] = np.nan
    lab[~np.any(np.isfinite(img), axis=0)] = IGNORE
    return img, lab


def chip_shift(chip: Chip, level: dict[str, Any] | None) -> float:
    """The chip's level shift (dB, both bands), computed on every finite pixel as the runtime does on a
    raster's sample (labels play no part)."""
    return scene_shift(chip.s1, list(S1_BANDS), level)


def aligned(chips: list[Chip], level: dict[str, Any] | None) -> list[Chip]:
    """Chips with their level shift applied (the same objects when there is no rule)."""
    if not level:
        return chips
    return [replace(c, s1=c.s1 + np.float32(chip_shift(c, level))) for c in chips]


def spec_for(chips: list[Chip]) -> InputSpec:
    """Card normalisation from the training chips that carry both bands (OMBRIA has VV only)."""
    return s1_spec(*band_stats([c for c in chips if len(present_bands(c)) == 2]))


def train(
    recipe: Recipe, data: dict[str, list[Chip]], seed: int, threads: int = 1
) -> tuple[torch.nn.Module, InputSpec]:
    """Train on the given regions; each step draws regions uniformly, then a chip of the region."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    names = sorted(data)
    spec = spec_for([c for n in names for c in data[n]])
    spec.level = recipe.level  # the chips come aligned; the card tells the runtime to align its scenes
    share = np.mean([np.mean([(c.label == 1).sum() / max(1, c.valid.sum()) for c in data[n]]) for n in names])
    w_water = water_weight(float(share))
    net = build_net(recipe, spec)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.lr, total_steps=recipe.steps, pct_start=0.1
    )
    for _ in range(recipe.steps):
        xs, ys = [], []
        for _ in range(recipe.batch):
            region = data[names[int(rng.integers(len(names)))]]
            img, lab = augment(region[int(rng.integers(len(region)))], recipe, rng)
            xs.append(prepare(img, spec))
            ys.append(lab)
        net.train()
        loss = flood_loss(
            net(torch.from_numpy(np.stack(xs))), torch.from_numpy(np.stack(ys)), w_water, recipe.dice
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval(), spec


@torch.no_grad()
def predict(net: torch.nn.Module, spec: InputSpec, chips: list[Chip], batch: int = 16) -> list[np.ndarray]:
    """Water masks (p > 0.5) of whole chips; missing bands enter as the training mean, like nodata."""
    out: list[np.ndarray] = []
    for i in range(0, len(chips), batch):
        group = chips[i : i + batch]
        shapes = {c.label.shape for c in group}
        if len(shapes) > 1:
            out += [m for c in group for m in predict(net, spec, [c], batch)]
            continue
        x = torch.from_numpy(np.stack([prepare(c.s1, spec) for c in group]))
        out += list(torch.softmax(net(x), dim=1)[:, 1].numpy() > 0.5)
    return out


def otsu_mask(chip: Chip) -> np.ndarray:
    """Otsu on this chip's VH (its VV when it has no VH); all dry when the band is constant."""
    band = 1 if 1 in present_bands(chip) else 0
    values = np.clip(chip.s1[band], -50, 5)
    try:
        t = otsu_threshold(values[chip.valid])
    except ValueError:
        return np.zeros(chip.label.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return values < t


def score_region(
    masks: list[np.ndarray], chips: list[Chip], level: dict[str, Any] | None = None
) -> dict[str, dict[str, int] | None]:
    """Counts of the model masks and both baselines over a region's chips (same pixels for all); with a
    level rule also the VH rule on aligned chips. Baselines see the chips as given."""
    has_vh = all(1 in present_bands(c) for c in chips)
    total = {m: Counts() for m in METHODS + ((LEVEL_METHOD,) if level else ())}
    for mask, chip in zip(masks, chips, strict=True):
        total["model"] += confusion(mask, chip.label, chip.valid)
        with np.errstate(invalid="ignore"):
            rule = chip.s1[1] < FIXED_VH_DB  # NaN (no VH) compares False: the union is then the model
        total["model_or_vh"] += confusion(mask | rule, chip.label, chip.valid)
        total["otsu"] += confusion(otsu_mask(chip), chip.label, chip.valid)
        if has_vh:
            total["fixed_vh_-20dB"] += confusion(rule, chip.label, chip.valid)
            if level:
                with np.errstate(invalid="ignore"):
                    moved = chip.s1[1] + np.float32(chip_shift(chip, level)) < FIXED_VH_DB
                total[LEVEL_METHOD] += confusion(moved, chip.label, chip.valid)
    out = {m: asdict(c) for m, c in total.items()}
    if not has_vh:
        out["fixed_vh_-20dB"] = None
        if level:
            out[LEVEL_METHOD] = None
    return out


def run(plan: Path, out: Path, only: list[str] | None = None, seeds: list[int] | None = None) -> None:
    """Every (recipe, seed, fold) of the plan not already saved; `only`/`seeds` restrict the run."""
    recipes, folds, stride = load_plan(plan)
    data = {r.name: (r.source, load_region(r)) for r in regions()}
    print(
        f"loaded {len(data)} regions: " + ", ".join(f"{n} ({len(c)})" for n, (_, c) in data.items()),
        flush=True,
    )
    for recipe in recipes:
        if only and recipe.name not in only:
            continue
        for seed in seeds or recipe.seeds:
            for k, held in enumerate(folds):
                path = out / recipe.name / f"seed{seed}" / f"fold{k}.json"
                if path.is_file() and json.loads(path.read_text())["recipe"] == asdict(recipe):
                    continue
                train_set = {n: aligned(c, recipe.level) for n, (s, c) in data.items()
                             if n not in held and s in recipe.sources}  # fmt: skip
                start = time.time()
                net, spec = train_recipe(recipe, {r.name: r for r in recipes}, train_set, seed)
                scores = {}
                for h in held:
                    chips = data[h][1][:: stride.get(data[h][0], 1)]
                    masks = predict(net, spec, aligned(chips, recipe.level))
                    scores[h] = score_region(masks, chips, recipe.level)
                result = {"recipe": asdict(recipe), "seed": seed, "held_out": held, "sources": {h: data[h][0] for h in held},
                          "train_regions": sorted(train_set), "seconds": round(time.time() - start, 1), "scores": scores}  # fmt: skip
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=1), encoding="utf-8")
                ious = ", ".join(
                    f"{h} {iou(s['model']):.3f}/{iou(s['fixed_vh_-20dB']):.3f}" for h, s in scores.items()
                )
                print(
                    f"{recipe.name} seed{seed} fold{k} {result['seconds']:.0f}s  model/VH: {ious}", flush=True
                )


def iou(c: dict[str, int] | None) -> float:
    if not c:
        return math.nan
    union = c["tp"] + c["fp"] + c["fn"]
    return c["tp"] / union if union else math.nan


def collect(out: Path) -> dict[str, Any]:
    """{recipe: {seed: {region: {"source", "scores"}}}} from every saved fold."""
    table: dict[str, Any] = {}
    for path in sorted(out.glob("*/seed*/fold*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        seeds = table.setdefault(r["recipe"]["name"], {})
        regions_ = seeds.setdefault(str(r["seed"]), {})
        for h, s in r["scores"].items():
            regions_[h] = {"source": r["sources"][h], "scores": s, "seconds": r["seconds"]}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*", help="recipe names to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, help="override the recipes' seeds")
    args = parser.parse_args(argv)
    run(args.config, args.out, args.only, args.seeds)
    (args.out / "loro.json").write_text(json.dumps(collect(args.out), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
