"""What a run pays before its first tile and for its reading: cards read without onnx, the default model's
card read alone, and a GDAL block cache sized to one tile row of the input's blocks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio
from contrasat.models import registry
from contrasat.models.card import CARD_KEY, ModelCard, read_card, write_card
from contrasat.models.errors import ModelError
from contrasat.models.pipeline import MIB, tile_row_cache
from rasterio.windows import Window


def test_quick_card_read_equals_onnx_for_every_bundled_model():
    import onnx

    for path in sorted(registry.WEIGHTS_DIR.glob("*.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        assert read_card(path) == ModelCard.from_json(meta[CARD_KEY]), path.name


def test_a_run_reads_cards_without_importing_onnx_or_pydantic():
    """A bundled card skips the schema (the test above checks each one against it); onnx, pydantic,
    shapely and importlib.metadata are not on map-floods' path before the job runs."""
    code = ("import sys; import contrasat.cli, contrasat.models.pipeline; "
            "from contrasat.models.registry import default_model_path; "
            "from contrasat.models.card import read_card; read_card(default_model_path('flood')); "
            "contrasat.cli.build_parser(); "
            "print([m for m in ('onnx', 'pydantic', 'shapely', 'importlib.metadata') if m in sys.modules])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "[]"


def test_a_card_outside_the_bundled_models_is_still_checked_field_by_field(tmp_path):
    good = registry.WEIGHTS_DIR / f"{registry.DEFAULTS['flood']}.onnx"
    card = read_card(good)
    card.description = 12  # a number where the schema wants text: only the schema sees it
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(good.read_bytes())
    write_card(copy, card)
    with pytest.raises(ModelError, match="description"):
        read_card(copy)


def test_a_damaged_model_still_gets_onnx_s_verdict(tmp_path):
    good = registry.WEIGHTS_DIR / f"{registry.DEFAULTS['flood']}.onnx"
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # cut inside the weights
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        read_card(bad)


def test_the_default_model_is_found_without_reading_every_card(monkeypatch):
    def every_card():
        raise AssertionError("every bundled card was read")

    monkeypatch.setattr(registry, "bundled_models", every_card)
    assert registry.default_model_path("flood").stem == registry.DEFAULTS["flood"]


def _raster(path, width, block):
    profile = {"driver": "GTiff", "dtype": "float32", "count": 2, "width": width, "height": 2 * block,
               "tiled": True, "blockxsize": block, "blockysize": block}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((2, 2 * block, width), np.float32))
    return rasterio.open(path)


class _Input:
    def __init__(self, dataset):
        self.dataset, self.reader, self.band_indexes = dataset, None, [1, 2]


@pytest.mark.parametrize(("width", "block", "tile", "rows"), [(4096, 256, 256, 256), (4096, 512, 256, 512),
                                                              (4096, 128, 256, 256)])  # fmt: skip
def test_the_cache_holds_one_tile_row_of_blocks(tmp_path, width, block, tile, rows):
    with _raster(tmp_path / "r.tif", width, block) as ds:
        assert (
            tile_row_cache([[_Input(ds)]], Window(0, 0, width, 2 * block), tile)
            == 2 * 4 * width * rows + 16 * MIB
        )


def test_the_cache_is_capped_for_very_wide_rasters(tmp_path):
    with _raster(tmp_path / "r.tif", 64, 512) as ds:
        assert tile_row_cache([[_Input(ds)]], Window(0, 0, 400_000, 1024), 256) == 256 * MIB
