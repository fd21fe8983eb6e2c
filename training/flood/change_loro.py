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
import tomllib
import torch
from torch import nn

from ...models.card import InputSpec
from ..common.config import from_dict
from ..common.flood_data import ombria
from ..common.flood_data.regions import (
    OMBRIA_REGIONS,
    Chip,
    calibration,
    dark_db,
    data_root,
    ombria_chip,
    to_db,
)
from ..common.loro.training import predict, train_region_balanced
from ..common.metrics import Counts, confusion
from ..common.networks.unet import UNet

VARIANTS = ("after", "with_before")  # the protocol's two networks, (a) and (b)
# Added after the protocol's runs, to explain them; never in the decision, never shipped: (b)'s network
# trained on (a)'s labels (pre-event water ignored), so the two differ by the before image only.
POST_HOC = ("with_before_loro",)
NETS = {"after": "after", "with_before": "with_before", "with_before_loro": "with_before"}
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "weights" / "flood_s1_ensemble.onnx"


@dataclass
class ChangeRecipe:
    """The network and its training, fixed in the config's [recipe] table."""

    net: str = "unet"
    width: int = 8
    depth: int = 3
    steps: int = 600
    batch: int = 16
    crop: int = 64
    lr: float = 3e-3
    dice: float = 0.5
    gain_db: float = 3.0
    date_db: float = 1.0
    noise_db: float = 1.0
    clip_db: tuple[float, float] = (-40.0, 10.0)


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


@dataclass
class Plan:
    recipe: ChangeRecipe
    seeds: list[int]
    eval_step: int
    folds: list[list[str]]
    forest: dict[str, Any]


def load_plan(path: Path) -> Plan:
    with path.open("rb") as f:
        cfg = tomllib.load(f)
    return Plan(from_dict(ChangeRecipe, cfg["recipe"]), list(cfg["seeds"]), int(cfg["eval_step"]),
                [list(f) for f in cfg["folds"]], dict(cfg.get("forest", {})))  # fmt: skip


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


@dataclass
class Pair:
    """One OMBRIA place: both dates in dB as a two-band chip, the LORO labels (scoring) and the EMS mask."""

    chip: Chip  # s1 = [VV after, VV before] dB; label = LORO labels (flood 1, dry 0, dark before -1)
    ems: np.ndarray  # (H, W) bool: the EMS mask as given (new flood)

    @property
    def after_db(self) -> np.ndarray:
        return self.chip.s1[0]

    @property
    def before_db(self) -> np.ndarray:
        return self.chip.s1[1]


def load_pairs(region: str) -> list[Pair]:
    """Every place of an OMBRIA region ("OMBRIA_<group>") as a Pair."""
    maps = calibration()["ombria"]
    out = []
    for place in ombria.load_group(data_root(), OMBRIA_REGIONS[region]):
        s1 = np.stack([to_db(place.after, maps["VV"]), to_db(place.before, maps["VV"])])
        out.append(Pair(Chip(place.name, s1, ombria_chip(place, maps).label), place.flood))
    return out


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


def scored(pairs: list[Pair], step: int) -> list[Pair]:
    return pairs[::step]


def region_counts(masks: list[np.ndarray], pairs: list[Pair]) -> dict[str, int]:
    """Pooled counts of new-flood masks against the LORO labels over a region's scored places."""
    total = Counts()
    for mask, p in zip(masks, pairs, strict=True):
        total += confusion(mask, p.chip.label)
    return asdict(total)


