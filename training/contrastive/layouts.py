"""Readers for the published layouts of the full datasets users bring.

Sen1Floods11 (v1.1, Bonafilia et al. 2020)::

    <root>/v1.1/data/flood_events/HandLabeled/{S1Hand,S2Hand,LabelHand}/<chip>_<Kind>.tif
    <root>/v1.1/splits/flood_handlabeled/flood_{train,valid,test}_data.csv   # "<chip>_S1Hand.tif,<chip>_LabelHand.tif"

SSL4EO-S12 (Wang et al. 2022)::

    <root>/{s1,s2c,s2a}/<7-digit location>/<one folder per season, named by product>/{VV,VH,B1..B12,B8A}.tif

Seasons of one location are paired across s1 and s2c/s2a in sorted (date) order; bands at 20/60 m are
read resampled onto the 10 m grid of the location (264 x 264 px).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ...models.bands import S2L1C_BANDS, S2L2A_BANDS
from .scenes import PairedScene, read_s1, read_s2, s2_to_l1c13

SSL4EO_SIZE = 264


def sen1floods11_hand_dir(root: Path) -> Path:
    """The HandLabeled folder of a Sen1Floods11 tree (the root itself when it already is one)."""
    for cand in (root / "v1.1/data/flood_events/HandLabeled", root / "data/flood_events/HandLabeled", root):
        if (cand / "S1Hand").is_dir():
            return cand
    raise FileNotFoundError(f"no Sen1Floods11 HandLabeled/S1Hand folder under {root}")


def sen1floods11_split(root: Path, split: str) -> list[str]:
    """Chip names of a published split ('train', 'valid', 'test'); empty when the csv is absent."""
    for base in (root / "v1.1/splits/flood_handlabeled", root / "splits/flood_handlabeled"):
        path = base / f"flood_{split}_data.csv"
        if path.is_file():
            with path.open(newline="") as f:
                return [row[0].removesuffix("_S1Hand.tif") for row in csv.reader(f) if row]
    return []


def sen1floods11_chips(root: Path, split: str | None = None) -> list[dict[str, Path | str | None]]:
    """[{name, s1, s2 (or None), label}] of hand-labelled chips, optionally restricted to a split."""
    hand = sen1floods11_hand_dir(root)
    names = sorted(p.name.removesuffix("_S1Hand.tif") for p in (hand / "S1Hand").glob("*_S1Hand.tif"))
    if split is not None:
        wanted = set(sen1floods11_split(root, split))
        names = [n for n in names if n in wanted]
    out = []
    for n in names:
        s2 = hand / "S2Hand" / f"{n}_S2Hand.tif"
        out.append(
            {"name": n, "s1": hand / "S1Hand" / f"{n}_S1Hand.tif", "s2": s2 if s2.is_file() else None,
             "label": hand / "LabelHand" / f"{n}_LabelHand.tif"}
        )  # fmt: skip
    return out


def sen1floods11_pairs(root: Path, split: str | None = None) -> list[PairedScene]:
    """Chips with S1 and S2 as PairedScenes (label: water 0/1, -1 ignored)."""
    scenes = []
    for chip in sen1floods11_chips(root, split):
        if chip["s2"] is None:
            continue
        s2, level, offset = read_s2(Path(chip["s2"]))
        with rasterio.open(chip["label"]) as src:
            label = src.read(1).astype(np.int64)
        label[(label != 0) & (label != 1)] = -1
        scenes.append(
            PairedScene(
                str(chip["name"]), "sen1floods11", read_s1(Path(chip["s1"])), s2, level, offset, label
            )
        )
    return scenes


def _read_band(path: Path, size: int) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, out_shape=(size, size), resampling=Resampling.bilinear).astype(np.float32)


def _ssl4eo_band_file(folder: Path, band: str) -> Path:
    """SSL4EO-S12 names bands without zero padding (B1.tif, B8A.tif)."""
    return folder / (f"B{int(band[1:])}.tif" if band[1:].isdigit() else f"{band}.tif")


def ssl4eo_locations(root: Path, s2_split: str = "s2c") -> list[str]:
    """Location ids present in both s1/ and the S2 split (s2c = L1C, s2a = L2A)."""
    s1 = {p.name for p in (root / "s1").iterdir() if p.is_dir()} if (root / "s1").is_dir() else set()
    s2 = {p.name for p in (root / s2_split).iterdir() if p.is_dir()} if (root / s2_split).is_dir() else set()
    return sorted(s1 & s2)


def ssl4eo_pairs(
    root: Path, s2_split: str = "s2c", limit: int | None = None, size: int = SSL4EO_SIZE
) -> list[PairedScene]:
    """One PairedScene per (location, season) of an SSL4EO-S12 tree."""
    bands = S2L1C_BANDS if s2_split == "s2c" else S2L2A_BANDS
    scenes: list[PairedScene] = []
    for loc in ssl4eo_locations(root, s2_split):
        s1_seasons = sorted(p for p in (root / "s1" / loc).iterdir() if p.is_dir())
        s2_seasons = sorted(p for p in (root / s2_split / loc).iterdir() if p.is_dir())
        for k, (f1, f2) in enumerate(zip(s1_seasons, s2_seasons, strict=False)):
            s1 = np.stack([_read_band(f1 / f"{pol}.tif", size) for pol in ("VV", "VH")])
            raw = np.stack([_read_band(_ssl4eo_band_file(f2, b), size) for b in bands])
            s2, offset = s2_to_l1c13(raw, bands)
            level = "L1C" if s2_split == "s2c" else "L2A"
            scenes.append(PairedScene(f"{loc}/{k}", "ssl4eo", s1, s2, level, offset))
            if limit is not None and len(scenes) >= limit:
                return scenes
    return scenes
