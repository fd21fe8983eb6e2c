#!/usr/bin/env python3
"""Screenshots of the plugin in the real QGIS, for the README and docs/qgis.md.

    python scripts/screenshot_qgis.py [--out docs/img]

Runs the end-to-end scenario of scripts/qgis_e2e.py (fresh profile, plugin from its zip, engine installed by
the plugin, every job) and copies the two screenshots it takes: the dock after Map floods
(`qgis_map_floods.png`), after a land-cover run in a rectangle drawn on the map
(`qgis_land_cover_aoi.png`) and after a fine-tune on water/dry squares drawn on the map, with the base and
fine-tuned maps (`qgis_finetune.png`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_e2e import REPO, run_e2e  # noqa: E402

SHOTS = ("qgis_map_floods.png", "qgis_land_cover_aoi.png", "qgis_finetune.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder for the PNG files")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="contrasat_shot_") as tmp:
        report = run_e2e(Path(tmp))
        if report.get("returncode") != 0 or report.get("error"):
            print(report.get("error") or report.get("stdout_tail"), file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for name in SHOTS:
            target = args.out / name
            shutil.copyfile(Path(report["screenshots"]) / name, target)
            print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
