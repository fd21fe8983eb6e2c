"""Real paired scenes for the contrastive tests, skipped with the missing resource named."""

from __future__ import annotations

from pathlib import Path

import pytest
from contrasat.training.contrastive.bigearthnet import configilm_mock_lmdb
from contrasat.training.flood.data import data_root


def terramind_root() -> Path:
    root = data_root() / "terramind"
    if not (root / "S1RTC").is_dir():
        pytest.skip(f"TerraMind samples not found at {root} (set CONTRASAT_DATA)")
    return root


def floods_root() -> Path:
    root = data_root() / "sen1floods11"
    if not (root / "S2Hand").is_dir():
        pytest.skip(f"Sen1Floods11 S2Hand not found at {root} (set CONTRASAT_DATA)")
    return root


def ben_lmdb() -> Path:
    path = configilm_mock_lmdb()
    if path is None:
        pytest.skip(
            "BigEarthNet v2 LMDB of configilm==0.7.1 not installed (pip install --no-deps configilm==0.7.1)"
        )
    return path
