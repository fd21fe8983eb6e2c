"""The study's protocol (training/configs/ownclasses.toml) as a dataclass; unknown keys are refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..common.config import load

FIXED_FEATURES = ("bands", "context")  # computed from the S2 bands; others name an [extractors] entry
CLASSIFIERS = ("lr", "rf")
METHOD_KEYS = {"features", "classifier"}
S1_EXTRACTORS = ("multimodal_s1",)  # feature sets that need S1 (the method runs on S1 sites only)


@dataclass
class LRConfig:
    C: float = 1.0
    class_weight: str = "balanced"
    max_iter: int = 2000


@dataclass
class RFConfig:
    n_estimators: int = 100
    max_features: str = "sqrt"
    min_samples_leaf: int = 1


@dataclass
class StudyConfig:
    """Sites, simulated analyst, methods and the decision rule of the study."""

    sites: list[str] = field(default_factory=list)
    slovenia_scene: int = 4
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    ks: list[int] = field(default_factory=lambda: [1, 3, 5, 10])
    sides: list[int] = field(default_factory=lambda: [5, 7, 9])
    margin: int = 1
    gap: int = 2
    buffer: int = 5
    decide_ks: list[int] = field(default_factory=lambda: [1, 3, 5])
    baselines: list[str] = field(default_factory=lambda: ["rf_bands", "rf_context"])
    target_margin: float = 0.05
    extractors: dict[str, str] = field(default_factory=dict)
    lr: LRConfig = field(default_factory=LRConfig)
    rf: RFConfig = field(default_factory=RFConfig)
    methods: dict[str, dict] = field(default_factory=dict)

    def validate(self) -> StudyConfig:
        if not self.sites or not self.methods or not self.seeds or not self.ks:
            raise ValueError("sites, methods, seeds and ks must not be empty")
        if any(s < 3 or s % 2 == 0 for s in self.sides):
            raise ValueError("polygon sides must be odd and at least 3")
        if min(self.margin, self.gap, self.buffer) < 0 or any(k < 1 for k in self.ks):
            raise ValueError("margin, gap and buffer must be >= 0 and every k >= 1")
        for name, spec in self.methods.items():
            if not isinstance(spec, dict) or set(spec) != METHOD_KEYS:
                raise ValueError(f"method '{name}' needs exactly the keys {', '.join(sorted(METHOD_KEYS))}")
            if spec["classifier"] not in CLASSIFIERS:
                raise ValueError(f"method '{name}': classifier must be one of {', '.join(CLASSIFIERS)}")
            unknown = [f for f in spec["features"] if f not in FIXED_FEATURES and f not in self.extractors]
            if not spec["features"] or unknown:
                raise ValueError(f"method '{name}': unknown feature sets {unknown or '(none given)'}")
        missing = [b for b in self.baselines if b not in self.methods]
        if missing or not set(self.decide_ks) <= set(self.ks):
            raise ValueError(f"baselines {missing} are not methods, or decide_ks are not among ks")
        return self

    def needs_s1(self, method: str) -> bool:
        return any(f in S1_EXTRACTORS for f in self.methods[method]["features"])


def load_study(path: str | Path) -> StudyConfig:
    """The protocol from a TOML/JSON file; unknown keys or bad values raise ValueError."""
    return load(StudyConfig, path).validate()
