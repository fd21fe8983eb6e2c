"""Where the kits find real data: one rule for every kit."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # the `contrasat` package folder (the repository root)


def data_root() -> Path:
    """Shared data folder: $CONTRASAT_DATA, else <repo>/../shared/data."""
    env = os.environ.get("CONTRASAT_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
