"""Stress sets for flood models, cut from real labelled pixels only (no synthetic imagery).

(a) tiles lying wholly inside labelled water and wholly inside labelled dry land, from every source;
(b) chips with VV raised by +4..+10 dB on labelled-water pixels only (wind-roughened water; VH untouched);
(c) chips with a common offset of -3 / +3 dB on both bands (calibration / gain change);
(d) tiling: the runtime run with tile sizes 128..1024 and the raster cut at random offsets must give the
    same map (see tests/models/test_flood_stress.py; `tiling_agreement` below does the comparison);
(e) low-contrast water: crops around labelled water within 4 dB of its scene's dry-land VH peak, with the
    dry land of the same windows (lowcontrast.py).
Rule for (a): a tile counts as mapped water when at least half of its pixels have p(water) > 0.5.

    contrasat train flood stress-build --out tests/fixtures/flood_stress/stress.npz
    contrasat train flood stress-score --model models/weights/flood_s1_unet.onnx
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..common.flood_data.regions import Chip, load_region, present_bands, regions
from ..common.metrics import Counts, confusion
from . import lowcontrast

TILE = 64
PER_SOURCE = 16  # whole tiles of each class kept per source
CHIP = 192
VV_RAISES_DB = (4.0, 6.0, 8.0, 10.0)
GAINS_DB = (-3.0, 3.0)
WATER_TILE_SHARE = 0.5
Predict = Callable[[np.ndarray], np.ndarray]  # (N, 2, H, W) dB -> (N, H, W) p(water)


def whole_tiles(chips: list[Chip], cls: int, rng: np.random.Generator, limit: int) -> list[np.ndarray]:
    """TILE x TILE dB tiles (on a half-tile grid) whose every pixel is labelled `cls` and has its bands."""
    found = []
    for chip in chips:
        bands = present_bands(chip)
        h, w = chip.label.shape
        for y in range(0, h - TILE + 1, TILE // 2):
            for x in range(0, w - TILE + 1, TILE // 2):
                lab = chip.label[y : y + TILE, x : x + TILE]
                img = chip.s1[:, y : y + TILE, x : x + TILE]
                if np.all(lab == cls) and np.all(np.isfinite(img[bands])):
                    found.append(img.copy())
    if len(found) > limit:
        found = [found[i] for i in sorted(rng.choice(len(found), limit, replace=False))]
    return found


def mixed_chips(chips: list[Chip], rng: np.random.Generator, limit: int) -> list[Chip]:
    """CHIP x CHIP crops holding both classes (10..90 % water), dual-polarisation only."""
    out = []
    for chip in chips:
        if len(present_bands(chip)) != 2:
            continue
        h, w = chip.label.shape
        for y in range(0, h - CHIP + 1, CHIP):
            for x in range(0, w - CHIP + 1, CHIP):
                lab = chip.label[y : y + CHIP, x : x + CHIP]
                share = (lab == 1).sum() / max(1, (lab >= 0).sum())
                if 0.1 <= share <= 0.9 and (lab >= 0).mean() > 0.95:
                    out.append(
                        Chip(
                            f"{chip.name}_y{y}_x{x}",
                            chip.s1[:, y : y + CHIP, x : x + CHIP].copy(),
                            lab.copy(),
                        )
                    )
    if len(out) > limit:
        out = [out[i] for i in sorted(rng.choice(len(out), limit, replace=False))]
    return out


def build(seed: int = 0) -> dict[str, np.ndarray]:
    """The stress fixture arrays (float16 dB, int8 labels) from every source under the data root."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[Chip]] = {}
    for r in regions():
        step = 1 if r.source != "ombria" else 2
        key = r.name if r.source == "etci2021" else r.source  # the two ETCI scenes differ (see results page)
        by_source.setdefault(key, []).extend(load_region(r, step=step))
    arrays: dict[str, np.ndarray] = {}
    for source, chips in by_source.items():
        for cls, name in ((1, "water"), (0, "dry")):
            tiles = whole_tiles(chips, cls, rng, PER_SOURCE)
            arrays[f"a_{name}_{source}"] = np.stack(tiles).astype(np.float16)
    mixed = mixed_chips(by_source["sen1floods11"], rng, 4) + mixed_chips(
        by_source["ETCI_northal"] + by_source["ETCI_nebraska"], rng, 2
    )
    arrays["bc_s1"] = np.stack([c.s1 for c in mixed]).astype(np.float16)
    arrays["bc_label"] = np.stack([c.label for c in mixed]).astype(np.int8)
    arrays["bc_names"] = np.array([c.name for c in mixed])
    arrays.update(lowcontrast.build_arrays())
    return arrays


