"""Low-contrast water (issue 19, item 3): labelled water whose VH lies within a few dB of its scene's dry land.

Flooded vegetation and shallow water among crops keep VH near -19 dB, where VH < -20 dB and networks trained
on open water call them land. The set is cut from real labelled pixels only: per scene (one Sen1Floods11 chip,
one whole ETCI scene) the dry-land VH peak is the mode of the labelled-dry VH histogram; low-contrast water
is labelled water with VH >= peak - margin. Windows of a non-overlapping grid holding enough such water keep
their labelled-dry pixels as "nearby dry land", so the IoU on them is balanced between the two. The rule's
numbers live in training/configs/lowcontrast.toml ([set]), fixed before any run.

Labels of a crop: 1 low-contrast water, 0 dry land, -1 anything else (open water below the margin, no label).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from ..common.data_root import REPO_ROOT
from ..common.flood_data.regions import Chip, Region, load_region, regions
from ..common.metrics import Counts, confusion

CONFIG = REPO_ROOT / "training" / "configs" / "lowcontrast.toml"
BIN_DB, SMOOTH_DB = 0.25, 1.5  # as models/levels.py: speckle makes single bins noisy
CROPS_PER_REGION = 6  # fixture crops per region (keeps tests/fixtures/flood_stress small)
Predict = Callable[[np.ndarray], np.ndarray]  # (N, 2, H, W) dB -> (N, H, W) p(water)


@dataclass(frozen=True)
class SetRule:
    """The [set] table of the config: margin under the land peak, window size and minimum counts."""

    margin_db: float = 4.0
    window: int = 64
    min_window_lc: int = 16
    min_lc_pixels: int = 500


@dataclass(frozen=True)
class Window:
    """One window of a scene: its place, bands in dB and low-contrast label (1 / 0 / -1)."""

    region: str
    name: str
    s1: np.ndarray  # (2, w, w) dB [VV, VH]
    label: np.ndarray  # (w, w) int8
    peak_db: float  # the scene's dry-land VH peak


def load_rule(path: Path = CONFIG) -> SetRule:
    with path.open("rb") as f:
        return SetRule(**tomllib.load(f)["set"])


def land_peak_db(vh: np.ndarray, label: np.ndarray) -> float | None:
    """Mode of the labelled-dry VH (finite) in dB on a BIN_DB grid smoothed over SMOOTH_DB; None without dry."""
    v = vh[(label == 0) & np.isfinite(vh)]
    if v.size < 100:
        return None
    lo, hi = np.floor(v.min()), np.ceil(v.max())
    centres = np.arange(lo, hi + BIN_DB, BIN_DB)
    hist, _ = np.histogram(v, np.append(centres - BIN_DB / 2, centres[-1] + BIN_DB / 2))
    k = int(round(SMOOTH_DB / BIN_DB)) | 1
    return float(centres[int(np.argmax(np.convolve(hist, np.ones(k) / k, mode="same")))])


def lowcontrast_label(s1: np.ndarray, label: np.ndarray, peak_db: float, margin_db: float) -> np.ndarray:
    """1 where labelled water has VH >= peak - margin, 0 where labelled dry, -1 elsewhere (int8)."""
    vh = s1[1]
    ok = np.isfinite(s1).all(axis=0)
    out = np.full(label.shape, -1, dtype=np.int8)
    out[ok & (label == 0)] = 0
    out[ok & (label == 1) & (vh >= peak_db - margin_db)] = 1
    return out


def scene_peak(chips: list[Chip]) -> float | None:
    """Land peak of a scene held as one or more chips (an ETCI scene is its tiles)."""
    return land_peak_db(
        np.concatenate([c.s1[1].ravel() for c in chips]), np.concatenate([c.label.ravel() for c in chips])
    )


def windows(region: str, chips: list[Chip], rule: SetRule) -> Iterator[Window]:
    """Every window of the grid holding >= rule.min_window_lc low-contrast water pixels."""
    peak = scene_peak(chips)
    if peak is None:
        return
    w = rule.window
    for chip in chips:
        if chip.s1.shape[0] < 2 or not np.isfinite(chip.s1[1]).any():
            continue  # one polarisation (OMBRIA): no VH
        lab = lowcontrast_label(chip.s1, chip.label, peak, rule.margin_db)
        for y, x in window_corners(lab, rule):
            cut = lab[y : y + w, x : x + w]
            yield Window(region, f"{chip.name}_y{y}_x{x}", chip.s1[:, y : y + w, x : x + w], cut, peak)


def window_corners(lab: np.ndarray, rule: SetRule) -> Iterator[tuple[int, int]]:
    """(y, x) of the grid's windows of a low-contrast label holding >= rule.min_window_lc such water pixels."""
    w = rule.window
    h, wd = lab.shape
    for y in range(0, h - w + 1, w):
        for x in range(0, wd - w + 1, w):
            if (lab[y : y + w, x : x + w] == 1).sum() >= rule.min_window_lc:
                yield y, x


