"""Writing the same flood polygons to GeoPackage through fiona, pyogrio and GDAL's own OGR bindings.

The polygons come from a real large class map (the full-scene benchmark's, or `--raster`), made once by the
runtime's own polygoniser (models/polygons.py: sieved, strip by strip, joined) and held as the flat arrays
it yields; each writer is timed from those arrays to a closed file, so the conversion each one needs
(GeoJSON-like dicts for fiona, WKB for pyogrio and OGR) is counted. Writers run interleaved, in a fresh
file each, median of the repeats; the files are checked to hold the same features. One run, load average
recorded. Writes bench/results/polygon_writers.json.

    python bench/polygon_writers.py [--raster classes.tif] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from common import save_result
from contrasat.models.polygons import DEFAULT_MIN_PIXELS, polygon_features

FULL_SCENE_MAP = Path("/tmp/contrasat-bench/flood.tif")
SCHEMA = {"geometry": "Polygon", "properties": {"class": "int", "name": "str", "area_km2": "float"}}
NAMES = {1: "water"}


def _wkb(flat, xy) -> np.ndarray:
    """The batch's polygons as WKB, built from the flat arrays in one vectorised call."""
    import shapely

    ring_offsets = np.concatenate([[0], np.cumsum(flat.lengths)])
    polygon_offsets = np.concatenate([[0], np.cumsum(flat.rings)])
    geoms = shapely.from_ragged_array(shapely.GeometryType.POLYGON, xy, (ring_offsets, polygon_offsets))
    return shapely.to_wkb(geoms)


def write_fiona(path: Path, batches, crs_wkt: str) -> None:
    import fiona

    with fiona.open(path, "w", driver="GPKG", crs=crs_wkt, schema=SCHEMA, layer=path.stem) as dst:
        for flat, xy, values, areas in batches:
            dst.writerecords(
                {"geometry": g, "properties": {"class": v, "name": NAMES.get(v, ""), "area_km2": float(a)}}
                for g, v, a in zip(flat.geojson(xy), values, areas, strict=True)
            )


def write_pyogrio(path: Path, batches, crs_wkt: str) -> None:
    from pyogrio.raw import write

    for i, (flat, xy, values, areas) in enumerate(batches):
        v = np.asarray(values, dtype=np.int32)
        names = np.array([NAMES.get(int(x), "") for x in v], dtype=object)
        write(path, _wkb(flat, xy), [v, names, np.asarray(areas, dtype=np.float64)], ["class", "name", "area_km2"],
              driver="GPKG", layer=path.stem, geometry_type="Polygon", crs=crs_wkt, append=i > 0)  # fmt: skip


def write_ogr(path: Path, batches, crs_wkt: str) -> None:
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    layer = ds.CreateLayer(path.stem, srs, ogr.wkbPolygon)
    for name, kind in (("class", ogr.OFTInteger), ("name", ogr.OFTString), ("area_km2", ogr.OFTReal)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    defn = layer.GetLayerDefn()
    for flat, xy, values, areas in batches:
        layer.StartTransaction()
        for g, v, a in zip(_wkb(flat, xy).tolist(), values, areas.tolist(), strict=True):
            f = ogr.Feature(defn)
            f.SetField(0, v)
            f.SetField(1, NAMES.get(v, ""))
            f.SetField(2, a)
            f.SetGeometryDirectly(ogr.CreateGeometryFromWkb(g))
            layer.CreateFeature(f)
        layer.CommitTransaction()
    ds = None  # closes the file


WRITERS = {"fiona": write_fiona, "pyogrio": write_pyogrio, "gdal_ogr": write_ogr}


def versions() -> dict[str, str]:
    """Each importable writer's version and GDAL; pyogrio and osgeo are not runtime dependencies (install
    them to compare: `pip install pyogrio`; osgeo is the system's python3-gdal)."""
    import fiona

    found = {"fiona": f"fiona {fiona.__version__}, GDAL {fiona.__gdal_version__}"}
    try:
        import pyogrio

        found["pyogrio"] = f"pyogrio {pyogrio.__version__}, GDAL {pyogrio.__gdal_version_string__}"
    except ImportError:
        pass
    try:
        from osgeo import gdal

        found["gdal_ogr"] = f"osgeo.ogr (GDAL's own bindings), GDAL {gdal.__version__}"
    except ImportError:
        pass
    return found


def summary(path: Path) -> tuple[int, float, float]:
    """(features, total area km², total polygon area in map units) as read back through fiona."""
    import fiona
    import shapely.geometry

    with fiona.open(path) as layer:
        rows = [(shapely.geometry.shape(f["geometry"]), f["properties"]["area_km2"]) for f in layer]
    return len(rows), float(sum(a for _, a in rows)), float(sum(g.area for g, _ in rows))


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raster", type=Path, default=FULL_SCENE_MAP, help="class raster (0 dry, 1 water)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with rasterio.open(args.raster) as src:
        crs_wkt, shape = src.crs.to_wkt(), (src.height, src.width)
    t0 = time.perf_counter()
    batches = list(polygon_features(args.raster, 255, {0}, DEFAULT_MIN_PIXELS))
    polygonise_s = time.perf_counter() - t0
    n = sum(len(b[2]) for b in batches)
    load0 = os.getloadavg()[0]
    writers = {k: w for k, w in WRITERS.items() if k in versions()}
    times: dict[str, list[float]] = {k: [] for k in writers}
    checks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            for name, write in writers.items():
                path = Path(tmp) / f"{name}_{k}.gpkg"
                t = time.perf_counter()
                write(path, batches, crs_wkt)
                times[name].append(time.perf_counter() - t)
                if k == 0:
                    checks[name] = summary(path)
                path.unlink()
    counts = {c[0] for c in checks.values()}
    rows = [{"writer": name, "version": versions()[name], "median_s": round(statistics.median(t), 2),
             "runs_s": [round(x, 2) for x in t], "features_per_s": round(n / statistics.median(t)),
             "features_read_back": checks[name][0], "area_km2_read_back": round(checks[name][1], 3),
             "polygon_area_map_units": checks[name][2]}
            for name, t in times.items()]  # fmt: skip
    fastest = min(rows, key=lambda r: r["median_s"])
    result = {
        "benchmark": "the same flood polygons written to GeoPackage by fiona, pyogrio and GDAL's own OGR",
        "raster": f"{args.raster.name} {shape[1]}x{shape[0]}", "features": n, "min_polygon": DEFAULT_MIN_PIXELS,
        "polygonise_s": round(polygonise_s, 1), "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "loadavg_1min_before": round(load0, 2), "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "same_features": len(counts) == 1, "fastest": fastest["writer"], "rows": rows,
    }  # fmt: skip
    return save_result("polygon_writers", result)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
