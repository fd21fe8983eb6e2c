"""PIMC training loops: contrastive pre-training, then classification and forecasting on the block split."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.config import Count
from ..common.metrics import macro_f1
from .data import FORECAST, LULC_CLASSES, PATCH, PixelSet
from .evaluate import rmse
from .networks import PIMC, Classifier, Forecaster, RPEncoder, SeriesCNN


@dataclass
class PimcConfig:
    """Recipe of one PIMC run; short by design (CPU, shared machine)."""

    pre_epochs: int = 15
    epochs: Count = 10
    batch: Count = 256
    lr: float = 1e-3
    probe_steps: Count = 300


@dataclass
class Norm:
    """Scalar normalisation of network inputs, fitted on training pixels; stored in the model card."""

    rp_mean: float
    rp_std: float
    raw_mean: float
    raw_std: float

    @classmethod
    def fit(cls, ps: PixelSet, rows: np.ndarray) -> Norm:
        return cls(
            float(ps.rp[rows].mean()), float(ps.rp[rows].std() + 1e-6),
            float(ps.steps[rows].mean()), float(ps.steps[rows].std() + 1e-6),
        )  # fmt: skip


def inputs(ps: PixelSet, kind: str, norm: Norm, history: bool = False) -> torch.Tensor:
    """Network input of every pixel: 'rp' plots or 'raw' series, of the full series or of the history."""
    if kind == "rp":
        x = ps.hist_rp if history else ps.rp
        return torch.from_numpy((x - norm.rp_mean) / norm.rp_std).float()
    x = ps.hist_steps if history else ps.steps
    return torch.from_numpy((x - norm.raw_mean) / norm.raw_std).float()


def make_encoder(kind: str, channels: int) -> nn.Module:
    return RPEncoder(channels) if kind == "rp" else SeriesCNN(channels)


def gather_patches(scenes: torch.Tensor, yx: torch.Tensor, scene: torch.Tensor) -> torch.Tensor:
    """(N, B, PATCH, PATCH) patches of `scene`[i] centred on yx[i] from reflect-padded scenes."""
    d = torch.arange(PATCH)
    rows = yx[:, 0, None, None] + d[None, :, None]
    cols = yx[:, 1, None, None] + d[None, None, :]
    return scenes[scene[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def pretrain(ps: PixelSet, cfg: PimcConfig, seed: int, norm: Norm) -> tuple[PIMC, list[float]]:
    """CLIP-style pre-training on non-test pixels; each step pairs a pixel's plot with its patch in a random
    reference scene (the five dates act as natural views). Returns the model and mean loss per epoch."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    rows = np.flatnonzero(ps.split != 2)
    rp = inputs(ps, "rp", norm)
    scenes = torch.from_numpy(ps.scenes)
    yx = torch.from_numpy(ps.yx)
    model = PIMC(channels=rp.shape[1], bands=scenes.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    history = []
    for _ in range(cfg.pre_epochs):
        model.train()
        losses = []
        for batch in np.array_split(gen.permutation(rows), max(1, len(rows) // cfg.batch)):
            idx = torch.from_numpy(batch)
            scene = torch.from_numpy(gen.integers(0, len(scenes), len(batch)))
            patch = gather_patches(scenes, yx[idx], scene)
            if gen.random() < 0.5:  # flips keep the centre pixel where it is
                patch = patch.flip(-1)
            loss = model.loss(rp[idx], patch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    return model, history


def _batches(rows: np.ndarray, size: int, gen: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(gen.permutation(rows), max(1, len(rows) // size))


def _freeze(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Embeddings of all pixels by a frozen encoder (eval mode): probes then train on fixed features."""
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(x[i : i + 2048]) for i in range(0, len(x), 2048)])


def _fit(
    model: nn.Module,
    freeze: bool,
    rows: np.ndarray,
    cfg: PimcConfig,
    gen: np.random.Generator,
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    after_epoch: Callable[[], None],
) -> None:
    """AdamW epochs over shuffled training `rows`. A probe (`freeze`) trains the head only, on frozen
    features, for about cfg.probe_steps steps; otherwise everything trains for cfg.epochs."""
    params = model.head.parameters() if freeze else model.parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    epochs = cfg.probe_steps // max(1, len(rows) // cfg.batch) if freeze else cfg.epochs
    for _ in range(max(1, epochs)):
        model.train()
        if freeze:
            model.encoder.eval()
        for batch in _batches(rows, cfg.batch, gen):
            loss = batch_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        after_epoch()


def train_classifier(
    ps: PixelSet, kind: str, encoder: nn.Module, freeze: bool, cfg: PimcConfig, seed: int, norm: Norm
) -> tuple[dict[str, float], Classifier]:
    """LULC classification; the epoch with the best validation macro-F1 is kept and scored on test."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    n_classes = len(LULC_CLASSES)
    x = inputs(ps, kind, norm)
    y = torch.from_numpy(ps.target)
    model = Classifier(encoder, n_classes)
    counts = np.bincount(ps.target[(ps.split == 0) & (ps.target >= 0)], minlength=n_classes)
    weight = torch.tensor((counts.sum() / np.maximum(counts, 1)) ** 0.5, dtype=torch.float32)
    weight = weight / weight.mean()  # inverse-sqrt frequency: rare classes count, without exploding
    split = {s: np.flatnonzero((ps.split == s) & (ps.target >= 0)) for s in (0, 1, 2)}
    feats = _freeze(encoder, x) if freeze else None
    best = (-1.0, {}, None)

    def logits(rows: np.ndarray) -> torch.Tensor:
        return model.head(feats[rows]) if freeze else model(x[rows])

    def predict(rows: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            return logits(rows).argmax(1).numpy()

    def keep_best() -> None:
        nonlocal best
        val = macro_f1(predict(split[1]), ps.target[split[1]], n_classes)
        if val > best[0]:
            pred = predict(split[2])
            true = ps.target[split[2]]
            scores = {
                "val_f1": val,
                "accuracy": float(np.mean(pred == true)),
                "macro_f1": macro_f1(pred, true, n_classes),
            }
            best = (val, scores, copy.deepcopy(model.state_dict()))

    _fit(
        model,
        freeze,
        split[0],
        cfg,
        gen,
        lambda b: F.cross_entropy(logits(b), y[b], weight=weight),
        keep_best,
    )
    model.load_state_dict(best[2])
    model.eval()
    return best[1], model


def train_forecaster(
    ps: PixelSet, kind: str, encoder: nn.Module, freeze: bool, cfg: PimcConfig, seed: int, norm: Norm
) -> dict[str, float]:
    """Forecast the last 10 NDVI values from the history; best validation RMSE epoch scored on test."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    x = inputs(ps, kind, norm, history=True)
    last = torch.from_numpy(ps.last)
    fut = torch.from_numpy(ps.future)
    ok = torch.from_numpy(ps.future_ok)
    model = Forecaster(encoder, FORECAST)
    rows = {s: np.flatnonzero(ps.split == s) for s in (0, 1, 2)}
    feats = _freeze(encoder, x) if freeze else None

    def forward(r: np.ndarray) -> torch.Tensor:
        if freeze:
            f = torch.cat([feats[r], last[r, None]], dim=1)
            return last[r, None] + model.head(f)
        return model(x[r], last[r])

    def score(r: np.ndarray) -> float:
        model.eval()
        with torch.no_grad():
            return rmse(forward(r).numpy(), ps.future[r], ps.future_ok[r])

    def masked_mse(batch: np.ndarray) -> torch.Tensor:
        err = (forward(batch) - fut[batch]) ** 2
        return (err * ok[batch]).sum() / ok[batch].sum().clamp(min=1)

    best = (np.inf, np.inf)

    def keep_best() -> None:
        nonlocal best
        val = score(rows[1])
        if val < best[0]:
            best = (val, score(rows[2]))

    _fit(model, freeze, rows[0], cfg, gen, masked_mse, keep_best)
    return {"val_rmse": float(best[0]), "rmse": float(best[1])}
