"""ETCI 2021 flood-detection tiles: 8-bit VV/VH PNGs per scene, flood and permanent-water masks.

The tiles are rescaled backscatter (not dB) without georeferencing; training/flood/calibration.py (`contrasat train flood calibrate`) maps them to dB.
Water = flood label OR permanent-water label: the runtime maps all open water, not only new flood.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SCENES = ("nebraska_20170213t002121", "northal_20190302t234651")
NODATA_DN = 0  # both bands 0: outside the scene footprint


@dataclass
class EtciTile:
    """One 256x256 tile: raw 8-bit [VV, VH], label (-1 nodata, 0 dry, 1 water) and its scene."""

    name: str
    scene: str
    dn: np.ndarray  # (2, H, W) uint8
    label: np.ndarray  # (H, W) int64


def etci_dir(root: Path) -> Path:
    return root / "etci2021"


def list_tiles(root: Path, scene: str) -> list[str]:
    """Tile names of a scene that have VV, VH and both label files, sorted."""
    folder = etci_dir(root) / scene
    names = [p.name.removesuffix("_vv.png") for p in (folder / "vv").glob("*_vv.png")]
    need = ("vh/{}_vh.png", "flood_label/{}.png", "water_body_label/{}.png")
    return sorted(n for n in names if all((folder / f.format(n)).is_file() for f in need))


def _gray(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path))
    return a[..., 0] if a.ndim == 3 else a  # the originals repeat the grey value in 3 channels


def load_tile(root: Path, scene: str, name: str) -> EtciTile:
    """Read one tile; pixels with VV = VH = 0 (scene border) are labelled -1."""
    folder = etci_dir(root) / scene
    dn = np.stack([_gray(folder / "vv" / f"{name}_vv.png"), _gray(folder / "vh" / f"{name}_vh.png")])
    flood = _gray(folder / "flood_label" / f"{name}.png") > 0
    permanent = _gray(folder / "water_body_label" / f"{name}.png") > 0
    if dn.shape[1:] != flood.shape or flood.shape != permanent.shape:
        raise ValueError(f"ETCI tile {name}: image {dn.shape} and labels {flood.shape} differ")
    label = (flood | permanent).astype(np.int64)
    label[np.all(dn == NODATA_DN, axis=0)] = -1
    return EtciTile(name, scene, dn.astype(np.uint8), label)


def load_scene(root: Path, scene: str, step: int = 1) -> list[EtciTile]:
    """Every `step`-th tile of a scene (step > 1 for quick statistics)."""
    return [load_tile(root, scene, n) for n in list_tiles(root, scene)[::step]]
