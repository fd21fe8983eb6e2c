"""PIMC data: the eo-learn Slovenia patch, a PASTIS-layout reader, the spatial block split, and model inputs.

Series contract (shared with the runtime through the model card): index series gap-filled with
models.indices.fill_gaps over invalid dates, resampled to N_STEPS equally spaced times between the first and
last date, then turned into unthresholded recurrence plots by models.recurrence.recurrence_plot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from ...models.indices import compute_index, fill_gaps, resample_series, to_reflectance
from ...models.recurrence import recurrence_plot
from ..common.data_root import data_root
from ..common.splits import spatial_blocks

N_STEPS = 32  # recurrence plots are N_STEPS × N_STEPS whatever the number of dates
FORECAST = 10  # forecasting target: the last 10 dates of the series
PATCH = 9  # image-encoder patch side (pixels) around the centre pixel

# Slovenian LULC codes the model learns, in class order 0..C-1. Cultivated land (code 1) is left out: the
# patch holds 11 such pixels, all in one block, too few to learn or to measure.
LULC_CLASSES: list[tuple[int, str, str]] = [
    (2, "forest", "#1b7837"),
    (3, "grassland", "#a6d96a"),
    (4, "shrubland", "#8c6d31"),
    (8, "artificial surface", "#d73027"),
]
# Split 'blocks25': 25×25-pixel blocks (block row, block col) of the 101×100 patch; the last block row has 26.
SPLIT_NAME = "blocks25"
TEST_BLOCKS = {(0, 2), (2, 2), (3, 1)}
VAL_BLOCKS = {(0, 1), (1, 2)}
BLOCK = 25

# PASTIS S2 band order (10 bands of L2A, reflectance × 10000).
PASTIS_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def slovenia_path() -> Path:
    return data_root() / "eolearn" / "slovenia_patch.npz"


@dataclass
class SeriesPatch:
    """One patch: index series (C, T, H, W), validity (T, H, W), dates, reference scenes and labels."""

    series: np.ndarray
    valid: np.ndarray
    dates: list[date]
    channels: list[str]
    scenes: np.ndarray | None  # (S, B, H, W) uint16 reflectance × 10000
    labels: np.ndarray | None  # (H, W) dataset codes

    @property
    def days(self) -> np.ndarray:
        """Days since the first date, one per date."""
        return np.array([(d - self.dates[0]).days for d in self.dates], dtype=np.float64)


def load_slovenia(path: str | Path | None = None) -> SeriesPatch:
    """The eo-learn patch: NDVI series, valid = IS_DATA & IS_VALID & no cloud (CLM), LULC, 5 L1C scenes."""
    path = Path(path or slovenia_path())
    data = np.load(path)
    stamps = json.loads((path.parent / "timestamps.json").read_text())
    valid = (data["IS_DATA"][..., 0] > 0) & data["IS_VALID"][..., 0] & (data["CLM"][..., 0] == 0)
    return SeriesPatch(
        series=data["NDVI"][..., 0][None].astype(np.float32),
        valid=valid,
        dates=[datetime.fromisoformat(s).date() for s in stamps],
        channels=["NDVI"],
        scenes=np.transpose(data["REFERENCE_SCENES"], (0, 3, 1, 2)),
        labels=data["LULC"][..., 0].astype(np.int64),
    )


def read_pastis(root: str | Path, patch_id: int | str, indices: tuple[str, ...] = ("NDVI",)) -> SeriesPatch:
    """One patch in the PASTIS layout: DATA_S2/S2_<id>.npy (T, 10, H, W), ANNOTATIONS/TARGET_<id>.npy
    (semantic classes in channel 0) and metadata.geojson (feature property 'dates-S2': {index: YYYYMMDD}).

    Validity: all ten bands > 0 (PASTIS has no cloud mask; clouds stay in the series as in the dataset).
    """
    root = Path(root)
    cube = np.load(root / "DATA_S2" / f"S2_{patch_id}.npy")
    meta = json.loads((root / "metadata.geojson").read_text())
    props = next(
        f["properties"] for f in meta["features"] if str(f["properties"]["ID_PATCH"]) == str(patch_id)
    )
    raw = props["dates-S2"]
    raw = json.loads(raw) if isinstance(raw, str) else raw
    dates = [datetime.strptime(str(raw[k]), "%Y%m%d").date() for k in sorted(raw, key=int)]
    if len(dates) != cube.shape[0]:
        raise ValueError(
            f"PASTIS patch {patch_id}: {cube.shape[0]} dates in the cube, {len(dates)} in metadata"
        )
    refl = {b: to_reflectance(cube[:, PASTIS_BANDS.index(b)]) for b in ("B02", "B04", "B08")}
    series = np.stack([compute_index(name, refl) for name in indices])
    target = root / "ANNOTATIONS" / f"TARGET_{patch_id}.npy"
    labels = np.load(target)[0].astype(np.int64) if target.is_file() else None
    valid = np.all(cube > 0, axis=1)
    return SeriesPatch(series, valid, dates, list(indices), None, labels)


def block_split(height: int, width: int) -> np.ndarray:
    """(H, W) int: 0 train, 1 val, 2 test under the 'blocks25' split."""
    return spatial_blocks(height, width, BLOCK, VAL_BLOCKS, TEST_BLOCKS)


def class_targets(labels: np.ndarray) -> np.ndarray:
    """Dataset codes -> 0..C-1 per LULC_CLASSES, -1 for codes the model does not learn (and nodata)."""
    out = np.full(labels.shape, -1, dtype=np.int64)
    for i, (code, _, _) in enumerate(LULC_CLASSES):
        out[labels == code] = i
    return out


def series_rp(series: np.ndarray, valid: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, T, N) series + (T, N) validity -> resampled (N, C, N_STEPS) and plots (N, C, N_STEPS, N_STEPS)."""
    c, _, n = series.shape
    filled = fill_gaps(np.moveaxis(series, 1, -1), np.broadcast_to(valid.T, (c, n, len(days))), days)
    filled = np.nan_to_num(filled, nan=0.0)  # pixels never valid: flat zero series
    steps = resample_series(filled, days, N_STEPS)  # (C, N, S)
    steps = np.ascontiguousarray(np.moveaxis(steps, 0, 1))  # (N, C, S)
    return steps, recurrence_plot(steps)


