"""Execution settings kept in QgsSettings under `contrasat/`: the runtime's Execution type, loaded and saved.

What a job runs with is models/execution.py's `Execution` (provider, CUDA device, threads, tile, overlap,
batch, workers; "auto" and "model" spelled out), the same type the job table, the CLI and the pipeline use;
the plugin adds only the output folder. Engine command-line options come from it when a job starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from qgis.core import QgsSettings

from ..models.execution import AUTO, MODEL_DEFAULT, PROVIDERS, WORDS, Execution

PREFIX = "contrasat/"
# Keys written before the settings were an Execution (tile_size, batch_size), read when the new ones are absent.
LEGACY_KEYS = {"tile": "tile_size", "batch": "batch_size"}
# The settings dialog's spin boxes show their lowest value as words ("Auto", "Model default"): the value
# each of those boxes stands for, and the box value it is shown as.
BOX_WORDS = {
    "threads": (AUTO, 0),
    "tile": (MODEL_DEFAULT, 0),
    "overlap": (MODEL_DEFAULT, -1),
    "batch": (AUTO, 0),
}
BOX_NAMES = {"tile_size": "tile", "batch_size": "batch"}  # the dialog's names for Execution fields


def _from_box(name: str, value: Any) -> Any:
    """An Execution value from a dialog box value (its lowest value: the box's word)."""
    word, lowest = BOX_WORDS.get(name, (None, None))
    if word is not None and isinstance(value, int) and value <= lowest:
        return word
    return value


def _to_box(name: str, value: Any) -> int:
    word, lowest = BOX_WORDS.get(name, (None, 0))
    return lowest if value == word or not isinstance(value, int) else value


@dataclass(init=False)
class RunSettings:
    """The saved settings: how jobs run (an Execution) and where the dock writes its outputs."""

    execution: Execution = field(default_factory=Execution)
    output_dir: str = ""

    def __init__(self, execution: Execution | None = None, output_dir: str = "", **boxes: Any) -> None:
        """`boxes`: values of the settings dialog's boxes by its names (provider, threads, tile_size,
        overlap, batch_size, device_id), the lowest value of a box meaning its word (Auto, Model default)."""
        values = {BOX_NAMES.get(k, k): v for k, v in boxes.items()}
        self.execution = replace(execution or Execution(), **{k: _from_box(k, v) for k, v in values.items()})
        self.output_dir = output_dir

    # the dialog's view of the settings (box values); everything else reads `execution`
    provider = property(lambda self: self.execution.provider)
    device_id = property(lambda self: self.execution.device_id)
    threads = property(lambda self: _to_box("threads", self.execution.threads))
    tile_size = property(lambda self: _to_box("tile", self.execution.tile))
    overlap = property(lambda self: _to_box("overlap", self.execution.overlap))
    batch_size = property(lambda self: _to_box("batch", self.execution.batch))

    def to_cli(self) -> dict[str, Any]:
        """Engine command-line options by table parameter name; those left to the engine's defaults (the
        model card's tiling, ONNX Runtime's threads, the first GPU) are omitted."""
        defaults = Execution()
        return {
            k: v
            for k, v in self.execution.as_dict().items()
            if k in ("provider", "batch") or (k != "workers" and v != getattr(defaults, k))
        }


def _value(settings: QgsSettings, name: str, default: Any) -> Any:
    """One Execution field from the profile; the default for anything missing or unreadable."""
    raw = settings.value(PREFIX + name)
    if raw is None and name in LEGACY_KEYS:
        raw = settings.value(PREFIX + LEGACY_KEYS[name])
    if raw is None:
        return default
    text = str(raw).strip()
    if name == "provider":
        return text if text in PROVIDERS else default
    if text in (AUTO, MODEL_DEFAULT):
        return text if WORDS.get(name) == text else default
    try:
        return _from_box(name, int(text))  # a profile written by the dialog of older versions: 0 / -1
    except ValueError:  # a hand-edited or corrupt profile must not break the plugin
        return default


def load_settings() -> RunSettings:
    """The saved settings, with defaults for anything missing or unreadable."""
    s = QgsSettings()
    defaults = Execution()
    execution = Execution(**{f.name: _value(s, f.name, getattr(defaults, f.name)) for f in fields(Execution)})
    if isinstance(execution.device_id, str) or execution.device_id < 0:
        execution = replace(execution, device_id=0)
    return RunSettings(execution, str(s.value(PREFIX + "output_dir", "") or ""))


def save_settings(values: RunSettings) -> None:
    """Store every Execution field (words as words) and the output folder under `contrasat/`."""
    s = QgsSettings()
    for name, value in values.execution.as_dict().items():
        s.setValue(PREFIX + name, str(value))
    for old in LEGACY_KEYS.values():
        s.remove(PREFIX + old)
    s.setValue(PREFIX + "output_dir", values.output_dir)


def cuda_usable() -> bool:
    """True when the last engine check ran a model on CUDA: only then is CUDA offered in Settings."""
    from .engine_env import cuda_available

    return cuda_available()


NO_CUDA = (
    "CUDA (GPU) is chosen in Raster > Contrasat > Settings…, but the engine's last check found no usable "
    "CUDA, so the job would run on the CPU: choose Auto or CPU there, or install the engine for an "
    "NVIDIA GPU (Check dependencies…)."
)


def cuda_refusal(settings: RunSettings | None) -> str | None:
    """Why a job asked for CUDA cannot have it (one message, instead of a silent CPU run); None when it can,
    when it did not ask, or before the first engine check (nothing known yet: the engine decides)."""
    from .engine_env import last_status

    if settings is None or settings.provider != "cuda" or last_status() is None or cuda_usable():
        return None
    return NO_CUDA
