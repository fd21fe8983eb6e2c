"""The labelled land-cover sites of the shared data: S2 (13 L1C bands, reflectance x 10000 without the
+1000 offset), S1 [VV, VH] dB where the site has it, and the land-cover labels (0 = no data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ...models.bands import S2L1C_BANDS
from ...models.preprocess import s2_offset

SLOVENIA_NAMES = {1: "cultivated land", 2: "forest", 3: "grassland", 4: "shrubland", 8: "artificial surface"}
TERRAMIND_NAMES = {1: "water", 2: "trees", 3: "flooded vegetation", 4: "crops", 5: "built area",
                   6: "bare ground", 7: "snow/ice", 8: "clouds", 9: "rangeland"}  # fmt: skip


@dataclass
class Site:
    name: str
    s2: np.ndarray  # (13, H, W) float32, reflectance x 10000, NaN = no data
    label: np.ndarray  # (H, W) int64, 0 = no data
    class_names: dict[int, str]
    s1: np.ndarray | None = None  # (2, H, W) float32 dB, NaN = no data


def _clean_s2(raw: np.ndarray) -> np.ndarray:
    """Offset removed (detected from the data, as the runtime does), zeros (S2 no data) -> NaN."""
    s2 = raw.astype(np.float32)
    nodata = np.all(s2 == 0, axis=0)
    s2 -= np.float32(s2_offset(s2[:, ~nodata]))
    s2[:, nodata] = np.nan
    return s2


def load_site(root: Path, site: str, slovenia_scene: int = 4) -> Site:
    """One site by its protocol name: 'terramind/<tile>' or 'eolearn/slovenia'."""
    source, _, name = site.partition("/")
    if source == "terramind":
        base = root / "terramind"
        with rasterio.open(base / "S2L1C" / f"{name}.tif") as src:
            s2 = _clean_s2(src.read())
        with rasterio.open(base / "S1RTC" / f"{name}.tif") as src:
            s1 = src.read([1, 2]).astype(np.float32)
        with rasterio.open(base / "LULC" / f"{name}.tif") as src:
            label = src.read(1).astype(np.int64)
        return Site(site, s2, label, TERRAMIND_NAMES, s1)
    if source == "eolearn" and name == "slovenia":
        data = np.load(root / "eolearn" / "slovenia_patch.npz")
        s2 = _clean_s2(np.moveaxis(data["REFERENCE_SCENES"][slovenia_scene], -1, 0))
        return Site(site, s2, data["LULC"][..., 0].astype(np.int64), SLOVENIA_NAMES)
    raise ValueError(f"unknown site '{site}' (terramind/<tile> or eolearn/slovenia)")


def band(site: Site, name: str) -> np.ndarray:
    return site.s2[S2L1C_BANDS.index(name)]
