"""An ONNX file's metadata read without onnx: a minimal walk over the ModelProto protobuf.

The card is a string in `ModelProto.metadata_props` (field 14, entries with key = 1 and value = 2). Every
other field is skipped by its wire type, so the weights are never decoded. Importing onnx (protobuf) costs
a command-line run about 0.15 s, and QGIS's process must not need it at all (docs/qgis.md).
"""

from __future__ import annotations

from pathlib import Path

_GRAPH, _GRAPH_NODE, _METADATA_PROPS = 7, 1, 14


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


def onnx_metadata(path: str | Path, need_graph: bool = False) -> dict[str, str]:
    """`metadata_props` of an ONNX file as a dict. `need_graph`: ValueError unless the file holds a graph
    with at least one node (what onnx.load would find). ValueError or UnicodeDecodeError for a file that
    is not such a protobuf."""
    data = memoryview(Path(path).read_bytes())  # slices of a memoryview copy nothing (the weights)
    meta: dict[str, str] = {}
    nodes = False
    for number, wire, value in _fields(data):
        if number == _METADATA_PROPS and wire == 2:
            entry = {n: bytes(v) for n, w, v in _fields(value) if w == 2}
            meta[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
        elif need_graph and number == _GRAPH and wire == 2 and not nodes:
            nodes = any(n == _GRAPH_NODE and w == 2 for n, w, _ in _fields(value))
    if need_graph and not nodes:
        raise ValueError("no graph with nodes")
    return meta
