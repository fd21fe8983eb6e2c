"""Peak memory of map-floods on a raster and on one 4x larger (2x each side), each in a fresh process.

Writes bench/results/memory.json with peak RSS (the child's VmHWM), the baseline after imports and model load,
and the ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import HWM, mosaic, save_result

CHILD = (
    HWM
    + r"""
import json, sys
from contrasat.models.pipeline import map_floods
from contrasat.models.registry import default_model_path
from contrasat.models.session import load_model
load_model(default_model_path("flood"))  # imports and one session: the floor any run pays
base = hwm_mib()
map_floods(sys.argv[1], sys.argv[2])
print(json.dumps({"baseline_mib": base, "peak_mib": hwm_mib(), "model": default_model_path("flood").stem}))
"""
)


def measure(raster: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raster), str(out)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(reps: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        small = mosaic(Path(tmp) / "small.tif", reps)
        large = mosaic(Path(tmp) / "large.tif", reps * 2)
        a = measure(small, Path(tmp) / "a.tif")
        b = measure(large, Path(tmp) / "b.tif")
    side = 512 * reps
    result = {
        "benchmark": "peak RSS of map-floods, raster vs 4x larger raster, fresh process each",
        "small_px": f"{side}x{side}", "large_px": f"{2 * side}x{2 * side}",
        "model": (a.pop("model"), b.pop("model"))[0], "small": a, "large": b, "peak_ratio": b["peak_mib"] / a["peak_mib"],
        "growth_above_baseline_mib": {"small": a["peak_mib"] - a["baseline_mib"],
                                      "large": b["peak_mib"] - b["baseline_mib"]},
        "target": "<= 1.2",
    }  # fmt: skip
    return save_result("memory", result)


if __name__ == "__main__":
    print(json.dumps(main(*map(int, sys.argv[1:])), indent=2))