def load_fixture(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: (f[k].astype(np.float32) if f[k].dtype == np.float16 else f[k]) for k in f.files}


def water_tile_rate(predict: Predict, tiles: np.ndarray) -> float:
    """Share of tiles mapped as water (>= WATER_TILE_SHARE of their pixels with p(water) > 0.5)."""
    p = predict(tiles) > 0.5
    return float(np.mean(p.reshape(len(tiles), -1).mean(axis=1) >= WATER_TILE_SHARE))


def pooled_iou(predict: Predict, s1: np.ndarray, label: np.ndarray) -> float:
    total = Counts()
    for pred, lab in zip(predict(s1) > 0.5, label, strict=True):
        total += confusion(pred, lab.astype(np.int64))
    return total.iou


def vv_raised(s1: np.ndarray, label: np.ndarray, db: float) -> np.ndarray:
    out = s1.copy()
    out[:, 0][label == 1] += db
    return out


def score(predict: Predict, fx: dict[str, np.ndarray]) -> dict[str, float]:
    """Every stress figure of one model: (a) tile rates per source, (b)/(c) IoU and its loss, (e) low-contrast
    water recall and IoU (when the fixture has the set)."""
    res: dict[str, float] = {}
    for key in sorted(k for k in fx if k.startswith("a_")):
        res[key.replace("a_", "water_tile_rate_", 1)] = water_tile_rate(predict, fx[key])
    s1, lab = fx["bc_s1"], fx["bc_label"]
    base = pooled_iou(predict, s1, lab)
    res["iou_clean"] = base
    for db in VV_RAISES_DB:
        res[f"iou_loss_vv+{db:g}dB_on_water"] = base - pooled_iou(predict, vv_raised(s1, lab, db), lab)
    for db in GAINS_DB:
        res[f"iou_loss_gain{db:+g}dB"] = base - pooled_iou(predict, s1 + np.float32(db), lab)
    if "lc_s1" in fx:
        res.update(lowcontrast.score(predict, fx))
    return res


def onnx_predictor(path: Path) -> Predict:
    """p(water) of a bundled/exported model through the runtime's own session and normalisation."""
    from ...models.levels import prepare_scene
    from ...models.session import load_model

    model = load_model(path, provider="cpu", threads=1)
    spec = model.card.inputs[0]
    water = next(c.value for c in model.card.classes if c.name == "water")

    def predict(s1: np.ndarray) -> np.ndarray:
        x = np.stack([prepare_scene(t, spec) for t in s1])  # each tile or crop is a scene of its own
        return np.concatenate([model.run({spec.name: x[i : i + 16]})[:, water] for i in range(0, len(x), 16)])

    return predict


def tiling_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels where two class maps of the same grid agree (both valid)."""
    ok = (a != 255) & (b != 255)
    return float(np.mean(a[ok] == b[ok]))


def write_fixture(out: Path) -> dict[str, tuple[int, ...]]:
    """Build the stress sets from the labelled regions and save them to `out` (.npz); their array shapes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = build()
    np.savez_compressed(out, **arrays)
    return {k: v.shape for k, v in arrays.items()}
