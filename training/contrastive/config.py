"""Recipes as dataclasses (loaded by common/config.py from TOML or JSON): pre-training, fine-tuning, experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..common.config import Count
from ..common.flood_data.sen1floods11 import DEMO_CHIP
from .views import AugConfig

METHODS = ("multimodal", "simclr_s1", "simclr_s2")
# Test scenes of the downstream tasks never enter pre-training, not even unlabelled.
HELD_OUT_FLOOD_CHIP = DEMO_CHIP  # the bundled flood model's held-out chip: comparable numbers
HELD_OUT_LC_SITE = "282D_485L_3_3"  # TerraMind site scored for land cover (water, trees, bare, rangeland)


@dataclass
class PretrainConfig:
    """One pre-training run. `method` picks the loss and which encoder(s) learn."""

    method: str = "multimodal"
    sources: list[str] = field(default_factory=lambda: ["terramind", "sen1floods11", "bigearthnet"])
    exclude: list[str] = field(default_factory=lambda: [HELD_OUT_FLOOD_CHIP, HELD_OUT_LC_SITE])
    ssl4eo_root: str = ""  # an SSL4EO-S12 tree to add (source "ssl4eo")
    steps: Count = 200
    batch: Count = 32
    crop: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 10
    temperature: float = 0.1
    width: int = 16
    proj_dim: int = 32
    seed: int = 0
    threads: int = 1
    ckpt_every: int = 50
    aug: AugConfig = field(default_factory=AugConfig)

    def validate(self) -> PretrainConfig:
        if self.method not in METHODS:
            raise ValueError(f"method '{self.method}' is not one of {', '.join(METHODS)}")
        if self.crop % 4 or self.crop < 16:
            raise ValueError("crop must be a multiple of 4 and at least 16")
        if self.steps < 1 or self.batch < 2 or self.temperature <= 0:
            raise ValueError("steps >= 1, batch >= 2 and temperature > 0 are required")
        return self


@dataclass
class FinetuneConfig:
    """One downstream run: task, which pre-trained encoder(s), frozen or fine-tuned, how many labels."""

    task: str = "flood_s1"  # flood_s1 | flood_fusion | landcover_s2
    init: str = "random"  # random | path to a pre-training run directory (holding encoder.pt)
    mode: str = "finetune"  # frozen | finetune
    fraction: str = "all"  # one | all (labelled chips / sites)
    steps: Count = 150
    batch: Count = 16
    crop: int = 64
    lr: float = 3e-3
    encoder_lr_scale: float = 0.3  # fine-tuned encoders move slower than the fresh decoder
    weight_decay: float = 1e-4
    width: int = 16
    seed: int = 0
    threads: int = 1
    s2_dropout: float = 0.3  # fusion: chance an S1+S2 sample is shown without S2 (as for S1-only chips)

    def validate(self) -> FinetuneConfig:
        if self.task not in ("flood_s1", "flood_fusion", "landcover_s2"):
            raise ValueError(f"unknown task '{self.task}'")
        if self.mode not in ("frozen", "finetune") or self.fraction not in ("one", "all"):
            raise ValueError("mode must be frozen|finetune and fraction one|all")
        return self


@dataclass
class ExperimentConfig:
    """The grid: methods x tasks x modes x label fractions x seeds, with fixed recipes."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tasks: list[str] = field(default_factory=lambda: ["flood_s1", "flood_fusion", "landcover_s2"])
    modes: list[str] = field(default_factory=lambda: ["frozen", "finetune"])
    fractions: list[str] = field(default_factory=lambda: ["one", "all"])
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
