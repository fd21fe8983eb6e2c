"""Shared pieces of the benchmarks: a large real raster made by tiling the bundled Sen1Floods11 chip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
SAMPLE_S1 = REPO / "resources" / "sample" / "Spain_7370579_S1Hand.tif"
RESULTS = REPO / "bench" / "results"

# Source for child processes: their peak resident memory. VmHWM belongs to the new process image only, while
# ru_maxrss is carried across exec from the forked parent (1.3 GB of GDAL cache in the full-scene benchmark).
HWM = r"""
def hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""


def mosaic(path: Path, reps: int, compress: str | None = "deflate") -> Path:
    """Write the real S1 chip repeated reps × reps times (mirrored so the seams stay natural)."""
    with rasterio.open(SAMPLE_S1) as src:
        chip = src.read()
        profile = src.profile
        descriptions = src.descriptions
        t = src.transform
    rows = []
    for i in range(reps):
        row = [chip[:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1] for j in range(reps)]
        rows.append(np.concatenate(row, axis=2))
    data = np.concatenate(rows, axis=1)
    profile.update(width=data.shape[2], height=data.shape[1], tiled=True, blockxsize=256, blockysize=256,
                   transform=rasterio.Affine(t.a, t.b, t.c, t.d, t.e, t.f))  # fmt: skip
    profile.pop("compress", None)
    profile.pop("predictor", None)
    if compress:
        profile.update(compress=compress, predictor=3)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    return path


def save_result(name: str, result: dict) -> dict:
    """Write a bench's result to bench/results/<name>.json (the report reads it from there); return it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
