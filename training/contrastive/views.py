"""Crops and augmented views: the same window in S1 and S2 (multimodal), two augmented views (SimCLR).

Geometric ops are applied identically to every array of one view. Radiometric ops act on physical units
(dB for S1, reflectance x 10000 for S2) before the card normalisation, like the runtime's own input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...models.card import InputSpec
from ...models.preprocess import prepare
from .scenes import PairedScene


@dataclass
class AugConfig:
    """SimCLR augmentation strengths (Chen et al. 2020, adapted to SAR and multispectral data)."""

    max_shift: float = 0.5  # second crop offset, as a fraction of the crop size (views overlap)
    s1_gain_db: float = 2.0  # common calibration / incidence gain
    s1_band_db: float = 1.0  # independent VV / VH shift
    s1_looks: tuple[float, float] = (3.0, 20.0)  # speckle: gamma-distributed intensity, L looks
    s2_scale: float = 0.2  # per-band multiplicative jitter (illumination, atmosphere)
    s2_haze: float = 300.0  # common additive offset (haze) in reflectance x 10000
    s2_noise: float = 100.0  # max std of additive noise
    s2_band_drop: float = 0.2  # probability that 1-3 bands are dropped (set to the mean)


def random_window(shape: tuple[int, int], size: int, rng: np.random.Generator) -> tuple[int, int]:
    h, w = shape
    if h < size or w < size:
        raise ValueError(f"scene {shape} is smaller than the crop {size}")
    return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))


def crop(array: np.ndarray, y0: int, x0: int, size: int) -> np.ndarray:
    return array[..., y0 : y0 + size, x0 : x0 + size].copy()


def dihedral(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One of the 8 rotations/flips, the same for every array (channels first, or 2-D labels)."""
    k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        out.append(np.ascontiguousarray(a[..., ::-1] if flip else a))
    return out


def valid_share(s1: np.ndarray, s2: np.ndarray) -> float:
    return float(np.mean(np.all(np.isfinite(s1), axis=0) & np.any(np.isfinite(s2), axis=0)))


def paired_window(
    scene: PairedScene, size: int, rng: np.random.Generator, min_valid: float = 0.5, tries: int = 8
) -> tuple[int, int]:
    """A window with enough valid pixels in both sensors (the last try is taken if none qualifies)."""
    for _ in range(tries):
        y0, x0 = random_window(scene.shape, size, rng)
        if valid_share(crop(scene.s1, y0, x0, size), crop(scene.s2, y0, x0, size)) >= min_valid:
            break
    return y0, x0


def shifted_window(
    first: tuple[int, int], shape: tuple[int, int], size: int, max_shift: float, rng: np.random.Generator
) -> tuple[int, int]:
    """A second window overlapping the first (SimCLR's random resized crop, without the resize)."""
    m = int(size * max_shift)
    y = int(np.clip(first[0] + rng.integers(-m, m + 1), 0, shape[0] - size))
    x = int(np.clip(first[1] + rng.integers(-m, m + 1), 0, shape[1] - size))
    return y, x


def augment_s1(s1_db: np.ndarray, cfg: AugConfig, rng: np.random.Generator) -> np.ndarray:
    """Gain, per-band shift and multiplicative speckle (gamma in intensity = additive in dB)."""
    out = s1_db.astype(np.float32, copy=True)
    out += rng.uniform(-cfg.s1_gain_db, cfg.s1_gain_db)
    out += rng.uniform(-cfg.s1_band_db, cfg.s1_band_db, size=(out.shape[0], 1, 1)).astype(np.float32)
    looks = rng.uniform(*cfg.s1_looks)
    speckle = rng.gamma(looks, 1.0 / looks, size=out.shape).astype(np.float32)
    out += 10.0 * np.log10(np.maximum(speckle, 1e-4))
    return out


def augment_s2(s2: np.ndarray, cfg: AugConfig, rng: np.random.Generator) -> np.ndarray:
    """Per-band scale, haze, noise and band dropout on reflectance x 10000 (NaN stays NaN)."""
    out = s2.astype(np.float32, copy=True)
    b = out.shape[0]
    out *= rng.uniform(1 - cfg.s2_scale, 1 + cfg.s2_scale, size=(b, 1, 1)).astype(np.float32)
    out += rng.uniform(0, cfg.s2_haze)
    out += rng.normal(0, rng.uniform(0, cfg.s2_noise), size=out.shape).astype(np.float32)
    if rng.random() < cfg.s2_band_drop:
        out[rng.choice(b, size=int(rng.integers(1, 4)), replace=False)] = np.nan  # -> 0 = band mean
    return out


def normalise(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The runtime's own normalisation (clip, (x-mean)/std, non-finite -> 0): train == inference."""
    return prepare(array, spec)


def pick(scenes: list[PairedScene], rng: np.random.Generator) -> PairedScene:
    return scenes[int(rng.integers(len(scenes)))]


def multimodal_batch(
    scenes: list[PairedScene], size: int, batch: int, specs: dict[str, InputSpec], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int, int]]]:
    """(s1 (N,2,S,S), s2 (N,13,S,S), windows): row i of both is the same ground, same orientation.

    The sensor difference is the augmentation (Wilson et al.), so no radiometric jitter is added.
    """
    s1s, s2s, where = [], [], []
    for _ in range(batch):
        scene = pick(scenes, rng)
        y0, x0 = paired_window(scene, size, rng)
        a, b = dihedral([crop(scene.s1, y0, x0, size), crop(scene.s2, y0, x0, size)], rng)
        s1s.append(normalise(a, specs["s1"]))
        s2s.append(normalise(b, specs["s2"]))
        where.append((scene.name, y0, x0))
    return np.stack(s1s), np.stack(s2s), where


def simclr_batch(
    scenes: list[PairedScene],
    modality: str,
    size: int,
    batch: int,
    specs: dict[str, InputSpec],
    cfg: AugConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Two augmented views (N, C, S, S) of the same scenes of one modality ('s1' or 's2')."""
    aug = augment_s1 if modality == "s1" else augment_s2
    views_a, views_b = [], []
    for _ in range(batch):
        scene = pick(scenes, rng)
        image = scene.s1 if modality == "s1" else scene.s2
        first = paired_window(scene, size, rng)
        second = shifted_window(first, scene.shape, size, cfg.max_shift, rng)
        for win, views in ((first, views_a), (second, views_b)):
            (view,) = dihedral([crop(image, win[0], win[1], size)], rng)
            views.append(normalise(aug(view, cfg, rng), specs[modality]))
    return np.stack(views_a), np.stack(views_b)
