"""The flood training recipe as one dataclass, loadable from a JSON or TOML file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..common.augment import AugmentConfig

SHIPPED_HOLDOUT = "Spain_7370579"  # the bundled demo chip: the shipped model must never have seen it


@dataclass
class FloodConfig:
    """Everything that decides a training run. Fixed a priori: no early stopping on the held-out chip."""

    recipe: str = "unet12-gain-vvshift"
    steps: int = 400
    batch: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 20
    width: int = 12
    depth: int = 3
    dice: float = 0.5  # weight of the Dice term next to weighted CE
    seed: int = 0
    threads: int = 2  # the machine is shared: never more than 2 torch threads
    eval_every: int = 50  # held-out IoU for the curve only; it does not steer training
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FloodConfig:
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown flood config keys: {', '.join(sorted(unknown))}")
        aug = data.pop("augment", {}) or {}
        aug_known = {f.name for f in fields(AugmentConfig)}
        if set(aug) - aug_known:
            raise ValueError(f"unknown augment keys: {', '.join(sorted(set(aug) - aug_known))}")
        return cls(**data, augment=AugmentConfig(**aug))


def load_config(path: str | Path | None) -> FloodConfig:
    """Defaults, overridden by a .toml or .json file when given."""
    if path is None:
        return FloodConfig()
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib  # Python >= 3.11 (QGIS 3.22 on Debian ships 3.11); JSON works everywhere

        data = tomllib.loads(text)
    else:
        data = json.loads(text)
    return FloodConfig.from_dict(data)
