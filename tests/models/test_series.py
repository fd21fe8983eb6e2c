"""classify-series on the bundled real Slovenia stack: API, CLI exit codes, stack forms, cancel, AOI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.cli import main
from contrasat.models.card import read_card
from contrasat.models.errors import Cancelled, InputError
from contrasat.models.series import classify_series, parse_date

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
MODEL = REPO / "models" / "weights" / "pixel_ts_landcover.onnx"


@pytest.fixture(scope="module")
def stack() -> Path:
    if not STACK.is_file():
        pytest.skip(f"bundled series missing: {STACK}")
    return STACK


@pytest.fixture(scope="module")
def model() -> Path:
    if not MODEL.is_file():
        pytest.skip(f"bundled model missing: {MODEL}")
    return MODEL


def _check_output(path: Path, n_classes: int) -> np.ndarray:
    with rasterio.open(path) as out, rasterio.open(STACK) as src:
        assert (out.crs, out.transform, out.shape) == (src.crs, src.transform, src.shape)
        data = out.read(1)
        assert out.nodata == 255 and out.tags()["original_codes"]
    assert set(np.unique(data)) <= set(range(n_classes)) | {255}
    return data


def test_cli_on_bundled_series(stack, model, tmp_path, capsys):
    out = tmp_path / "lc.tif"
    assert main(["classify-series", "--stack", str(stack), "--out", str(out)]) == 0
    data = _check_output(out, len(read_card(model).classes))
    assert np.mean(data != 255) > 0.99  # every pixel of the patch has valid dates
    assert "forest" in capsys.readouterr().out


def test_api_single_date_rasters_progress_and_names(stack, model, tmp_path):
    """The same series given as one dated NDVI raster per date (dates from file names)."""
    with rasterio.open(stack) as src:
        data, profile, stamps = src.read(), src.profile, src.descriptions
    profile.update(count=1)
    paths = []
    for i in range(0, len(stamps), 4):  # every 4th date: 17 files
        path = tmp_path / f"S2_{stamps[i][:10].replace('-', '')}_ndvi.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data[i : i + 1])
        paths.append(path)
    seen = []
    result = classify_series(paths[::-1], tmp_path / "lc.tif", progress=seen.append)  # order does not matter
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    assert result.shape == (101, 100) and sum(result.class_area_km2.values()) == pytest.approx(1.01, rel=0.02)
    _check_output(result.output, len(result.card.classes))


def test_cancel_leaves_nothing(stack, model, tmp_path):
    out = tmp_path / "lc.tif"
    with pytest.raises(Cancelled):
        classify_series(stack, out, is_cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_aoi_clips_output(stack, model, tmp_path):
    with rasterio.open(stack) as src:
        left, top = src.bounds.left, src.bounds.top
    ring = [[left, top], [left + 300, top], [left + 300, top - 200], [left, top - 200], [left, top]]
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},
                               "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))  # fmt: skip
    result = classify_series(stack, tmp_path / "lc.tif", aoi=aoi)
    assert result.shape[0] <= 21 and result.shape[1] <= 31


def test_bad_inputs_exit_2(stack, model, tmp_path, capsys):
    out = str(tmp_path / "x.tif")
    assert main(["classify-series", "--stack", str(tmp_path / "missing.tif"), "--out", out]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["classify-series", "--stack", str(stack), "--dates", "2020-01-01", "--out", out]) == 2
    assert "dates" in capsys.readouterr().err
    with rasterio.open(stack) as src:  # a stack whose bands carry no dates
        data, profile = src.read(), src.profile
    undated = tmp_path / "undated.tif"
    with rasterio.open(undated, "w", **profile) as dst:
        dst.write(data)
    assert main(["classify-series", "--stack", str(undated), "--out", out]) == 2
    assert "no dates" in capsys.readouterr().err
    with pytest.raises(InputError, match="at least"):
        classify_series(undated, out, dates=["2020-01-01"] * profile["count"])
    assert not Path(out).exists()


def test_parse_date():
    assert str(parse_date("S2A_MSIL1C_20170321T100021_N0204")) == "2017-03-21"
    assert str(parse_date("2015-12-08T10:04:09")) == "2015-12-08"
    assert parse_date("band 4") is None
