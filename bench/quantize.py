"""int8: ONNX Runtime static quantisation of the bundled flood and land-cover models, calibrated on real chips.

Per model: `quantize_static` (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration) with a
CalibrationDataReader over tiles prepared exactly as the runtime prepares them, from chips the model was
trained on; evaluated on the model card's held-out data:

* flood (default model): calibrate on the 6 training chips, water IoU on the held-out chip Spain_7370579
  (the card's split) and pooled over all labelled Sen1Floods11 chips;
* land cover: calibrate on the TerraMind sites other than the test site, mIoU (classes present in the
  label, label 0 = no data ignored) on the test site 282D_485L_3_3.

Maps are made by the runtime (`map_floods` / `land_cover`) with each model file; speed is bare session time
on the same batches, float32 and int8 interleaved in one run. Ship rule: ≥ 1.8× faster and within 0.01.

    python bench/quantize.py [--threads 2] [--repeats 5]

Writes bench/results/quantize.json (the int8 files go to a temporary folder; none is bundled).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from common import REPO, save_result
from contrasat.models.card import read_card, write_card
from contrasat.models.execution import Execution
from contrasat.models.pipeline import land_cover, map_floods
from contrasat.models.preprocess import prepare
from contrasat.models.rasters import detect_units, open_input
from contrasat.models.registry import resolve_model
from contrasat.models.session import load_model
from rasterio.windows import Window

DATA = REPO.parent / "shared" / "data"
DATA = DATA if DATA.is_dir() else Path("/work/shared/data")
FLOOD = DATA / "sen1floods11"
TERRAMIND = DATA / "terramind"
HELD_OUT_CHIP = "Spain_7370579"
TEST_SITE = "282D_485L_3_3"
SPEEDUP_NEEDED, LOSS_ALLOWED = 1.8, 0.01


def prepared_tiles(path: Path, spec, tile: int) -> list[np.ndarray]:
    """(B, t, t) network inputs of a raster's non-overlapping tiles, prepared as the runtime does."""
    raster = open_input(path, spec, spec.sensor)
    try:
        ds = raster.dataset
        detect_units(raster, Window(0, 0, ds.width, ds.height))
        edge = min(tile, ds.width, ds.height) // 16 * 16
        tiles = []
        for r in range(0, ds.height - edge + 1, edge):
            for c in range(0, ds.width - edge + 1, edge):
                raw, ok = raster.read(Window(c, r, edge, edge))
                x = prepare(raw, spec, linear=raster.linear)
                np.copyto(x, 0.0, where=~ok[None])
                tiles.append(x)
        return tiles
    finally:
        raster.close()


class ChipReader:
    """CalibrationDataReader over prepared real tiles, one tile per call."""

    def __init__(self, name: str, tiles: list[np.ndarray]):
        self.name, self.tiles = name, iter(tiles)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.tiles, None)
        return None if x is None else {self.name: x[None]}


def quantize(model: Path, calibration: list[np.ndarray], out: Path, method: str = "MinMax") -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    card = read_card(model)
    pre = out.with_suffix(".pre.onnx")
    with contextlib.chdir(out.parent):  # the pre-processor leaves scratch files in the working directory
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)  # dynamic N, H, W
    quantize_static(
        str(pre), str(out), ChipReader(card.inputs[0].name, calibration), quant_format=QuantFormat.QDQ,
        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        calibrate_method=getattr(CalibrationMethod, method),
    )  # fmt: skip
    card.name += "_int8"
    write_card(out, card)
    return out


