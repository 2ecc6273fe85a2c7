"""Checks that a model's own data is consistent before anything runs or rewrites it.

A crafted or damaged ONNX file parses fine and then fails deep inside numpy or ONNX Runtime with a
traceback: weights shorter than their shape (`cannot reshape array of size 25 into shape (8,8)`), a node
reading a tensor nothing defines (`KeyError`), dimensions of 2^62 (`array is too big`). `check_runnable`
finds these up front and says so in one line naming the file. It reads no external data (fileio-style
checks of external files live with the loaders) and costs one pass over the graph.
"""

from __future__ import annotations

import math
import os

import onnx
from onnx import TensorProto, helper

from trt_tui.core.errors import UserError

MAX_DIM = 2**31 - 1  # no TensorRT profile or ONNX Runtime run takes a dimension beyond int32
# repeated fields that hold a tensor's values, by element type (when raw_data is not used)
_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def _element_size(data_type: int) -> int | None:
    try:
        return helper.tensor_dtype_to_np_dtype(data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def _check_initializer(t: TensorProto, source: str | os.PathLike[str] | None) -> None:
    if any(d < 0 for d in t.dims):
        raise UserError(f"initializer {t.name!r} has a negative dimension {list(t.dims)}", source)
    count = math.prod(t.dims)
    if t.data_location == TensorProto.EXTERNAL:
        return
    if t.data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
        return
    size = _element_size(t.data_type)
    if t.HasField("raw_data") or not any(len(getattr(t, f)) for f in _FIELDS):
        if size is None or t.data_type in (TensorProto.INT4, TensorProto.UINT4):
            return  # packed sub-byte types: sizes are not item counts
        have = len(t.raw_data)
        if have != count * size:
            raise UserError(
                f"initializer {t.name!r}: shape {list(t.dims)} needs {count * size} bytes of data, the file holds "
                f"{have}; the model is damaged or truncated",
                source,
            )
        return
    if t.data_type in (TensorProto.INT4, TensorProto.UINT4):
        return  # packed two to a value
    held = max(len(getattr(t, f)) for f in _FIELDS)
    if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        held //= 2  # real and imaginary parts
    if held != count:
        raise UserError(
            f"initializer {t.name!r}: shape {list(t.dims)} needs {count} values, the file holds {held}; "
            "the model is damaged or truncated",
            source,
        )


def _check_dims(kind: str, vi: onnx.ValueInfoProto, source) -> None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > MAX_DIM:  # -1 is some exporters' "unknown": fine
            raise UserError(
                f"{kind} {vi.name!r} has dimension {d.dim_value}; more than any run can hold (at most {MAX_DIM})",
                source,
            )


def check_runnable(model: onnx.ModelProto, source: str | os.PathLike[str] | None = None, *, dims: bool = True) -> None:
    """One-line UserError for data that would crash a run or a rewrite later (see the module docstring).
    `dims=False` for rewrites, which never allocate the declared shapes."""
    g = model.graph
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    defined |= {t.values.name for t in g.sparse_initializer}
    for vi in (g.input if dims else []):
        _check_dims("input", vi, source)
    for vi in (g.output if dims else []):
        _check_dims("output", vi, source)
    for t in g.initializer:
        _check_initializer(t, source)
    defined.update(o for node in g.node for o in node.output)  # ORT sorts an unsorted graph itself: any order
    for node in g.node:  # top level only: subgraphs may read names of the enclosing scope
        for name in node.input:
            if name not in defined:
                label = node.name or node.op_type
                raise UserError(
                    f"node {label!r} ({node.op_type}) reads {name!r}, which no input, initializer or node defines "
                    "(the model is damaged)",
                    source,
                )
    for out in g.output:
        if out.name not in defined:
            raise UserError(f"output {out.name!r} is produced by no node", source)
