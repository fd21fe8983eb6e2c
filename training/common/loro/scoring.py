"""LORO scoring: counts of a model's masks and of the baselines over a held-out region, on the same pixels."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from ....models.bands import S1_BANDS
from ....models.levels import scene_shift
from ..flood_data.baselines import FIXED_VH_DB, otsu_mask
from ..flood_data.regions import Chip, present_bands
from ..metrics import Counts, confusion

METHODS = ("model", "model_or_vh", "otsu", "fixed_vh_-20dB")  # model_or_vh: the flood kit's UnionWithRule
LEVEL_METHOD = "vh_level"  # VH < -20 dB on level-aligned input (recipes with `level` only)


def chip_shift(chip: Chip, level: dict[str, Any] | None) -> float:
    """The chip's level shift (dB, both bands), computed on every finite pixel as the runtime does on a
    raster's sample (labels play no part)."""
    return scene_shift(chip.s1, list(S1_BANDS), level)


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
