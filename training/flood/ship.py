"""Train the shipped flood recipe on every region but the demo chip, export it to ONNX with its card.

`--safeguard union` wraps the network so that p(water) = max(p_network, p_rule), p_rule being the fixed
VH < -20 dB rule as a steep sigmoid; both run inside the one ONNX graph.

    nice contrasat train flood ship --config training/configs/flood_loro.toml \
        --recipe mean-resid7-unet8-level --name flood_s1_ensemble --out models/weights/flood_s1_ensemble.onnx
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ...models.card import ClassInfo, ModelCard, read_card, write_card
from ..common.export import export_s1_net
from ..common.flood_data.regions import load_region, regions
from ..common.flood_data.sen1floods11 import DEMO_CHIP
from ..common.loro.tables import pooled, seeds_iou
from ..common.metrics import counts_iou
from ..common.networks.anchored import AnchoredContext, network_entry
from .region_runs import aligned, load_plan, train_recipe
from .region_tables import recipe_table
from .safeguard import VH, receptive_field
from .stress import load_fixture, onnx_predictor, score
from .threshold import SHARPNESS, THRESHOLD_DB

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "flood_stress" / "stress.npz"
CREDITS = (
    "Sen1Floods11 hand-labelled chips (Bonafilia et al., CVPR Workshops 2020, CC-BY-4.0); ETCI 2021 flood "
    "detection tiles (NASA IMPACT / IEEE GRSS, Copernicus Sentinel-1; research use with credit); OMBRIA "
    "(Drakonakis et al., IEEE JSTARS 2022, Copernicus Sentinel/EMS; research use with credit)"
)


# the anchored network's receptive field is about 45 px (3x3 layers at strides 1-8 plus bilinear upsampling),
# yet the overlap study (bench/overlap.py, docs/benchmarks.md) finds its classes with no overlap at all equal
# to a whole-chip run on 99.94 % of pixels (worst chip 99.81 %, tile seams 99.74 %; target 99.5 %): the far
# context weights matter little, and overlap costs pixels (32 px: 1.32x at tile 256)
CONTEXT_OVERLAP = 0
# ...but an area of interest is another matter: without the raster around it, pixels within ~30 px of the
# AOI's edge lose their context, and an AOI corner off the network's 8-px stride grid shifts the context
# branch's phase. Reading 32 px of surroundings (tiled_job.with_surroundings) brings an AOI map to 99.87 %+
# agreement with the whole map at tiles 128 and 256 (99.05 % without; tests/models/test_flood_stress.py)
CONTEXT_MARGIN = 32


class UnionWithRule(nn.Module):
    """Logits whose softmax gives p(water) = max(p_net, sigmoid(k * (threshold - VH dB)))."""

    def __init__(self, net: nn.Module, vh_mean: float, vh_std: float) -> None:
        super().__init__()
        self.net = net
        self.vh_mean, self.vh_std = float(vh_mean), float(vh_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p_net = torch.softmax(self.net(x), dim=1)[:, 1:2]
        vh_db = x[:, VH : VH + 1] * self.vh_std + self.vh_mean
        p = torch.maximum(p_net, torch.sigmoid(SHARPNESS * (THRESHOLD_DB - vh_db))).clamp(1e-6, 1 - 1e-6)
        z = torch.log(p) - torch.log1p(-p)
        return torch.cat([torch.zeros_like(z), z], dim=1)


def card_for(name: str, spec, recipe, safeguard: str | None, loro: dict | None, stress: dict | None,
             params: int, rf: int | None, train_regions: list[str], network: dict | None = None) -> ModelCard:  # fmt: skip
    """The card: inputs, classes, LORO metrics with their split, stress figures, data use and safeguard.

    `network` (the `training.network` entry of a fine-tunable network, networks/anchored.py) lets
    `contrasat finetune` rebuild the torch network from the file."""
    guard = (
        "p(water) = max(network, VH < -20 dB rule as a sigmoid), inside the ONNX graph"
        if safeguard == "union"
        else "none beyond the architecture: the water logit is a learned VH threshold plus a small-context residual"
        if rf or network
        else "none"
    )
    metrics = {}
    if loro:
        metrics["loro"] = loro
    if stress:
        metrics["stress"] = {
            "figures": stress,
            "fixture": "tests/fixtures/flood_stress (real labelled pixels)",
        }
    return ModelCard(
        name=name, task="flood", inputs=[spec],
        classes=[ClassInfo(0, "dry", "#00000000"), ClassInfo(1, "water", "#1f78b4ff")],
        # a small receptive field needs only rf + 1 px of overlap for seamless tiles; 512-px tiles halve the
        # per-tile overhead of 256 (tile independence is asserted in tests/models/test_flood_stress.py)
        tile_size=512 if rf or network else 256,
        overlap=max(8, rf + 1) if rf else CONTEXT_OVERLAP if network else 32, resolution_m=10.0,
        context_margin=CONTEXT_MARGIN if network else 0,
        output_kind="probabilities",
        description=(
            "Sentinel-1 [VV, VH] dB -> p(water). "
            + (f"VH-threshold-anchored network with a {rf}x{rf}-pixel receptive field"
               if rf else "one VH-threshold-anchored network: a 3x3 full-resolution branch and a context branch "
               f"at 1/2-1/8 resolution (context channels {recipe.context or [16, 24, 32]})"
               if network else f"mean p(water) of the networks of recipes {' and '.join(recipe.members)}"
               if recipe.members else f"U-Net (width {recipe.width}, {recipe.layers} levels)")
            + ", trained on Sen1Floods11, ETCI 2021 and OMBRIA with gain/offset, "
            f"bright-VV and VV-dropout augmentation. Safeguard: {guard}." + (
                f" Scene level alignment: each input raster is shifted by one dB value so that its dry-land "
                f"{spec.level['band']} peak sits at {spec.level['reference_db']:g} dB (searched within "
                f"+-{spec.level['bound_db']:g} dB; scenes without such a peak are left as they are)."
                if spec.level else "")
        ),
        metrics=metrics,
        training={
            "data": f"{CREDITS}; trained on {len(train_regions)} regions: {', '.join(train_regions)}",
            "etci_ombria_use": "8-bit images mapped to dB by per-source linear maps fitted to Sen1Floods11 "
            "water/dry deciles (training/configs/flood_calibration.json); OMBRIA is VV only: its VH enters as "
            "missing (the training mean, as the runtime fills nodata); OMBRIA pixels dark before the flood "
            "and not flood-labelled are ignored",
            "recipe": vars(recipe), "params": params, "safeguard": safeguard or "none",
            **({"network": network} if network else {}),
            "normalisation": "clip dB to [-50, 5], (x - mean) / std over the training chips with both bands",
            "code": "contrasat.training.common (flood_data, loro) and contrasat.training.flood (region_runs, safeguard, ship)",
        },
        license="GPL-2.0-or-later",
    ).validate()  # fmt: skip


LORO_SPLIT = (
    "leave-one-region-out (training/configs/flood_loro.toml): regions = each Sen1Floods11 chip, each ETCI 2021 "
    "scene, OMBRIA by group (4 named 2021 events, OmbriaS1 train, OmbriaS1 test), grouped into 6 folds; each "
    "held-out region scored on its own; pooled IoU = sum of intersections / sum of unions; mean over seeds"
)


def loro_metrics(table: dict, recipe: str, method: str) -> dict:
    """Card metrics from the LORO results file: per-region and pooled IoU of the shipped method and baselines."""
    t = recipe_table(table, recipe)
    rows = t["rows"]
    per = {}
    for r, row in rows.items():
        mean, sd, _ = seeds_iou([s.get(method) for s in row["seeds"]])
        per[r] = {"shipped": None if mean != mean else round(mean, 4),
                  "fixed_vh_-20dB": round(counts_iou(row["seeds"][0]["fixed_vh_-20dB"]), 4) if row["seeds"][0]["fixed_vh_-20dB"] else None,
                  "otsu": round(counts_iou(row["seeds"][0]["otsu"]), 4)}  # fmt: skip
    vh = [r for r, row in rows.items() if row["source"] != "ombria"]
    mean, sd, _ = seeds_iou([pooled(rows, vh, method, k) for k in range(len(t["seeds"]))])
    return {
        "split": LORO_SPLIT, "recipe": recipe, "method": method, "seeds": t["seeds"],
        "pooled_water_iou_regions_with_vh": {"shipped": round(mean, 4), "shipped_sd": round(sd, 4),
            "fixed_vh_-20dB": round(counts_iou(pooled(rows, vh, "fixed_vh_-20dB", 0)), 4),
            "otsu": round(counts_iou(pooled(rows, vh, "otsu", 0)), 4)},
        "per_region_water_iou": per,
        # said outright: the project's bar is beating the VH rule on every held-out region
        "regions_below_vh_rule": {r: v for r, v in per.items()
                                  if v["shipped"] is not None and v["fixed_vh_-20dB"] is not None
                                  and v["shipped"] < v["fixed_vh_-20dB"]},
    }  # fmt: skip


def speed_metrics(speed: dict, key: str) -> dict:
    """Card metrics from bench/results/model_speed.json: this model's bare-ORT speed against the reference's."""
    m = speed["models"][key]
    return {
        "benchmark": speed["benchmark"], "code": "bench/model_speed.py", "reference": speed["reference"],
        "tiles": speed["tiles"], "tile": speed["tile"], "batch": speed["batch"], "cpu_count": speed["cpu_count"],
        "mpx_per_s": m["mpx_per_s"], "speedup_over_reference": m["speedup_over_reference"],
        "load_average_before": speed["load_average_before"][0], "load_average_after": speed["load_average_after"][0],
    }  # fmt: skip


def recard(path: Path, table: dict, recipe: str, method: str, speed: dict | None = None) -> None:
    """Put the final LORO figures (and the bare-ORT speed, when given) into an exported model's card; the
    weights stay as they are."""
    card = read_card(path)
    card.metrics["loro"] = loro_metrics(table, recipe, method)
    if speed is not None:
        card.metrics["speed"] = speed
    write_card(path, card.validate())


def ship(
    config: Path, recipe_name: str, out: Path, name: str, seed: int = 0, safeguard: str = "none",
    loro_path: Path | None = None, also_plain: Path | None = None,
) -> None:  # fmt: skip
    """Train `recipe_name` of the plan on every region but the demo chip, export it (and the plain network
    when `also_plain`) with cards carrying its stress figures, written beside each file as .stress.json."""
    plan = load_plan(config)[0]
    recipe = next(r for r in plan if r.name == recipe_name)
    data = {r.name: aligned(load_region(r), recipe.level)
            for r in regions() if r.name != DEMO_CHIP and r.source in recipe.sources}  # fmt: skip
    net, spec = train_recipe(recipe, {r.name: r for r in plan}, data, seed)
    rf = receptive_field(net) if hasattr(net, "body") else None
    network = network_entry(net) if isinstance(net, AnchoredContext) else None
    model = UnionWithRule(net, spec.mean[VH], spec.std[VH]).eval() if safeguard == "union" else net
    loro = json.loads(loro_path.read_text()) if loro_path else None
    params = sum(p.numel() for p in net.parameters())
    for guard, path, exported in ((safeguard, out, model), (None, also_plain, net)):
        if path is None:
            continue
        export_s1_net(
            exported, card_for(name, spec, recipe, guard, loro, None, params, rf, sorted(data), network), path
        )
        stress = score(onnx_predictor(path), load_fixture(FIXTURE))
        card = card_for(name, spec, recipe, guard, loro, stress, params, rf, sorted(data), network)
        diff = export_s1_net(exported, card, path)
        path.with_suffix(".stress.json").write_text(json.dumps(stress, indent=1), encoding="utf-8")
        print(f"wrote {path} (ORT vs torch {diff:.1e}); stress: {json.dumps(stress, indent=1)}")
