"""OMBRIA's co-located S1/S2 "after" images as pre-training pairs (S1 one band, S2 true-colour RGB, 8-bit).

S1: the flood kit's calibrated dB (training/flood/calibration.py: OMBRIA is read as VV), VH missing (NaN).
S2: R, G, B fill B04, B03, B02 through a per-band linear map to reflectance x 10000 (fixed in the protocol
config); the other 10 bands are NaN, which models.preprocess.prepare turns into the band's normalised mean.
Scene names are the flood kit's place names ("S1train_0001", "ALBANIA_1"), so a LORO fold can remove its
regions' places from the pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ...models.bands import S2L1C_BANDS
from ..common.flood_data import ombria
from ..common.flood_data.regions import OMBRIA_REGIONS, calibration, to_db
from .scenes import PairedScene

RGB_BANDS = ("B04", "B03", "B02")  # PNG channel order R, G, B


def s2_path(root: Path, group: str, s1_after: Path) -> Path:
    """The S2 'after' image of the place whose S1 'after' image is `s1_after`."""
    base = root / "ombria"
    if group in ombria.EVENTS_2021:
        return base / "2021" / group / "Sentinel2" / "AFTER" / s1_after.name
    split = {"S1train": "train", "S1test": "test"}[group]
    return base / "OmbriaS2" / split / "AFTER" / s1_after.name.replace("S1_after_", "S2_after_")


def rgb_to_l1c13(rgb: np.ndarray, rgb_map: dict[str, list[float]]) -> np.ndarray:
    """(H, W, 3) uint8 -> (13, H, W) reflectance x 10000; black pixels and absent bands NaN.

    float16: 844 places x 13 bands would take 2.9 GB as float32; an 8-bit source (about 15 units per DN)
    loses nothing at float16's resolution (<= 8 units below 16384). prepare() computes in float32.
    """
    out = np.full((len(S2L1C_BANDS), *rgb.shape[:2]), np.nan, dtype=np.float16)
    nodata = np.all(rgb == 0, axis=-1)
    for c, band in enumerate(RGB_BANDS):
        gain, offset = rgb_map[band]
        v = rgb[..., c].astype(np.float32) * np.float32(gain) + np.float32(offset)
        v[nodata] = np.nan
        out[S2L1C_BANDS.index(band)] = np.maximum(v, 0.0)
    return out


def load_ombria_pairs(
    root: Path, rgb_map: dict[str, list[float]], groups: tuple[str, ...] = ombria.GROUPS
) -> list[PairedScene]:
    """Every OMBRIA place of `groups` with S1 and S2 'after' images of the same size."""
    (band, m), = calibration()["ombria"].items()  # fmt: skip
    slot = {"VV": 0, "VH": 1}[band]
    scenes = []
    for group in groups:
        for name, after, _, _ in ombria._files(root, group):
            s2_file = s2_path(root, group, after)
            if not (after.is_file() and s2_file.is_file()):
                continue
            dn = ombria._gray(after)
            rgb = np.asarray(Image.open(s2_file).convert("RGB"))
            if rgb.shape[:2] != dn.shape:
                raise ValueError(f"OMBRIA place {name}: S1 {dn.shape} and S2 {rgb.shape[:2]} grids differ")
            s1 = np.full((2, *dn.shape), np.nan, dtype=np.float32)
            s1[slot] = to_db(dn, m)
            scenes.append(PairedScene(name, "ombria", s1, rgb_to_l1c13(rgb, rgb_map), "RGB"))
    return scenes


def held_out_places(scenes: list[PairedScene], held_regions: list[str]) -> set[str]:
    """Names of pool scenes that belong to held-out LORO regions (Sen1Floods11 chips, OMBRIA groups)."""
    groups = {OMBRIA_REGIONS[r] for r in held_regions if r in OMBRIA_REGIONS}
    out = set()
    for s in scenes:
        if s.source == "ombria" and s.name.split("_", 1)[0] in groups:
            out.add(s.name)
        elif s.source == "sen1floods11" and s.name in held_regions:
            out.add(s.name)
    return out
