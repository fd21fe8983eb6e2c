"""What the numbers in an input raster are: decided once per input from dtype, scale and value distribution.

Sentinel-1 backscatter arrives as dB, dB × 10 or × 100 in integers, linear power (sigma0), amplitude
(sqrt of power), or uncalibrated digital numbers; Sentinel-2 as reflectance × 10000 (with or without the
+1000 offset of baseline 04.00) or as float reflectance 0..1. Each is converted to what the model card
expects with a note, or refused with the reason; none is silently read as another.

The S1 rules use what is known of backscatter (measured on the seven Sen1Floods11 hand-labelled chips):
scene medians are VV -14..-8 dB and VH -22..-14 dB, and the cross-polarisation ratio of the medians
VV/VH is 5..9 dB. Read as power, amplitude data halve that ratio (2.5..4.5 dB) and power data read as
amplitude double it, so the ratio tells the two apart even on a scene that is mostly water.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .notes import Note, info
from .preprocess import s2_offset

DB_RANGE = (-40.0, 5.0)  # plausible median of calibrated backscatter in dB, any surface
VV_DB = (-30.0, 3.0)
VH_DB = (-38.0, -3.0)
POWER_RATIO_DB = (4.5, 12.0)  # VV/VH median ratio when power is read as power
AMPLITUDE_RATIO_DB = (2.0, 4.5)  # ... when amplitude is read as power
S2_FLOAT_REFLECTANCE_MAX = 2.0  # 99th percentile of float reflectance 0..1 (bright clouds/snow stay below)
S2_SCALE = 10000.0
# Physical bounds of converted values, judged on the 1st..99th percentiles (a few odd pixels may lie outside):
S1_DB_BOUNDS = (-50.0, 20.0)  # backscatter of any surface in dB
S2_REFLECTANCE_BOUNDS = (-0.1, 1.5)  # reflectance (slightly negative after L2A's -0.1 offset; snow, clouds)


@dataclass
class Units:
    """How stored values become the card's units: value = stored * scale + add - offset, then optionally
    squared (amplitude -> power) and converted to dB (`linear`)."""

    scale: np.ndarray | None = None  # per band (B, 1, 1), or None for 1
    add: np.ndarray | None = None
    offset: float = 0.0
    amplitude: bool = False
    linear: bool = False


def _finite_columns(values: np.ndarray) -> np.ndarray:
    return values[:, np.all(np.isfinite(values), axis=0)]


def _ratio_db(vv: float, vh: float) -> float:
    return 10.0 * np.log10(vv / vh) if vv > 0 and vh > 0 else float("nan")


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def decide_s1(
    values: np.ndarray, bands: list[str], dtype: np.dtype, scaled: bool, name: str
) -> tuple[Units, list[Note]]:
    """Units of S1 values (B, N) sampled from valid pixels, in card band order `bands` (e.g. VV, VH).

    `scaled`: the file's own scale/offset were already applied (its integers are then physical values).
    """
    units, notes = Units(), []
    if dtype.kind == "u" and not scaled:
        raise InputError(
            f"S1 raster {name} stores unsigned integers ({dtype}): uncalibrated digital numbers or rescaled "
            "values, not backscatter; calibrate to sigma0 (dB or linear power) first"
        )
    finite = _finite_columns(values.astype(np.float64))
    if finite.size == 0:
        return units, notes
    if np.all(finite == finite.flat[0]):
        raise InputError(
            f"S1 raster {name} holds one value ({finite.flat[0]:g}) in every valid pixel: not backscatter"
        )
    vv = bands.index("VV") if "VV" in bands else None
    vh = bands.index("VH") if "VH" in bands else None
    median = np.median(finite, axis=1)
    if float(np.mean(finite < 0)) < 0.01:  # non-negative: linear power or amplitude
        return _decide_linear(median, vv, vh, name)
    return _decide_db(finite, median, vv, vh, name)


def _decide_linear(median: np.ndarray, vv: int | None, vh: int | None, name: str) -> tuple[Units, list[Note]]:
    """Non-negative S1 values: linear power or amplitude, told apart by level and VV/VH ratio."""
    units = Units(linear=True)
    if vv is None or vh is None:
        return units, [info(f"{name}: non-negative values read as linear power, converted to dB")]
    power_db = 10.0 * np.log10(np.maximum(median, 1e-12))
    ratio = _ratio_db(median[vv], median[vh])
    plausible_power = _inside(power_db[vv], VV_DB) and _inside(power_db[vh], VH_DB)
    plausible_amp = _inside(2 * power_db[vv], VV_DB) and _inside(2 * power_db[vh], VH_DB)
    if plausible_power and _inside(ratio, POWER_RATIO_DB):
        return units, [info(f"{name}: linear backscatter (power) detected, converted to dB")]
    if plausible_amp and _inside(ratio, AMPLITUDE_RATIO_DB):
        units.amplitude = True
        return units, [info(f"{name}: amplitude (sqrt of power) detected, converted to dB with 20·log10")]
    raise InputError(
        f"S1 raster {name}: non-negative values (median VV {median[vv]:.3g}, VH {median[vh]:.3g}, "
        f"ratio {ratio:.1f} dB) look neither like linear power nor amplitude backscatter"
    )


def _decide_db(
    finite: np.ndarray, median: np.ndarray, vv: int | None, vh: int | None, name: str
) -> tuple[Units, list[Note]]:
    """S1 values with negatives: dB, possibly stored × 10 or × 100; VH brighter than VV is refused."""
    units, notes = Units(), []
    level = float(np.median(finite))
    for factor in (1.0, 10.0, 100.0):
        if DB_RANGE[0] * factor <= level <= DB_RANGE[1] * factor and (
            factor == 1 or level < DB_RANGE[0] * factor / 10
        ):
            break
    else:
        raise InputError(
            f"S1 raster {name}: median {level:g} is not backscatter in dB (expected {DB_RANGE[0]:g}..{DB_RANGE[1]:g})"
        )
    if factor != 1.0:
        units.scale = np.full((finite.shape[0], 1, 1), 1.0 / factor, dtype=np.float32)
        notes.append(
            info(f"{name}: values look like dB × {factor:g} (median {level:g}), divided by {factor:g}")
        )
    db = median / factor
    _check_bounds(finite / factor, S1_DB_BOUNDS, "backscatter in dB", f"S1 raster {name}")
    for band, bounds, pol in ((vv, VV_DB, "VV"), (vh, VH_DB, "VH")):
        if band is not None and not _inside(db[band], bounds):
            raise InputError(
                f"S1 raster {name}: median {pol} {db[band]:.3g} dB is not backscatter (expected "
                f"{bounds[0]:g}..{bounds[1]:g} dB); check the file's scale/offset metadata and units"
            )
    if vv is not None and vh is not None and db[vh] > db[vv] + 1.0:
        raise InputError(
            f"S1 raster {name}: VH is brighter than VV (median {db[vh]:.1f} vs {db[vv]:.1f} dB); the bands are "
            "swapped or not VV/VH: name them in band descriptions"
        )
    return units, notes


def decide_s2(values: np.ndarray, dtype: np.dtype, scaled: bool, name: str) -> tuple[Units, list[Note]]:
    """Units of S2 values (B, N) sampled from valid pixels: reflectance × 10000 (offset removed) expected."""
    units, notes = Units(), []
    finite = _finite_columns(values.astype(np.float64))
    if finite.size == 0:
        return units, notes
    if dtype.kind == "u" and dtype.itemsize == 1 and not scaled:
        raise InputError(
            f"S2 raster {name} stores 8-bit values (a visual or rescaled product), not reflectance × 10000"
        )
    # decided on the values after the file's own scale/offset (uint16 × 0.0001 is reflectance 0..1)
    if (dtype.kind == "f" or scaled) and float(np.quantile(finite, 0.99)) <= S2_FLOAT_REFLECTANCE_MAX:
        units.scale = np.full((finite.shape[0], 1, 1), S2_SCALE, dtype=np.float32)
        kind = "reflectance 0..1 (after the file's scale/offset)" if scaled else "float reflectance 0..1"
        notes.append(info(f"{name}: {kind} detected, scaled × {S2_SCALE:g}"))
        _check_bounds(finite, S2_REFLECTANCE_BOUNDS, "reflectance", f"S2 raster {name}")
        return units, notes
    units.offset = s2_offset(finite)
    if units.offset:
        notes.append(info(f"{name}: +{units.offset:g} L1C offset detected and removed"))
    _check_bounds(
        (finite - units.offset) / S2_SCALE, S2_REFLECTANCE_BOUNDS, "reflectance", f"S2 raster {name}"
    )
    return units, notes


def _check_bounds(values: np.ndarray, bounds: tuple[float, float], what: str, name: str) -> None:
    """Refuse converted values (B, N) whose 1st..99th percentiles leave the physical bounds of `what`."""
    low, high = (float(q) for q in np.quantile(values, [0.01, 0.99]))
    if low < bounds[0] or high > bounds[1]:
        raise InputError(
            f"{name}: values read as {what} span {low:.3g}..{high:.3g} (1st..99th percentile), outside the "
            f"plausible {bounds[0]:g}..{bounds[1]:g}; check the file's scale/offset metadata and units"
        )
