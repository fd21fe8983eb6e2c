"""Augmentations on raw dB chips (before normalisation), aimed at generalising across regions.

Geometric ops move image and label together. Radiometric ops touch only the image and model the
between-scene differences SCIENCE.md names: calibration/incidence gain, wind-roughened VV, speckle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .metrics import IGNORE


class Chip(Protocol):
    """A labelled S1 chip: (2, H, W) dB image and (H, W) label (IGNORE where unusable)."""

    s1: np.ndarray
    label: np.ndarray


@dataclass
class AugmentConfig:
    crop: int = 128
    gain_db: float = 2.0  # same uniform +-offset on VV and VH (calibration, incidence angle)
    vv_shift_db: float = 3.0  # extra +-offset on VV only (wind roughens water: VV rises, VH less so)
    vv_dropout: float = 0.0  # probability of replacing VV by the training mean (network must use VH)
    noise_db: float = 1.0  # max std of additive Gaussian noise in dB, drawn per sample
    water_focus: float = 0.3  # probability of centring a crop on a water pixel (water is rare)


def random_crop(
    chip: Chip, size: int, rng: np.random.Generator, water_focus: float
) -> tuple[np.ndarray, np.ndarray]:
    """(2, size, size) dB and (size, size) label from one chip; copies, safe to modify."""
    h, w = chip.label.shape
    if rng.random() < water_focus:
        ys, xs = np.nonzero(chip.label == 1)
        if ys.size:
            k = rng.integers(ys.size)
            y0 = int(np.clip(ys[k] - size // 2, 0, h - size))
            x0 = int(np.clip(xs[k] - size // 2, 0, w - size))
            return chip.s1[:, y0 : y0 + size, x0 : x0 + size].copy(), chip.label[
                y0 : y0 + size, x0 : x0 + size
            ].copy()
    y0 = int(rng.integers(0, h - size + 1))
    x0 = int(rng.integers(0, w - size + 1))
    return chip.s1[:, y0 : y0 + size, x0 : x0 + size].copy(), chip.label[
        y0 : y0 + size, x0 : x0 + size
    ].copy()


def flip_rot(image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 dihedral transforms, applied identically to image (C, H, W) and label (H, W)."""
    k = int(rng.integers(4))
    image, label = np.rot90(image, k, axes=(1, 2)), np.rot90(label, k)
    if rng.random() < 0.5:
        image, label = image[:, :, ::-1], label[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def radiometric(
    image: np.ndarray, cfg: AugmentConfig, vv_fill: float, rng: np.random.Generator
) -> np.ndarray:
    """Gain, VV-only shift, VV dropout and noise on a (2, H, W) dB crop; NaNs stay NaN."""
    out = image.astype(np.float32, copy=True)
    out += rng.uniform(-cfg.gain_db, cfg.gain_db)
    out[0] += rng.uniform(-cfg.vv_shift_db, cfg.vv_shift_db)
    if cfg.noise_db > 0:
        out += rng.normal(0.0, rng.uniform(0, cfg.noise_db), size=out.shape).astype(np.float32)
    if rng.random() < cfg.vv_dropout:
        finite = np.isfinite(out[0])
        out[0][finite] = vv_fill  # the training mean normalises to 0, the value prepare() gives nodata
    return out


def sample(
    chip: Chip, cfg: AugmentConfig, vv_fill: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (image dB, label) training pair."""
    image, label = random_crop(chip, cfg.crop, rng, cfg.water_focus)
    image, label = flip_rot(image, label, rng)
    label[~np.all(np.isfinite(image), axis=0)] = IGNORE
    return radiometric(image, cfg, vv_fill, rng), label
