"""The schema of a model card's JSON (pydantic v2): every field's type, checked once when a card is read.

Kept apart from models/card.py because the QGIS plugin imports card.py inside QGIS's own Python, which may
have no pydantic; the engine and the CLI always have it (requirements/runtime.txt).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .card import SCHEMA_VERSION
from .errors import ModelError


class _Strict(BaseModel):
    """Types as written: a number given as the string "12" or "10 m" is an error, not converted."""

    model_config = ConfigDict(strict=True, extra="forbid")


class _InputSchema(_Strict):
    name: str = Field(min_length=1)
    sensor: str
    bands: list[str] = Field(min_length=1)
    units: str
    mean: list[float]
    std: list[float]
    clip: list[float] | None = Field(default=None, min_length=2, max_length=2)
    nodata: str = "nan_or_dataset_nodata"
    level: dict[str, Any] | None = None

    @field_validator("clip")
    @classmethod
    def _low_below_high(cls, clip: list[float] | None) -> list[float] | None:
        if clip is not None and not clip[0] < clip[1]:
            raise ValueError("clip must be [low, high] with low < high")
        return clip


class _ClassSchema(_Strict):
    value: int
    name: str = Field(min_length=1)
    color: str


class _CardSchema(_Strict):
    """The schema of the card's JSON: every field's type, checked once when the card is read."""

    name: str = Field(min_length=1)
    task: str
    inputs: list[_InputSchema]
    classes: list[_ClassSchema]
    tile_size: int = 256
    overlap: int = 32
    context_margin: int = Field(default=0, ge=0)
    resolution_m: float = Field(default=10.0, gt=0)
    output_kind: str = "probabilities"
    output_nodata: int = Field(default=255, ge=0, le=255)
    description: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    license: str = "GPL-2.0-or-later"
    schema_: int = Field(default=SCHEMA_VERSION, alias="schema")


def _schema_error(exc: ValidationError) -> str:
    """The first schema error as 'field inputs[0].mean[0]: Input should be a valid number (got '12')'."""
    error = exc.errors()[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    return f"field {where or '(top level)'}: {error['msg']} (got {error.get('input')!r})"


def check(data: dict[str, Any]) -> dict[str, Any]:
    """The card's fields with their defaults, or ModelError naming the first wrong field."""
    try:
        return _CardSchema.model_validate(data).model_dump(by_alias=True)
    except ValidationError as exc:
        raise ModelError(f"model card is malformed: {_schema_error(exc)}") from exc
