"""Tiles holding no valid pixel never reach the ONNX Runtime session, and the map is unchanged by skipping."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from contrasat.models import inference
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from runtime_helpers import expected_classes


class CountingModel:
    """Wraps a LoadedModel: counts the tiles handed to the session and remembers whether any was empty."""

    def __init__(self, loaded):
        self._loaded = loaded
        self.card, self.provider, self.path = loaded.card, loaded.provider, loaded.path
        self.tiles = 0
        self.calls = 0
        self.saw_empty_tile = False

    def run(self, feeds):
        x = next(iter(feeds.values()))
        self.calls += 1
        self.tiles += x.shape[0]
        # a prepared nodata pixel is exactly 0 in every band; a tile of nodata is all zeros
        self.saw_empty_tile |= bool((np.abs(x).reshape(x.shape[0], -1).max(axis=1) == 0).any())
        return self._loaded.run(feeds)


@pytest.fixture
def bordered(tmp_path, s1_sample):
    """The real chip with a slanted nodata border over its left part, like a GRD scene's edge."""
    with rasterio.open(s1_sample) as src:
        data, profile, descriptions = src.read(), src.profile, src.descriptions
    rows, cols = np.mgrid[: data.shape[1], : data.shape[2]]
    data[:, cols < 200 + rows // 4] = np.nan
    path = tmp_path / "bordered.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    return path


@pytest.mark.parametrize("tile,overlap,batch", [(64, 0, 4), (64, 16, 3), (128, 32, 2)])
def test_nodata_tiles_are_never_inferred(
    tmp_path, monkeypatch, threshold_model, bordered, tile, overlap, batch
):
    from contrasat.models.session import load_model

    counting = CountingModel(load_model(threshold_model, provider="cpu"))
    monkeypatch.setattr("contrasat.models.tiled_job.load_model", lambda *a, **k: counting)
    out = tmp_path / "flood.tif"
    map_floods(bordered, out, model=threshold_model,
               config=Execution(tile=tile, overlap=overlap, batch=batch, provider="cpu"))  # fmt: skip

    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected_classes(bordered))
    with rasterio.open(bordered) as src:
        valid = np.isfinite(src.read()).all(axis=0)
    starts = inference.tile_starts(512, tile, overlap)
    with_data = sum(valid[r : r + tile, c : c + tile].any() for r in starts for c in starts)
    assert with_data < len(starts) ** 2  # the border really holds whole tiles of nodata
    assert counting.tiles == with_data
    assert not counting.saw_empty_tile


def test_skipping_keeps_dates_apart_with_a_pre_event_reference(tmp_path, monkeypatch, threshold_model, bordered,
                                                              s1_sample):  # fmt: skip
    """Two input sets per tile (post, pre): the kept tiles of both dates still line up after skipping."""
    from contrasat.models.session import load_model

    counting = CountingModel(load_model(threshold_model, provider="cpu"))
    monkeypatch.setattr("contrasat.models.tiled_job.load_model", lambda *a, **k: counting)
    out = tmp_path / "change.tif"
    # post-event: the bordered chip; pre-event: the full chip flipped, so the dates differ pixel by pixel
    with rasterio.open(s1_sample) as src:
        pre_data, profile, descriptions = src.read()[:, ::-1], src.profile, src.descriptions
    pre = tmp_path / "pre.tif"
    with rasterio.open(pre, "w", **profile) as dst:
        dst.write(pre_data)
        dst.descriptions = descriptions
    map_floods(bordered, out, pre_event=pre, model=threshold_model,
               config=Execution(tile=64, overlap=8, batch=3, provider="cpu"))  # fmt: skip
    post_c, pre_c = expected_classes(bordered), expected_classes(pre)
    want = np.where(post_c == 1, np.where(pre_c == 1, 2, 1), 0).astype(np.uint8)
    want[(post_c == 255) | (pre_c == 255)] = 255
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), want)
    assert not counting.saw_empty_tile
