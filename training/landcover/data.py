"""Labelled land-cover sites: the four TerraMind sites and the eo-learn Slovenia patch on TerraMind's classes.

Reflectance is made exactly as the runtime makes it (models.rasters + models.preprocess): S2 value 0 is
nodata, the baseline-04.00 offset is detected by `s2_offset` on the valid pixels of the whole site and
subtracted, and the card's clip is applied. Training and inference therefore cannot disagree on units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...models.bands import S2L1C_BANDS
from ...models.preprocess import s2_offset
from ..common.data_root import data_root

CLIP = (0.0, 15000.0)  # reflectance x 10000, as the card's clip
NODATA_CLASS = 0
# TerraMind's LULC codes (the ESRI 10 m land-cover scheme remapped to 0..9).
CLASS_NAMES = {
    0: "no data", 1: "water", 2: "trees", 3: "flooded vegetation", 4: "crops", 5: "built area",
    6: "bare ground", 7: "snow/ice", 8: "clouds", 9: "rangeland",
}  # fmt: skip
CLASS_COLORS = {
    0: "#00000000", 1: "#419bdfff", 2: "#397d49ff", 3: "#7a87c6ff", 4: "#e49635ff", 5: "#c4281bff",
    6: "#a59b8fff", 7: "#a8ebffff", 8: "#616161ff", 9: "#e3e2c3ff",
}  # fmt: skip
N_CLASSES = len(CLASS_NAMES)
# Slovenian LULC code -> TerraMind code. The ESRI scheme's "rangeland" is grass and scrub together, so
# grassland and shrubland both map to it; cultivated land is crops, artificial surface is built area.
# Every other Slovenian code (0 no data, and classes absent from the patch) is dropped (label 0).
SLOVENIA_TO_TERRAMIND = {1: 4, 2: 2, 3: 9, 4: 9, 8: 5}
SLOVENIA = "slovenia"
TERRAMIND_SITES = ("282D_485L_3_3", "38D_378R_2_3", "433D_629L_3_1", "609U_541L_3_0")


@dataclass
class Site:
    """One labelled place: reflectance (13, H, W) float32 (offset removed, clipped), label (H, W) uint8."""

    name: str
    reflectance: np.ndarray
    label: np.ndarray  # TerraMind codes; 0 = no data (also where S2 is nodata)
    offset: float

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, 13) reflectance and (N,) labels of the labelled pixels."""
        keep = self.label != NODATA_CLASS
        return self.reflectance[:, keep].T, self.label[keep]


def make_site(name: str, raw: np.ndarray, label: np.ndarray) -> Site:
    """A Site from raw S2 DN (13, H, W) and TerraMind labels, by the runtime's rules (0 = nodata, offset)."""
    valid = np.all(raw != 0, axis=0)
    offset = s2_offset(raw[:, valid]) if valid.any() else 0.0
    refl = np.clip(raw.astype(np.float32) - np.float32(offset), *CLIP)
    label = np.where(valid, label, NODATA_CLASS).astype(np.uint8)
    return Site(name, refl, label, offset)


def load_terramind(name: str, root: Path | None = None) -> Site:
    """One TerraMind site from <root>/terramind/{S2L1C,LULC}/<name>.tif."""
    import rasterio

    base = Path(root or data_root()) / "terramind"
    with rasterio.open(base / "S2L1C" / f"{name}.tif") as ds:
        raw = ds.read()
        if ds.count != len(S2L1C_BANDS):
            raise ValueError(f"{name}: {ds.count} S2 bands, expected {len(S2L1C_BANDS)}")
    with rasterio.open(base / "LULC" / f"{name}.tif") as ds:
        label = ds.read(1)
    if label.shape != raw.shape[1:]:
        raise ValueError(f"{name}: label {label.shape} and S2 {raw.shape[1:]} grids differ")
    if label.max() >= N_CLASSES:
        raise ValueError(f"{name}: label code {label.max()} is not a TerraMind class")
    return make_site(name, raw, label)


def slovenia_scene_index(scenes: np.ndarray) -> int:
    """The least hazy of the patch's reference scenes: lowest median blue (B02) over valid pixels."""
    blue = [np.median(s[..., 1][np.all(s != 0, axis=-1)]) for s in scenes]
    return int(np.argmin(blue))


def load_slovenia(root: Path | None = None) -> Site:
    """The Slovenia patch: its clearest L1C reference scene with LULC mapped onto TerraMind's codes."""
    with np.load(Path(root or data_root()) / "eolearn" / "slovenia_patch.npz") as z:
        scenes, lulc = z["REFERENCE_SCENES"], z["LULC"][..., 0]
    raw = np.moveaxis(scenes[slovenia_scene_index(scenes)], -1, 0).astype(np.int32)
    mapped = np.zeros(lulc.shape, dtype=np.uint8)
    for src, dst in SLOVENIA_TO_TERRAMIND.items():
        mapped[lulc == src] = dst
    return make_site(SLOVENIA, raw, mapped)


def slovenia_geotiff(path: Path, root: Path | None = None) -> Path:
    """Write the Slovenia scene (raw DN, 13 bands) as a GeoTIFF on its bbox, so the runtime can read it."""
    import rasterio
    from rasterio.transform import from_bounds

    base = Path(root or data_root()) / "eolearn"
    with np.load(base / "slovenia_patch.npz") as z:
        scenes = z["REFERENCE_SCENES"]
    raw = np.moveaxis(scenes[slovenia_scene_index(scenes)], -1, 0)
    geo = json.loads((base / "bbox.geojson").read_text())
    xs = [p[0] for p in geo["coordinates"][0]]
    ys = [p[1] for p in geo["coordinates"][0]]
    h, w = raw.shape[1:]
    transform = from_bounds(min(xs), min(ys), max(xs), max(ys), w, h)
    profile = dict(driver="GTiff", width=w, height=h, count=raw.shape[0], dtype="uint16", crs="EPSG:32633",
                   transform=transform, nodata=0)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw)
        dst.descriptions = S2L1C_BANDS
    return path


def load_sites(root: Path | None = None, slovenia: bool = True) -> list[Site]:
    """Every labelled site: the TerraMind sites found under root (in TERRAMIND_SITES order), then Slovenia."""
    base = Path(root or data_root())
    sites = [
        load_terramind(n, base)
        for n in TERRAMIND_SITES
        if (base / "terramind" / "LULC" / f"{n}.tif").is_file()
    ]
    if slovenia and (base / "eolearn" / "slovenia_patch.npz").is_file():
        sites.append(load_slovenia(base))
    if not sites:
        raise FileNotFoundError(base / "terramind")
    return sites