def today_masks(pairs: list[Pair], model: Path = DEFAULT_MODEL) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(water after, water before) masks of the shipped default on each date, through the runtime's session
    and scene preparation; OMBRIA has no VH, which enters as missing (NaN), as in the flood LORO."""
    from ...models.levels import prepare_scene
    from ...models.session import load_model

    loaded = load_model(model, provider="cpu", threads=1)
    spec = loaded.card.inputs[0]
    water = next(c.value for c in loaded.card.classes if c.name == "water")

    def water_of(vv: np.ndarray) -> np.ndarray:
        scene = np.stack([vv, np.full_like(vv, np.nan)])
        return loaded.run({spec.name: prepare_scene(scene, spec)[None]})[0, water] > 0.5

    return [water_of(p.after_db) for p in pairs], [water_of(p.before_db) for p in pairs]


def forest_masks(
    train: dict[str, list[Pair]], held: list[Pair], cfg: dict[str, Any], variant: str
) -> list[np.ndarray]:
    """The low-contrast study's per-pixel forest (its OMBRIA features), fitted on a balanced draw of every
    training region's labelled pixels (LORO labels, as in that study)."""
    from .lowcontrast import CONFIG
    from .lowcontrast_study import balanced_draw, classifier
    from .ombria_change import db_features

    with CONFIG.open("rb") as f:
        names = tomllib.load(f)["ombria"][variant]
    rng = np.random.default_rng(cfg["seed"])

    def matrix(p: Pair, keep: np.ndarray | None = None) -> np.ndarray:
        f = db_features(p.after_db, p.before_db)
        return np.stack([f[n][keep] if keep is not None else f[n].ravel() for n in names], 1)

    xs, ys = [], []
    for region in sorted(train):
        x = np.concatenate([matrix(p, p.chip.label >= 0) for p in train[region]])
        y = np.concatenate([p.chip.label[p.chip.label >= 0] for p in train[region]])
        i = balanced_draw(y, cfg["per_class"], rng)
        xs.append(x[i])
        ys.append(y[i])
    model = classifier("forest", cfg["seed"]).fit(np.concatenate(xs), np.concatenate(ys))
    return [(model.predict_proba(matrix(p))[:, 1] > 0.5).reshape(p.chip.label.shape) for p in held]


def run(
    config: Path, out: Path, seeds: list[int] | None = None, forest: bool = True, post_hoc: bool = False
) -> dict[str, Any]:
    """Every (seed, variant, fold) not yet saved under `out`, the baselines once; returns the summary.
    `post_hoc`: also the POST_HOC variants, after the protocol's."""
    plan = load_plan(config)
    regions = [r for fold in plan.folds for r in fold]
    data = {r: load_pairs(r) for r in regions}
    print("loaded " + ", ".join(f"{r} ({len(p)})" for r, p in data.items()), flush=True)
    _baselines(plan, data, out, forest)
    _facts(plan, data, out)
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
            ious = ", ".join(f"{h} {_iou(c):.3f}" for h, c in scores.items())
            print(f"{variant} seed{seed} fold{k} {res['seconds']:.0f}s: {ious}", flush=True)
    return summarise(plan, out)


def _baselines(plan: Plan, data: dict[str, list[Pair]], out: Path, forest: bool) -> None:
    """today / today_after (once: they do not train) and the forests (once per fold), saved under `out`."""
    path = out / "today.json"
    if not path.is_file():
        res: dict[str, dict[str, dict[str, int]]] = {"today": {}, "today_after": {}}
        for region, pairs in data.items():
            held = scored(pairs, plan.eval_step)
            after, before = today_masks(held)
            res["today"][region] = region_counts([a & ~b for a, b in zip(after, before, strict=True)], held)
            res["today_after"][region] = region_counts(after, held)
            print(f"today {region}: {_iou(res['today'][region]):.3f}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=1), encoding="utf-8")
    path = out / "forest.json"
    if forest and not path.is_file():
        res = {}
        for variant in VARIANTS:
            res[f"forest_{variant}"] = {}
            for fold in plan.folds:
                train = {r: p for r, p in data.items() if r not in fold}
                held = {r: scored(data[r], plan.eval_step) for r in fold}
                for r, pairs in held.items():
                    masks = forest_masks(train, pairs, plan.forest, variant)
                    res[f"forest_{variant}"][r] = region_counts(masks, pairs)
                    print(f"forest {variant} {r}: {_iou(res[f'forest_{variant}'][r]):.3f}", flush=True)
        path.write_text(json.dumps(res, indent=1), encoding="utf-8")


def _facts(plan: Plan, data: dict[str, list[Pair]], out: Path) -> None:
    """Per region over its scored places: EMS flood pixels and the share of them already dark before
    (VV < -14 dB, the rule that marks pre-event water), which no new-flood detector can see as a change."""
    path = out / "facts.json"
    if path.is_file():
        return
    res = {}
    for region, pairs in data.items():
        held = scored(pairs, plan.eval_step)
        flood = sum(int(p.ems.sum()) for p in held)
        dark = sum(int((p.ems & (p.before_db < dark_db("VV"))).sum()) for p in held)
        res[region] = {"flood_pixels": flood, "dark_before_share": dark / flood if flood else float("nan")}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1), encoding="utf-8")


