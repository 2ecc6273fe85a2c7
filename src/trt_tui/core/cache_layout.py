"""Which axis of a cache tensor is its time axis, and which is its batch axis, told from the graph.

`contract init` guesses a mask for a cache whose valid length is another state (`cache_last_channel` and
`cache_last_channel_len`). Layouts differ between exports: NeMo's attention cache is [layers, batch, time,
d_model] (or [batch, layers, time, d_model]), its conv cache [layers, batch, d_model, time], a toy cache
[batch, features, time]: no fixed position is right for all. The graph says it twice:

- the cache is concatenated with the new frames along its time axis (`Concat(cache, new)` then a Slice
  keeps the newest frames), possibly after a Gather/Squeeze/Transpose that picks one layer;
- the length is clamped to the cache size (`Min(len + T, C)` or `Clip`): the axis of size C.

The first that answers wins; neither answering means no mask is guessed (a wrong axis would mask real
drift away, which is worse than masking nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from trt_tui.core.graph import GraphIndex, TensorInfo

# ops that keep every axis where it is (a Slice or Split narrows an axis but does not move it)
_SAME_AXES = {"Identity", "Cast", "Slice", "Split", "Relu", "Neg", "Abs", "Dropout", "CastLike"}
_MAX_HOPS = 6  # Gather (pick a layer) -> Squeeze -> Transpose -> Concat is four; more is not a cache read


@dataclass(frozen=True)
class CacheAxes:
    time_axis: int
    keep: str  # "last": new frames are appended after the cache (the newest are kept); "first": prepended
    why: str


def cache_time_axis(index: GraphIndex, cache: TensorInfo, length: TensorInfo | None = None) -> CacheAxes | None:
    """The time axis of the cache input `cache`, from its Concat with new frames, else from `length`'s clamp."""
    return _from_concat(index, cache) or (_from_clamp(index, cache, length) if length is not None else None)


def batch_axis(cache: TensorInfo, length: TensorInfo, time_axis: int) -> int | None:
    """The cache axis that the length's entries index: the symbolic dim they share ("B"), else the one axis
    whose fixed size equals the number of lengths; None when that is not unique."""
    if not cache.shape or not length.shape or len(length.shape) != 1:
        return None
    n = length.shape[0]
    axes = [a for a, d in enumerate(cache.shape) if a != time_axis and d == n and d is not None]
    return axes[0] if len(axes) == 1 else None


def _from_concat(index: GraphIndex, cache: TensorInfo) -> CacheAxes | None:
    if not cache.shape:
        return None
    # (tensor, for each of its axes the cache axis it came from or None, hops)
    todo: list[tuple[str, list[int | None], int]] = [(cache.name, list(range(len(cache.shape))), 0)]
    seen: set[str] = set()
    while todo:
        name, axes, hops = todo.pop(0)
        if name in seen or hops > _MAX_HOPS:
            continue
        seen.add(name)
        for node_name in index.consumers.get(name, []):
            node = index.node(node_name)
            if node is None or node.proto is None or node.in_subgraph:
                continue
            proto = node.proto
            if proto.op_type == "Concat":
                axis = _attr(proto, "axis", 0)
                axis = axis + len(axes) if axis < 0 else axis
                if 0 <= axis < len(axes) and axes[axis] is not None:
                    first = list(proto.input).index(name) == 0
                    where = "before" if first else "after"
                    return CacheAxes(axes[axis], "last" if first else "first",
                                     f"{node.name} concatenates {cache.name} axis {axes[axis]} {where} the new frames")  # fmt: skip
                continue
            mapped = _map_axes(index, proto, axes)
            if mapped is not None:
                todo.extend((out, mapped, hops + 1) for out in proto.output if out)
    return None


def _map_axes(index: GraphIndex, node: onnx.NodeProto, axes: list[int | None]) -> list[int | None] | None:
    """`axes` of the node's first input carried to its output, or None when the node reshapes them."""
    op, rank = node.op_type, len(axes)
    if op in _SAME_AXES:
        return list(axes)
    if op == "Transpose":
        perm = _attr(node, "perm", None) or list(range(rank))[::-1]
        return [axes[p] for p in perm] if len(perm) == rank else None
    if op == "Gather" and len(node.input) > 1:
        ind = index.tensor(node.input[1])
        axis = _attr(node, "axis", 0) % rank
        if ind is None or ind.shape is None:
            return None
        return axes[:axis] + [None] * len(ind.shape) + axes[axis + 1 :]
    if op in ("Squeeze", "Unsqueeze"):
        picked = _attr(node, "axes", None)
        if picked is None and len(node.input) > 1:
            picked = _ints(index, node.input[1])
        if picked is None:
            return None
        if op == "Squeeze":
            drop = {a % rank for a in picked}
            return [a for i, a in enumerate(axes) if i not in drop]
        out_rank = rank + len(picked)
        put = {a % out_rank for a in picked}
        rest = iter(axes)
        return [None if i in put else next(rest) for i in range(out_rank)]
    return None


def _from_clamp(index: GraphIndex, cache: TensorInfo, length: TensorInfo) -> CacheAxes | None:
    """`length` -> Add -> Min(.., C) (or Clip max C): the one cache axis of size C."""
    todo, seen = [(length.name, 0)], set()
    while todo:
        name, hops = todo.pop(0)
        if name in seen or hops > 3:
            continue
        seen.add(name)
        for node_name in index.consumers.get(name, []):
            node = index.node(node_name)
            if node is None or node.proto is None:
                continue
            bound = None
            if node.op_type == "Min":
                bound = [v for i in node.inputs if i != name for v in [_scalar(index, i)] if v is not None]
            elif node.op_type == "Clip" and len(node.inputs) > 2:
                bound = [v for v in [_scalar(index, node.inputs[2])] if v is not None]
            if bound:
                sizes = [a for a, d in enumerate(cache.shape or ()) if d == bound[0]]
                if len(sizes) == 1:
                    return CacheAxes(sizes[0], "last", f"{node.name} clamps {length.name} to {bound[0]}, "
                                                       f"the size of {cache.name} axis {sizes[0]}")  # fmt: skip
                return None
            if node.op_type in ("Add", "Identity", "Cast", "Sub", "Max"):
                todo.extend((o, hops + 1) for o in node.outputs)
    return None


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _const(index: GraphIndex, name: str) -> np.ndarray | None:
    for init in index.model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init) if not init.external_data else None
    producer = index.node(index.producer.get(name, ""))
    if producer is not None and producer.op_type == "Constant" and producer.proto is not None:
        value = _attr(producer.proto, "value", None)
        return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else None
    return None


def _ints(index: GraphIndex, name: str) -> list[int] | None:
    value = _const(index, name)
    return [int(v) for v in value.reshape(-1)] if value is not None and value.dtype.kind in "iu" else None


def _scalar(index: GraphIndex, name: str) -> int | None:
    value = _ints(index, name)
    return value[0] if value is not None and len(value) == 1 else None
