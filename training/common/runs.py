"""Where a training command writes when no --out is given: a fresh run folder under the current directory."""

from __future__ import annotations

import time
from pathlib import Path

RUNS = Path("runs")  # relative: runs land where the command is run, never inside the installed package


def default_run_dir(kit: str, command: str) -> Path:
    """runs/<kit>/<command>-<UTC timestamp>, e.g. runs/flood/loco-20261123T021500 (created by the caller)."""
    return RUNS / kit / f"{command}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
