"""Tiled inference with a model that has a real receptive field (a 9×9 box filter): tile interiors equal a
whole-image run, and seams are the documented weighted blend of the overlapping tiles' own predictions.

A 1×1 model gives the same answer in every tile, so any positive blend weights would pass; a box filter
sees zero padding near a tile edge, so the tiles really disagree there and the blend has to be right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import rasterio
from contrasat.models.card import ModelCard, write_card
from contrasat.models.execution import Execution
from contrasat.models.pipeline import map_floods
from contrasat.models.preprocess import prepare
from contrasat.models.tiling import tile_starts
from onnx import TensorProto, helper, numpy_helper
from runtime_helpers import FLOOD_CLASSES, S1_SAMPLE, s1_spec

BOX = 9
HALF = BOX // 2  # pixels a prediction reaches beyond its own position
TILE, OVERLAP, SIZE = 128, 32, 512  # the sample is 512 x 512


def _box_model(path: Path, context_margin: int = 0) -> Path:
    """softmax of ±(9×9 mean of normalised VH): water where the neighbourhood is dark. Zero-padded conv."""
    w = np.zeros((2, 2, BOX, BOX), dtype=np.float32)
    w[0, 1], w[1, 1] = 10.0 / BOX**2, -10.0 / BOX**2
    nodes = [
        helper.make_node("Conv", ["s1", "w"], ["z"], pads=[HALF] * 4),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "box", [helper.make_tensor_value_info("s1", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        initializer=[numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    card = ModelCard(name="box9", task="flood", inputs=[s1_spec()], classes=FLOOD_CLASSES, tile_size=TILE,
                     overlap=OVERLAP, context_margin=context_margin, metrics={"note": "test model"})  # fmt: skip
    write_card(path, card)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, np.ndarray]:
    """Water probability of the tiled run and of one whole-image tile, and the model path."""
    tmp = tmp_path_factory.mktemp("blend")
    model = _box_model(tmp / "box.onnx")
    out = {"model": model}
    for name, tile, overlap in (("tiled", TILE, OVERLAP), ("whole", SIZE, 0)):
        probs = tmp / f"{name}_probs.tif"
        map_floods(S1_SAMPLE, tmp / f"{name}.tif", model=model, probabilities=probs,
                   config=Execution(tile=tile, overlap=overlap, batch=3))  # fmt: skip
        with rasterio.open(probs) as src:
            out[name] = src.read(2)
    return out


def _clean(starts: list[int]) -> np.ndarray:
    """Per row (or column): True where every tile covering it has it at least HALF pixels from an edge that
    lies inside the image (at the image border the whole-image run sees the same zero padding)."""
    pos = np.arange(SIZE)
    ok = np.ones(SIZE, dtype=bool)
    for s in starts:
        inside = (pos >= s) & (pos < s + TILE)
        near_start = (pos - s < HALF) & (s > 0)
        near_end = (s + TILE - 1 - pos < HALF) & (s + TILE < SIZE)
        ok &= ~(inside & (near_start | near_end))
    return ok


def test_tile_layout_is_the_expected_one():
    assert tile_starts(SIZE, TILE, OVERLAP) == [0, 96, 192, 288, 384]


def test_tile_interiors_equal_the_whole_image_run(runs):
    starts = tile_starts(SIZE, TILE, OVERLAP)
    clean = _clean(starts)[:, None] & _clean(starts)[None, :]
    assert 0.5 < clean.mean() < 1.0
    diff = np.abs(runs["tiled"] - runs["whole"])
    assert diff[clean].max() < 1e-5
    # the receptive field is real: next to inner tile edges the tiles see padding and the answers move
    assert diff[~clean].max() > 1e-3


def _ramp(n: int) -> np.ndarray:
    """Documented blend weight: rises linearly over `overlap` pixels from each tile edge, 1 inside."""
    i = np.arange(n)
    return np.minimum(np.minimum(i + 1, n - i) / (OVERLAP + 1), 1.0)


def test_seams_are_the_weighted_blend_of_each_tiles_own_prediction(runs):
    """Reference computed independently: ONNX Runtime on every tile alone, then Σ w·p / Σ w."""
    with rasterio.open(S1_SAMPLE) as src:
        x = prepare(src.read(), s1_spec())
    sess = ort.InferenceSession(str(runs["model"]), providers=["CPUExecutionProvider"])
    acc, wsum = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    last = np.zeros((SIZE, SIZE))  # an unblended mosaic: the last tile wins
    weight = np.outer(_ramp(TILE), _ramp(TILE))
    starts = [0, 96, 192, 288, 384]
    for r in starts:
        for c in starts:
            p = sess.run(["probs"], {"s1": x[None, :, r : r + TILE, c : c + TILE]})[0][0, 1]
            acc[r : r + TILE, c : c + TILE] += weight * p
            wsum[r : r + TILE, c : c + TILE] += weight
            last[r : r + TILE, c : c + TILE] = p
    np.testing.assert_allclose(runs["tiled"], acc / wsum, atol=1e-5)
    # blending is what hides the seams: closer to the whole-image answer than a hard mosaic
    seam_blend = np.abs(runs["tiled"] - runs["whole"]).max()
    seam_hard = np.abs(last - runs["whole"]).max()
    assert seam_blend < 0.5 * seam_hard


def test_rows_handed_to_the_sink_in_chunks_write_the_same_maps(runs, tmp_path, monkeypatch):
    """Finished rows go to the sink FLUSH_ROWS at a time (memory): a chunk of 7 rows, which cuts every tile
    row and GeoTIFF block unevenly, writes the same classes and probabilities as one chunk per tile row,
    and the same areas up to float summation order."""
    from contrasat.models import inference

    results = {}
    for rows in (7, 10_000):
        monkeypatch.setattr(inference, "FLUSH_ROWS", rows)
        res = map_floods(S1_SAMPLE, tmp_path / f"c{rows}.tif", model=runs["model"],
                         probabilities=tmp_path / f"p{rows}.tif", config=Execution(batch=3))  # fmt: skip
        with rasterio.open(res.output) as c, rasterio.open(res.probabilities) as p:
            results[rows] = (c.read(), p.read(), res.class_area_km2)
    (c7, p7, a7), (cw, pw, aw) = results[7], results[10_000]
    assert np.array_equal(c7, cw)
    assert np.array_equal(p7, pw, equal_nan=True)
    assert a7 == pytest.approx(aw, rel=1e-12)


@pytest.mark.parametrize("n", [1, 3, 5, 9, 10])
def test_the_strip_slides_up_in_place_like_a_copy(n):
    from contrasat.models.inference import _slide

    rows = np.arange(10 * 3 * 2, dtype=np.float32).reshape(2, 10, 3)  # classes, rows, columns
    expected = rows.copy()
    expected[:, : 10 - n] = rows[:, n:].copy()
    _slide(rows.swapaxes(0, 1), n)
    assert np.array_equal(rows[:, : 10 - n], expected[:, : 10 - n])


AOI_COLS, AOI_ROWS = (37, 400), (101, 333)  # an AOI off every 16-px grid line, away from the sample's edges


def _aoi_map(model: Path, tmp: Path) -> tuple[np.ndarray, rasterio.Affine, tuple[int, int], list[str]]:
    """Water probability of an AOI run (one tile: only the AOI's edge can differ from the whole map)."""
    with rasterio.open(S1_SAMPLE) as src:
        (x0, y0), (x1, y1) = (
            src.transform * (AOI_COLS[0], AOI_ROWS[0]),
            src.transform * (AOI_COLS[1], AOI_ROWS[1]),
        )
        crs = src.crs.to_string()
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    res = map_floods(S1_SAMPLE, tmp / f"{model.stem}_aoi.tif", model=model, probabilities=tmp / f"{model.stem}_p.tif",
                     aoi=({"type": "Polygon", "coordinates": [ring]}, crs), config=Execution(tile=SIZE, overlap=0))  # fmt: skip
    with rasterio.open(res.probabilities) as f:
        return f.read(2), f.transform, (f.height, f.width), [str(n) for n in res.notes]


def test_an_aoi_read_with_the_cards_context_margin_is_classed_as_in_the_whole_map(runs, tmp_path):
    """The card's context margin: the network reads the raster around the AOI, so the AOI's pixels get
    the whole map's answers, even next to the AOI's edge; the output still covers the AOI alone."""
    whole = runs["whole"][AOI_ROWS[0] : AOI_ROWS[1], AOI_COLS[0] : AOI_COLS[1]]
    with_margin, transform, shape, notes = _aoi_map(
        _box_model(tmp_path / "margin.onnx", context_margin=HALF), tmp_path
    )
    without, _, _, notes_without = _aoi_map(_box_model(tmp_path / "nomargin.onnx"), tmp_path)
    with rasterio.open(S1_SAMPLE) as src:
        assert transform == src.transform * rasterio.Affine.translation(AOI_COLS[0], AOI_ROWS[0])
    assert shape == (AOI_ROWS[1] - AOI_ROWS[0], AOI_COLS[1] - AOI_COLS[0])
    assert np.abs(with_margin - whole).max() < 1e-5
    # without the margin the network sees padding at the AOI's edge: the answers there move
    assert np.abs(without - whole).max() > 1e-3
    # the AOI is smaller than one tile: only the model that sees nothing around it is warned about
    assert not any("smaller than one" in n for n in notes), notes
    assert any("smaller than one 512-pixel tile" in n for n in notes_without), notes_without


def test_the_surroundings_read_are_clipped_to_the_raster_and_lie_on_its_16_pixel_grid():
    from contrasat.models.tiled_job import with_surroundings
    from rasterio.windows import Window

    class Grid:
        width, height = 500, 300

    assert with_surroundings(Window(37, 101, 363, 150), Grid, 0) == Window(37, 101, 363, 150)
    # 37 - 32 = 5 -> 0; 101 - 32 = 69 -> 64; the far edges grow by 32 and up to the grid (400 + 32 = 432 is
    # on it, 251 + 32 = 283 -> 288), at most to the raster's size
    assert with_surroundings(Window(37, 101, 363, 150), Grid, 32) == Window(0, 64, 432, 288 - 64)
    assert with_surroundings(Window(37, 101, 363, 170), Grid, 32) == Window(0, 64, 432, 300 - 64)
    assert with_surroundings(Window(470, 280, 30, 20), Grid, 32) == Window(432, 240, 68, 60)


def test_surroundings_holding_an_undeclared_fill_are_no_data_as_in_the_whole_map(tmp_path):
    """A raster declaring no nodata whose border is filled with 0 in every band: the whole map finds the
    fill and leaves it out. An AOI beside that border, but without fill of its own, reads the fill as its
    surroundings: it must be no data there too, not 0 dB, or the AOI's pixels next to it move."""
    with rasterio.open(S1_SAMPLE) as src:
        profile, data = src.profile, src.read()
    data = np.nan_to_num(data, nan=-25.0)
    data[:, :, : AOI_COLS[0]] = 0.0  # the fill ends where the AOI starts
    profile.update(nodata=None)
    filled = tmp_path / "filled.tif"
    with rasterio.open(filled, "w", **profile) as dst:
        dst.write(data)
    model = _box_model(tmp_path / "margin.onnx", context_margin=HALF)
    config = Execution(tile=SIZE, overlap=0)
    whole = map_floods(filled, tmp_path / "whole.tif", model=model, probabilities=tmp_path / "wp.tif",
                       config=config)  # fmt: skip
    assert any("no nodata declared" in str(n) for n in whole.notes), whole.notes
    (x0, y0), (x1, y1) = (
        profile["transform"] * (AOI_COLS[0], AOI_ROWS[0]),
        profile["transform"] * (AOI_COLS[1], AOI_ROWS[1]),
    )
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    aoi = map_floods(filled, tmp_path / "aoi.tif", model=model, probabilities=tmp_path / "ap.tif",
                     aoi=({"type": "Polygon", "coordinates": [ring]}, profile["crs"].to_string()),
                     config=config)  # fmt: skip
    with rasterio.open(whole.probabilities) as w, rasterio.open(aoi.probabilities) as a:
        expected = w.read(2)[AOI_ROWS[0] : AOI_ROWS[1], AOI_COLS[0] : AOI_COLS[1]]
        got = a.read(2)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5


def _stride2_model(path: Path) -> Path:
    """softmax of ±(normalised VH averaged over 2×2 blocks counted from the tile's origin): a strided layer,
    whose answer depends on the tile's pixel phase as a real encoder's does."""
    w = np.zeros((2, 2, 1, 1), dtype=np.float32)
    w[0, 1], w[1, 1] = 10.0, -10.0
    nodes = [
        helper.make_node("AveragePool", ["s1"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["pooled", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Conv", ["up", "w"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "stride2", [helper.make_tensor_value_info("s1", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        initializer=[numpy_helper.from_array(w, "w"),
                     numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    card = ModelCard(name="stride2", task="flood", inputs=[s1_spec()], classes=FLOOD_CLASSES, tile_size=TILE,
                     overlap=0, context_margin=16, metrics={"note": "test model"})  # fmt: skip
    write_card(path, card)
    return path


def test_every_tile_of_an_aoi_read_wider_than_a_tile_keeps_the_whole_maps_pixel_phase(tmp_path):
    """An AOI read over several tiles: the last tile of a row or column is pulled back to end at the read
    window's edge, so that edge must lie on the raster's 16-px grid too (or at the raster's edge, where the
    whole map's last tile ends), else a strided network sees the AOI's pixels at another phase there."""
    model = _stride2_model(tmp_path / "stride2.onnx")
    whole = map_floods(S1_SAMPLE, tmp_path / "whole.tif", model=model, probabilities=tmp_path / "wp.tif")
    with rasterio.open(S1_SAMPLE) as src:
        t, crs = src.transform, src.crs.to_string()
    c0, c1, r0, r1 = 37, 401, 101, 334  # read 16..417 x 64..366: the last tiles start at odd columns/rows
    ring = [list(t * xy) for xy in ((c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0))]
    aoi = map_floods(S1_SAMPLE, tmp_path / "aoi.tif", model=model, probabilities=tmp_path / "ap.tif",
                     aoi=({"type": "Polygon", "coordinates": [ring]}, crs))  # fmt: skip
    with rasterio.open(whole.probabilities) as w, rasterio.open(aoi.probabilities) as a:
        expected, got = w.read(2)[r0:r1, c0:c1], a.read(2)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5
