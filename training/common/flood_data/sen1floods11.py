"""Sen1Floods11 hand-labelled chips: locating, loading, normalisation statistics and the card InputSpec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ....models.bands import S1_BANDS
from ....models.card import InputSpec
from ..data_root import data_root
from ..metrics import IGNORE

__all__ = ["DEMO_CHIP", "IGNORE", "S1_CLIP_DB", "Chip", "floods_dir", "list_chips", "load_chip"]

S1_CLIP_DB = (-50.0, 5.0)  # SCIENCE.md convention for S1 backscatter in dB
DEMO_CHIP = "Spain_7370579"  # the bundled demo chip: a shipped flood model must never have seen it


def floods_dir(root: Path | None = None) -> Path:
    return (root or data_root()) / "sen1floods11"


@dataclass
class Chip:
    """One 512x512 chip: S1 [VV, VH] in dB (NaN = nodata) and labels (-1 nodata, 0 dry, 1 water)."""

    name: str
    s1: np.ndarray  # (2, H, W) float32
    label: np.ndarray  # (H, W) int64; -1 also where S1 is not finite

    @property
    def valid(self) -> np.ndarray:
        return self.label != IGNORE


def list_chips(root: Path | None = None) -> list[str]:
    """Names of chips that have both S1Hand and LabelHand files, sorted."""
    folder = floods_dir(root)
    names = [p.name.removesuffix("_S1Hand.tif") for p in (folder / "S1Hand").glob("*_S1Hand.tif")]
    return sorted(n for n in names if (folder / "LabelHand" / f"{n}_LabelHand.tif").is_file())


def load_chip(name: str, root: Path | None = None) -> Chip:
    """Read one chip; pixels without finite VV and VH are marked as ignored in the label."""
    folder = floods_dir(root)
    with rasterio.open(folder / "S1Hand" / f"{name}_S1Hand.tif") as src:
        s1 = src.read().astype(np.float32)
    with rasterio.open(folder / "LabelHand" / f"{name}_LabelHand.tif") as src:
        label = src.read(1).astype(np.int64)
    if s1.shape[0] != len(S1_BANDS) or s1.shape[1:] != label.shape:
        raise ValueError(f"chip {name}: S1 {s1.shape} does not match label {label.shape}")
    label[~np.all(np.isfinite(s1), axis=0)] = IGNORE
    label[(label != 0) & (label != 1)] = IGNORE
    return Chip(name, s1, label)


def load_chips(names: list[str] | None = None, root: Path | None = None) -> list[Chip]:
    return [load_chip(n, root) for n in (names or list_chips(root))]


def band_stats(chips: list[Chip], clip: tuple[float, float] = S1_CLIP_DB) -> tuple[list[float], list[float]]:
    """Per-band mean/std of clipped dB values over finite pixels of the given (training) chips."""
    sums = np.zeros(len(S1_BANDS))
    sq = np.zeros(len(S1_BANDS))
    count = 0
    for chip in chips:
        ok = np.all(np.isfinite(chip.s1), axis=0)
        vals = np.clip(chip.s1[:, ok].astype(np.float64), *clip)
        sums += vals.sum(axis=1)
        sq += (vals**2).sum(axis=1)
        count += vals.shape[1]
    mean = sums / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


def s1_spec(mean: list[float], std: list[float]) -> InputSpec:
    """The card input for this model; training normalises through models.preprocess.prepare with it."""
    return InputSpec(
        name="s1",
        sensor="S1",
        bands=list(S1_BANDS),
        units="dB",
        mean=list(mean),
        std=list(std),
        clip=list(S1_CLIP_DB),
    )
