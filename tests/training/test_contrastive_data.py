"""Paired data: same window in both sensors, offsets from the data, BigEarthNet pairs, published layouts."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import rasterio
from contrasat.models.bands import S2L1C_BANDS, S2L2A_BANDS
from contrasat.training.contrastive.bigearthnet import load_bigearthnet, patch_position
from contrasat.training.contrastive.layouts import sen1floods11_chips, sen1floods11_pairs, ssl4eo_pairs
from contrasat.training.contrastive.pool import specs_from
from contrasat.training.contrastive.scenes import load_terramind
from contrasat.training.contrastive.views import crop, dihedral, multimodal_batch, normalise
from contrastive_helpers import ben_lmdb, floods_root, terramind_root
from rasterio.windows import Window, bounds


def _orientations(a: np.ndarray) -> list[np.ndarray]:
    out = []
    for k in range(4):
        r = np.rot90(a, k, axes=(-2, -1))
        out += [r, r[..., ::-1]]
    return out


def test_positives_are_the_same_place() -> None:
    """Each batch row's S1 and S2 crops are one window of co-registered rasters, in one orientation."""
    root = terramind_root()
    scenes = load_terramind(root)
    specs = specs_from(scenes)
    s1b, s2b, where = multimodal_batch(scenes, 32, 12, specs, np.random.default_rng(5))
    by_name = {s.name: s for s in scenes}
    for i, (name, y0, x0) in enumerate(where):
        scene = by_name[name]
        with (
            rasterio.open(root / "S1RTC" / f"{name}.tif") as a,
            rasterio.open(root / "S2L1C" / f"{name}.tif") as b,
        ):
            win = Window(x0, y0, 32, 32)
            assert a.crs == b.crs
            assert np.allclose(bounds(win, a.transform), bounds(win, b.transform))  # same ground
        s1_views = _orientations(normalise(crop(scene.s1, y0, x0, 32), specs["s1"]))
        s2_views = _orientations(normalise(crop(scene.s2, y0, x0, 32), specs["s2"]))
        hits = [k for k in range(8) if np.allclose(s1_views[k], s1b[i]) and np.allclose(s2_views[k], s2b[i])]
        assert hits, f"row {i}: S1 and S2 are not the same window in the same orientation"


def test_dihedral_moves_all_arrays_together() -> None:
    a = np.arange(2 * 6 * 6).reshape(2, 6, 6)
    label = a[0].copy()
    for seed in range(8):
        ra, rl = dihedral([a, label], np.random.default_rng(seed))
        assert np.array_equal(ra[0], rl)


def test_s2_offset_is_read_from_the_data(tmp_path: Path) -> None:
    """TerraMind L1C carries +1000 except a pre-2022 site; Sen1Floods11 S2Hand does not."""
    scenes = {s.name: s for s in load_terramind(terramind_root())}
    assert scenes["433D_629L_3_1"].s2_offset == 1000.0
    assert scenes["38D_378R_2_3"].s2_offset == 0.0  # B10 near 50: no offset despite the folder's label
    b10 = S2L1C_BANDS.index("B10")
    for s in scenes.values():
        assert np.nanquantile(s.s2[b10], 0.5) < 500  # cirrus band is dark once the offset is removed
    (spain,) = sen1floods11_pairs(_sen1floods11_tree(floods_root(), tmp_path))
    assert spain.s2_offset == 0.0


def _sen1floods11_tree(src: Path, dst: Path) -> Path:
    """The real chips arranged in the published Sen1Floods11 v1.1 layout, with split csvs."""
    hand = dst / "v1.1/data/flood_events/HandLabeled"
    for kind in ("S1Hand", "S2Hand", "LabelHand"):
        (hand / kind).mkdir(parents=True, exist_ok=True)
        for f in (src / kind).glob("*.tif"):
            (hand / kind / f.name).symlink_to(f)
    splits = dst / "v1.1/splits/flood_handlabeled"
    splits.mkdir(parents=True, exist_ok=True)
    names = sorted(f.name.removesuffix("_S1Hand.tif") for f in (src / "S1Hand").glob("*_S1Hand.tif"))
    for split, chosen in (("train", names[:-1]), ("test", names[-1:])):
        with (splits / f"flood_{split}_data.csv").open("w", newline="") as f:
            csv.writer(f).writerows([[f"{n}_S1Hand.tif", f"{n}_LabelHand.tif"] for n in chosen])
    return dst