def _iou(c: dict[str, int]) -> float:
    return Counts(**c).iou


def summarise(plan: Plan, out: Path) -> dict[str, Any]:
    """Per-region and pooled IoU of every method, seeds completed for both variants, and the decision."""
    regions = [r for fold in plan.folds for r in fold]
    per_seed = {v: _per_seed(out, v, plan, regions) for v in VARIANTS}
    seeds = [s for s in plan.seeds if all(s in per_seed[v] for v in VARIANTS)]
    methods: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        if seeds:
            methods[v] = _seed_mean({s: per_seed[v][s] for s in seeds}, regions)
    for v in POST_HOC:
        done = _per_seed(out, v, plan, regions)
        if done:
            methods[v] = _seed_mean(done, regions) | {"seeds": sorted(done)}
    for name in ("today.json", "forest.json"):
        if (out / name).is_file():
            for m, scores in json.loads((out / name).read_text()).items():
                methods[m] = _one(scores, regions)
    summary = {"regions": regions, "seeds": seeds, "methods": methods, "recipe": asdict(plan.recipe),
               "eval_step": plan.eval_step, "folds": plan.folds}  # fmt: skip
    summary["decision"] = decide(methods, regions) if seeds and "today" in methods else None
    if (out / "facts.json").is_file():
        summary["facts"] = json.loads((out / "facts.json").read_text())
    return summary


def _per_seed(
    out: Path, variant: str, plan: Plan, regions: list[str]
) -> dict[int, dict[str, dict[str, int]]]:
    """{seed: {region: counts}} of the seeds whose every fold is saved for `variant`."""
    found = {}
    for seed in plan.seeds:
        scores: dict[str, dict[str, int]] = {}
        for k in range(len(plan.folds)):
            path = out / variant / f"seed{seed}" / f"fold{k}.json"
            if path.is_file():
                scores.update(json.loads(path.read_text())["scores"])
        if set(scores) == set(regions):
            found[seed] = scores
    return found


def _one(scores: dict[str, dict[str, int]], regions: list[str]) -> dict[str, Any]:
    pooled = sum((Counts(**scores[r]) for r in regions), Counts())
    return {"regions": {r: _iou(scores[r]) for r in regions}, "pooled": pooled.iou,
            "counts": {r: scores[r] for r in regions}}  # fmt: skip


def _seed_mean(by_seed: dict[int, dict[str, dict[str, int]]], regions: list[str]) -> dict[str, Any]:
    """Mean over seeds of each region's IoU and of the pooled IoU, with the per-seed values."""
    each = {s: _one(sc, regions) for s, sc in by_seed.items()}
    return {
        "regions": {r: float(np.mean([e["regions"][r] for e in each.values()])) for r in regions},
        "pooled": float(np.mean([e["pooled"] for e in each.values()])),
        "per_seed": {str(s): {"pooled": e["pooled"], "regions": e["regions"]} for s, e in each.items()},
    }


MAX_REGION_DROP = 0.05


def decide(methods: dict[str, dict[str, Any]], regions: list[str]) -> dict[str, Any]:
    """The config's rule: with_before ships only if its pooled IoU beats `after` and today's method, and no
    region is more than MAX_REGION_DROP below today's method."""
    b, a, today = methods["with_before"], methods["after"], methods["today"]
    worst = {r: b["regions"][r] - today["regions"][r] for r in regions}
    checks = {
        "beats_after": b["pooled"] > a["pooled"],
        "beats_today": b["pooled"] > today["pooled"],
        "no_region_below_today": all(d >= -MAX_REGION_DROP for d in worst.values()),
    }
    return {"ships": all(checks.values()), "checks": checks, "region_minus_today": worst}
