"""Band tables of the sensors Contrasat reads: names in storage order and how a layer's bands map to them."""

from __future__ import annotations

import re

S1_BANDS: tuple[str, ...] = ("VV", "VH")
S2L1C_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)  # fmt: skip
S2L2A_BANDS: tuple[str, ...] = tuple(b for b in S2L1C_BANDS if b != "B10")

SENSOR_BANDS: dict[str, tuple[str, ...]] = {
    "S1": S1_BANDS,
    "S2L1C": S2L1C_BANDS,
    "S2L2A": S2L2A_BANDS,
}


POLARISATIONS = ("VV", "VH", "HH", "HV")
# Words a backscatter band's description may carry beside its polarisation ('Sigma0_VV_db', 'S1 VH (dB)'):
# anything else ('VH/VV ratio', 'VV-VH', 'incidence angle', 'VV mask') names another quantity.
POLARISATION_WORDS = frozenset(
    {"S1", "SIGMA0", "SIGMA", "GAMMA0", "GAMMA", "BETA0", "BETA", "DB", "LINEAR", "POWER", "INTENSITY",
     "BACKSCATTER", "POL", "POLARISATION", "POLARIZATION", "GRD", "IW", "BAND", "CALIBRATED", "TERRAIN",
     "CORRECTED", "RTC"}
)  # fmt: skip
POLARISATION_ALIASES = (
    "VV or VH, alone or with sigma0/gamma0/beta0/dB/linear (e.g. 'Sigma0_VV_db', 'S1 VH (dB)')"
)


def _polarisation(text: str) -> str:
    """The polarisation a description names exactly ('' if none, or if it names another quantity)."""
    words = [w for w in re.split(r"[^A-Z0-9]+", text) if w]
    pols = [w for w in words if w in POLARISATIONS]
    if len(pols) != 1 or not all(w in POLARISATIONS or w in POLARISATION_WORDS for w in words):
        return ""
    return pols[0]


def mentions_polarisation(name: str | None) -> bool:
    """True when a description mentions a polarisation at all ('VH/VV ratio', 'VV-VH' included)."""
    text = (name or "").upper()
    return any(re.search(rf"(^|[^A-Z]){pol}([^A-Z]|$)", text) for pol in POLARISATIONS)


def normalise_band_name(name: str | None) -> str:
    """Canonical form of a band description: 'b8' -> 'B08', 'sigma0_vv' -> 'VV', 'Band 4' -> '',
    'VH/VV ratio' -> '' (a description naming another quantity is never taken for a band)."""
    if not name:
        return ""
    text = name.strip().upper()
    pol = _polarisation(text)
    if pol:
        return pol
    match = re.fullmatch(r"B(?:AND)?[ _-]?0?(\d{1,2}A?)", text)
    if match and not text.startswith("BAND"):
        code = match.group(1)
        return "B8A" if code == "8A" else f"B{int(code):02d}"
    return ""


def describe_bands(descriptions: list[str | None]) -> str:
    """What a raster's band descriptions name, in words for messages: 'Sentinel-1 bands VV, VH',
    'Sentinel-2 bands B02, B03', or '' when they name no known band."""
    names = [n for n in (normalise_band_name(d) for d in descriptions) if n]
    if not names:
        return ""
    sensor = "Sentinel-1" if all(n in POLARISATIONS for n in names) else "Sentinel-2"
    return f"{sensor} bands {', '.join(names)}"


def match_bands(descriptions: list[str | None], wanted: tuple[str, ...] | list[str]) -> list[int] | None:
    """1-based band indexes of `wanted` found by description, or None when descriptions do not name them all."""
    names = [normalise_band_name(d) for d in descriptions]
    indexes = []
    for band in wanted:
        if band not in names:
            return None
        indexes.append(names.index(band) + 1)
    return indexes


def resolve_bands(
    descriptions: list[str | None],
    sensor_bands: tuple[str, ...] | list[str],
    wanted: tuple[str, ...] | list[str],
) -> list[int] | None:
    """Indexes (1-based) of the `wanted` bands in a raster.

    Descriptions win when they name every wanted band; otherwise a raster whose band count equals the
    sensor's full table, and whose descriptions name no band at all, is assumed to be in the sensor's
    storage order (descriptions naming other bands, e.g. HH/HV or L2A + SCL, are never overruled by
    order). None means the bands cannot be found.
    """
    by_name = match_bands(descriptions, wanted)
    if by_name is not None:
        return by_name
    if any(normalise_band_name(d) for d in descriptions):
        return None
    if len(descriptions) == len(sensor_bands) and all(b in sensor_bands for b in wanted):
        return [list(sensor_bands).index(b) + 1 for b in wanted]
    return None
