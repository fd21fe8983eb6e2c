"""Downstream tasks: labelled samples, named splits and label fractions.

flood_s1      Sen1Floods11 hand labels from S1; test chip Spain_7370579 (the bundled flood model's).
flood_fusion  the same test chip from S1+S2. Only the test chip has S2 among the flood chips, so training
              shows the other flood chips with S2 missing (zeros = band means) plus the TerraMind sites
              with water (LULC class 1) as S1+S2 water labels.
landcover_s2  TerraMind LULC (classes 0..9, 0 ignored) from S2 L1C; split by site, test site 282D_485L_3_3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.data_root import data_root
from ..common.flood_data.sen1floods11 import floods_dir, load_chips
from .config import HELD_OUT_FLOOD_CHIP, HELD_OUT_LC_SITE
from .scenes import load_sen1floods11_pairs, load_terramind

ONE_FLOOD_CHIP = "India_900498"  # about half water: the most informative single chip
ONE_LC_SITE = "433D_629L_3_1"  # the most classes of the three training sites
LC_CLASSES = 10


@dataclass
class Sample:
    name: str
    s1: np.ndarray | None  # (2, H, W) dB
    s2: np.ndarray | None  # (13, H, W) reflectance x 10000 (NaN = missing)
    label: np.ndarray  # (H, W) int64, -1 ignored


@dataclass
class TaskData:
    task: str
    inputs: list[str]
    classes: int
    train: list[Sample]
    test: Sample
    split: str


def _water(label: np.ndarray) -> np.ndarray:
    """LULC -> water 0/1 (class 1 = water; flooded vegetation counts as water, as in Sen1Floods11)."""
    out = np.where((label == 1) | (label == 3), 1, 0).astype(np.int64)
    out[label < 0] = -1
    return out


def load_task(task: str, fraction: str, root: Path | None = None) -> TaskData:
    root = root or data_root()
    if task in ("flood_s1", "flood_fusion"):
        chips = load_chips(root=root)
        train = [c for c in chips if c.name != HELD_OUT_FLOOD_CHIP]
        if fraction == "one":
            train = [c for c in train if c.name == ONE_FLOOD_CHIP]
        if task == "flood_s1":
            samples = [Sample(c.name, c.s1, None, c.label) for c in train]
            test_chip = next(c for c in chips if c.name == HELD_OUT_FLOOD_CHIP)
            test = Sample(test_chip.name, test_chip.s1, None, test_chip.label)
            split = f"train {', '.join(c.name for c in train)}; test {HELD_OUT_FLOOD_CHIP} (never seen)"
            return TaskData(task, ["s1"], 2, samples, test, split)
        samples = []
        for c in train:
            nan_s2 = np.full((13, *c.label.shape), np.nan, dtype=np.float32)
            samples.append(Sample(c.name, c.s1, nan_s2, c.label))
        sites = load_terramind(root / "terramind")
        if fraction == "one":
            sites = [s for s in sites if s.name == HELD_OUT_LC_SITE]  # the site with the most water
        samples += [Sample(s.name, s.s1, s.s2, _water(s.label)) for s in sites if s.label is not None]
        pair = next(s for s in load_sen1floods11_pairs(floods_dir(root)) if s.name == HELD_OUT_FLOOD_CHIP)
        test = Sample(pair.name, pair.s1, pair.s2, pair.label)
        split = (
            f"train {', '.join(s.name for s in samples)} (flood chips without S2; TerraMind LULC water as "
            f"labels); test {HELD_OUT_FLOOD_CHIP} S1Hand+S2Hand (never seen)"
        )
        return TaskData(task, ["s1", "s2"], 2, samples, test, split)
    if task == "landcover_s2":
        sites = load_terramind(root / "terramind")
        test_site = next(s for s in sites if s.name == HELD_OUT_LC_SITE)
        train = [s for s in sites if s.name != HELD_OUT_LC_SITE]
        if fraction == "one":
            train = [s for s in train if s.name == ONE_LC_SITE]
        samples = [Sample(s.name, None, s.s2, s.label) for s in train]
        test = Sample(test_site.name, None, test_site.s2, test_site.label)
        split = f"TerraMind sites: train {', '.join(s.name for s in train)}; test site {HELD_OUT_LC_SITE}"
        return TaskData(task, ["s2"], LC_CLASSES, samples, test, split)
    raise ValueError(f"unknown task '{task}'")
