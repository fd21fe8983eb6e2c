"""Bundled models: where their weights live and which one a task uses by default."""

from __future__ import annotations

from pathlib import Path

from .card import BUNDLED_DIR, ModelCard, read_card
from .errors import ModelError

WEIGHTS_DIR = BUNDLED_DIR

# The default per task; other bundled models are picked by name or path.
DEFAULTS: dict[str, str] = {
    "flood": "flood_s1_anchored",
    "land_cover": "landcover_s2",
    "pixel_timeseries": "pixel_ts_landcover",
}
# The model fine-tuning starts from unless told otherwise: the default flood model itself, so that the analyst
# refines the model they map with (one network, its torch parameters in the file).
FINETUNE_BASE = "flood_s1_anchored"


def bundled_models() -> list[tuple[Path, ModelCard]]:
    """(path, card) of every readable model shipped in models/weights, sorted by name."""
    found = []
    for path in sorted(WEIGHTS_DIR.glob("*.onnx")):
        try:
            found.append((path, read_card(path)))
        except ModelError:
            continue  # a damaged bundled file must not hide the others from `contrasat models`
    return found


def default_model_path(task: str) -> Path:
    """Path of the default bundled model for `task`."""
    name = DEFAULTS.get(task)
    named = WEIGHTS_DIR / f"{name}.onnx"
    try:  # the usual case: one card read, not every bundled model's
        if name and read_card(named).task == task:
            return named
    except ModelError:
        pass  # damaged or missing: the first other bundled model of the task, as below
    candidates = [p for p, c in bundled_models() if c.task == task]
    for path in candidates:
        if path.stem == name:
            return path
    if candidates:
        return candidates[0]
    raise ModelError(f"no bundled model for task '{task}' in {WEIGHTS_DIR}")


def resolve_model(name_or_path: str | Path | None, task: str) -> Path:
    """A model given by bundled name, by file path, or None for the task's default."""
    if name_or_path is None or str(name_or_path) == "":
        return default_model_path(task)
    path = Path(name_or_path)
    if path.suffix == ".onnx" or path.exists() or "/" in str(name_or_path):
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path
    bundled = WEIGHTS_DIR / f"{name_or_path}.onnx"
    if bundled.is_file():
        return bundled
    names = ", ".join(p.stem for p, _ in bundled_models()) or "none"
    raise ModelError(f"unknown model '{name_or_path}' (bundled: {names})")
