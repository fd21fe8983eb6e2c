"""Shared fixtures: the real Sen1Floods11 chips (skipped with the missing path named when absent)."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.training.flood.data import Chip, floods_dir, list_chips, load_chip


@pytest.fixture(scope="session")
def floods_root():
    folder = floods_dir()
    if not (folder / "S1Hand").is_dir() or not list_chips():
        pytest.skip(f"Sen1Floods11 chips not found at {folder} (set CONTRASAT_DATA)")
    return folder


@pytest.fixture(scope="session")
def india(floods_root) -> Chip:
    """A chip with about half water: both classes are well represented."""
    return load_chip("India_900498")


def crop(chip: Chip, y: int, x: int, size: int) -> Chip:
    return Chip(
        chip.name,
        chip.s1[:, y : y + size, x : x + size].copy(),
        chip.label[y : y + size, x : x + size].copy(),
    )


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
