"""Per-source linear maps 8-bit -> dB, fitted against the Sen1Floods11 chips' class-wise backscatter.

For each source band, the deciles (10..90 %) of its labelled-water and labelled-dry pixels are matched to
the same deciles of the Sen1Floods11 hand-labelled pixels (dB) by least squares: dB = gain * DN + offset.
Deciles sitting on the 8-bit limits (0 or 255: clipped by the rescaling) are left out of the fit.
OMBRIA has one unnamed polarisation: it is fitted against VV and against VH, and the one with the smaller
residual is taken (the evidence is written next to the maps).

    contrasat train flood calibrate --out docs/results   # also writes the maps the regions read
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..common.flood_data import etci, ombria
from ..common.flood_data.regions import CALIBRATION_FILE, data_root, load_chips

QUANTILES = np.round(np.arange(0.1, 0.91, 0.1), 2)
BANDS = ("VV", "VH")


def class_quantiles(values: np.ndarray, water: np.ndarray) -> dict[str, list[float]]:
    """Deciles of the water and of the dry pixels of one band."""
    return {
        "water": np.quantile(values[water], QUANTILES).tolist(),
        "dry": np.quantile(values[~water], QUANTILES).tolist(),
    }


def fit_map(src: dict[str, list[float]], ref: dict[str, list[float]]) -> dict[str, float]:
    """Least-squares dB = gain * DN + offset over the class deciles not clipped at 0 or 255."""
    x = np.concatenate([src["water"], src["dry"]])
    y = np.concatenate([ref["water"], ref["dry"]])
    keep = (x > 0) & (x < 255)
    gain, offset = np.polyfit(x[keep], y[keep], 1)
    resid = y[keep] - (gain * x[keep] + offset)
    return {"gain": float(gain), "offset": float(offset), "rms_db": float(np.sqrt(np.mean(resid**2))),
            "points": int(keep.sum())}  # fmt: skip


def reference(root: Path) -> dict[str, dict[str, list[float]]]:
    """Class deciles (dB) per band over every labelled Sen1Floods11 pixel."""
    chips = load_chips(root=root)
    out = {}
    for b, name in enumerate(BANDS):
        vals = np.concatenate([c.s1[b][c.valid] for c in chips])
        water = np.concatenate([c.label[c.valid] == 1 for c in chips])
        out[name] = class_quantiles(vals, water)
    return out


def etci_quantiles(root: Path) -> dict[str, dict[str, list[float]]]:
    tiles = [t for s in etci.SCENES for t in etci.load_scene(root, s)]
    ok = np.concatenate([(t.label >= 0).ravel() for t in tiles])
    water = np.concatenate([(t.label == 1).ravel() for t in tiles])[ok]
    return {
        name: class_quantiles(np.concatenate([t.dn[b].ravel() for t in tiles])[ok].astype(float), water)
        for b, name in enumerate(BANDS)
    }


def ombria_quantiles(root: Path) -> dict[str, list[float]]:
    places = [p for g in ombria.GROUPS for p in ombria.load_group(root, g)]
    vals = np.concatenate([p.after.ravel() for p in places]).astype(float)
    return class_quantiles(vals, np.concatenate([p.flood.ravel() for p in places]))


def calibrate(root: Path) -> dict:
    """Fitted maps plus the class deciles they were fitted on (the evidence)."""
    ref = reference(root)
    et = etci_quantiles(root)
    om = ombria_quantiles(root)
    om_fits = {band: fit_map(om, ref[band]) for band in BANDS}
    om_band = min(om_fits, key=lambda b: om_fits[b]["rms_db"])
    return {
        "method": "least-squares match of water and dry deciles (10..90 %) to Sen1Floods11 hand-labelled pixels",
        "reference_db": ref,
        "etci": {"quantiles_dn": et, "maps": {b: fit_map(et[b], ref[b]) for b in BANDS}},
        "ombria": {"quantiles_dn": om, "fits": om_fits, "band": om_band, "maps": {om_band: om_fits[om_band]}},
    }


def plot(result: dict, path: Path) -> None:
    """Class deciles of each source band after its map, against the Sen1Floods11 deciles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("ETCI", b, result["etci"]["quantiles_dn"][b], result["etci"]["maps"][b]) for b in BANDS]
    ob = result["ombria"]["band"]
    panels.append(("OMBRIA", ob, result["ombria"]["quantiles_dn"], result["ombria"]["maps"][ob]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (source, band, q, m) in zip(axes, panels, strict=True):
        ref = result["reference_db"][band]
        for cls, color in (("water", "#1f78b4"), ("dry", "#b15928")):
            cal = np.asarray(q[cls]) * m["gain"] + m["offset"]
            ax.plot(QUANTILES, ref[cls], "-", color=color, label=f"Sen1Floods11 {cls}")
            ax.plot(QUANTILES, cal, "o--", color=color, label=f"{source} {cls} (calibrated)")
        ax.set_title(f"{source} {band}: dB = {m['gain']:.3f}·DN {m['offset']:+.1f}", fontsize=9)
        ax.set_xlabel("quantile")
        ax.set_ylabel("dB")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_calibration(out: Path) -> dict:
    """Fit the maps on the data, write the evidence (JSON, figure) to `out` and the maps to CALIBRATION_FILE."""
    result = calibrate(data_root())
    out.mkdir(parents=True, exist_ok=True)
    (out / "flood_calibration.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    maps = {"etci": result["etci"]["maps"], "ombria": result["ombria"]["maps"]}
    CALIBRATION_FILE.write_text(json.dumps(maps, indent=1), encoding="utf-8")
    plot(result, out / "flood_calibration.png")
    return result
