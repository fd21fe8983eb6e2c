"""OMBRIA S1: one 8-bit polarisation before and after a flood, flood masks from Copernicus EMS.

Groups (the "regions" of leave-one-region-out): the four named 2021 events, and the provided
OmbriaS1 `train` and `test` splits as two groups. The numbered places carry no event name, so the
dataset's own split is the only grouping that does not guess; places of one event may sit in both.
Labels: 1 flood, 0 dry; pixels dark already BEFORE the flood and not flood-labelled are set to -1,
because the EMS masks map new flood water only and permanent water would otherwise count as dry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

EVENTS_2021 = ("ALBANIA", "FRANCE", "GUYANA", "TIMOR")
GROUPS = ("S1train", "S1test", *EVENTS_2021)


@dataclass
class OmbriaPlace:
    """One 256x256 place: raw 8-bit after/before images (one band), flood mask as 0/1."""

    name: str
    group: str
    after: np.ndarray  # (H, W) uint8
    before: np.ndarray  # (H, W) uint8
    flood: np.ndarray  # (H, W) bool


def _gray(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path))
    return a[..., 0] if a.ndim == 3 else a


def _files(root: Path, group: str) -> list[tuple[str, Path, Path, Path]]:
    """(name, after, before, mask) paths of a group, sorted by name."""
    base = root / "ombria"
    if group in EVENTS_2021:
        folder = base / "2021" / group / "Sentinel1"
        afters = sorted((folder / "AFTER").glob("imafter_*.png"))
        key = [p.stem.removeprefix("imafter_") for p in afters]
        return [(f"{group}_{k}", a, folder / "BEFORE" / f"imbefore_{k}.png", folder / "MASK" / f"gt_{k}.png")
                for k, a in zip(key, afters, strict=True)]  # fmt: skip
    split = {"S1train": "train", "S1test": "test"}[group]
    folder = base / "OmbriaS1" / split
    afters = sorted((folder / "AFTER").glob("S1_after_*.png"))
    key = [p.stem.removeprefix("S1_after_") for p in afters]
    return [(f"{group}_{k}", a, folder / "BEFORE" / f"S1_before_{k}.png", folder / "MASK" / f"S1_mask_{k}.png")
            for k, a in zip(key, afters, strict=True)]  # fmt: skip


def list_places(root: Path, group: str) -> list[str]:
    return [f[0] for f in _files(root, group) if f[2].is_file() and f[3].is_file()]


def load_group(root: Path, group: str, step: int = 1) -> list[OmbriaPlace]:
    """Every `step`-th place of a group that has after, before and mask images."""
    if group not in GROUPS:
        raise ValueError(f"unknown OMBRIA group '{group}' (known: {', '.join(GROUPS)})")
    out = []
    for name, after, before, mask in [f for f in _files(root, group) if f[2].is_file() and f[3].is_file()][
        ::step
    ]:
        a, b, m = _gray(after), _gray(before), _gray(mask)
        if not (a.shape == b.shape == m.shape):
            raise ValueError(f"OMBRIA place {name}: after {a.shape}, before {b.shape}, mask {m.shape} differ")
        out.append(OmbriaPlace(name, group, a.astype(np.uint8), b.astype(np.uint8), m > 127))
    return out
