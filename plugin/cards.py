"""Model cards read inside QGIS without onnx or onnxruntime: a minimal walk over the ONNX protobuf.

The card is a string in `ModelProto.metadata_props` (field 14, entries with key = 1 and value = 2). Every
other field is skipped by its wire type, so the weights are never decoded. Keeping onnx out of QGIS's
process is part of the out-of-process design (docs/qgis.md).
"""

from __future__ import annotations

from pathlib import Path

from ..models.card import CARD_KEY, ModelCard
from ..models.errors import ModelError
from ..models.registry import DEFAULTS  # noqa: F401 - the default model of each task, said once (the picker reads it here)

WEIGHTS_DIR = Path(__file__).absolute().parent.parent / "models" / "weights"
_METADATA_PROPS = 14


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, wire, value


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """`metadata_props` of an ONNX file as a dict."""
    data = Path(path).read_bytes()
    meta: dict[str, str] = {}
    for number, wire, value in _fields(data):
        if number == _METADATA_PROPS and wire == 2:
            entry = {n: v for n, w, v in _fields(value) if w == 2}
            meta[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
    return meta


def read_card(path: str | Path) -> ModelCard:
    """The Contrasat card of an ONNX file; ModelError with a one-line reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        meta = onnx_metadata(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"model file is not a readable ONNX model: {path.name}") from exc
    if CARD_KEY not in meta:
        raise ModelError(f"model file has no Contrasat model card ({CARD_KEY}): {path.name}")
    return ModelCard.from_json(meta[CARD_KEY])


def bundled_cards() -> list[tuple[Path, ModelCard]]:
    """(path, card) of every readable bundled model, sorted by file name."""
    return cards_in(WEIGHTS_DIR)


def cards_in(folder: Path) -> list[tuple[Path, ModelCard]]:
    """(path, card) of every readable model in `folder` (none when it does not exist), by file name."""
    found = []
    for path in sorted(Path(folder).glob("*.onnx")):
        if path.name.startswith("."):  # an export in progress (`.<name>.<pid>.partial.onnx`)
            continue
        try:
            found.append((path, read_card(path)))
        except ModelError:
            continue
    return found


def resolve_model(name_or_path: str | Path | None, task: str) -> Path | None:
    """A bundled name, a file path or None (the task's default) as a file path; None when not found."""
    if not name_or_path:
        name_or_path = DEFAULTS.get(task, "")
    path = Path(name_or_path)
    if path.suffix == ".onnx" or "/" in str(name_or_path) or "\\" in str(name_or_path):
        return path if path.is_file() else None
    bundled = WEIGHTS_DIR / f"{name_or_path}.onnx"
    return bundled if bundled.is_file() else None
