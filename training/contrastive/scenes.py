"""Co-registered S1/S2 scenes in memory: S1 [VV, VH] dB and S2 13 L1C bands (reflectance x 10000).

Every source is turned into one PairedScene on one pixel grid, so a crop window means the same ground in
both sensors. S2 values are offset-corrected from the data (models.preprocess.s2_offset); an L2A scene has
no B10, which is stored as NaN (it becomes 0, the normalised mean, in models.preprocess.prepare).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ...models.bands import S1_BANDS, S2L1C_BANDS, S2L2A_BANDS
from ...models.preprocess import s2_offset
from ..common.flood_data.unlabelled import read_s1


@dataclass
class PairedScene:
    """One place seen by both sensors; `label` is optional (LULC classes or water, -1 = ignore)."""

    name: str
    source: str  # "terramind", "sen1floods11", "bigearthnet", "ssl4eo", ...
    s1: np.ndarray  # (2, H, W) float32 dB, NaN = nodata
    s2: np.ndarray  # (13, H, W) float32 reflectance x 10000 without offset, NaN = nodata / missing band
    s2_level: str = "L1C"
    s2_offset: float = 0.0
    label: np.ndarray | None = None  # (H, W) int64

    def __post_init__(self) -> None:
        if self.s1.shape[0] != len(S1_BANDS) or self.s2.shape[0] != len(S2L1C_BANDS):
            raise ValueError(
                f"{self.name}: expected 2 S1 and 13 S2 bands, got {self.s1.shape} {self.s2.shape}"
            )
        if self.s1.shape[1:] != self.s2.shape[1:]:
            raise ValueError(f"{self.name}: S1 grid {self.s1.shape[1:]} != S2 grid {self.s2.shape[1:]}")

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.s1.shape[1]), int(self.s1.shape[2])


def s2_to_l1c13(raw: np.ndarray, bands: list[str] | tuple[str, ...]) -> tuple[np.ndarray, float]:
    """Raw S2 (B, H, W) in `bands` order -> (13, H, W) float32 in L1C order, offset removed, 0 -> NaN.

    Returns the offset found so callers can record it. Missing bands (B10 of L2A) are NaN.
    """
    raw = raw.astype(np.float32)
    nodata = np.all(raw == 0, axis=0) | ~np.all(np.isfinite(raw), axis=0)
    offset = s2_offset(raw[:, ~nodata]) if (~nodata).any() else 0.0
    out = np.full((len(S2L1C_BANDS), *raw.shape[1:]), np.nan, dtype=np.float32)
    for i, band in enumerate(bands):
        out[S2L1C_BANDS.index(band)] = np.maximum(raw[i] - offset, 0.0)
    out[:, nodata] = np.nan
    return out, offset


def read_s2(path: Path) -> tuple[np.ndarray, str, float]:
    """(13, H, W) L1C-ordered S2 from a 13-band (L1C) or 12-band (L2A) GeoTIFF in storage order."""
    with rasterio.open(path) as src:
        raw = src.read()
    bands = S2L1C_BANDS if raw.shape[0] == len(S2L1C_BANDS) else S2L2A_BANDS
    if raw.shape[0] != len(bands):
        raise ValueError(f"{path.name}: {raw.shape[0]} bands is neither S2 L1C (13) nor L2A (12)")
    s2, offset = s2_to_l1c13(raw, bands)
    return s2, "L1C" if bands is S2L1C_BANDS else "L2A", offset


def load_terramind(root: Path, with_label: bool = True) -> list[PairedScene]:
    """TerraMesh/TerraMind example sites: S1RTC/, S2L1C/, LULC/ with one co-registered file per site."""
    scenes = []
    for s1_path in sorted((root / "S1RTC").glob("*.tif")):
        s2_path = root / "S2L1C" / s1_path.name
        if not s2_path.is_file():
            continue
        s2, level, offset = read_s2(s2_path)
        label = None
        lulc = root / "LULC" / s1_path.name
        if with_label and lulc.is_file():
            with rasterio.open(lulc) as src:
                label = src.read(1).astype(np.int64)
            label[label == 0] = -1  # class 0 is "no data": ignored in losses and metrics
        scenes.append(PairedScene(s1_path.stem, "terramind", read_s1(s1_path), s2, level, offset, label))
    return scenes


def load_sen1floods11_pairs(root: Path) -> list[PairedScene]:
    """Sen1Floods11 chips that have both S1Hand and S2Hand (label = water 0/1, -1 ignored)."""
    scenes = []
    for s2_path in sorted((root / "S2Hand").glob("*_S2Hand.tif")):
        name = s2_path.name.removesuffix("_S2Hand.tif")
        s1_path = root / "S1Hand" / f"{name}_S1Hand.tif"
        if not s1_path.is_file():
            continue
        s2, level, offset = read_s2(s2_path)
        label = None
        lab = root / "LabelHand" / f"{name}_LabelHand.tif"
        if lab.is_file():
            with rasterio.open(lab) as src:
                label = src.read(1).astype(np.int64)
            label[(label != 0) & (label != 1)] = -1
        scenes.append(PairedScene(name, "sen1floods11", read_s1(s1_path), s2, level, offset, label))
    return scenes


def finite_stats(arrays: list[np.ndarray], clip: tuple[float, float]) -> tuple[list[float], list[float]]:
    """Per-band mean/std of clipped finite values over (B, H, W) arrays (NaN bands get mean 0, std 1)."""
    n_bands = arrays[0].shape[0]
    mean, std = [], []
    for b in range(n_bands):
        vals = np.concatenate([a[b][np.isfinite(a[b])].ravel() for a in arrays]).astype(np.float64)
        vals = np.clip(vals, *clip)
        if vals.size < 2:
            mean.append(0.0)
            std.append(1.0)
        else:
            mean.append(round(float(vals.mean()), 4))
            std.append(round(max(float(vals.std()), 1e-3), 4))
    return mean, std
