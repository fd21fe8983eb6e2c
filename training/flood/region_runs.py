"""Leave-one-region-out over every labelled flood source, next to VH < -20 dB and per-chip Otsu.

Recipes and folds are fixed in a TOML file committed before the runs (training/configs/flood_loro.toml).
Each (recipe, seed, fold) trains on every region outside the fold and scores each held-out region
separately; results are saved per fold as JSON, so a rerun resumes. Baselines run through the same scoring
code on the same pixels. A region without VH (OMBRIA: VV only) has no VH rule; its Otsu runs on VV.

    nice contrasat train flood loro --config training/configs/flood_loro.toml --out runs/loro

The loop, augmentation, scoring and results format are the shared LORO code (common/loro/).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ...models.card import InputSpec
from ..common.config import Count, from_dict
from ..common.errors import UsageError
from ..common.flood_data.regions import Chip, load_region, present_bands, regions
from ..common.flood_data.sen1floods11 import IGNORE, band_stats, s1_spec
from ..common.flood_data.unlabelled import load_unlabelled
from ..common.loro.plan import read_plan
from ..common.loro.scoring import chip_shift, score_region
from ..common.loro.training import predict, train_region_balanced
from ..common.metrics import counts_iou
from ..common.networks.anchored import AnchoredContext
from ..common.networks.unet import UNet
from .safeguard import ThresholdResidual


@dataclass
class Recipe:
    """One training recipe; every field is fixed before its LORO run."""

    name: str
    net: str = "resid"  # "resid" (safeguard.ThresholdResidual), "unet", "anchored" or "ensemble"
    width: Count = 16
    layers: Count = 3
    steps: Count = 600
    batch: Count = 16
    crop: Count = 64
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
    context: list[int] | None = None  # net "anchored": channels of the 1/2, 1/4, 1/8 context levels
    pair: bool = False  # net "anchored": two members (anchored, context) in one graph, p(water) averaged
    fuse: bool = True  # net "anchored": context mixed with the local features (False: added as one logit)
    anchor_context: bool = (
        False  # net "anchored", pair, no fuse: the anchored member gets a context logit too
    )
    teacher: str | None = None  # a recipe of the plan trained first on the same data and seed, distilled
    distill: float = 1.0  # weight of the distillation term (with a teacher)
    # with a teacher: unlabelled S1 sources (common/flood_data/unlabelled.py) distilled on, one batch a step
    unlabelled: list[Literal["bigearthnet", "terramind"]] = field(default_factory=list)


def load_plan(path: Path) -> tuple[list[Recipe], list[list[str]], dict[str, int]]:
    """Recipes, folds (lists of held-out regions) and per-source scoring strides from the TOML plan."""
    tables, folds, strides = read_plan(path)
    recipes = []
    for table in tables:
        try:
            recipes.append(from_dict(Recipe, table))
        except (ValueError, TypeError) as exc:
            raise UsageError(f"bad plan {path}, recipe {table.get('name', '?')!r}: {exc}") from None
        if recipes[-1].unlabelled and not recipes[-1].teacher:
            raise UsageError(f"bad plan {path}, recipe {recipes[-1].name!r}: unlabelled data needs a teacher")
    return recipes, folds, strides


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
    recipe: Recipe, plan: dict[str, Recipe], data: dict[str, list[Chip]], seed: int,
    teacher_cache: Path | None = None,
) -> tuple[torch.nn.Module, InputSpec]:  # fmt: skip
    """`train`, or for an ensemble each member trained as its own recipe (same data, seed), averaged; with a
    `teacher`, that recipe is trained first on the same data and seed (or loaded from `teacher_cache` when a
    file there holds it, trained on the same regions) and distilled into the network."""
    if recipe.teacher:
        teacher, t_spec = cached_teacher(plan[recipe.teacher], plan, data, seed, teacher_cache)
        net, spec = train(recipe, data, seed, teacher=teacher)
        if (spec.mean, spec.std) != (t_spec.mean, t_spec.std):
            raise ValueError(f"{recipe.name}: the teacher normalises differently")
        return net, spec
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


def cached_teacher(
    recipe: Recipe, plan: dict[str, Recipe], data: dict[str, list[Chip]], seed: int, cache: Path | None
) -> tuple[torch.nn.Module, InputSpec]:
    """`train_recipe(recipe, ...)`, saved to `cache` (a .pt file) the first time and loaded from it after,
    as long as the file was written for the same recipe, seed and training regions (else retrained)."""
    key = {"recipe": asdict(recipe), "seed": seed, "train_regions": sorted(data)}
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if json.loads(saved["key"]) == key:
            spec = spec_for([c for n in sorted(data) for c in data[n]])
            spec.level = recipe.level
            members = [plan[m] for m in recipe.members or []] if recipe.net == "ensemble" else []
            net = MeanOfMembers([build_net(m, spec) for m in members]) if members else build_net(recipe, spec)
            net.load_state_dict(saved["state"])
            return net.eval(), spec
    net, spec = train_recipe(recipe, plan, data, seed)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": json.dumps(key), "state": net.state_dict()}, cache)
    return net, spec


def build_net(recipe: Recipe, spec: InputSpec) -> torch.nn.Module:
    if recipe.net == "resid":
        return ThresholdResidual(spec.mean, spec.std, width=recipe.width, layers=recipe.layers,
                                 dilations=recipe.dilations)  # fmt: skip
    if recipe.net == "unet":
        return UNet(width=recipe.width, depth=recipe.layers)
    if recipe.net == "anchored":
        return AnchoredContext(spec.mean, spec.std, width=recipe.width, context=recipe.context,
                               pair=recipe.pair, fuse=recipe.fuse, anchor_context=recipe.anchor_context)  # fmt: skip
    raise ValueError(f"unknown net '{recipe.net}'")


def aligned(chips: list[Chip], level: dict[str, Any] | None) -> list[Chip]:
    """Chips with their level shift applied (the same objects when there is no rule)."""
    if not level:
        return chips
    return [replace(c, s1=c.s1 + np.float32(chip_shift(c, level))) for c in chips]


def spec_for(chips: list[Chip]) -> InputSpec:
    """Card normalisation from the training chips that carry both bands (OMBRIA has VV only)."""
    return s1_spec(*band_stats([c for c in chips if len(present_bands(c)) == 2]))


def train(
    recipe: Recipe, data: dict[str, list[Chip]], seed: int, threads: int = 1,
    teacher: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, InputSpec]:  # fmt: skip
    """Train on the given regions; each step draws regions uniformly, then a chip of the region."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spec = spec_for([c for n in sorted(data) for c in data[n]])
    spec.level = recipe.level  # the chips come aligned; the card tells the runtime to align its scenes
    net = build_net(recipe, spec)
    groups = [{"params": list(net.parameters()), "lr": recipe.lr}]
    unlabelled = None
    if teacher is not None and recipe.unlabelled:
        scenes = load_unlabelled(recipe.unlabelled)
        unlabelled = aligned([Chip(f"unlabelled{i}", s, np.full(s.shape[1:], IGNORE)) for i, s in enumerate(scenes)],
                             recipe.level)  # fmt: skip
    train_region_balanced(net, groups, data, recipe, spec, recipe.steps, recipe.batch, recipe.dice, rng,
                          teacher=teacher, distill=recipe.distill if teacher is not None else 0.0,
                          unlabelled=unlabelled)  # fmt: skip
    return net.eval(), spec


