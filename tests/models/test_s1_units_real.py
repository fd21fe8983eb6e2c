"""The S1 unit rules on every real Sen1Floods11 chip: dB, power, amplitude and dB × 100 are each told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.units import decide_s1

ROOT = Path(__file__).resolve().parents[2]
SEN1FLOODS11 = ROOT.parent / "shared" / "data" / "sen1floods11" / "S1Hand"
ENCODINGS = {
    "dB": (lambda db: db, "float32"),
    "power": (lambda db: 10 ** (db / 10), "float32"),
    "amplitude": (lambda db: np.sqrt(10 ** (db / 10)), "float32"),
    "dB x 100": (lambda db: np.round(db * 100), "int16"),
}


def _decided(units) -> str:
    if units.amplitude:
        return "amplitude"
    if units.linear:
        return "power"
    return "dB x 100" if units.scale is not None else "dB"


def test_every_real_chip_in_every_encoding() -> None:
    chips = sorted(SEN1FLOODS11.glob("*_S1Hand.tif"))
    if not chips:
        pytest.skip(f"Sen1Floods11 S1 chips not found at {SEN1FLOODS11}")
    wrong = []
    for path in chips:
        with rasterio.open(path) as src:
            db = src.read().reshape(2, -1).astype(np.float64)
        db = db[:, np.all(np.isfinite(db), axis=0)]
        for name, (encode, dtype) in ENCODINGS.items():
            units, _ = decide_s1(encode(db), ["VV", "VH"], np.dtype(dtype), False, path.name)
            if _decided(units) != name:
                wrong.append((path.stem, name, _decided(units)))
    assert wrong == [] and len(chips) >= 7
