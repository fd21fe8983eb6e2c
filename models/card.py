"""The model card: one JSON object stored in an ONNX file's metadata under `contrasat.card`.

It is the single source of truth for band order, units, normalisation, tiling and the class table, shared
by the exporter (training/) and every runtime (CLI, plugin, benchmarks).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .bands import SENSOR_BANDS
from .errors import ModelError

CARD_KEY = "contrasat.card"
COLOR = re.compile(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")
SCHEMA_VERSION = 1
FEATURES = "features"  # a feature extractor: per-pixel embeddings (N, D, H, W), no classes
TASKS = ("flood", "land_cover", "pixel_timeseries", FEATURES)  # the one list of card tasks: extend it here


@dataclass
class InputSpec:
    """One ONNX input: which sensor, which bands in which order, and how raw values become network input."""

    name: str
    sensor: str
    bands: list[str]
    units: str  # "dB" for S1 backscatter, "reflectance_x10000" for S2
    mean: list[float]
    std: list[float]
    clip: list[float] | None = None  # applied to physical values before normalisation
    nodata: str = "nan_or_dataset_nodata"
    level: dict[str, Any] | None = None  # scene level alignment rule (models/levels.py), S1 dB inputs only

    def validate(self) -> None:
        if self.sensor not in SENSOR_BANDS and self.sensor != "S2_TS":
            raise ModelError(f"model card input '{self.name}' has unknown sensor '{self.sensor}'")
        if not self.bands or len(self.mean) != len(self.bands) or len(self.std) != len(self.bands):
            raise ModelError(f"model card input '{self.name}' needs one mean and std per band")
        if any(s <= 0 for s in self.std):
            raise ModelError(f"model card input '{self.name}' has a non-positive std")
        if self.level is not None:
            rule = self.level
            ok = (isinstance(rule, dict) and rule.get("band") in self.bands and self.units == "dB"
                  and all(isinstance(rule.get(k), int | float) for k in ("reference_db", "bound_db"))
                  and rule["bound_db"] > 0)  # fmt: skip
            if not ok:
                raise ModelError(
                    f"model card input '{self.name}' has a bad level rule {rule!r} "
                    "(needs band of the input, reference_db, bound_db > 0, units dB)"
                )


@dataclass
class ClassInfo:
    value: int
    name: str
    color: str  # "#rrggbb" or "#rrggbbaa"


@dataclass
class ModelCard:
    """Everything a runtime and a user need to know about one exported model."""

    name: str
    task: str
    inputs: list[InputSpec]
    classes: list[ClassInfo]
    tile_size: int = 256
    overlap: int = 32
    # pixels of raster around an area of interest the network reads as surroundings (its receptive
    # margin), so the AOI's pixels are classed as in the whole scene; 0: the AOI's pixels alone
    context_margin: int = 0
    resolution_m: float = 10.0
    output_kind: str = "probabilities"  # softmax over classes, shape (N, C, H, W)
    output_nodata: int = 255
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    license: str = "GPL-2.0-or-later"
    schema: int = SCHEMA_VERSION

    def validate(self) -> ModelCard:
        if self.schema != SCHEMA_VERSION:
            raise ModelError(f"model card schema {self.schema} is not supported (expected {SCHEMA_VERSION})")
        if self.task not in TASKS:
            raise ModelError(f"model card task '{self.task}' is not one of {', '.join(TASKS)}")
        if not self.inputs:
            raise ModelError("model card lists no inputs")
        for spec in self.inputs:
            spec.validate()
        values = [c.value for c in self.classes]
        if (not values and self.task != FEATURES) or values != list(range(len(values))):
            raise ModelError("model card classes must be numbered 0..C-1")
        for c in self.classes:
            if not isinstance(c.color, str) or not COLOR.fullmatch(c.color):
                raise ModelError(
                    f"model card class '{c.name}' has colour {c.color!r}, not #rrggbb or #rrggbbaa"
                )
        if self.output_nodata in values:
            raise ModelError("model card output nodata collides with a class value")
        if self.tile_size < 32 or not 0 <= self.overlap < self.tile_size // 2:
            raise ModelError("model card tile size/overlap are out of range")
        if not 0 <= self.context_margin <= self.tile_size:
            raise ModelError("model card context margin is out of range")
        return self

    def input_for(self, sensor_prefix: str) -> InputSpec | None:
        """The input whose sensor starts with `sensor_prefix` ('S1' or 'S2'), if the model has one."""
        return next((s for s in self.inputs if s.sensor.startswith(sensor_prefix)), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema: bool = True) -> ModelCard:
        """The card of a JSON object: every field checked against the schema first (unless `schema` is
        False: a bundled card, checked by the tests), then the rules that tie fields together (validate());
        a malformed card names its wrong field."""
        if not isinstance(data, dict):
            raise ModelError(f"model card is malformed: a JSON object is expected, not {type(data).__name__}")
        checked = _checked(data) if schema else dict(data)
        try:
            checked["inputs"] = [InputSpec(**i) for i in checked["inputs"]]
            checked["classes"] = [ClassInfo(**c) for c in checked["classes"]]
            return cls(**checked).validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model card is malformed: {exc}") from exc

    @classmethod
    def from_json(cls, text: str, schema: bool = True) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"model card is not valid JSON: {exc}") from exc
        return cls.from_dict(data, schema)


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """The card's fields checked against the schema (models/card_schema.py, pydantic). Inside QGIS's own
    Python, where pydantic may be missing (the plugin never installs packages into QGIS), the plugin only
    reads names and classes: the fields are taken as they are, and the engine checks the whole card before
    any job uses it."""
    try:
        from .card_schema import check
    except ImportError:
        return dict(data)
    return check(data)


BUNDLED_DIR = Path(__file__).resolve().parent / "weights"  # the bundled models (registry.WEIGHTS_DIR)


def bundled(path: Path) -> bool:
    """Whether a model file is one of the bundled models. Their cards pass the schema (a test checks each),
    so reading them skips it: pydantic's import and schema build cost a run ~50 ms. Any other file's card
    is checked field by field."""
    return path.resolve().parent == BUNDLED_DIR


def read_card(path: str | Path) -> ModelCard:
    """Read the card from an ONNX file's metadata without building an inference session."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    from .onnx_meta import onnx_metadata

    try:  # the usual case, without importing onnx; anything less than a clean card goes the long way
        meta = onnx_metadata(path, need_graph=True)
        if CARD_KEY in meta:
            return ModelCard.from_json(meta[CARD_KEY], schema=not bundled(path))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    import onnx  # local: only needed for files the quick read could not vouch for

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for a damaged file
        raise ModelError(f"model file is not a readable ONNX model: {path.name}") from exc
    if not proto.graph.node:
        raise ModelError(f"model file has an empty graph: {path.name}")
    meta = {p.key: p.value for p in proto.metadata_props}
    if CARD_KEY not in meta:
        raise ModelError(f"model file has no Contrasat model card ({CARD_KEY}): {path.name}")
    return ModelCard.from_json(meta[CARD_KEY])


def write_card(onnx_path: str | Path, card: ModelCard) -> None:
    """Store (or replace) the card in an existing ONNX file."""
    import onnx

    card.validate()
    proto = onnx.load(str(onnx_path))
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.save(proto, str(onnx_path))
