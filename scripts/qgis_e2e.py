#!/usr/bin/env python3
"""The plugin as users run it: the real `qgis` binary, the plugin zip, its own engine environment.

    python scripts/qgis_e2e.py [--work DIR] [--wheelhouse DIR]

1. builds the zip with scripts/package_plugin.py and unpacks it into a fresh profile (as Plugins › Install
   from ZIP does: `<profile>/python/plugins/contrasat`, enabled in the profile's QGIS3.ini);
2. prepares a wheel folder with `pip download --require-hashes` of requirements/runtime.lock and
   train-engine.lock (the engine, then training support; kept in ~/.cache/contrasat-wheelhouse between runs,
   so reruns are fast). torch's CPU build is on no package registry: pip takes it from its configured
   find-links (this machine's pip configuration points at a folder holding it) or from TORCH_CPU_WHEELS;
3. starts `qgis` under `xvfb-run` with a clean environment (no PYTHONPATH, no VIRTUAL_ENV: QGIS's own
   /usr/bin/python3 world, no pip configuration: the wheel folder is the only source) and
   scripts/qgis_e2e_in_qgis.py as its start-up code, which installs the engine through the plugin's
   dependency dialog, runs every job, and adds training support from the Fine-tune tab (see that file);
4. returns the JSON report the script wrote. tests/plugin/test_qgis_e2e.py asserts on it and on the
   rasters; scripts/screenshot_qgis.py copies its screenshots to docs/img.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "resources" / "sample"
IN_QGIS = Path(__file__).resolve().parent / "qgis_e2e_in_qgis.py"
WHEELHOUSE = Path(os.environ.get("CONTRASAT_WHEELHOUSE", Path.home() / ".cache" / "contrasat-wheelhouse"))
WINDOW = (1600, 1000)
QGIS_TIMEOUT_S = 720
PROFILE = "e2e"


# the engine, then training support added to it from the Fine-tune tab
LOCKS = ("runtime.lock", "train-engine.lock")


def prepare_wheelhouse(folder: Path = WHEELHOUSE, python: str = sys.executable) -> Path:
    """`pip download` of the locked engine and of its training support (every package, hash-checked) into
    `folder` (present files are not fetched again).

    The wheels must suit the interpreter QGIS runs on; `python` must be that version (the project venv is
    built on it). torch's CPU build comes from pip's configured find-links or TORCH_CPU_WHEELS (a folder).
    """
    folder.mkdir(parents=True, exist_ok=True)
    torch_wheels = os.environ.get("TORCH_CPU_WHEELS")
    for lock in LOCKS:
        command = [python, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
        command += ["--require-hashes", "--only-binary", ":all:"]
        command += ["-r", str(REPO / "requirements" / lock), "-d", str(folder)]
        command += ["--find-links", torch_wheels] if torch_wheels else []
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"pip download -r {lock} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
    return folder


def class_squares(masks: dict, transform, per_class: int | dict, half: int = 5) -> list[dict]:
    """Squares an analyst would draw: `per_class` squares (a number, or one per class name) of each class in
    turn, 2*half+1 pixels lying wholly inside its mask (with a 1 px margin), apart from each other. Corners
    in the raster's CRS, on pixel edges."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(0)
    taken = np.zeros(next(iter(masks.values())).shape, bool)
    side = 2 * half + 1
    squares = []
    for name, mask in masks.items():
        inside = ndimage.binary_erosion(mask, np.ones((side + 2, side + 2), bool))
        for _ in range(per_class[name] if isinstance(per_class, dict) else per_class):
            cells = np.argwhere(inside & ~taken)
            if not len(cells):
                raise RuntimeError(f"no room for another {name} square")
            r, c = cells[rng.integers(len(cells))]
            taken[max(r - 3 * side, 0) : r + 3 * side, max(c - 3 * side, 0) : c + 3 * side] = True
            corners = [(c - half, r - half), (c + half + 1, r - half), (c + half + 1, r + half + 1),
                       (c - half, r + half + 1)]  # fmt: skip
            squares.append({"class": name, "corners": [list(transform * xy) for xy in corners]})
    return squares


def label_squares(path: Path, per_class: int = 4, half: int = 5) -> list[dict]:
    """Water, then dry squares for a fine-tune, inside their class of the hand labels (1 water, 0 dry)."""
    import rasterio

    with rasterio.open(path) as ds:
        label, transform = ds.read(1), ds.transform
    return class_squares({"water": label == 1, "dry": label == 0}, transform, per_class, half)


# Three classes anyone sees in the S2 sample: the hand-labelled water, and dry land split by NDVI into green
# vegetation and bare soil or built-up land (thresholds well apart, so every square is plainly one class).
LAND_COVER_CLASSES = {"water": "#1f78b4", "vegetation": "#33a02c", "bare": "#b15928"}


