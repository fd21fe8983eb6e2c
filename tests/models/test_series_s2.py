"""classify-series on dated Sentinel-2 rasters (bands, not an index): units and georeferencing are checked as
for every other job. The dates are the five real L1C reference scenes of the eo-learn Slovenia patch, on the
bundled NDVI stack's grid (their acquisition dates are not in the sample: five dates a season apart stand
in; the model and the series maths are checked on the real dated stack in test_series*.py)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.bands import S2L1C_BANDS
from contrasat.models.errors import InputError
from contrasat.models.series import _read_block, _single_date_layers, classify_series
from rasterio.transform import Affine
from rasterio.windows import Window

REPO = Path(__file__).resolve().parents[2]
PATCH = REPO / "tests" / "fixtures" / "data" / "eolearn" / "slovenia_patch.npz"
STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
DAYS = ("20170105", "20170320", "20170611", "20170902", "20171120")


def write_dates(folder: Path, scenes: np.ndarray, profile: dict, days=DAYS, **changes) -> list[Path]:
    """One GeoTIFF per date (13 L1C bands, described) from `scenes` (T, 13, H, W), dates in the names."""
    folder.mkdir(exist_ok=True)
    profile = {**profile, "count": scenes.shape[1], "dtype": scenes.dtype.name, "nodata": None, **changes}
    paths = []
    for day, values in zip(days, scenes, strict=False):
        path = folder / f"S2_{day}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values)
            dst.descriptions = S2L1C_BANDS
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def s2() -> tuple[np.ndarray, dict]:
    """(5, 13, 101, 100) uint16 reflectance x 10000 and the patch's GeoTIFF profile."""
    with np.load(PATCH) as z:
        scenes = np.transpose(z["REFERENCE_SCENES"], (0, 3, 1, 2))
    with rasterio.open(STACK) as src:
        profile = src.profile
    assert scenes.shape[2:] == (profile["height"], profile["width"])
    return scenes, profile


def classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as f:
        return f.read(1)


def index_values(paths: list[Path], name: str) -> np.ndarray:
    """(T, H, W) index values the job reads from dated S2 rasters, and their notes."""
    notes = []
    with ExitStack() as files:
        layers = _single_date_layers(paths, None, [name], files, notes)
        src = layers[0].src
        values, valid = _read_block(layers, [name], Window(0, 0, src.width, src.height))
    assert valid.all()
    return values[0], [str(n) for n in notes]


@pytest.mark.parametrize("index", ["NDVI", "EVI", "SAVI"])
def test_dn_offset_and_float_reflectance_give_the_same_index(s2, tmp_path, index):
    """EVI and SAVI depend on absolute reflectance: a float 0..1 date read as DN would silently give ~0."""
    dn, profile = s2
    assert np.quantile(dn[:, 3], 0.01) < 1000  # red without the +1000 offset of baseline 04.00
    reference, notes = index_values(write_dates(tmp_path / "dn", dn, profile), index)
    assert not [n for n in notes if "detected" in n], "a bright (snowy) January date is not an offset"
    assert np.nanstd(reference) > 0.05
    variants = {
        "offset": (dn + np.uint16(1000), "+1000 L1C offset detected"),
        "float": ((dn / 10000.0).astype("float32"), "float reflectance 0..1 detected"),
    }
    for name, (values, note) in variants.items():
        got, notes = index_values(write_dates(tmp_path / name, values, profile), index)
        np.testing.assert_allclose(got, reference, atol=1e-5, err_msg=name)
        assert sum(note in n for n in notes) == len(DAYS), (name, notes)


def test_converted_dates_give_the_same_map(s2, tmp_path):
    dn, profile = s2
    plain = classify_series(write_dates(tmp_path / "dn", dn, profile), tmp_path / "dn.tif")
    scaled = classify_series(
        write_dates(tmp_path / "f", (dn / 1e4).astype("float32"), profile), tmp_path / "f.tif"
    )
    assert np.mean(classes(plain.output) != 255) > 0.99
    assert np.array_equal(classes(plain.output), classes(scaled.output))
    assert any("float reflectance 0..1 detected" in str(n) for n in scaled.notes)


def test_eight_bit_dates_are_refused_and_nothing_is_written(s2, tmp_path, capsys):
    dn, profile = s2
    visual = np.clip(dn / 12, 0, 255).astype("uint8")  # a stretched 8-bit product
    paths = write_dates(tmp_path / "u8", visual, profile)
    out = tmp_path / "lc.tif"
    assert main(["classify-series", "--stack", *map(str, paths), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "8-bit" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_date_elsewhere_is_refused_and_one_covering_half_gets_a_note(s2, tmp_path):
    dn, profile = s2
    t = profile["transform"]
    paths = write_dates(tmp_path / "here", dn[:4], profile, days=DAYS[:4])
    far = write_dates(tmp_path / "far", dn[4:], profile, days=DAYS[4:],
                      transform=Affine(t.a, t.b, t.c + 50_000, t.d, t.e, t.f))  # fmt: skip
    with pytest.raises(InputError, match="does not overlap"):
        classify_series([*paths, *far], tmp_path / "lc.tif")
    assert not (tmp_path / "lc.tif").exists()
    half = write_dates(tmp_path / "half", dn[4:], profile, days=DAYS[4:],
                       transform=Affine(t.a, t.b, t.c + t.a * dn.shape[3] / 2, t.d, t.e, t.f))  # fmt: skip
    result = classify_series([*paths, *half], tmp_path / "lc.tif")
    (note,) = [str(n) for n in result.notes if "covers" in str(n)]
    assert "covers 50%" in note and half[0].name in note
    assert np.mean(classes(result.output) != 255) > 0.99  # the gap is filled from the other dates


def test_a_stack_without_crs_is_refused(s2, tmp_path):
    dn, profile = s2
    paths = write_dates(tmp_path / "nocrs", dn, profile, crs=None)
    with pytest.raises(InputError, match="no coordinate reference system"):
        classify_series(paths, tmp_path / "lc.tif")
    assert not (tmp_path / "lc.tif").exists()
