"""Model cards read inside QGIS without onnx or onnxruntime (models/onnx_meta.py walks the protobuf).

Keeping onnx out of QGIS's process is part of the out-of-process design (docs/qgis.md).
"""

from __future__ import annotations

from pathlib import Path

from ..models.card import CARD_KEY, ModelCard
from ..models.errors import ModelError
from ..models.onnx_meta import onnx_metadata
from ..models.registry import DEFAULTS  # noqa: F401 - the default model of each task, said once (the picker reads it here)

WEIGHTS_DIR = Path(__file__).absolute().parent.parent / "models" / "weights"


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
