"""The OMBRIA pre-event protocol's baselines on its scored pixels: today's `--pre-event` (the shipped default
on each date), the per-pixel forest, and how much of the EMS flood was already dark before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from ..common.flood_data.regions import dark_db
from ..common.metrics import counts_iou
from .change_data import VARIANTS, Pair, Plan, region_counts, scored

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "weights" / "flood_s1_ensemble.onnx"


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


def baselines(plan: Plan, data: dict[str, list[Pair]], out: Path, forest: bool) -> None:
    """today / today_after (once: they do not train) and the forests (once per fold), saved under `out`."""
    path = out / "today.json"
    if not path.is_file():
        res: dict[str, dict[str, dict[str, int]]] = {"today": {}, "today_after": {}}
        for region, pairs in data.items():
            held = scored(pairs, plan.eval_step)
            after, before = today_masks(held)
            res["today"][region] = region_counts([a & ~b for a, b in zip(after, before, strict=True)], held)
            res["today_after"][region] = region_counts(after, held)
            print(f"today {region}: {counts_iou(res['today'][region]):.3f}", flush=True)
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
                    print(f"forest {variant} {r}: {counts_iou(res[f'forest_{variant}'][r]):.3f}", flush=True)
        path.write_text(json.dumps(res, indent=1), encoding="utf-8")


def facts(plan: Plan, data: dict[str, list[Pair]], out: Path) -> None:
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
