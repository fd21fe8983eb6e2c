"""The one recipe loader: a TOML (or JSON) file, or one [section] of it, onto a dataclass with defaults.

Nested dataclass fields are built from nested tables, lists become tuples where the field is a tuple, and an
unknown key is an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def read_table(path: str | Path) -> dict[str, Any]:
    """The whole file as a dict: TOML for .toml, JSON otherwise."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib  # Python >= 3.11 (QGIS 3.22 on Debian ships 3.11)

        return tomllib.loads(text)
    return json.loads(text)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """`cls(**data)` with nested dataclasses and tuples built from their types; unknown keys raise ValueError."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    values = {}
    for key, value in data.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            value = from_dict(kind, value or {})
        elif typing.get_origin(kind) is tuple and isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return cls(**values)


def load(cls: type[T], path: str | Path | None = None, section: str | None = None) -> T:
    """Defaults of `cls`, overridden by a file (or by its [section] when the file has one)."""
    if path is None:
        return cls()
    data = read_table(path)
    if section is not None:
        data = data.get(section, {})
    return from_dict(cls, data)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A recipe as plain JSON types (tuples as lists): comparable with one read back from a run folder."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))
