"""The flood training recipe as one dataclass, loaded from TOML or JSON by common/config.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common import config
from ..common.augment import AugmentConfig
from ..common.config import Count
from ..common.flood_data.sen1floods11 import DEMO_CHIP

SHIPPED_HOLDOUT = DEMO_CHIP  # the fold whose model ships: trained on every chip but the demo chip


@dataclass
class FloodConfig:
    """Everything that decides a training run. Fixed a priori: no early stopping on the held-out chip."""

    recipe: str = "unet12-gain-vvshift"
    steps: Count = 400
    batch: Count = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 20
    width: Count = 12
    depth: Count = 3
    dice: float = 0.5  # weight of the Dice term next to weighted CE
    seed: int = 0
    threads: int = 2  # the machine is shared: never more than 2 torch threads
    eval_every: int = 50  # held-out IoU for the curve only; it does not steer training
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return config.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloodConfig:
        return config.from_dict(cls, data)


def load_config(path: str | Path | None) -> FloodConfig:
    """Defaults, overridden by a .toml or .json file when given."""
    return config.load(FloodConfig, path)
