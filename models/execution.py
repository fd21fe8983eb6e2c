"""How a job runs (not what it computes): provider, GPU, threads, tiling, batch and workers, in one type.

Every front end speaks this type: the job table's execution parameters (models/jobs.py) are its fields,
the CLI builds it from them, the pipeline, the series job and batch run with it, and the plugin saves
and loads it (plugin/settings.py). Values that are decided later are spelled out, not coded as 0 or -1:
MODEL_DEFAULT (the model card's tile and overlap) and AUTO (the provider, threads, batch and workers
chosen for the machine and the provider in use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import InputError
from .notes import Note
from .notes import warning as note_warning

AUTO = "auto"  # chosen at run time for the machine and the provider in use
MODEL_DEFAULT = "model"  # the model card's value
PROVIDERS = (AUTO, "cuda", "cpu")
# The word each sized field takes besides a number.
WORDS = {"threads": AUTO, "tile": MODEL_DEFAULT, "overlap": MODEL_DEFAULT, "batch": AUTO, "workers": AUTO}

Size = int | str  # a count, or AUTO / MODEL_DEFAULT


@dataclass(frozen=True)
class Execution:
    """Execution settings; field names are the job table's parameter names (tile, overlap, ...)."""

    provider: str = AUTO  # auto: CUDA when usable, else the CPU
    device_id: int = 0  # the GPU CUDA runs on
    threads: Size = AUTO  # ONNX Runtime intra-op threads; auto: its own choice (1 per scene in a local batch)
    tile: Size = MODEL_DEFAULT  # tile (or pixel block) side in pixels
    overlap: Size = MODEL_DEFAULT  # tile overlap in pixels
    batch: Size = 4  # tiles per inference batch; auto: chosen for the provider in use
    workers: Size = AUTO  # batch: local worker processes; auto: one per core

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Execution:
        """The settings among `values` (e.g. parsed CLI options); names it does not know are ignored and
        None keeps the field's default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known and v is not None})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def checked(self) -> tuple[Execution, list[Note]]:
        """These settings when every job can run with them (threads capped at the machine's cores, with a
        note); InputError for a value no job can use."""
        _check_count("tile size", self.tile, 16, WORDS["tile"], multiple_of=16)
        _check_count("overlap", self.overlap, 0, WORDS["overlap"])
        _check_count("batch size", self.batch, 1, WORDS["batch"])
        _check_count("threads", self.threads, 1, WORDS["threads"])
        _check_count("workers", self.workers, 1, WORDS["workers"])
        _check_count("CUDA device id", self.device_id, 0, None)
        if self.provider not in PROVIDERS:
            raise InputError(f"provider must be auto, cuda or cpu, not {self.provider!r}")
        cores = os.cpu_count() or 1
        if isinstance(self.threads, int) and self.threads > cores:
            note = note_warning(
                f"{self.threads} threads asked for, capped at the {cores} cores of this machine"
            )
            return replace(self, threads=cores), [note]
        return self, []

    def tile_for(self, model_tile: int) -> int:
        return model_tile if self.tile == MODEL_DEFAULT else int(self.tile)

    def overlap_for(self, model_overlap: int) -> int:
        return model_overlap if self.overlap == MODEL_DEFAULT else int(self.overlap)

    def batch_for(self, provider: str, tile: int = 256) -> int:
        """Tiles per batch for the provider in use (the provider's own default for `tile` when AUTO)."""
        from .session import batch_for

        return batch_for(provider, tile) if self.batch == AUTO else int(self.batch)

    @property
    def ort_threads(self) -> int:
        """ONNX Runtime's intra-op thread count: 0 lets it choose."""
        return 0 if self.threads == AUTO else int(self.threads)


def _check_count(what: str, value: Size, minimum: int, keyword: str | None, multiple_of: int = 0) -> None:
    if keyword is not None and value == keyword:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        other = f" or {keyword}" if keyword else ""
        raise InputError(f"{what} must be a whole number{other}, not {value!r}")
    if value < minimum:
        raise InputError(f"{what} must be {minimum} or more, not {value}")
    if multiple_of and value % multiple_of:
        raise InputError(f"{what} must be a multiple of {multiple_of}, not {value}")
