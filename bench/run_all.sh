#!/usr/bin/env bash
# Run every benchmark; results land in bench/results/*.json.
set -euo pipefail
cd "$(dirname "$0")"
../.venv/bin/python throughput.py
../.venv/bin/python overhead.py  # the same whole process, stage by stage
../.venv/bin/python memory.py
../.venv/bin/python full_scene.py
../.venv/bin/python polygon_writers.py  # the full scene's map; pyogrio/osgeo only if installed
../.venv/bin/python overlap.py
../.venv/bin/python quantize.py
../.venv/bin/python own_classes.py
../.venv/bin/python report.py