@dataclass
class PixelSet:
    """Everything the PIMC experiments need, one row per pixel of the patch."""

    yx: np.ndarray  # (N, 2)
    split: np.ndarray  # (N,) 0 train, 1 val, 2 test
    target: np.ndarray  # (N,) class 0..C-1 or -1
    steps: np.ndarray  # (N, C, N_STEPS) full series, resampled
    rp: np.ndarray  # (N, C, N_STEPS, N_STEPS) plots of the full series
    hist_steps: np.ndarray  # (N, C, N_STEPS) history (all but the last FORECAST dates), resampled
    hist_rp: np.ndarray  # plots of the history
    last: np.ndarray  # (N,) last gap-filled history value of channel 0 (persistence forecast)
    future: np.ndarray  # (N, FORECAST) raw channel-0 values of the last dates
    future_ok: np.ndarray  # (N, FORECAST) bool, valid observations
    scenes: np.ndarray  # (S, B, H + PATCH - 1, W + PATCH - 1) normalised float32, reflect-padded


def build_pixels(patch: SeriesPatch) -> PixelSet:
    """Model inputs for every pixel; the history is gap-filled on its own so no future value leaks into it."""
    c, t, h, w = patch.series.shape
    flat = patch.series.reshape(c, t, h * w)
    ok = patch.valid.reshape(t, h * w)
    days = patch.days
    steps, rp = series_rp(flat, ok, days)
    hist_steps, hist_rp = series_rp(flat[:, : t - FORECAST], ok[: t - FORECAST], days[: t - FORECAST])
    hist_filled = fill_gaps(flat[0, : t - FORECAST].T, ok[: t - FORECAST].T, days[: t - FORECAST])
    yy, xx = np.mgrid[0:h, 0:w]
    scenes = (
        patch.scenes.astype(np.float32) if patch.scenes is not None else np.zeros((1, 1, h, w), np.float32)
    )
    mean = scenes.mean(axis=(0, 2, 3), keepdims=True)
    std = scenes.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    pad = PATCH // 2
    scenes = np.pad((scenes - mean) / std, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    labels = patch.labels if patch.labels is not None else np.zeros((h, w), np.int64)
    return PixelSet(
        yx=np.stack([yy.ravel(), xx.ravel()], 1),
        split=block_split(h, w).ravel(),
        target=class_targets(labels).ravel(),
        steps=steps, rp=rp, hist_steps=hist_steps, hist_rp=hist_rp,
        last=np.nan_to_num(hist_filled[:, -1]).astype(np.float32),
        future=np.nan_to_num(flat[0, t - FORECAST :].T).astype(np.float32),
        future_ok=ok[t - FORECAST :].T.copy(),
        scenes=scenes.astype(np.float32),
    )  # fmt: skip
