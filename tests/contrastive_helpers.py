"""Real paired scenes for the contrastive tests: the shipped fixtures (tests/fixtures/data), and the
BigEarthNet v2 sample of configilm==0.7.1 (installed by scripts/setup.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest
from contrasat.training.common.flood_data.unlabelled import configilm_mock_lmdb

FIXTURE_DATA = Path(__file__).resolve().parent / "fixtures" / "data"


def terramind_root() -> Path:
    return FIXTURE_DATA / "terramind"


def floods_root() -> Path:
    return FIXTURE_DATA / "sen1floods11"


def ben_lmdb() -> Path:
    path = configilm_mock_lmdb()
    if path is None:
        # scripts/setup.sh installs it: its absence is a broken set-up, never a reason to skip
        pytest.fail(
            "BigEarthNet v2 LMDB of configilm==0.7.1 not installed (pip install --no-deps configilm==0.7.1)"
        )
    return path
