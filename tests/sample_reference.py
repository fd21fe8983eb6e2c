"""Digests of the jobs' outputs on the bundled sample (resources/), to prove a refactoring changes no byte.

`python tests/sample_reference.py --write` runs map-floods, land-cover and classify-series (with and without
an AOI, with a pre-event raster, with every optional output) on the bundled sample and the bundled default
models and stores the SHA-256 of every output array, georeferencing and table in
tests/fixtures/sample_reference.json. The stored file was produced by the code BEFORE the tiled-job
skeleton (issue 21, commit d2ad98d: `git archive d2ad98d` unpacked as a `contrasat` package and run with it
on PYTHONPATH); tests/models/test_sample_reference.py compares today's outputs with it. Only the public job
functions with their default execution settings are called, so the script runs against old and new code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
S1 = REPO / "resources" / "sample" / "Spain_7370579_S1Hand.tif"
S2 = REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"
STACK = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"
REFERENCE = REPO / "tests" / "fixtures" / "sample_reference.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raster_digest(path: Path) -> dict[str, str]:
    with rasterio.open(path) as ds:
        array = ds.read()
        georef = json.dumps([ds.crs.to_string(), list(ds.transform), ds.nodata, list(ds.dtypes),
                             list(ds.descriptions)])  # fmt: skip
    return {"array": _sha(np.ascontiguousarray(array).tobytes()), "shape": str(array.shape), "georef": georef}


def _vector_digest(path: Path) -> str:
    import fiona
    from shapely.geometry import shape

    with fiona.open(path) as layer:
        rows = sorted(
            (json.dumps(dict(f["properties"]), sort_keys=True, default=str), shape(f["geometry"]).wkb_hex)
            for f in layer
        )
    return _sha(json.dumps(rows).encode())


def _digest(paths: dict[str, Path]) -> dict:
    found = {}
    for name, path in paths.items():
        if path.suffix == ".tif":
            found[name] = _raster_digest(path)
        elif path.suffix == ".gpkg":
            found[name] = _vector_digest(path)
        else:
            found[name] = _sha(path.read_bytes())
    return found


def _aoi(path: Path, raster: Path) -> Path:
    """A polygon over the middle of a raster (its own CRS), as GeoJSON."""
    with rasterio.open(raster) as ds:
        b, crs = ds.bounds, ds.crs.to_string()
    w, h = b.right - b.left, b.top - b.bottom
    ring = [[b.left + w * x, b.bottom + h * y] for x, y in ((0.2, 0.3), (0.7, 0.25), (0.8, 0.8), (0.3, 0.7))]
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}},
           "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                                            "coordinates": [ring + ring[:1]]}}]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def sample_digests(folder: Path) -> dict[str, dict]:
    """Run every case into `folder` and return {case: {output: digest}}."""
    from contrasat.models.pipeline import land_cover, map_floods
    from contrasat.models.series import classify_series

    pre = folder / "pre_event_S1.tif"
    shutil.copy(S1, pre)
    cases: dict[str, dict] = {}

    def outputs(case: str, *names: str) -> dict[str, Path]:
        suffix = {"out": ".tif", "probabilities": "_p.tif", "polygons": ".gpkg", "statistics": ".csv"}
        return {n: folder / f"{case}{suffix[n]}" for n in names}

    all_four = ("out", "probabilities", "polygons", "statistics")
    paths = outputs("flood", *all_four)
    map_floods(S1, **paths)
    cases["map-floods"] = _digest(paths)
    paths = outputs("flood_aoi", "out", "statistics")
    map_floods(S1, **paths, aoi=_aoi(folder / "aoi_s1.geojson", S1))
    cases["map-floods aoi"] = _digest(paths)
    paths = outputs("flood_pre", "out", "statistics")
    map_floods(S1, **paths, pre_event=pre)
    cases["map-floods pre-event"] = _digest(paths)
    paths = outputs("lc", *all_four)
    land_cover(S2, **paths)
    cases["land-cover"] = _digest(paths)
    paths = outputs("lc_aoi", "out")
    land_cover(S2, **paths, s1=S1, aoi=_aoi(folder / "aoi_s2.geojson", S2))
    cases["land-cover fusion-input aoi"] = _digest(paths)
    paths = outputs("series", "out")
    classify_series(STACK, **paths)
    cases["classify-series"] = _digest(paths)
    paths = outputs("series_aoi", "out")
    classify_series(STACK, **paths, aoi=_aoi(folder / "aoi_series.geojson", STACK))
    cases["classify-series aoi"] = _digest(paths)
    return cases


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/sample_reference.py --write   (with the reference code on PYTHONPATH)")
    with tempfile.TemporaryDirectory() as tmp:
        digests = sample_digests(Path(tmp))
    REFERENCE.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")
