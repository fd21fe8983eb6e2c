"""The one recipe loader: a TOML (or JSON) file, or one [section] of it, onto a dataclass with defaults.

Nested dataclass fields are built from nested tables, lists become tuples where the field is a tuple, and an
unknown key is an error (a typo must not silently fall back to a default). Every value is validated against
the field's type by pydantic (the schema tool the runtime's model cards use too): `steps = "abc"` or
`steps = 1.5` is refused with the field's name, and a `Count` field (steps, batch sizes) must be 1 or more.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

from annotated_types import Ge
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
Count = Annotated[int, Ge(1)]  # steps, batch sizes, widths: a whole number, 1 or more


def read_table(path: str | Path) -> dict[str, Any]:
    """The whole file as a dict: TOML for .toml, JSON otherwise."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib  # Python >= 3.11 (QGIS 3.22 on Debian ships 3.11)

        return tomllib.loads(text)
    return json.loads(text)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """`cls(**data)` with nested dataclasses and tuples built from their types; an unknown key or a value
    that does not fit its field raises ValueError naming the field."""
    _refuse_unknown(cls, data)
    try:
        return TypeAdapter(cls).validate_python(data)
    except ValidationError as exc:
        raise ValueError(one_line(exc)) from None


def one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: `steps: Input should be a valid integer (got 'abc')`; more after ';'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']} (got {err['input']!r})")
    return "; ".join(parts)


def _refuse_unknown(cls: type, data: Any) -> None:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    for key, value in data.items():
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            _refuse_unknown(hints[key], value)


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
