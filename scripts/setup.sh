#!/usr/bin/env bash
# Set up Contrasat on a fresh Debian 12 machine: QGIS 3.22 from Debian, a venv that sees QGIS's Python
# bindings, pinned dependencies and the `contrasat` command. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(qgis python3-qgis qgis-providers python3-venv xvfb xauth)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "==> installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QGIS's bindings live in Debian's Python; the venv must be built on it and see its site-packages.
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv (system site packages visible for qgis)"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
# The runtime exactly as the QGIS plugin installs it: every package of the hashed lock (regenerate it with
# scripts/lock_requirements.sh), so CI tests the engine users get, byte for byte.
echo "==> installing the runtime from requirements/runtime.lock (hash-checked)"
.venv/bin/python -m pip install -q --require-hashes --only-binary :all: -r requirements/runtime.lock
echo "==> installing Python dependencies (torch CPU wheel pinned)"
.venv/bin/python -m pip install -q -e ".[train,dev,batch]"
# configilm ships real BigEarthNet v2 S1+S2 patches for pre-training; its own dependencies would replace the
# CPU torch with a CUDA build, so it is installed alone (the kit reads its data with lmdb + safetensors).
.venv/bin/python -m pip install -q --no-deps "configilm==0.7.1"
# The extras must not have moved a locked package: the runtime CI tests is the lock's.
.venv/bin/python - <<'PY'
import importlib.metadata as md, re, sys
locked = dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", open("requirements/runtime.lock").read(), re.M))
def installed(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "missing"
moved = [f"{n} {installed(n)} (locked {v})" for n, v in locked.items() if installed(n) != v]
if moved:
    sys.exit("setup: installed packages differ from requirements/runtime.lock: " + ", ".join(moved))
print(f"==> runtime matches requirements/runtime.lock ({len(locked)} packages)")
PY
.venv/bin/python - <<'PY'
import onnxruntime, rasterio, torch
from qgis.core import Qgis
print(f"==> ready: QGIS {Qgis.QGIS_VERSION}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__} "
      f"({', '.join(onnxruntime.get_available_providers())}), rasterio {rasterio.__version__}")
PY