def dual_pol_regions() -> list[Region]:
    return [r for r in regions() if r.source != "ombria"]


def region_windows(rule: SetRule) -> dict[str, list[Window]]:
    """{region: windows} for the regions with at least rule.min_lc_pixels low-contrast water pixels."""
    out = {}
    for r in dual_pol_regions():
        found = list(windows(r.name, load_region(r), rule))
        if sum(int((w.label == 1).sum()) for w in found) >= rule.min_lc_pixels:
            out[r.name] = found
    return out


def fixture_crops(found: dict[str, list[Window]]) -> list[Window]:
    """Per region, the CROPS_PER_REGION windows with every pixel's bands present that are most balanced
    (largest min(low-contrast water, dry) count; ties by name), so the IoU weighs both classes."""
    out = []
    for _, ws in sorted(found.items()):
        good = [w for w in ws if np.isfinite(w.s1).all()]
        good.sort(key=lambda w: (-min(int((w.label == 1).sum()), int((w.label == 0).sum())), w.name))
        out += good[:CROPS_PER_REGION]
    return out


def build_arrays(rule: SetRule | None = None) -> dict[str, np.ndarray]:
    """The fixture's low-contrast arrays: lc_s1 (float16 dB), lc_label (int8), lc_names, lc_regions and
    lc_peak_db (the scene's land peak, so the rule can be checked on the stored crops)."""
    crops = fixture_crops(region_windows(rule or load_rule()))
    return {
        "lc_s1": np.stack([c.s1 for c in crops]).astype(np.float16),
        "lc_label": np.stack([c.label for c in crops]),
        "lc_names": np.array([c.name for c in crops]),
        "lc_regions": np.array([c.region for c in crops]),
        "lc_peak_db": np.array([c.peak_db for c in crops], dtype=np.float32),
    }


def source_of(region: str) -> str:
    return region if region.startswith("ETCI_") else "sen1floods11"


def score(predict: Predict, fx: dict[str, np.ndarray]) -> dict[str, float]:
    """Low-contrast water recall and IoU on the crops (p(water) > 0.5), pooled and per source."""
    pred = predict(fx["lc_s1"]) > 0.5
    sources = np.array([source_of(str(r)) for r in fx["lc_regions"]])
    res: dict[str, float] = {}
    for name, keep in [("", np.ones(len(sources), bool))] + [
        (f"_{s}", sources == s) for s in np.unique(sources)
    ]:
        total = Counts()
        for p, lab in zip(pred[keep], fx["lc_label"][keep], strict=True):
            total += confusion(p, lab.astype(np.int64))
        res[f"lowcontrast_water_recall{name}"] = total.tp / max(1, total.tp + total.fn)
        res[f"lowcontrast_iou{name}"] = total.iou
    return res
