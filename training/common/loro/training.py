"""The LORO training loop: region-balanced crops with the protocol's augmentation, flood loss, one-cycle LR.

Every step draws regions uniformly, then a chip of the region, so a region with many chips (an ETCI scene)
weighs no more than a single Sen1Floods11 chip.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from ....models.card import InputSpec
from ....models.preprocess import prepare
from ..flood_data.regions import IGNORE, Chip
from ..losses import flood_loss, water_weight


class CropAugment(Protocol):
    """The augmentation fields a recipe carries (the flood kit's Recipe, the contrastive kit's budget)."""

    crop: int
    gain_db: float  # same +- offset on both bands (calibration, incidence)
    vv_water_raise_db: float  # VV raised by U(0, this), half the samples, on...
    vv_raise_scope: str  # ..."water" pixels only, or "all" pixels (then VV level is no water cue)
    vv_dropout: float  # VV replaced by missing (the training mean after prepare)
    noise_db: float


def augment(chip: Chip, r: CropAugment, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random crop with a dihedral flip/rotation and the recipe's radiometric changes (dB, NaN = missing)."""
    h, w = chip.label.shape
    y0, x0 = int(rng.integers(0, h - r.crop + 1)), int(rng.integers(0, w - r.crop + 1))
    img = chip.s1[:, y0 : y0 + r.crop, x0 : x0 + r.crop].copy()
    lab = chip.label[y0 : y0 + r.crop, x0 : x0 + r.crop].copy()
    k = int(rng.integers(4))
    img, lab = np.rot90(img, k, axes=(1, 2)), np.rot90(lab, k)
    if rng.random() < 0.5:
        img, lab = img[:, :, ::-1], lab[:, ::-1]
    img, lab = np.ascontiguousarray(img), np.ascontiguousarray(lab)
    img += rng.uniform(-r.gain_db, r.gain_db)
    band_db = getattr(r, "band_db", 0.0)  # two dates as two bands (flood/change_loro.py): each its own level
    if band_db > 0:
        img += rng.uniform(-band_db, band_db, (img.shape[0], 1, 1)).astype(np.float32)
    if rng.random() < 0.5:
        img[0][(lab == 1) | (r.vv_raise_scope == "all")] += rng.uniform(0, r.vv_water_raise_db)
    if r.noise_db > 0:
        img += rng.normal(0, rng.uniform(0, r.noise_db), img.shape).astype(np.float32)
    if rng.random() < r.vv_dropout:
        img[0] = np.nan
    lab[~np.any(np.isfinite(img), axis=0)] = IGNORE
    return img, lab


def water_share(data: dict[str, list[Chip]]) -> float:
    """Mean over regions of the mean water share of their chips (what the region-balanced draw sees)."""
    names = sorted(data)
    return float(
        np.mean([np.mean([(c.label == 1).sum() / max(1, c.valid.sum()) for c in data[n]]) for n in names])
    )


def train_region_balanced(
    net: torch.nn.Module,
    groups: list[dict[str, Any]],
    data: dict[str, list[Chip]],
    aug: CropAugment,
    spec: InputSpec,
    steps: int,
    batch: int,
    dice: float,
    rng: np.random.Generator,
    teacher: torch.nn.Module | None = None,
    distill: float = 0.0,
    unlabelled: list[Chip] | None = None,
) -> torch.nn.Module:
    """Train `net` (parameter `groups`, each with its peak "lr") on the regions in `data`; returns it in eval
    mode. AdamW (weight decay 1e-4) under a one-cycle schedule, 10 % warm-up; inputs through the runtime's
    own `prepare` with `spec`. With a `teacher` (same input spec), `distill` x the binary cross-entropy from
    the teacher's p(water) to the network's is added on every crop pixel that holds data, labelled or not;
    with `unlabelled` scenes too (labels all IGNORE), each step adds one batch of their crops on which only
    that distillation term acts."""
    names = sorted(data)
    w_water = water_weight(water_share(data))
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.1
    )
    for _ in range(steps):
        xs, ys, has = [], [], []
        for _ in range(batch):
            region = data[names[int(rng.integers(len(names)))]]
            img, lab = augment(region[int(rng.integers(len(region)))], aug, rng)
            xs.append(prepare(img, spec))
            ys.append(lab)
            has.append(np.any(np.isfinite(img), axis=0))
        net.train()
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
        # a network with members inside one graph (networks/anchored.py, pair) trains each member on the
        # labels on its own, as an ensemble's members are trained
        outs = net.member_logits(x) if hasattr(net, "member_logits") else [net(x)]
        loss = sum(flood_loss(o, y, w_water, dice) for o in outs)
        if teacher is not None and distill > 0:
            out = net(x) if len(outs) > 1 else outs[0]
            loss = loss + distill * _distill_loss(teacher, x, out, np.stack(has))
            if unlabelled:
                crops = [
                    augment(unlabelled[int(rng.integers(len(unlabelled)))], aug, rng)[0] for _ in range(batch)
                ]
                xu = torch.from_numpy(np.stack([prepare(c, spec) for c in crops]))
                keep = np.stack([np.any(np.isfinite(c), axis=0) for c in crops])
                loss = loss + distill * _distill_loss(teacher, xu, net(xu), keep)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _distill_loss(
    teacher: torch.nn.Module, x: torch.Tensor, out: torch.Tensor, keep: np.ndarray
) -> torch.Tensor:
    """Binary cross-entropy from the teacher's p(water) on `x` to the network's water logit in `out`,
    over the pixels in `keep` (those holding data)."""
    with torch.no_grad():
        target = torch.softmax(teacher(x), dim=1)[:, 1]
    z = out[:, 1] - out[:, 0]  # the network's water logit
    mask = torch.from_numpy(keep)
    return F.binary_cross_entropy_with_logits(z[mask], target[mask])


@torch.no_grad()
def predict(net: torch.nn.Module, spec: InputSpec, chips: list[Chip], batch: int = 16) -> list[np.ndarray]:
    """Water masks (p > 0.5) of whole chips; missing bands enter as the training mean, like nodata."""
    out: list[np.ndarray] = []
    for i in range(0, len(chips), batch):
        group = chips[i : i + batch]
        shapes = {c.label.shape for c in group}
        if len(shapes) > 1:
            out += [m for c in group for m in predict(net, spec, [c], batch)]
            continue
        x = torch.from_numpy(np.stack([prepare(c.s1, spec) for c in group]))
        out += list(torch.softmax(net(x), dim=1)[:, 1].numpy() > 0.5)
    return out
