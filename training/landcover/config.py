"""The land-cover recipes, fixed before the leave-one-site-out runs (training/configs/landcover.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common import config
from ..common.config import Count


@dataclass
class GbmConfig:
    """Histogram gradient boosting (scikit-learn), one tree per class and round."""

    max_iter: int = 150
    learning_rate: float = 0.1
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0


@dataclass
class RfConfig:
    """Random forest (scikit-learn)."""

    n_estimators: int = 60
    max_depth: int = 10  # with the leaf minimum, keeps an exported forest within a few MB
    min_samples_leaf: int = 20
    max_features: str = "sqrt"


@dataclass
class NetConfig:
    """Per-pixel network: the 15 features through 1x1 convolutions (an MLP applied to every pixel)."""

    hidden: int = 64
    layers: int = 2
    steps: Count = 1500
    batch: Count = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 50


@dataclass
class LandcoverConfig:
    """Everything that decides a leave-one-site-out run. Held-out sites never steer training."""

    pixels_per_site: int = 10000  # random labelled pixels per training site (all when fewer)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ("majority", "aoi_majority", "gbm", "rf", "net")
    threads: int = 1
    gbm: GbmConfig = field(default_factory=GbmConfig)
    rf: RfConfig = field(default_factory=RfConfig)
    net: NetConfig = field(default_factory=NetConfig)

    def to_dict(self) -> dict[str, Any]:
        return config.to_dict(self)


def load_config(path: str | Path | None) -> LandcoverConfig:
    """Defaults, overridden by a .toml or .json file when given."""
    return config.load(LandcoverConfig, path)
