"""The methods compared leave-one-site-out: majority class, gradient boosting, random forest, pixel network.

Every learned method sees the same sampled training pixels with the same class weights (square root of
inverse frequency: rare classes count more without a 90-pixel class dominating), and predicts TerraMind codes.
"""

from __future__ import annotations

import numpy as np

from .config import GbmConfig, NetConfig, RfConfig
from .data import N_CLASSES, Site
from .features import features


def sample_pixels(sites: list[Site], per_site: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `per_site` random labelled pixels of each site: (N, 13) reflectance, (N,) labels."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for site in sites:
        x, y = site.pixels()
        if len(y) > per_site:
            keep = np.sort(rng.choice(len(y), per_site, replace=False))
            x, y = x[keep], y[keep]
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights: 1/sqrt(class frequency), scaled to mean 1."""
    counts = np.bincount(y, minlength=N_CLASSES).astype(np.float64)
    w = np.zeros(N_CLASSES)
    w[counts > 0] = counts[counts > 0] ** -0.5
    sw = w[y]
    return sw / sw.mean()


def majority_class(sites: list[Site]) -> int:
    """The most common labelled class over every pixel of the given (training) sites."""
    counts = np.zeros(N_CLASSES, dtype=np.int64)
    for site in sites:
        counts += np.bincount(site.pixels()[1], minlength=N_CLASSES)
    return int(np.argmax(counts))


def fit_gbm(x: np.ndarray, y: np.ndarray, cfg: GbmConfig, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
        min_samples_leaf=cfg.min_samples_leaf, l2_regularization=cfg.l2_regularization,
        early_stopping=False, random_state=seed,
    )  # fmt: skip
    return model.fit(features(x), y, sample_weight=class_weights(y))


def fit_rf(x: np.ndarray, y: np.ndarray, cfg: RfConfig, seed: int):
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=cfg.n_estimators, max_depth=cfg.max_depth, min_samples_leaf=cfg.min_samples_leaf,
        max_features=cfg.max_features, n_jobs=1, random_state=seed,
    )  # fmt: skip
    return model.fit(features(x), y, sample_weight=class_weights(y))


def predict_sklearn(model, x: np.ndarray) -> np.ndarray:
    """TerraMind codes for (N, 13) reflectance."""
    return model.predict(features(x)).astype(np.uint8)


def norm_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-band mean and std of training reflectance: the card normalisation of a model trained on `x`."""
    std = np.maximum(x.std(0), 1.0)
    return [round(float(v), 4) for v in x.mean(0)], [round(float(v), 4) for v in std]


def fit_net(x: np.ndarray, y: np.ndarray, cfg: NetConfig, seed: int, clip: tuple[float, float]):
    """A PixelNet trained on (N, 13) reflectance; returns the network in eval mode (logits out)."""
    import torch

    from ..common.schedule import scheduler
    from .networks import PixelNet

    torch.manual_seed(seed)
    mean, std = norm_stats(x)
    net = PixelNet(mean, std, clip, hidden=cfg.hidden, layers=cfg.layers)
    xin = torch.from_numpy(((x - np.float32(mean)) / np.float32(std)).astype(np.float32))[:, :, None, None]
    target = torch.from_numpy(y.astype(np.int64))
    counts = np.bincount(y, minlength=N_CLASSES).astype(np.float64)
    w = np.where(counts > 0, np.maximum(counts, 1) ** -0.5, 0.0)
    weight = torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = scheduler(opt, cfg.warmup, cfg.steps)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(cfg.steps):
        idx = torch.randint(0, len(target), (cfg.batch,), generator=gen)
        logits = net(xin[idx])[:, :, 0, 0]
        loss = torch.nn.functional.cross_entropy(logits, target[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def predict_net(net, x: np.ndarray) -> np.ndarray:
    import torch

    mean, std = np.float32(net.card_mean), np.float32(net.card_std)
    xin = torch.from_numpy(((x - mean) / std).astype(np.float32))[:, :, None, None]
    with torch.no_grad():
        return net(xin)[:, :, 0, 0].argmax(1).numpy().astype(np.uint8)
