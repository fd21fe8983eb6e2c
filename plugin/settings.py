"""Execution settings (provider, CUDA device, threads, tiling, batch) kept in QgsSettings under `contrasat/`.

Plain values here, turned into engine command-line options when a job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qgis.core import QgsSettings

PREFIX = "contrasat/"
PROVIDERS = ("auto", "cpu", "cuda")


@dataclass
class RunSettings:
    """What the user chose in the settings dialog; 0 for tile/overlap means 'the model card's value'."""

    provider: str = "auto"
    threads: int = 0
    tile_size: int = 0
    overlap: int = -1  # -1: the card's overlap (0 is a valid choice: no overlap)
    batch_size: int = 4
    output_dir: str = ""
    device_id: int = 0  # the GPU CUDA runs on

    def to_cli(self) -> dict[str, Any]:
        """Engine command-line options (None: the CLI's default, i.e. the model card's value)."""
        return {
            "tile": self.tile_size or None,
            "overlap": None if self.overlap < 0 else self.overlap,
            "batch": max(1, self.batch_size),
            "provider": self.provider if self.provider in PROVIDERS else "auto",
            "threads": self.threads or None,
            "device_id": self.device_id or None,
        }


def _int(settings: QgsSettings, key: str, default: int) -> int:
    try:
        return int(settings.value(PREFIX + key, default))
    except (TypeError, ValueError):  # a hand-edited or corrupt profile must not break the plugin
        return default


def load_settings() -> RunSettings:
    """The saved settings, with defaults for anything missing or unreadable."""
    s = QgsSettings()
    defaults = RunSettings()
    provider = str(s.value(PREFIX + "provider", defaults.provider))
    return RunSettings(
        provider=provider if provider in PROVIDERS else "auto",
        threads=_int(s, "threads", defaults.threads),
        tile_size=_int(s, "tile_size", defaults.tile_size),
        overlap=_int(s, "overlap", defaults.overlap),
        batch_size=_int(s, "batch_size", defaults.batch_size),
        output_dir=str(s.value(PREFIX + "output_dir", defaults.output_dir) or ""),
        device_id=max(0, _int(s, "device_id", defaults.device_id)),
    )


def save_settings(values: RunSettings) -> None:
    """Store every field under `contrasat/`."""
    s = QgsSettings()
    for key in ("provider", "threads", "tile_size", "overlap", "batch_size", "output_dir", "device_id"):
        s.setValue(PREFIX + key, getattr(values, key))


def cuda_usable() -> bool:
    """True when the last engine check reported a usable CUDA provider."""
    from .engine_env import last_status

    status = last_status()
    return bool(status and status.ok and "CUDAExecutionProvider" in status.providers)