def land_cover_squares(per_class: int | dict = 3, half: int = 5) -> list[dict]:
    """Squares of the three LAND_COVER_CLASSES in the S2 sample, corners in its CRS."""
    import rasterio

    with rasterio.open(SAMPLE / "Spain_7370579_S2Hand.tif") as ds:
        red, nir = (ds.read(b).astype("float64") for b in (4, 8))
        transform = ds.transform
    with rasterio.open(SAMPLE / "Spain_7370579_LabelHand.tif") as ds:
        label = ds.read(1)
    ndvi = (nir - red) / (nir + red + 1e-6)
    masks = {
        "water": label == 1,
        "vegetation": (label == 0) & (ndvi > 0.4),
        "bare": (label == 0) & (ndvi < 0.15),
    }
    return class_squares(masks, transform, per_class, half)


def install_zip(work: Path) -> Path:
    """Build the zip and unpack it into a fresh profile with the plugin enabled; returns --profiles-path."""
    zip_path = work / "dist" / "contrasat.zip"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package_plugin.py"), "--out", str(zip_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    profiles = work / "qgis-profiles"
    profile = profiles / "profiles" / PROFILE
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    (profile / "QGIS").mkdir()
    # What the plugin manager writes when a plugin is installed and enabled, plus no first-start noise.
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\ncontrasat=true\n\n"
        "[qgis]\ncheckVersion=false\nshowTips=false\nshowTips322=false\n\n"
        "[migration]\nsettings=true\nfileVersion=2\n",
        encoding="utf-8",
    )
    return profiles


def clean_environment(work: Path) -> dict[str, str]:
    """What a desktop session gives QGIS: no Python or GDAL overrides from this venv."""
    keep = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["XDG_RUNTIME_DIR"] = str(work / "xdg-runtime")
    (work / "xdg-runtime").mkdir(mode=0o700, exist_ok=True)
    env.setdefault("LANG", "C.UTF-8")
    # no pip configuration file: this machine's adds folders and indexes that a user's pip does not have,
    # and the installs must find every wheel in the chosen wheel folder
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def run_e2e(work: Path, wheelhouse: Path | None = None, timeout: float = QGIS_TIMEOUT_S) -> dict:
    """Run the whole scenario in `work`; the report dict (with 'returncode', 'stdout_tail', 'elapsed_s')."""
    import time

    for tool in ("xvfb-run", "qgis"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"needs {tool} on PATH (scripts/setup.sh installs it)")
    wheelhouse = wheelhouse or prepare_wheelhouse()
    profiles = install_zip(work)
    out, shots = work / "maps", work / "screenshots"
    out.mkdir()
    shots.mkdir()
    config = {
        "s1": str(SAMPLE / "Spain_7370579_S1Hand.tif"),
        "s2": str(SAMPLE / "Spain_7370579_S2Hand.tif"),
        "series": str(REPO / "resources" / "series" / "slovenia_ndvi_stack.tif"),
        "wheelhouse": str(wheelhouse),
        "out_dir": str(out),
        "screenshot_dir": str(shots),
        "report": str(work / "report.json"),
        "window": list(WINDOW),
        "install_timeout": 300,
        "training_install_timeout": 400,
        # the dock's Fine-tune: squares drawn with the mouse over the sample's hand labels, run once on the
        # managed engine (runtime only: refused with a message), then again once "Add training support…"
        # has installed torch into it from the wheel folder
        "label_squares": label_squares(SAMPLE / "Spain_7370579_LabelHand.tif"),
        "label_crs": "EPSG:4326",
        # the Land cover tab's My classes: three classes typed in, three squares each drawn with the mouse
        "land_cover_classes": LAND_COVER_CLASSES,
        "land_cover_squares": land_cover_squares(3),
        "finetune_steps": 20,
    }
    config_path = work / "e2e.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    env = clean_environment(work)
    env["CONTRASAT_E2E_CONFIG"] = str(config_path)
    command = [
        "xvfb-run", "-a", "-s", f"-screen 0 {WINDOW[0]}x{WINDOW[1]}x24",
        "qgis", "--profiles-path", str(profiles), "--profile", PROFILE, "--nologo", "--noversioncheck",
        "--code", str(IN_QGIS),
    ]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
    report_path = Path(config["report"])
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    report.update(
        returncode=done.returncode,
        stdout_tail=(done.stdout[-3000:] + "\n" + done.stderr[-3000:]),
        elapsed_s=round(time.monotonic() - start, 1),
        profile=str(profiles / "profiles" / PROFILE),
        maps=str(out),
        screenshots=str(shots),
        wheelhouse=str(wheelhouse),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep everything here (default: a temporary folder)")
    parser.add_argument(
        "--wheelhouse", type=Path, help=f"wheel folder (default: {WHEELHOUSE}, filled by pip)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="contrasat_e2e_") as tmp:
        work = args.work.absolute() if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run_e2e(work, args.wheelhouse)
        print(json.dumps({k: report.get(k) for k in ("returncode", "elapsed_s", "steps", "error")}, indent=1))
    return 0 if report.get("returncode") == 0 and "error" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