def speed(
    paths: dict[str, Path], tiles: list[np.ndarray], threads: int, repeats: int, batch: int = 4
) -> dict:
    """Median seconds per pass over the same batches, the models interleaved so load drift hits all alike."""
    loaded = {k: load_model(p, provider="cpu", threads=threads) for k, p in paths.items()}
    name = next(iter(loaded.values())).card.inputs[0].name
    batches = [np.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
    times: dict[str, list[float]] = {k: [] for k in loaded}
    for m in loaded.values():
        m.run({name: batches[0]})  # warm-up
    for _ in range(repeats):
        for k, m in loaded.items():
            t0 = time.perf_counter()
            for b in batches:
                m.run({name: b})
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def water_counts(pred_path: Path, label_path: Path) -> tuple[int, int]:
    """(intersection, union) of water, label -1 and output nodata ignored."""
    with rasterio.open(pred_path) as p, rasterio.open(label_path) as lab:
        pred, label = p.read(1), lab.read(1)
    keep = (label >= 0) & (pred != 255)
    pw, lw = (pred == 1) & keep, (label == 1) & keep
    return int((pw & lw).sum()), int((pw | lw).sum())


def flood_study(tmp: Path, threads: int, repeats: int, method: str = "MinMax") -> dict:
    model = resolve_model(None, "flood")
    card = read_card(model)
    spec = card.inputs[0]
    train_chips = card.training.get("data", "")
    chips = sorted((FLOOD / "S1Hand").glob("*_S1Hand.tif"))
    calib_chips = [
        c for c in chips if c.stem.replace("_S1Hand", "") in train_chips and HELD_OUT_CHIP not in c.stem
    ]
    calib = [t for c in calib_chips for t in prepared_tiles(c, spec, card.tile_size)]
    int8 = quantize(model, calib, tmp / f"flood_int8_{method}.onnx", method)
    scores = {}
    for kind, path in (("float32", model), ("int8", int8)):
        held, pooled = (0, 0), [0, 0]
        for chip in chips:
            label = FLOOD / "LabelHand" / chip.name.replace("S1Hand", "LabelHand")
            out = tmp / f"{kind}_{chip.stem}.tif"
            map_floods(chip, out, model=path, config=Execution(provider="cpu", threads=threads))
            i, u = water_counts(out, label)
            pooled[0] += i
            pooled[1] += u
            if HELD_OUT_CHIP in chip.stem:
                held = (i, u)
        scores[kind] = {
            "heldout_water_iou": round(held[0] / held[1], 4),
            "pooled_water_iou": round(pooled[0] / pooled[1], 4),
        }
    all_tiles = [t for c in chips for t in prepared_tiles(c, spec, card.tile_size)]
    seconds = speed({"float32": model, "int8": int8}, all_tiles, threads, repeats)
    return _verdict(card.name, "water IoU", scores, "heldout_water_iou", seconds, len(all_tiles),
                    {"calibration": [c.stem for c in calib_chips], "heldout": HELD_OUT_CHIP,
                     "pooled_over": [c.stem for c in chips], "calibration_method": method})  # fmt: skip


def miou(pred_path: Path, label_path: Path) -> float:
    with rasterio.open(pred_path) as p, rasterio.open(label_path) as lab:
        pred, label = p.read(1), lab.read(1)
    keep = label > 0
    ious = []
    for cls in np.unique(label[keep]):
        inter = np.sum((pred == cls) & (label == cls) & keep)
        ious.append(inter / np.sum(((pred == cls) | (label == cls)) & keep))
    return float(np.mean(ious))


def landcover_study(tmp: Path, threads: int, repeats: int) -> dict:
    model = resolve_model("landcover_s2", "land_cover")
    card = read_card(model)
    spec = card.input_for("S2")
    sites = sorted((TERRAMIND / "S2L1C").glob("*.tif"))
    calib_sites = [s for s in sites if s.stem != TEST_SITE]
    calib = [t for s in calib_sites for t in prepared_tiles(s, spec, card.tile_size)]
    int8 = quantize(model, calib, tmp / "landcover_int8.onnx")
    test = TERRAMIND / "S2L1C" / f"{TEST_SITE}.tif"
    scores = {}
    for kind, path in (("float32", model), ("int8", int8)):
        out = tmp / f"lc_{kind}.tif"
        land_cover(test, out, model=path, config=Execution(provider="cpu", threads=threads))
        scores[kind] = {"test_miou": round(miou(out, TERRAMIND / "LULC" / f"{TEST_SITE}.tif"), 4)}
    all_tiles = [t for s in sites for t in prepared_tiles(s, spec, card.tile_size)] * 4  # 16 tiles of 224
    seconds = speed({"float32": model, "int8": int8}, all_tiles, threads, repeats)
    return _verdict(card.name, "mIoU", scores, "test_miou", seconds, len(all_tiles),
                    {"calibration": [s.stem for s in calib_sites], "test": TEST_SITE, "calibration_method": "MinMax"})  # fmt: skip


def _verdict(name: str, metric: str, scores: dict, key: str, seconds: dict, tiles: int, split: dict) -> dict:
    ratio = seconds["float32"] / seconds["int8"]
    loss = scores["float32"][key] - scores["int8"][key]
    ships = ratio >= SPEEDUP_NEEDED and loss <= LOSS_ALLOWED
    reasons = []
    if ratio < SPEEDUP_NEEDED:
        reasons.append(f"{ratio:.2f}x faster, below {SPEEDUP_NEEDED}x")
    if loss > LOSS_ALLOWED:
        reasons.append(f"{metric} {loss:+.4f} worse, beyond {LOSS_ALLOWED}")
    return {
        "model": name, "metric": metric, "scores": scores, "split": split, "speed_tiles": tiles,
        "seconds_per_pass": {k: round(v, 4) for k, v in seconds.items()}, "speedup": round(ratio, 3),
        "metric_loss": round(loss, 4), "ships": ships, "why_not": "; ".join(reasons),
    }  # fmt: skip


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "fma"})


def main() -> dict:
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--flood-methods", nargs="+", default=["MinMax", "Percentile"],
                        help="calibration methods tried on the flood model (MinMax, Percentile, Entropy)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        studies = [flood_study(Path(tmp), args.threads, args.repeats, m) for m in args.flood_methods]
        studies.append(landcover_study(Path(tmp), args.threads, args.repeats))
    result = {
        "benchmark": "ONNX Runtime static int8 (QDQ, per-channel; MinMax unless named) vs float32, same run",
        "onnxruntime": onnxruntime.__version__, "threads": args.threads, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "cpu_flags": cpu_flags(), "ship_rule": f">= {SPEEDUP_NEEDED}x and loss <= {LOSS_ALLOWED}",
        "models": studies,
    }  # fmt: skip
    return save_result("quantize", result)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
