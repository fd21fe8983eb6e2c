"""How much a few polygons help: water IoU on unlabelled parts of a scene against the number of polygons.

Protocol (docs/results/finetune.md is generated from the results file this writes):
- Scenes: real Sen1Floods11 chips with hand labels. Each 512x512 chip is cut into a checkerboard of
  128x128-pixel blocks; polygons are drawn only in the "black" blocks (label_draw.py: inside one class,
  off its boundary, as an analyst would), and water IoU is scored on the "white" blocks, which no polygon
  touches, against the hand labels (label -1 and nodata S1 ignored).
- For each polygon count (half water, half dry) and seed, the polygons are written in Web Mercator and
  the `contrasat finetune` job (run_finetune, default recipe, 1 torch thread) fits a model from the base
  model's weights ("base") and from the same network with random weights ("random"); the exported ONNX is
  run by the runtime's map-floods job, exactly as users run it.
- Next to them on the same blocks: the base model as bundled and the VH < -20 dB rule.

Resumable: finished runs are kept in the results JSON and skipped on a rerun.

    nice python -m contrasat.training.finetune.study run --out runs/finetune_study
    cp runs/finetune_study/results.json docs/results/finetune.json
    python -m contrasat.training.finetune.study report --results docs/results/finetune.json \
        --out docs/results/finetune.md
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch

from ...models.errors import InputError
from ..common.data_root import data_root
from ..common.metrics import confusion

CHIPS = ("Bolivia_312675", "Spain_7370579")
COUNTS = (2, 5, 10, 20)
SEEDS = (0, 1, 2)
INITS = ("base", "random")
BASE = "flood_s1_contrastive"
REFERENCES = (BASE, "flood_vh_threshold")
BLOCK = 128


def blocks(shape: tuple[int, int], block: int = BLOCK) -> np.ndarray:
    """True on the checkerboard blocks where polygons may be drawn; scoring uses the others."""
    rows, cols = np.indices(shape) // block
    return (rows + cols) % 2 == 0


def _paths(chip: str) -> tuple[Path, Path]:
    root = data_root() / "sen1floods11"
    return root / "S1Hand" / f"{chip}_S1Hand.tif", root / "LabelHand" / f"{chip}_LabelHand.tif"


def score_model(model: str | Path, chip: str, folder: Path) -> dict[str, Any]:
    """Water IoU of a model on the chip's scoring blocks, run by the runtime's map-floods job."""
    from ...models.pipeline import RunConfig, map_floods

    s1, label_path = _paths(chip)
    out = folder / f"map_{Path(str(model)).stem}_{chip}.tif"
    map_floods(s1, out, model=str(model), config=RunConfig(provider="cpu", threads=1))
    with rasterio.open(out) as ds:
        pred = ds.read(1)
    with rasterio.open(label_path) as ds:
        label = ds.read(1)
    counts = confusion(pred == 1, label, (~blocks(label.shape)) & (pred != 255))
    out.unlink()
    return {"iou": _num(counts.iou), "f1": _num(counts.f1), "tp": counts.tp, "fp": counts.fp, "fn": counts.fn}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def run_study(
    out: Path, chips=CHIPS, counts=COUNTS, seeds=SEEDS, inits=INITS, steps: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Every (chip, count, seed, init) fine-tune, scored; results appended to out/results.json.

    `overrides` change the recipe (FinetuneConfig fields); such runs are tagged with them, e.g. base+loss=pixel.
    """
    from .job import FinetuneConfig, run_finetune
    from .label_draw import draw_polygons, write_labels

    tag = "".join(f"+{k}={v}" for k, v in sorted((overrides or {}).items()))

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("runs", {})
    results.setdefault("references", {})
    results["protocol"] = {
        "chips": list(chips), "counts": list(counts), "seeds": list(seeds), "inits": list(inits), "base": BASE,
        "block": BLOCK, "cpu": platform.processor() or platform.machine(), "torch_threads": 1,
    }  # fmt: skip

    def save() -> None:
        path.write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory(prefix="finetune_study_") as tmp:
        scratch = Path(tmp)
        for chip in chips:
            s1, label_path = _paths(chip)
            with rasterio.open(label_path) as ds:
                label, transform, crs = ds.read(1), ds.transform, ds.crs
            for ref in REFERENCES:
                key = f"{chip}/{ref}"
                if key not in results["references"]:
                    results["references"][key] = score_model(ref, chip, scratch)
                    save()
            for n in counts:
                for seed in seeds:
                    polygons = draw_polygons(
                        label, transform, n, np.random.default_rng(seed), blocks(label.shape)
                    )
                    labels = write_labels(
                        polygons, crs, scratch / f"labels_{n}_{seed}.geojson", dst_crs="EPSG:3857"
                    )
                    for init in inits:
                        key = f"{chip}/{n}/{seed}/{init}{tag}"
                        if key in results["runs"]:
                            continue
                        cfg = FinetuneConfig(seed=seed, init=init, threads=1, **(overrides or {}))
                        if steps:
                            cfg.steps = steps
                        model = scratch / f"ft_{n}_{seed}_{init}.onnx"
                        start = time.perf_counter()
                        try:
                            result = run_finetune(
                                BASE, [str(s1)], str(labels), str(model), cfg=cfg, curve=False
                            )
                        except (
                            InputError
                        ) as exc:  # e.g. too few pixels: what a user would be told; kept as such
                            results["runs"][key] = {"chip": chip, "polygons": n, "seed": seed, "init": init + tag,
                                                    "refused": str(exc)}  # fmt: skip
                            save()
                            continue
                        seconds = time.perf_counter() - start
                        tr = result.card.training
                        results["runs"][key] = {
                            "chip": chip, "polygons": n, "seed": seed, "init": init + tag,
                            "drawn": len(polygons), "pixels": {p: {c: v["pixels"] for c, v in tr["labels"][p].items()}
                                                               for p in ("train", "heldout")},
                            "best_step": result.best_step, "steps_run": len(result.history["step"]),
                            "seconds_finetune": round(result.seconds, 1), "seconds_with_export": round(seconds, 1),
                            "heldout_iou": {k: _num(c.iou) for k, c in result.heldout.items()},
                            "score": score_model(model, chip, scratch),
                        }  # fmt: skip
                        model.unlink()
                        save()
                        print(
                            key,
                            results["runs"][key]["score"]["iou"],
                            results["runs"][key]["seconds_finetune"],
                            flush=True,
                        )
    return path


