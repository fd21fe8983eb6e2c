"""OMBRIA S1/S2-RGB pre-training pairs, per-fold pools and the LORO protocol file, on the real shared data."""

from __future__ import annotations

import numpy as np
import pytest
from contrasat.models.bands import S2L1C_BANDS
from contrasat.models.preprocess import prepare
from contrasat.training.common.data_root import REPO_ROOT
from contrasat.training.common.flood_data import ombria
from contrasat.training.common.flood_data import regions as sources
from contrasat.training.common.flood_data.sen1floods11 import floods_dir
from contrasat.training.contrastive.ombria_pairs import RGB_BANDS, load_ombria_pairs
from contrasat.training.contrastive.pool import specs_from
from contrasat.training.contrastive.region_runs import fold_pool, load_protocol
from contrasat.training.contrastive.scenes import load_sen1floods11_pairs
from PIL import Image

ROOT = sources.data_root()  # the shared data (read at import, before the fixture-data override)
CONFIG = REPO_ROOT / "training" / "configs" / "contrastive_loro.toml"


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(CONFIG)


@pytest.fixture(scope="module")
def timor(protocol):
    if not (ROOT / "ombria" / "2021" / "TIMOR" / "Sentinel2").is_dir():
        pytest.skip(f"OMBRIA S2 not found under {ROOT / 'ombria'} (set CONTRASAT_DATA)")
    return load_ombria_pairs(ROOT, protocol.rgb_map, groups=("TIMOR", "ALBANIA"))


def test_protocol_uses_the_flood_plan_and_maps_rgb_only(protocol):
    import tomllib

    plan = tomllib.loads((CONFIG.parent / "flood_loro.toml").read_text(encoding="utf-8"))
    assert protocol.folds == plan["folds"]
    assert protocol.strides == plan["eval_step"]
    assert set(protocol.rgb_map) == set(RGB_BANDS)
    assert protocol.starts == ["multimodal", "simclr", "random"] and protocol.seeds == [0, 1, 2]
    assert "ombria" in protocol.pretrain.sources
    assert isinstance(protocol.finetune.vv_raise_scope, str) and protocol.finetune.crop > 0  # a CropAugment
    # every fold has exactly one pre-training pool, and that pool excludes all of the fold's regions
    assert sorted(k for g in protocol.pool_groups for k in g) == list(range(len(protocol.folds)))
    for k, regions in enumerate(protocol.folds):
        assert set(regions) <= set(protocol.group_held(protocol.group_of(k)))


def test_every_2021_place_pairs_its_s1_with_its_s2(timor):
    expected = len(ombria.list_places(ROOT, "TIMOR")) + len(ombria.list_places(ROOT, "ALBANIA"))
    assert len(timor) == expected == 10 + 22
    assert {s.name.split("_")[0] for s in timor} == {"TIMOR", "ALBANIA"}
    assert all(s.source == "ombria" and s.shape == (256, 256) for s in timor)


def test_s1_is_the_flood_kits_calibrated_vv_and_vh_is_missing(timor):
    chips = {c.name: c for c in sources.load_region("OMBRIA_TIMOR", ROOT)}
    for scene in timor[:10]:
        chip = chips[scene.name]
        assert np.array_equal(scene.s1[0], chip.s1[0])  # same dB values the flood kit trains on
        assert np.isnan(scene.s1[1]).all()
        assert -35 < np.nanmedian(scene.s1[0]) < 0


def test_rgb_fills_b04_b03_b02_through_the_map_and_nothing_else(timor, protocol):
    scene = next(s for s in timor if s.name == "TIMOR_3")
    rgb = np.asarray(Image.open(ROOT / "ombria/2021/TIMOR/Sentinel2/AFTER/imafter_3.png").convert("RGB"))
    for c, band in enumerate(RGB_BANDS):
        gain, offset = protocol.rgb_map[band]
        got = scene.s2[S2L1C_BANDS.index(band)].astype(np.float32)
        ok = ~np.all(rgb == 0, axis=-1)
        want = np.maximum(rgb[..., c].astype(np.float32) * gain + offset, 0)
        assert np.allclose(got[ok], want[ok], rtol=2e-3, atol=1)  # float16 storage
        assert np.isnan(got[~ok]).all()
    others = [i for i, b in enumerate(S2L1C_BANDS) if b not in RGB_BANDS]
    assert np.isnan(scene.s2[others].astype(np.float32)).all()
    # the runtime's prepare() turns every missing band into 0 = that band's normalised mean
    spec = specs_from(timor)["s2"]
    x = prepare(scene.s2, spec)
    assert np.all(x[others] == 0) and np.isfinite(x).all() and np.abs(x[S2L1C_BANDS.index("B04")]).max() > 0.1


def test_fold_pool_drops_every_place_of_the_held_out_regions(timor):
    pairs = load_sen1floods11_pairs(floods_dir(ROOT))
    if not {"India_900498", "Spain_7370579"} <= {p.name for p in pairs}:
        pytest.skip("Sen1Floods11 S2Hand pairs for India_900498 and Spain_7370579 not found")
    pool = pairs + timor
    kept = fold_pool(pool, ["India_900498", "Mekong_333434", "OMBRIA_TIMOR"])
    names = {s.name for s in kept}
    assert "India_900498" not in names and "Spain_7370579" in names
    assert not any(n.startswith("TIMOR_") for n in names)
    assert sum(n.startswith("ALBANIA_") for n in names) == 22
    assert len(kept) == len(pool) - 1 - 10


def test_finetune_starts_from_the_given_encoder(india):
    import dataclasses

    import torch
    from contrasat.training.common.networks.resnet import ResNetEncoder
    from contrasat.training.contrastive.region_runs import LoroFinetune, finetune
    from contrasat.training.flood.region_runs import spec_for

    torch.set_num_threads(1)  # the kits train on one thread; the default oversubscribes a shared CPU
    torch.manual_seed(123)
    init = ResNetEncoder(2, 8).state_dict()
    ft = dataclasses.replace(LoroFinetune(), steps=12, batch=2, crop=16, lr=0.0)  # lr 0: weights stay put
    net = finetune(init, spec_for([india]), {"India": [india]}, ft, width=8, seed=0)
    got = dict(net.encoders["s1"].named_parameters())
    assert all(torch.equal(got[k], init[k]) for k in got)
    assert not net.training
    rand = finetune(None, spec_for([india]), {"India": [india]}, ft, width=8, seed=0)
    assert not torch.equal(
        dict(rand.encoders["s1"].named_parameters())["stem.0.weight"], init["stem.0.weight"]
    )
