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


SPAIN = "Spain_7370579"  # the fine-tune tests' chip: a 512x512 real window, about 30 % water


@pytest.fixture(scope="module")
def chip(floods_root):
    """(S1 path, hand labels, transform, CRS) of the Spain chip the fine-tune tests draw polygons on."""
    import rasterio

    s1 = floods_root / "S1Hand" / f"{SPAIN}_S1Hand.tif"
    with rasterio.open(floods_root / "LabelHand" / f"{SPAIN}_LabelHand.tif") as ds:
        return s1, ds.read(1), ds.transform, ds.crs


@pytest.fixture(scope="module")
def polygons(chip):
    """Eight polygons (4 water, 4 dry) drawn from the chip's hand labels, as an analyst would draw them."""
    from contrasat.training.finetune.label_draw import draw_polygons

    _, label, transform, _ = chip
    found = draw_polygons(label, transform, 8, np.random.default_rng(3))
    assert [c for _, c in found] == [1, 0] * 4
    return found