# ---- report -------------------------------------------------------------------------------------------


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """chip -> init -> polygon count -> lists over seeds: iou, s (seconds), fp, fn."""
    table: dict[str, Any] = {}
    for run in results["runs"].values():
        if "refused" in run:
            continue
        cell = table.setdefault(run["chip"], {}).setdefault(run["init"], {})
        cell = cell.setdefault(run["polygons"], {"iou": [], "s": [], "fp": [], "fn": []})
        cell["iou"].append(run["score"]["iou"] if run["score"]["iou"] is not None else math.nan)
        cell["s"].append(run["seconds_finetune"])
        cell["fp"].append(run["score"]["fp"])
        cell["fn"].append(run["score"]["fn"])
    return table


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(results)
    chips = list(table)
    fig, axes = plt.subplots(1, len(chips), figsize=(5 * len(chips), 3.6), squeeze=False)
    colors = {"base": "#1f78b4", "random": "#ff7f00"}
    names = {"base": f"fine-tuned from {BASE}", "random": "same network, random init"}
    for ax, chip in zip(axes[0], chips, strict=True):
        for init, cells in table[chip].items():
            ns = sorted(cells)
            mean = [np.nanmean(cells[n]["iou"]) for n in ns]
            std = [np.nanstd(cells[n]["iou"]) for n in ns]
            ax.errorbar(
                ns, mean, yerr=std, marker="o", capsize=3, color=colors.get(init), label=names.get(init, init)
            )
            for n in ns:
                ax.plot([n] * len(cells[n]["iou"]), cells[n]["iou"], ".", color=colors.get(init), alpha=0.4)
        refs = results["references"]
        ax.axhline(refs[f"{chip}/{BASE}"]["iou"] or 0, color="#1f78b4", ls=":", label=f"{BASE} as bundled")
        ax.axhline(
            refs[f"{chip}/flood_vh_threshold"]["iou"] or 0, color="#e31a1c", ls="--", label="VH < -20 dB"
        )
        ax.set_xscale("log")
        ticks = sorted({r["polygons"] for r in results["runs"].values() if "refused" not in r})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_ylim(0, 1)
        ax.set_xlabel("labelled polygons (half water, half dry)")
        ax.set_ylabel("water IoU on unlabelled blocks")
        ax.set_title(chip, fontsize=10)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _f(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def verdict(results: dict[str, Any], table: dict[str, Any], n: int = 10) -> list[str]:
    """The issue's target, checked from the results: with `n` polygons, beat the bundled model and the rule."""
    lines = [f"## Target: with {n} polygons, beat both the bundled model and VH < -20 dB", ""]
    for chip, inits in table.items():
        if n not in inits.get("base", {}):
            continue
        cell = inits["base"][n]
        mean = float(np.nanmean(cell["iou"]))
        bundled = results["references"][f"{chip}/{BASE}"]["iou"] or 0.0
        vh = results["references"][f"{chip}/flood_vh_threshold"]["iou"] or 0.0
        beats = [name for name, ref in (("the bundled model", bundled), ("VH < -20 dB", vh)) if mean > ref]
        loses = [name for name, ref in (("the bundled model", bundled), ("VH < -20 dB", vh)) if mean <= ref]
        status = "met" if not loses else "not met"
        lines.append(
            f"- {chip}: **{status}** — fine-tuned from {BASE} {mean:.3f} (mean of {len(cell['iou'])} seeds, "
            f"{np.mean(cell['s']):.0f} s each); beats {', '.join(beats) or 'neither'}"
            + (f"; not {', '.join(loses)}" if loses else "")
            + f". Mean false water {np.mean(cell['fp']):.0f} px vs VH's {results['references'][f'{chip}/flood_vh_threshold']['fp']} px."
        )
    return [*lines, ""]


def write_report(results_path: Path, out: Path) -> Path:
    """The results page (markdown + PNG) from the results file."""
    results = json.loads(results_path.read_text())
    table = summarise(results)
    png = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(results, png)
    proto = results["protocol"]
    lines = [
        "# Fine-tuning on an analyst's own polygons",
        "",
        f"Generated by `python -m contrasat.training.finetune.study report` from `{results_path.name}`; "
        "do not edit by hand. Code: `training/finetune/job.py` (the `contrasat finetune` job), "
        "`training/finetune/study.py` (this protocol).",
        "",
        "**Protocol.** Each real Sen1Floods11 chip (512x512, hand labels) is cut into a checkerboard of "
        f"{proto['block']}x{proto['block']}-pixel blocks. Polygons are drawn automatically from the hand labels "
        "in one colour of blocks only (inside one class, at least 2 px off its boundary, 13–41 px across, half "
        "water and half dry, as an analyst would draw them), written in Web Mercator and given to "
        "`contrasat finetune` with its default recipe (200 steps at most, encoder frozen for the first half, "
        "25 % of each class's polygons held back for early stopping when a class has two or more). Water IoU "
        "is measured on the other colour of blocks, which no polygon touches, by running the exported ONNX "
        "model through the runtime's map-floods job. *base*: starts from the bundled "
        f"`{proto['base']}` (encoder pre-trained contrastively on S1/S2 pairs, then a flood decoder); "
        "*random*: the same network and recipe from random weights. "
        f"Seeds {', '.join(map(str, proto['seeds']))} (the seed draws the polygons and drives training). "
        f"Times: one fine-tune (reading labels, training, held-back scoring; export not included) on one torch "
        f"thread of this machine's CPU ({proto['cpu']}), run under `nice` next to other jobs.",
        "",
        "Not measured here: a SimCLR-pre-trained start (no SimCLR S1 encoder is bundled; the contrastive "
        "kit's grid in [contrastive.md](contrastive.md) compares pre-training methods on the labelled chips).",
        "",
        f"![water IoU against polygon count]({png.name})",
        "",
    ]
    for chip, inits in table.items():
        refs = results["references"]
        bundled, vh = refs[f"{chip}/{BASE}"], refs[f"{chip}/flood_vh_threshold"]
        lines += [
            f"## {chip}",
            "",
            f"On the same unlabelled blocks: `{BASE}` as bundled **{_f(bundled['iou'])}** (false water "
            f"{bundled['fp']} px, missed water {bundled['fn']} px), VH < -20 dB **{_f(vh['iou'])}** "
            f"({vh['fp']} / {vh['fn']} px).",
            "",
            "| polygons | start | water IoU mean ± std | per seed | false / missed water px (mean) | seconds (mean) |",
            "| ---: | --- | --- | --- | ---: | ---: |",
        ]
        for n in sorted({k for cells in inits.values() for k in cells}):
            for init, cells in inits.items():
                if n not in cells:
                    continue
                iou = cells[n]["iou"]
                lines.append(
                    f"| {n} | {init} | {_f(float(np.nanmean(iou)))} ± {_f(float(np.nanstd(iou)))} | "
                    f"{', '.join(_f(v) for v in iou)} | {np.mean(cells[n]['fp']):.0f} / {np.mean(cells[n]['fn']):.0f} | "
                    f"{np.mean(cells[n]['s']):.0f} |"
                )
        lines.append("")
    lines += verdict(results, table)
    refused = [f"{k} ({r['refused']})" for k, r in results["runs"].items() if "refused" in r]
    if refused:
        lines += [f"Refused by the job (left out above): {'; '.join(refused)}.", ""]
    seconds = [r["seconds_finetune"] for r in results["runs"].values() if "refused" not in r]
    lines += [
        f"All {len(seconds)} fine-tunes: {np.median(seconds):.0f} s median, {max(seconds):.0f} s at most.",
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def _setting(text: str) -> tuple[str, Any]:
    """KEY=VALUE as a FinetuneConfig field with its type (bool, int, float or str)."""
    from dataclasses import fields

    from .job import FinetuneConfig

    key, _, value = text.partition("=")
    kinds = {f.name: f.type for f in fields(FinetuneConfig)}
    if key not in kinds:
        raise SystemExit(f"unknown recipe key {key!r} (keys: {', '.join(kinds)})")
    kind = kinds[key]
    if kind == "bool":
        return key, value.lower() in ("1", "true", "yes")
    return key, int(value) if kind == "int" else float(value) if kind == "float" else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contrasat.training.finetune.study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run (or resume) the study")
    p.add_argument("--out", type=Path, default=Path("runs/finetune_study"))
    p.add_argument("--chips", nargs="+", default=list(CHIPS))
    p.add_argument("--counts", nargs="+", type=int, default=list(COUNTS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--steps", type=int, default=None, help="override the recipe's steps (tests)")
    p.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="recipe overrides (e.g. loss=pixel unfreeze=false); runs are tagged with them",
    )
    p = sub.add_parser("report", help="write the results page")
    p.add_argument("--results", type=Path, default=Path("docs/results/finetune.json"))
    p.add_argument("--out", type=Path, default=Path("docs/results/finetune.md"))
    args = parser.parse_args(argv)
    if args.command == "run":
        overrides = dict(_setting(text) for text in args.set)
        print(
            run_study(
                args.out,
                args.chips,
                args.counts,
                args.seeds,
                args.inits,
                steps=args.steps,
                overrides=overrides,
            )
        )
    else:
        print(write_report(args.results, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
