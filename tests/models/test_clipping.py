"""Rasters clipped from a larger scene map as the scene does, or the job summary says why they may not
(cases: tests/hostile_cases.py, group 'clipping'). Real Sen1Floods11 chips, the default flood model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from contrasat.models.card import read_card
from contrasat.models.execution import Execution
from contrasat.models.pipeline import land_cover, map_floods
from contrasat.models.registry import default_model_path
from hostile_cases import ids
from rasterio.windows import Window
from runtime_helpers import REPO, S1_SAMPLE, S2_SAMPLE

CHIPS = Path("/work/shared/data/sen1floods11")
LAND_COVER_MODEL = REPO / "models" / "weights" / "landcover_s2.onnx"
CROPS_PER_CHIP = 6
MIN_AGREEMENT = 0.98


def _scenes() -> list[tuple[Path, Path | None]]:
    """(S1, label) of every hand-labelled chip, and the bundled sample (its label beside it)."""
    found = [(p, CHIPS / "LabelHand" / p.name.replace("S1Hand", "LabelHand"))
             for p in sorted((CHIPS / "S1Hand").glob("*_S1Hand.tif"))]  # fmt: skip
    return found + [(S1_SAMPLE, S1_SAMPLE.parent / S1_SAMPLE.name.replace("S1Hand", "LabelHand"))]


def _cut(src, window: Window, path: Path) -> Path:
    profile = {**src.profile, "width": int(window.width), "height": int(window.height),
               "transform": src.window_transform(window)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(src.read(window=window))
        dst.descriptions = src.descriptions
    return path


def _map(run, path: Path, out: Path):
    result = run(path, out, config=Execution(provider="cpu"))
    with rasterio.open(out) as f:
        return f.read(1), [n for n in result.notes if getattr(n, "level", "") == "warning"]


def _watery_window(label: np.ndarray, h: int, w: int, rng) -> tuple[int, int]:
    """The most watery of 30 random windows (by label water share)."""
    candidates = [(int(rng.integers(0, label.shape[0] - h + 1)), int(rng.integers(0, label.shape[1] - w + 1)))
                  for _ in range(30)]  # fmt: skip
    return max(candidates, key=lambda rc: float(np.mean(label[rc[0] : rc[0] + h, rc[1] : rc[1] + w] == 1)))


def _level_warning(warnings) -> bool:
    return any("area of interest" in w and ("level" in w or "peak" in w) for w in warnings)


def _random_crops(tmp: Path) -> None:
    rng = np.random.default_rng(22)
    worst, figures = 1.0, []
    for s1, label_path in _scenes():
        whole, _ = _map(map_floods, s1, tmp / f"{s1.stem}_whole.tif")
        with rasterio.open(label_path) as f:
            label = f.read(1)
        with rasterio.open(s1) as src:
            for k in range(CROPS_PER_CHIP):
                h, w = (int(v) for v in rng.integers(256, min(src.height, src.width) + 1, size=2))
                if k % 2 == 0:
                    row, col = _watery_window(label, h, w, rng)
                else:
                    row, col = (
                        int(rng.integers(0, src.height - h + 1)),
                        int(rng.integers(0, src.width - w + 1)),
                    )
                crop = _cut(src, Window(col, row, w, h), tmp / f"{s1.stem}_{k}.tif")
                part, warnings = _map(map_floods, crop, tmp / f"{s1.stem}_{k}_map.tif")
                ref = whole[row : row + h, col : col + w]
                valid = (ref != 255) & (part != 255)
                agreement = float(np.mean(part[valid] == ref[valid]))
                water = float(np.mean(label[row : row + h, col : col + w] == 1))
                figures.append(
                    (s1.stem, h, w, round(water, 2), round(agreement, 4), _level_warning(warnings))
                )
                assert agreement >= MIN_AGREEMENT or _level_warning(warnings), figures[-1]
                if not _level_warning(warnings):
                    worst = min(worst, agreement)
    print(f"{len(figures)} crops; worst agreement without a warning {worst:.4f}; worst overall "
          f"{min(f[4] for f in figures):.4f}; warned {sum(f[5] for f in figures)}")  # fmt: skip
    assert len(figures) == CROPS_PER_CHIP * len(_scenes())
    assert sum(f[3] >= 0.5 for f in figures) >= 5  # mostly-water crops were tried


def _small_watery_crop(tmp: Path, size: tuple[int, int], needles: tuple[str, ...]) -> None:
    s1, label_path = (
        CHIPS / "S1Hand" / "Nigeria_812045_S1Hand.tif",
        CHIPS / "LabelHand" / "Nigeria_812045_LabelHand.tif",
    )
    with rasterio.open(label_path) as f:
        label = f.read(1)
    h, w = size
    row, col = _watery_window(label, h, w, np.random.default_rng(3))
    with rasterio.open(s1) as src:
        crop = _cut(src, Window(col, row, w, h), tmp / "small.tif")
    part, warnings = _map(map_floods, crop, tmp / "small_map.tif")
    assert part.shape == (h, w) and (part != 255).any()
    text = " | ".join(warnings)
    tile = read_card(default_model_path("flood")).tile_size  # the default flood model's tile
    assert f"smaller than one {tile}-pixel tile" in text, text
    assert f"only {w} × {h} pixels (columns × rows)" in text, text  # as QGIS gives a layer's size
    assert any(n in text for n in needles), text


def _land_cover_crop(tmp: Path) -> None:
    run = lambda p, o, config: land_cover(p, o, model=LAND_COVER_MODEL, config=config)  # noqa: E731
    whole, _ = _map(run, S2_SAMPLE, tmp / "lc_whole.tif")
    with rasterio.open(S2_SAMPLE) as src:
        for row, col in ((0, 0), (200, 150), (256, 212)):
            crop = _cut(src, Window(col, row, 300, 256), tmp / f"lc_{row}.tif")
            part, _ = _map(run, crop, tmp / f"lc_{row}_map.tif")
            ref = whole[row : row + 256, col : col + 300]
            valid = (ref != 255) & (part != 255)
            assert float(np.mean(part[valid] == ref[valid])) >= MIN_AGREEMENT


@pytest.mark.skipif(not CHIPS.is_dir(), reason="Sen1Floods11 chips are in /work/shared/data")
@pytest.mark.parametrize("case", ids("clipping"))
def test_clipped_raster(case, tmp_path):
    if case == "clip-random-crops":
        _random_crops(tmp_path)
    elif case == "clip-mostly-water-small":
        _small_watery_crop(tmp_path, (100, 60), ("no dry-land", "too dark", "taken as dry land", "uncertain"))
    elif case == "clip-tiny-3x3":
        _small_watery_crop(tmp_path, (3, 3), ("too few to find its dry-land level",))
    elif case == "clip-land-cover":
        _land_cover_crop(tmp_path)
    else:
        raise AssertionError(f"no builder for case {case}")
