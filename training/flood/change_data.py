"""The OMBRIA pre-event protocol's data and plan (training/configs/flood_change.toml): places as two-date
chips with their labels, the recipe, the scored places and their counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from ..common.config import from_dict
from ..common.flood_data import ombria
from ..common.flood_data.regions import OMBRIA_REGIONS, Chip, calibration, data_root, ombria_chip, to_db
from ..common.metrics import Counts, confusion

VARIANTS = ("after", "with_before")  # the protocol's two networks, (a) and (b)
# Added after the protocol's runs, to explain them; never in the decision, never shipped: (b)'s network
# trained on (a)'s labels (pre-event water ignored), so the two differ by the before image only.
POST_HOC = ("with_before_loro",)


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


def scored(pairs: list[Pair], step: int) -> list[Pair]:
    return pairs[::step]


def region_counts(masks: list[np.ndarray], pairs: list[Pair]) -> dict[str, int]:
    """Pooled counts of new-flood masks against the LORO labels over a region's scored places."""
    total = Counts()
    for mask, p in zip(masks, pairs, strict=True):
        total += confusion(mask, p.chip.label)
    return asdict(total)
