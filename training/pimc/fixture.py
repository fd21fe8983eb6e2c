"""Write the bundled real series: the Slovenia NDVI stack as one GeoTIFF, one band per date.

Band descriptions carry the acquisition time; invalid observations (no data, IS_VALID false, cloud mask)
are NaN, so the runtime's gap filling sees exactly what a user's cloud-masked stack would give it.
Run: contrasat train pimc fixture [--out OUT.tif]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_bounds

from ..common.data_root import REPO_ROOT as REPO
from .data import load_slovenia, slovenia_path

DEFAULT_OUT = REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"


def write_stack(out: Path = DEFAULT_OUT, npz: Path | None = None) -> Path:
    """GeoTIFF (68 bands float32 NDVI, NaN = invalid, EPSG:32633) from the eo-learn patch."""
    npz = Path(npz or slovenia_path())
    patch = load_slovenia(npz)
    stamps = json.loads((npz.parent / "timestamps.json").read_text())
    ring = json.loads((npz.parent / "bbox.geojson").read_text())["coordinates"][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    _, t, h, w = patch.series.shape
    data = np.where(patch.valid, patch.series[0], np.nan).astype(np.float32)
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": t, "width": w, "height": h, "crs": "EPSG:32633",
        "transform": from_bounds(min(xs), min(ys), max(xs), max(ys), w, h), "nodata": float("nan"),
        "compress": "deflate", "predictor": 3, "interleave": "band",
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(stamps)
        dst.update_tags(INDEX="NDVI", SOURCE="eo-learn example data, Sinergise, MIT")
    return out
