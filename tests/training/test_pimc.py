"""PIMC training side: PASTIS reader, block split, a few steps lower the losses, ONNX export parity + runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from contrasat.models.card import read_card
from contrasat.models.indices import ndvi, to_reflectance
from contrasat.models.series import SERIES_KEY, classify_series
from contrasat.training.pimc.data import (
    PASTIS_BANDS,
    block_split,
    build_pixels,
    load_slovenia,
    read_pastis,
)
from contrasat.training.pimc.export import export_classifier, lulc_card
from contrasat.training.pimc.fixture import write_stack
from contrasat.training.pimc.networks import PIMC, Classifier, RPEncoder
from contrasat.training.pimc.train import Norm, gather_patches, inputs

torch.set_num_threads(1)  # shared CPU: more threads only add contention at this size
L1C_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


@pytest.fixture(scope="module")
def patch():
    return load_slovenia()


@pytest.fixture(scope="module")
def pixels(patch):
    return build_pixels(patch)


def test_pastis_reader_on_real_scenes(patch, tmp_path):
    """The five real L1C scenes re-arranged as one PASTIS patch (T × 10 × H × W) read back as NDVI."""
    cube = patch.scenes[:, [L1C_ORDER.index(b) for b in PASTIS_BANDS]].astype(np.int16)
    (tmp_path / "DATA_S2").mkdir()
    (tmp_path / "ANNOTATIONS").mkdir()
    np.save(tmp_path / "DATA_S2" / "S2_10001.npy", cube)
    np.save(tmp_path / "ANNOTATIONS" / "TARGET_10001.npy", np.stack([patch.labels] * 3))
    dates = {str(i): int(d.strftime("%Y%m%d")) for i, d in enumerate(patch.dates[:5])}
    meta = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None,
            "properties": {"ID_PATCH": 10001, "dates-S2": json.dumps(dates)}}]}  # fmt: skip
    (tmp_path / "metadata.geojson").write_text(json.dumps(meta))
    got = read_pastis(tmp_path, 10001, indices=("NDVI", "EVI"))
    assert got.series.shape == (2, 5, 101, 100) and got.dates == patch.dates[:5]
    red = to_reflectance(patch.scenes[:, L1C_ORDER.index("B04")])
    nir = to_reflectance(patch.scenes[:, L1C_ORDER.index("B08")])
    np.testing.assert_allclose(got.series[0], ndvi(red, nir), atol=1e-6)
    assert np.array_equal(got.labels, patch.labels)


def test_block_split_is_spatially_disjoint(pixels):
    split = block_split(101, 100)
    assert np.bincount(split.ravel()).tolist() == np.bincount(pixels.split).tolist()
    assert (
        split[0:25, 50:75].min() == 2 and split[100, 99] == 0
    )  # test block (0, 2); remainder row joins block 3
    for s in (1, 2):  # each held-out set holds every class
        assert set(pixels.target[(pixels.split == s) & (pixels.target >= 0)]) == {0, 1, 2, 3}


def test_few_steps_lower_the_losses(pixels):
    torch.manual_seed(0)
    norm = Norm.fit(pixels, np.flatnonzero(pixels.split == 0))
    rows = torch.from_numpy(np.flatnonzero((pixels.split == 0) & (pixels.target >= 0))[::60][:64])
    rp = inputs(pixels, "rp", norm)[rows]
    patches = gather_patches(
        torch.from_numpy(pixels.scenes),
        torch.from_numpy(pixels.yx)[rows],
        torch.zeros(len(rows), dtype=torch.long),
    )
    model = PIMC()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss = model.loss(rp, patches)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.1
    clf = Classifier(model.rp, 4)
    y = torch.from_numpy(pixels.target)[rows]
    opt = torch.optim.Adam(clf.parameters(), lr=2e-3)
    first = last = None
    for _ in range(12):
        loss = torch.nn.functional.cross_entropy(clf(rp), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
        last = float(loss.detach())
    assert last < first


def test_export_parity_card_and_runtime(patch, tmp_path):
    torch.manual_seed(0)
    model = Classifier(RPEncoder(1), 4, softmax=True)
    model.eval()
    path = tmp_path / "pimc.onnx"
    diff = export_classifier(model, lulc_card({"rp_mean": 0.2, "rp_std": 0.16}, None, ["NDVI"]), path)
    assert diff < 1e-4
    card = read_card(path)
    assert card.task == "pixel_timeseries" and card.inputs[0].sensor == "S2_TS"
    assert card.training[SERIES_KEY]["n_steps"] == 32 and card.training["original_codes"]["0"] == 2
    stack = write_stack(tmp_path / "stack.tif")  # the fixture writer, from the real patch
    result = classify_series(stack, tmp_path / "lc.tif", model=path)
    with rasterio.open(result.output) as src:
        assert src.shape == (101, 100) and set(np.unique(src.read(1))) <= {0, 1, 2, 3}
