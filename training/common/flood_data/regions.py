"""One registry of every labelled flood source, each region brought to calibrated S1 dB [VV, VH].

A region is the unit of leave-one-region-out: one Sen1Floods11 chip, one ETCI scene, one OMBRIA group.
Every region loads as a list of `Chip` (dB, NaN = missing, label -1/0/1), the type the kits train and score on.
ETCI and OMBRIA go through the per-source linear maps fitted by training/flood/calibration.py (stored in CALIBRATION_FILE);
OMBRIA's single polarisation fills its band, the other band is NaN (missing, never invented).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data_root import REPO_ROOT
from . import etci, ombria
from .sen1floods11 import IGNORE, Chip, data_root, list_chips, load_chip, load_chips

__all__ = [
    "IGNORE",
    "Chip",
    "data_root",
    "load_chips",
    "Region",
    "regions",
    "load_region",
    "CALIBRATION_FILE",
]

CALIBRATION_FILE = REPO_ROOT / "training" / "configs" / "flood_calibration.json"
BAND_INDEX = {"VV": 0, "VH": 1}
ETCI_REGIONS = {f"ETCI_{s.split('_')[0]}": s for s in etci.SCENES}
OMBRIA_REGIONS = {f"OMBRIA_{g}": g for g in ombria.GROUPS}


@dataclass(frozen=True)
class Region:
    name: str
    source: str  # "sen1floods11", "etci2021" or "ombria"


def regions(root: Path | None = None) -> list[Region]:
    """Every region with data present under `root`, Sen1Floods11 chips first."""
    root = root or data_root()
    out = [Region(n, "sen1floods11") for n in list_chips(root)]
    out += [Region(r, "etci2021") for r, s in ETCI_REGIONS.items() if etci.list_tiles(root, s)]
    out += [Region(r, "ombria") for r, g in OMBRIA_REGIONS.items() if ombria.list_places(root, g)]
    return out


def calibration() -> dict:
    """The fitted maps {source: {band: {gain, offset, ...}}} written by `contrasat train flood calibrate`."""
    return json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))


def to_db(dn: np.ndarray, m: dict) -> np.ndarray:
    return (dn.astype(np.float32) * np.float32(m["gain"]) + np.float32(m["offset"])).astype(np.float32)


def etci_chip(tile: etci.EtciTile, maps: dict) -> Chip:
    s1 = np.stack([to_db(tile.dn[b], maps[name]) for name, b in BAND_INDEX.items()])
    s1[:, tile.label == IGNORE] = np.nan
    return Chip(tile.name, s1, tile.label.copy())


def ombria_chip(place: ombria.OmbriaPlace, maps: dict) -> Chip:
    """The calibrated band in its slot, NaN in the other; pre-event dark pixels not labelled flood -> -1."""
    (band, m), = maps.items()  # fmt: skip
    s1 = np.full((2, *place.after.shape), np.nan, dtype=np.float32)
    s1[BAND_INDEX[band]] = to_db(place.after, m)
    label = place.flood.astype(np.int64)
    label[(to_db(place.before, m) < dark_db(band)) & ~place.flood] = IGNORE
    return Chip(place.name, s1, label)


def dark_db(band: str) -> float:
    """Water-like backscatter of a band: VH < -20 dB (SCIENCE.md's rule), VV 6 dB higher (its water)."""
    return -20.0 if band == "VH" else -14.0


def load_region(region: Region | str, root: Path | None = None, step: int = 1) -> list[Chip]:
    """All chips of a region in calibrated dB (every `step`-th tile of a tiled source)."""
    root = root or data_root()
    name = region.name if isinstance(region, Region) else region
    if name in ETCI_REGIONS:
        maps = calibration()["etci"]
        return [etci_chip(t, maps) for t in etci.load_scene(root, ETCI_REGIONS[name], step)]
    if name in OMBRIA_REGIONS:
        maps = calibration()["ombria"]
        return [ombria_chip(p, maps) for p in ombria.load_group(root, OMBRIA_REGIONS[name], step)]
    return [load_chip(name, root)]


def present_bands(chip: Chip) -> list[int]:
    """Indices of the bands that carry data in a chip (OMBRIA: one)."""
    return [b for b in range(chip.s1.shape[0]) if np.isfinite(chip.s1[b]).any()]
