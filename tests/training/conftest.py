"""Shared fixtures. Training tests read the small real rasters in tests/fixtures/data (windows of the shared
data, credited in its README), so they run the same in a fresh clone without ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contrasat.training.common.flood_data.sen1floods11 import Chip, floods_dir, load_chip

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture(scope="module", autouse=True)
def fixture_data_root():
    """Every kit resolves its data through $CONTRASAT_DATA: point it at the shipped fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTRASAT_DATA", str(FIXTURE_DATA))
        yield FIXTURE_DATA


@pytest.fixture(scope="module")
def floods_root(fixture_data_root) -> Path:
    return floods_dir(fixture_data_root)


@pytest.fixture(scope="module")
def india(floods_root) -> Chip:
    """A chip window with about half water: both classes are well represented."""
    return load_chip("India_900498", floods_root.parent)


def crop(chip: Chip, y: int, x: int, size: int) -> Chip:
    return Chip(
        chip.name,
        chip.s1[:, y : y + size, x : x + size].copy(),
        chip.label[y : y + size, x : x + size].copy(),
    )


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
