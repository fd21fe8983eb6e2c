"""A model card's metrics in the analyst's words: the flood kit's leave-one-region-out table, bare-ORT
speed and stress figures as short sentences; any other metric as its key and value, as stored."""

from __future__ import annotations

from typing import Any

RULE = "fixed_vh_-20dB"  # the LORO table's key for the VH < -20 dB rule (training/flood/ship.py)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)


def _loro(loro: dict[str, Any]) -> list[str]:
    """Pooled water IoU on unseen regions against the VH rule, and the region where the model trails the
    rule most."""
    pooled = loro.get("pooled_water_iou_regions_with_vh", {})
    seeds = loro.get("seeds") or []
    sd = f" ± {pooled['shipped_sd']:.3f}" if "shipped_sd" in pooled else ""
    lines = [
        f"Water IoU on regions it never saw (leave-one-region-out, {len(seeds)} seed(s)): "
        f"{pooled['shipped']:.3f}{sd}; the VH < −20 dB rule: {pooled[RULE]:.3f}"
    ]
    regions = {  # regions without VH (OMBRIA) have no rule figure
        r: v for r, v in loro.get("per_region_water_iou", {}).items()
        if isinstance(v.get("shipped"), float) and isinstance(v.get(RULE), float)
    }  # fmt: skip
    if regions:
        worst = min(regions, key=lambda r: regions[r]["shipped"] - regions[r][RULE])
        gap = regions[worst]["shipped"] - regions[worst][RULE]
        side = "below" if gap < 0 else "above"
        lines.append(
            f"Worst region against the rule: {worst}, {regions[worst]['shipped']:.3f} "
            f"({abs(gap):.3f} {side} the rule's {regions[worst][RULE]:.3f})"
        )
    below = loro.get("regions_below_vh_rule")
    if isinstance(below, dict):
        lines.append(
            "Below the VH < −20 dB rule on: " + ", ".join(sorted(below))
            if below else "At or above the VH < −20 dB rule on every region it never saw"
        )  # fmt: skip
    return lines


def _speed(speed: dict[str, Any]) -> list[str]:
    return [
        f"Speed: {speed['mpx_per_s']:.2f} Mpx/s in ONNX Runtime on {speed['cpu_count']} CPU cores, "
        f"{speed['speedup_over_reference']:.2f}× {speed['reference']}"
    ]


def _stress(stress: dict[str, Any]) -> list[str]:
    figures = stress.get("figures", {})
    parts = []
    if "iou_clean" in figures:
        parts.append(f"IoU {figures['iou_clean']:.3f} on clean real crops")
    offsets = [v for k, v in figures.items() if k.startswith("iou_loss_gain")]
    if offsets:
        parts.append(f"at most {max(offsets):.3f} IoU lost under ±3 dB calibration offsets")
    if "lowcontrast_water_recall" in figures:
        parts.append(f"finds {100 * figures['lowcontrast_water_recall']:.0f} % of low-contrast water")
    return [f"Stress sets: {'; '.join(parts)}"] if parts else []


READERS = {"loro": _loro, "speed": _speed, "stress": _stress}


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per metric: known flood entries as sentences, the rest as 'key: value'. An entry that does
    not have the expected shape is shown as stored rather than hidden."""
    lines = []
    for key, value in metrics.items():
        reader = READERS.get(key)
        try:
            lines += reader(value) if reader and isinstance(value, dict) else [f"{key}: {_value(value)}"]
        except (KeyError, TypeError, ValueError):
            lines.append(f"{key}: {_value(value)}")
    return lines
