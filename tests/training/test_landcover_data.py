"""Land-cover sites: the runtime's S2 offset rule, nodata handling and the Slovenia class mapping."""

from __future__ import annotations

import numpy as np
import rasterio
from contrasat.training.landcover.data import (
    SLOVENIA_TO_TERRAMIND,
    load_sites,
    load_slovenia,
    load_terramind,
    make_site,
)


def test_offset_site_matches_raw_minus_1000(fixture_data_root):
    site = load_terramind("433D_629L_3_1")
    with rasterio.open(fixture_data_root / "terramind" / "S2L1C" / "433D_629L_3_1.tif") as ds:
        raw = ds.read().astype(np.float32)
    assert site.offset == 1000.0  # this site carries the baseline-04.00 offset
    np.testing.assert_array_equal(site.reflectance, np.clip(raw - 1000.0, 0, 15000))


def test_site_without_offset_is_unchanged(fixture_data_root):
    site = load_terramind("38D_378R_2_3")
    with rasterio.open(fixture_data_root / "terramind" / "S2L1C" / "38D_378R_2_3.tif") as ds:
        raw = ds.read().astype(np.float32)
    assert site.offset == 0.0
    np.testing.assert_array_equal(site.reflectance, np.clip(raw, 0, 15000))


def test_nodata_pixels_lose_their_label():
    raw = np.full((13, 4, 4), 1500, dtype=np.int16)
    raw[:, 0, 0] = 0
    site = make_site("t", raw, np.full((4, 4), 2, dtype=np.uint8))
    assert site.label[0, 0] == 0 and (site.label.ravel()[1:] == 2).all()
    assert site.pixels()[0].shape == (15, 13)


def test_slovenia_classes_mapped_and_counted(fixture_data_root):
    with np.load(fixture_data_root / "eolearn" / "slovenia_patch.npz") as z:
        src = z["LULC"][..., 0]
    site = load_slovenia()
    for code in np.unique(src):
        mapped = np.unique(site.label[src == code])
        assert mapped.tolist() == [SLOVENIA_TO_TERRAMIND.get(int(code), 0)]
    assert set(np.unique(site.label)) <= {0, 2, 4, 5, 9}


def test_all_sites_load_in_order():
    names = [s.name for s in load_sites()]
    assert names == ["282D_485L_3_3", "38D_378R_2_3", "433D_629L_3_1", "609U_541L_3_0", "slovenia"]