def test_sen1floods11_published_layout(tmp_path: Path) -> None:
    src = floods_root()
    tree = _sen1floods11_tree(src, tmp_path)
    chips = sen1floods11_chips(tree)
    assert len(chips) == len(list(src.glob("S1Hand/*_S1Hand.tif")))
    assert [c["name"] for c in chips if c["s2"] is not None] == ["Spain_7370579"]
    test_split = sen1floods11_chips(tree, "test")
    assert len(test_split) == 1 and test_split[0]["name"] not in [
        c["name"] for c in sen1floods11_chips(tree, "train")
    ]
    (pair,) = sen1floods11_pairs(tree)
    assert pair.s1.shape == (2, 256, 256) and pair.s2.shape == (13, 256, 256)  # fixture windows
    assert set(np.unique(pair.label)) <= {-1, 0, 1}


def test_ssl4eo_published_layout(tmp_path: Path) -> None:
    """A TerraMind site split into SSL4EO-S12's per-band files (20/60 m bands at native size) reads back."""
    root = terramind_root()
    site = "433D_629L_3_1"
    s1_dir = tmp_path / "s1/0000000/S1A_IW_GRDH_20220601"
    s2_dir = tmp_path / "s2c/0000000/20220601T000000_20220601T000000_T18ABC"
    s1_dir.mkdir(parents=True)
    s2_dir.mkdir(parents=True)
    with rasterio.open(root / "S1RTC" / f"{site}.tif") as src:
        s1 = src.read()
        profile = src.profile | {"count": 1}
    for i, pol in enumerate(("VV", "VH")):
        with rasterio.open(s1_dir / f"{pol}.tif", "w", **profile) as dst:
            dst.write(s1[i], 1)
    coarse = {"B01": 4, "B09": 4, "B10": 4, "B05": 2, "B06": 2, "B07": 2, "B8A": 2, "B11": 2, "B12": 2}
    with rasterio.open(root / "S2L1C" / f"{site}.tif") as src:
        s2 = src.read()
        p2 = src.profile | {"count": 1}
    for i, band in enumerate(S2L1C_BANDS):
        f = coarse.get(band, 1)
        data = s2[i, ::f, ::f]
        name = f"B{int(band[1:])}.tif" if band[1:].isdigit() else f"{band}.tif"
        with rasterio.open(
            s2_dir / name, "w", **(p2 | {"width": data.shape[1], "height": data.shape[0]})
        ) as dst:
            dst.write(data, 1)
    (scene,) = ssl4eo_pairs(tmp_path, "s2c", size=112)
    (ref,) = [s for s in load_terramind(root) if s.name == site]
    assert scene.s2_offset == 1000.0
    assert np.allclose(scene.s1, ref.s1, equal_nan=True)
    b02 = S2L1C_BANDS.index("B02")
    assert np.allclose(scene.s2[b02], ref.s2[b02])  # 10 m band: exact
    assert np.nanmean(np.abs(scene.s2 - ref.s2)) < 0.1 * np.nanmean(ref.s2)  # resampled bands: close
    shutil.rmtree(tmp_path / "s2c")
    assert ssl4eo_pairs(tmp_path) == []


def test_bigearthnet_pairs_from_lmdb() -> None:
    scenes = load_bigearthnet(ben_lmdb())
    assert len(scenes) == 24
    for s in scenes:
        assert s.s1.shape == (2, 120, 120) and s.s2.shape == (13, 120, 120)
        assert np.isnan(s.s2[S2L1C_BANDS.index("B10")]).all()  # L2A has no B10
        assert np.isfinite(s.s2[[S2L1C_BANDS.index(b) for b in S2L2A_BANDS]]).mean() > 0.9
        assert np.nanmedian(s.s1[1]) < np.nanmedian(s.s1[0])  # VH below VV: the bands are not swapped
    assert patch_position("S2A_MSIL2A_20171101T094131_N9999_R036_T35VNJ_00_00") == patch_position(
        "S1B_IW_GRDH_1SDV_20171101T154016_35VNJ_0_0"
    )