def same_recipe(saved: dict[str, Any], recipe: Recipe) -> bool:
    """Whether a fold file's recipe is `recipe` (fields added to Recipe since it was written count as
    their defaults). The plan's list of seeds is left out: adding a seed does not change a trained fold."""
    old, new = asdict(from_dict(Recipe, saved)), asdict(recipe)
    return {**old, "seeds": None} == {**new, "seeds": None}


def run(
    plan: Path, out: Path, only: list[str] | None = None, seeds: list[int] | None = None,
    folds: list[int] | None = None,
) -> None:  # fmt: skip
    """Every (recipe, seed, fold) of the plan not already saved; `only`/`seeds`/`folds` restrict the run
    (`folds`: fold numbers, run in the order given, so two processes can share a plan's folds)."""
    recipes, all_folds, stride = load_plan(plan)
    fold_order = folds
    data = {r.name: (r.source, load_region(r)) for r in regions()}
    print(
        f"loaded {len(data)} regions: " + ", ".join(f"{n} ({len(c)})" for n, (_, c) in data.items()),
        flush=True,
    )
    for recipe in recipes:
        if only and recipe.name not in only:
            continue
        for seed in seeds or recipe.seeds:
            for k in fold_order if fold_order is not None else range(len(all_folds)):
                held = all_folds[k]
                path = out / recipe.name / f"seed{seed}" / f"fold{k}.json"
                if path.is_file() and same_recipe(json.loads(path.read_text())["recipe"], recipe):
                    continue
                train_set = {n: aligned(c, recipe.level) for n, (s, c) in data.items()
                             if n not in held and s in recipe.sources}  # fmt: skip
                start = time.time()
                cache = out / "teachers" / str(recipe.teacher) / f"seed{seed}" / f"fold{k}.pt"
                net, spec = train_recipe(recipe, {r.name: r for r in recipes}, train_set, seed, cache)
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
                    f"{h} {counts_iou(s['model']):.3f}/{counts_iou(s['fixed_vh_-20dB']):.3f}"
                    for h, s in scores.items()
                )
                print(
                    f"{recipe.name} seed{seed} fold{k} {result['seconds']:.0f}s  model/VH: {ious}", flush=True
                )
