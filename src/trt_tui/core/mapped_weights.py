"""Parse an ONNX file without its big inline weights: they become external data that points into the file itself.

A model of tens of MB keeps its weights inline (raw_data). protobuf parses them into the model proto, and
upb copies the bytes again each time Python reads the field, so a comparison held them once in the proto and
once more per side while a segment ran (ddddocr_ocr: a 52 MB LSTM weight, 3-4 copies). Here the file is
scanned at the protobuf wire level; the top-level graph's initializers whose raw_data is at least
`MAP_MIN_BYTES` are parsed without it and given `data_location = EXTERNAL` with the file's own name, the
offset of their bytes and their length. Everything that reads external data (WeightSource, which memory-
maps; ONNX Runtime, told the model's folder) then reads them in place, like any model saved with external
data. Only the comparison asks for this (`read_model(..., map_weights=True)`): a model loaded this way must
never be written out as it is, since its references only make sense next to the original file.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import onnx
from onnx import TensorProto

MAP_MIN_BYTES = 64 << 10  # smaller ones stay inline: shape constants are read by value, and mapping is per page

_LEN = 2  # wire type of length-delimited fields
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


class _Malformed(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, start: int, end: int):
    """(field number, wire type, field start, payload start, payload end) of each field in buf[start:end]."""
    pos = start
    while pos < end:
        first = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
            payload = (pos, pos)
        elif wire == 1:
            pos += 8
            payload = (pos - 8, pos)
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end)
            payload = (pos, pos + length)
            pos += length
        elif wire == 5:
            pos += 4
            payload = (pos - 4, pos)
        else:  # groups (3, 4) are not used by onnx.proto
            raise _Malformed
        if pos > end:
            raise _Malformed
        yield number, wire, first, *payload


def _stripped(buf, size: int) -> tuple[bytes, dict[int, tuple[int, int]]] | None:
    """(The model's bytes without the big raw_data fields, initializer position -> (offset, length) of each
    one), or None when there is nothing to strip. By position, not name: names may repeat or not be UTF-8
    (protobuf then gives bytes), and protobuf appends the initializers of every graph occurrence in order."""
    mapped: dict[int, tuple[int, int]] = {}
    position = 0  # of the next initializer, over every occurrence of the graph field (protobuf merges them)
    model_parts: list[bytes] = []
    for number, wire, first, start, end in _fields(buf, 0, size):
        if number != _MODEL_GRAPH or wire != _LEN:
            model_parts.append(buf[first:end])
            continue
        graph_parts: list[bytes] = []
        for g_number, g_wire, g_first, g_start, g_end in _fields(buf, start, end):
            if g_number != _GRAPH_INITIALIZER or g_wire != _LEN:
                graph_parts.append(buf[g_first:g_end])
                continue
            position += 1
            raw = None
            for t_number, t_wire, _, t_start, t_end in _fields(buf, g_start, g_end):
                if t_number == _TENSOR_RAW_DATA and t_wire == _LEN:
                    raw = (t_start, t_end)  # the last one wins, as in protobuf
            if raw is None or raw[1] - raw[0] < MAP_MIN_BYTES:
                graph_parts.append(buf[g_first:g_end])
                continue
            tensor = b"".join(buf[f:e] for n, w, f, _, e in _fields(buf, g_start, g_end) if not (n == _TENSOR_RAW_DATA and w == _LEN))
            graph_parts.append(_encode_varint(_GRAPH_INITIALIZER << 3 | _LEN) + _encode_varint(len(tensor)) + tensor)
            mapped[position - 1] = (raw[0], raw[1] - raw[0])
        graph = b"".join(bytes(p) for p in graph_parts)
        model_parts.append(_encode_varint(_MODEL_GRAPH << 3 | _LEN) + _encode_varint(len(graph)) + graph)
    if not mapped:
        return None
    return b"".join(bytes(p) for p in model_parts), mapped


def read_mapped(path: str | os.PathLike[str]) -> onnx.ModelProto | None:
    """The model at `path` with its big inline weights as external data into the file itself; None when it
    has none (or the file is not the protobuf this scan expects: the caller parses it the usual way)."""
    p = Path(path)
    with open(p, "rb") as f:
        if os.fstat(f.fileno()).st_size < MAP_MIN_BYTES:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view, memoryview(view) as buf:
            try:
                found = _stripped(buf, len(buf))  # the map's size: the file may have changed since fstat  # its slices of `buf` are gone when it returns: the map can close
            except _Malformed:
                return None
    if found is None:
        return None
    data, mapped = found
    model = onnx.ModelProto()
    model.ParseFromString(data)
    for position, init in enumerate(model.graph.initializer):
        where = mapped.get(position)
        if where is None or init.data_location == TensorProto.EXTERNAL:
            continue
        init.data_location = TensorProto.EXTERNAL
        del init.external_data[:]
        for key, value in (("location", p.name), ("offset", str(where[0])), ("length", str(where[1]))):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
    return model
