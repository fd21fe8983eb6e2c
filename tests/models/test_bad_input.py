"""Every bad input fails before or during the run with a one-line message, and leaves no output file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from contrasat.models.errors import Cancelled, InputError, ModelError
from contrasat.models.pipeline import map_floods
from rasterio.transform import from_origin


def _tiny_raster(path, bands: int, fill=None, crs="EPSG:32630", descriptions=None):
    data = np.random.default_rng(0).normal(-15, 5, (bands, 64, 64)).astype(np.float32)
    if fill is not None:
        data[:] = fill
    profile = {"driver": "GTiff", "dtype": "float32", "count": bands, "width": 64, "height": 64,
               "crs": crs, "transform": from_origin(500000, 4000000, 10, 10), "nodata": np.nan}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = descriptions
    return path


def _no_outputs(folder) -> bool:
    return not any(
        p.suffix in (".tif", ".gpkg") and p.stem.startswith(("out", ".out")) for p in folder.iterdir()
    )


def _assert_fails(exc_type, match, folder, **kwargs):
    out = folder / "out.tif"
    with pytest.raises(exc_type, match=match) as info:
        map_floods(out=out, probabilities=folder / "out_p.tif", polygons=folder / "out.gpkg", **kwargs)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300
    assert not folder.exists() or _no_outputs(folder), sorted(p.name for p in folder.iterdir())
    return message


def test_wrong_band_count(tmp_path, threshold_model):
    s1 = _tiny_raster(tmp_path / "three.tif", 3)
    msg = _assert_fails(InputError, "3 band", tmp_path, s1=s1, model=threshold_model)
    assert "VV/VH" in msg


def test_bands_found_by_description_in_any_order(tmp_path, threshold_model):
    s1 = _tiny_raster(tmp_path / "named.tif", 3, descriptions=("angle", "VH", "VV"))
    result = map_floods(s1, tmp_path / "ok.tif", model=threshold_model)
    with rasterio.open(s1) as src:
        vh = src.read(2)
    with rasterio.open(result.output) as src:
        np.testing.assert_array_equal(src.read(1), (vh < -20).astype(np.uint8))


def test_all_nodata_raster(tmp_path, threshold_model):
    s1 = _tiny_raster(tmp_path / "empty.tif", 2, fill=np.nan)
    _assert_fails(InputError, "no valid pixels", tmp_path, s1=s1, model=threshold_model)


def test_missing_file(tmp_path, threshold_model):
    _assert_fails(InputError, "not found", tmp_path, s1=tmp_path / "nope.tif", model=threshold_model)


def test_non_raster_file(tmp_path, threshold_model):
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n")
    _assert_fails(InputError, "not a raster", tmp_path, s1=text, model=threshold_model)


def test_raster_without_crs(tmp_path, threshold_model):
    s1 = _tiny_raster(tmp_path / "nocrs.tif", 2, crs=None)
    _assert_fails(InputError, "coordinate reference system", tmp_path, s1=s1, model=threshold_model)


def test_corrupt_onnx(tmp_path, threshold_model, s1_sample):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(threshold_model.read_bytes()[:300])
    _assert_fails(ModelError, "broken.onnx", tmp_path, s1=s1_sample, model=broken)


def test_onnx_without_card(tmp_path, threshold_model, s1_sample):
    import onnx

    proto = onnx.load(str(threshold_model))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    _assert_fails(ModelError, "no Contrasat model card", tmp_path, s1=s1_sample, model=bare)


def test_unknown_model_name(tmp_path, s1_sample):
    _assert_fails(ModelError, "unknown model 'no_such_model'", tmp_path, s1=s1_sample, model="no_such_model")


def test_aoi_outside_raster(tmp_path, threshold_model, s1_sample):
    aoi = tmp_path / "far.geojson"
    far = {"type": "Polygon", "coordinates": [[(10, 50), (10.1, 50), (10.1, 50.1), (10, 50)]]}
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": far}]}))  # fmt: skip
    _assert_fails(InputError, "AOI does not overlap", tmp_path, s1=s1_sample, model=threshold_model, aoi=aoi)


def test_aoi_without_polygon(tmp_path, threshold_model, s1_sample):
    aoi = tmp_path / "points.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-1, 40]}}]}))  # fmt: skip
    _assert_fails(InputError, "no polygon", tmp_path, s1=s1_sample, model=threshold_model, aoi=aoi)


def test_missing_output_folder(tmp_path, threshold_model, s1_sample):
    _assert_fails(InputError, "does not exist", tmp_path / "missing_dir", s1=s1_sample, model=threshold_model)


@pytest.fixture
def locked_folder(tmp_path):
    """A folder nobody may create files in: read-only for a normal user, immutable (chattr +i) for root."""
    import os
    import shutil
    import subprocess

    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
        yield locked
        locked.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("needs chattr +i on the temp file system (root ignores folder permissions)")
    try:
        yield locked
    finally:
        subprocess.run([chattr, "-i", str(locked)], check=True)


def test_unwritable_output_folder(locked_folder, threshold_model, s1_sample):
    _assert_fails(InputError, "not writable", locked_folder, s1=s1_sample, model=threshold_model)


def test_unwritable_output_folder_cli_exit_2(locked_folder, threshold_model, s1_sample, capsys):
    from contrasat.cli import main

    code = main(["map-floods", "--s1", str(s1_sample), "--model", str(threshold_model),
                 "--out", str(locked_folder / "out.tif")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not writable" in err[0]
    assert list(locked_folder.iterdir()) == []


def test_output_is_a_folder(tmp_path, threshold_model, s1_sample):
    (tmp_path / "out.tif").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        map_floods(s1_sample, tmp_path / "out.tif", model=threshold_model)


def test_s2_not_overlapping(tmp_path, fusion_model, s1_sample):
    s2 = _tiny_raster(tmp_path / "s2far.tif", 13, crs="EPSG:32633")
    _assert_fails(InputError, "does not overlap", tmp_path, s1=s1_sample, s2=s2, model=fusion_model)


def test_fusion_model_without_s2(tmp_path, fusion_model, s1_sample):
    _assert_fails(InputError, "needs a S2 raster", tmp_path, s1=s1_sample, model=fusion_model)


def test_cancel_half_way_leaves_nothing(tmp_path, threshold_model, s1_sample):
    from contrasat.models.execution import Execution

    seen = []
    with pytest.raises(Cancelled):
        map_floods(
            s1_sample, tmp_path / "out.tif", model=threshold_model, probabilities=tmp_path / "out_p.tif",
            config=Execution(tile=64, overlap=8, batch=2),
            progress=seen.append, is_cancelled=lambda: len(seen) >= 3,
        )  # fmt: skip
    assert 0 < seen[-1] < 1, "cancel must happen half-way, after some progress"
    assert list(tmp_path.iterdir()) == []


def test_failure_does_not_clobber_existing_output(tmp_path, threshold_model, s1_sample):
    """A failed re-run leaves the previous good result untouched."""
    out = tmp_path / "out.tif"
    map_floods(s1_sample, out, model=threshold_model)
    before = out.read_bytes()
    with pytest.raises(Cancelled):
        map_floods(s1_sample, out, model=threshold_model, is_cancelled=lambda: True)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
