"""Sentinel-2 +1000 offset (processing baseline 04.00): detected from the data and removed at read time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.bands import S2L1C_BANDS
from contrasat.models.card import InputSpec
from contrasat.models.preprocess import S2_OFFSET, s2_offset
from contrasat.models.rasters import detect_units, open_input
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_S2 = ROOT / "resources" / "sample" / "Spain_7370579_S2Hand.tif"
TERRAMIND = ROOT.parent / "shared" / "data" / "terramind" / "S2L1C"


def _spec() -> InputSpec:
    return InputSpec("s2", "S2L1C", list(S2L1C_BANDS), "reflectance_x10000", [1000.0] * 13, [1000.0] * 13)


def _open(path: Path):
    raster = open_input(path, _spec(), "S2")
    with rasterio.open(path) as src:
        window = Window(0, 0, src.width, src.height)
    detect_units(raster, window)
    return raster, window


def test_offset_rule_on_synthetic_values() -> None:
    rng = np.random.default_rng(0)
    dark = rng.uniform(0, 60, size=(1, 5000))  # B10-like: near-zero reflectance
    bright = rng.uniform(500, 4000, size=(12, 5000))
    plain = np.concatenate([bright, dark])
    assert s2_offset(plain) == 0.0
    assert s2_offset(plain + S2_OFFSET) == S2_OFFSET
    assert s2_offset(np.empty((13, 0))) == 0.0
    spiky = plain + S2_OFFSET
    spiky[:, :20] = 5  # a few stray low values (edges, resampling) do not flip the decision
    assert s2_offset(spiky) == S2_OFFSET


def test_sample_without_offset_reads_unchanged() -> None:
    if not SAMPLE_S2.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE_S2}")
    raster, window = _open(SAMPLE_S2)
    try:
        assert raster.offset == 0.0
        raw, ok = raster.read(window)
        with rasterio.open(SAMPLE_S2) as src:
            assert np.array_equal(raw, src.read())
    finally:
        raster.close()


def test_offset_copy_reads_like_the_original(tmp_path: Path) -> None:
    """The sample with +1000 added (as baseline 04.00 stores it) is read back to the same reflectance."""
    if not SAMPLE_S2.is_file():
        pytest.skip(f"bundled sample missing: {SAMPLE_S2}")
    with rasterio.open(SAMPLE_S2) as src:
        data, profile = src.read(), src.profile
    shifted = np.where(data == 0, 0, data.astype(np.int32) + 1000).astype(np.int16)  # nodata stays 0
    path = tmp_path / "offset.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(shifted)
    raster, window = _open(path)
    try:
        assert raster.offset == S2_OFFSET
        raw, ok = raster.read(window)
        assert np.array_equal(ok, np.all(data != 0, axis=0))
        assert np.allclose(raw[:, ok], data[:, ok].astype(np.float32))
    finally:
        raster.close()


def test_terramind_sites_detected_per_file() -> None:
    """Real TerraMind L1C: sites from 2022+ carry the offset, an older one (B10 near 50) does not."""
    if not TERRAMIND.is_dir():
        pytest.skip(f"TerraMind samples not found at {TERRAMIND}")
    found = {}
    for path in sorted(TERRAMIND.glob("*.tif")):
        raster, _ = _open(path)
        found[path.stem] = raster.offset
        raster.close()
    assert found["433D_629L_3_1"] == S2_OFFSET
    assert found["38D_378R_2_3"] == 0.0
