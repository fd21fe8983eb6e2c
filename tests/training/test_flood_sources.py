"""ETCI 2021 / OMBRIA readers and the 8-bit -> dB calibration, on the real files in the shared data."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.training.common.flood_data import etci, ombria
from contrasat.training.common.flood_data import regions as sources
from contrasat.training.flood import calibration
from PIL import Image

ROOT = sources.data_root()  # the shared data (read at import, before the fixture-data override)


@pytest.fixture(scope="module")
def etci_root():
    if not etci.list_tiles(ROOT, etci.SCENES[1]):
        pytest.skip(f"ETCI 2021 tiles not found under {ROOT / 'etci2021'} (set CONTRASAT_DATA)")
    return ROOT


@pytest.fixture(scope="module")
def ombria_root():
    if not ombria.list_places(ROOT, "S1test"):
        pytest.skip(f"OMBRIA not found under {ROOT / 'ombria'} (set CONTRASAT_DATA)")
    return ROOT


def test_etci_scenes_have_their_tiles(etci_root):
    assert [len(etci.list_tiles(etci_root, s)) for s in etci.SCENES] == [198, 356]


def test_etci_tile_matches_the_pngs_and_merges_flood_and_permanent_water(etci_root):
    scene = etci.SCENES[1]
    folder = etci_root / "etci2021" / scene
    names = etci.list_tiles(etci_root, scene)
    # a tile with permanent water that is not flood-labelled: it must still be water
    name = next(n for n in names if (np.asarray(Image.open(folder / "water_body_label" / f"{n}.png")) > 0).any()
                and not (np.asarray(Image.open(folder / "flood_label" / f"{n}.png")) > 0).all())  # fmt: skip
    tile = etci.load_tile(etci_root, scene, name)
    vv = np.asarray(Image.open(folder / "vv" / f"{name}_vv.png"))
    assert tile.dn.shape == (2, 256, 256) and tile.dn.dtype == np.uint8
    np.testing.assert_array_equal(tile.dn[0], vv[..., 0] if vv.ndim == 3 else vv)
    permanent = np.asarray(Image.open(folder / "water_body_label" / f"{name}.png")) > 0
    ok = tile.label >= 0
    assert np.all(tile.label[permanent & ok] == 1)
    assert set(np.unique(tile.label)) <= {-1, 0, 1}


def test_ombria_groups_and_places(ombria_root):
    counts = {g: len(ombria.list_places(ombria_root, g)) for g in ombria.GROUPS}
    assert counts == {"S1train": 624, "S1test": 70, "ALBANIA": 22, "FRANCE": 88, "GUYANA": 30, "TIMOR": 10}
    place = ombria.load_group(ombria_root, "TIMOR")[0]
    assert place.after.shape == place.before.shape == place.flood.shape == (256, 256)
    assert place.flood.any() and not place.flood.all()
    with pytest.raises(ValueError, match="unknown OMBRIA group"):
        ombria.load_group(ombria_root, "MARS")


def test_fit_map_recovers_a_linear_map_and_ignores_clipped_deciles():
    dn = {"water": [0.0, 0.0, 20.0, 40.0, 60.0], "dry": [150.0, 170.0, 190.0, 255.0, 255.0]}
    ref = {k: [0.1 * v - 25 if 0 < v < 255 else 99.0 for v in vals] for k, vals in dn.items()}
    m = calibration.fit_map(dn, ref)
    assert m["gain"] == pytest.approx(0.1) and m["offset"] == pytest.approx(-25)
    assert m["points"] == 6 and m["rms_db"] < 1e-9


def test_calibrated_etci_separates_water_from_dry_like_sen1floods11(etci_root):
    maps = sources.calibration()["etci"]
    assert 0.05 < maps["VH"]["gain"] < 0.15  # dB per grey level: 8 bits span ~13..38 dB
    chips = sources.load_region("ETCI_northal", ROOT, step=8)
    water = np.concatenate([c.s1[1][c.label == 1] for c in chips])
    dry = np.concatenate([c.s1[1][c.label == 0] for c in chips])
    assert np.median(dry) - np.median(water) > 8  # open water is far darker in VH, as in Sen1Floods11
    assert -20 < np.median(dry) < -12  # Sen1Floods11 dry VH median: -16.2 dB
    assert all(np.isnan(c.s1[:, c.label == -1]).all() for c in chips)


def test_ombria_enters_as_its_one_band_with_the_other_missing(ombria_root):
    band = next(iter(sources.calibration()["ombria"]))
    assert band == "VV"  # the decile fit against Sen1Floods11 VV beats the fit against VH
    chips = sources.load_region("OMBRIA_TIMOR", ROOT)
    filled = sources.BAND_INDEX[band]
    for chip in chips:
        assert np.isfinite(chip.s1[filled]).all() and np.isnan(chip.s1[1 - filled]).all()
        assert sources.present_bands(chip) == [filled]
    # pre-event dark pixels not labelled flood are left out (permanent water is not in the EMS masks)
    place = ombria.load_group(ombria_root, "TIMOR")[0]
    m = sources.calibration()["ombria"][band]
    dark_before = (place.before * m["gain"] + m["offset"] < sources.dark_db(band)) & ~place.flood
    assert np.all(chips[0].label[dark_before] == -1)


def test_registry_lists_every_region_once(etci_root, ombria_root):
    names = [r.name for r in sources.regions(ROOT)]
    assert len(names) == len(set(names))
    assert {"ETCI_nebraska", "ETCI_northal", "OMBRIA_S1train", "OMBRIA_FRANCE", "Spain_7370579"} <= set(names)
    assert {r.source for r in sources.regions(ROOT)} == {"sen1floods11", "etci2021", "ombria"}
