"""The precision plan both rewrites share: which node computes in FP32 or in FP16/BF16, and why.

`make_plan` decides, per top-level node: `low` (computes in the low precision), `fp32` (pinned by the
user), `auto` (the ONNX spec gives the op no low-precision type: kept FP32 and reported), `overflow`
(reads a constant beyond `init_max`, as AutoCast's init_max rule: kept FP32 and reported), `host`
(computed from constants and tensor shapes only: TensorRT folds it at build time or evaluates it as a shape
computation, in FP32; rounding it would change values such as sizes: bf16 turns sqrt(1369) into 36), `const`
(a Constant node; its value is materialised per consumer precision) or `keep` (no float compute).
Every kept-FP32 node is listed in `plan.kept_fp32` with its reason.

Two typing rules:
- `round_all=False` (the mixed-precision ONNX): a node goes low only where the ONNX spec gives its op the
  low type. When the type needs a newer opset (bf16 needs 13 for most ops, 22 for Conv/LSTM/GRU), the model
  is first upgraded with onnx's version converter, to the lowest opset (up to MAX_UPGRADE_OPSET) that puts
  the most nodes in low precision.
- `round_all=True` (the emulation, an FP32 graph that models TensorRT): every non-pinned float node is low
  whatever the ONNX typing rules say (TensorRT runs Conv, LSTM, Pad, Gemm in fp16/bf16); only the rounding
  Casts need a valid opset (Cast to bfloat16 needs 13: upgraded when older).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from trt_tui.core.errors import UserError
from trt_tui.core.model_checks import check_runnable
from trt_tui.core.graph import _topological_order, missing_external_data, read_model
from trt_tui.core.pins import UnknownName, suggest
from trt_tui.core.precision import writing
from trt_tui.core.precision.common import all_graphs, subgraphs, tensor_from
from trt_tui.core.precision.summary import PINNED, KeptFp32
from trt_tui.core.precision.writing import INLINE_BYTES, DerivedWeights
from trt_tui.core.weights import is_external, nbytes, on_disk
from trt_tui.core.precision.opsupport import (
    DTYPE_ATTRIBUTE,
    FLEXIBLE_INPUT_OPS,
    LOW_TYPE_STR,
    LOW_TYPES,
    op_typing,
)

FLOAT = TensorProto.FLOAT
CACHED_CONST_BYTES = 1 << 20  # constants up to this size keep their array for the plan's life (shape constants, scales)
ModelLike = onnx.ModelProto | str | os.PathLike


# a name kept for callers of the first API: every kept-FP32 node, whatever the reason, is a KeptFp32
AutoFp32 = KeptFp32

# The newest default-domain opset a rewrite upgrades a model to: ONNX Runtime and TensorRT 10's parser read it.
MAX_UPGRADE_OPSET = 22
CAST_BF16_OPSET = 13  # Cast(to=BFLOAT16) exists from opset 13
HOST_REASON = "computed from constants and tensor shapes only: TensorRT folds it (or runs it as a shape computation) in FP32"
SHAPE_OPS = frozenset({"Shape", "Size"})


@dataclass(frozen=True)
class OverflowInitializer:
    name: str  # initializer or Constant output
    max_abs: float
    kept_fp32: tuple[str, ...]  # consumers kept in FP32 because of it

    def to_json(self) -> dict:
        return {"name": self.name, "max_abs": self.max_abs, "kept_fp32": list(self.kept_fp32)}


@dataclass
class NodePlan:
    mode: str  # keep | low | fp32 | auto | overflow | host | const | flow (If/Loop/Scan: bodies rewritten)
    low_in: frozenset[int] = frozenset()  # input positions that become low precision (mode low)
    low_out: frozenset[int] = frozenset()


@dataclass
class Plan:
    model: onnx.ModelProto  # with weights loaded; never modified
    low: str
    low_type: int
    order: list[int]  # topological order of graph.node
    names: list[str]  # per node (TensorRT parser naming for unnamed nodes)
    nodes: list[NodePlan]
    dtypes: dict[str, int]  # tensor -> elem type (0 unknown)
    consts: dict[str, onnx.TensorProto]  # FLOAT initializers and Constant outputs: their values
    consumers: dict[str, list[int]]
    auto_fp32: list[KeptFp32] = field(default_factory=list)  # kept FP32 by the ONNX typing rules
    overflow: list[OverflowInitializer] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    kept_fp32: list[KeptFp32] = field(default_factory=list)  # every FP32 node with its reason, in graph order
    opset_upgrade: tuple[int, int] | None = None
    _arrays: dict[str, np.ndarray] = field(default_factory=dict)
    # initializer values (external data read on demand) and the derived ones a rewrite adds (writing.py)
    weights: DerivedWeights = field(default_factory=DerivedWeights)
    lazy: bool = False  # derive changed weights on demand instead of holding them (large or external models)
    shapes: dict[str, list[int | None]] = field(default_factory=dict)  # tensor -> dims (None: not static)
    peaks: dict[str, float] = field(default_factory=dict)  # max |value| of the constants the init_max check read

    def static_dim(self, tensor: str, axis: int) -> int | None:
        dims = self.shapes.get(tensor)
        return dims[axis] if dims and axis < len(dims) and dims[axis] else None

    def const_array(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is None:
            t = self.consts[name]
            if is_external(t):  # memory-mapped or derived, not cached: the pages go when the caller drops it
                return self.weights.array(t)
            arr = numpy_helper.to_array(t)
            if arr.nbytes <= CACHED_CONST_BYTES:  # a big weight is read again rather than held for the plan's life
                self._arrays[name] = arr
        return arr

    def const_max_abs(self, name: str) -> float:
        t = self.consts[name]
        if not is_external(t):
            return _max_abs(self.const_array(name))
        return max((_max_abs(part) for part in self.weights._source_chunks(t)), default=0.0)

    def derived(self, name: str, new_name: str, data_type: int, transform) -> onnx.TensorProto:
        """The constant `name` transformed element-wise, as a tensor named `new_name` of `data_type`: a
        placeholder computed on demand for big weights of lazy plans, else the values themselves."""
        t = self.consts[name]
        if self.lazy and name in self.initializer_names and nbytes(t) > INLINE_BYTES:
            return self.weights.derive(t, new_name, data_type, transform)
        return tensor_from(transform(self.const_array(name)), new_name)

    @functools.cached_property
    def initializer_names(self) -> set[str]:
        return {i.name for i in self.model.graph.initializer}


# ---- loading ---------------------------------------------------------------------------------------------
def prepare_model(
    model: ModelLike, base_dir: str | os.PathLike | None = None, *, allow_subgraphs: bool = False
) -> tuple[onnx.ModelProto, Path | None]:
    """(The model, the folder of its external data): from a path or a ModelProto, weights left on disk.

    A ModelProto with external data needs `base_dir` (the folder of the .onnx file).
    Models with If/Loop/Scan subgraphs are refused unless `allow_subgraphs` (the emulation rewrites the
    bodies too; the mixed rewrite would need typed Casts on outer-scope references inside them).
    """
    source: str | None = None
    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        source = str(path)
        proto = read_model(path)
        check_runnable(proto, path, dims=False)  # short weights, undefined inputs: one line, not a crash
        base_dir = path.parent
    else:
        proto = model
    if any(on_disk(t) for t in proto.graph.initializer):  # not placeholders: their values come with `weights`
        if base_dir is None:
            raise UserError(
                "model has external weight data that is not loaded; pass the .onnx path or base_dir", source
            )
        missing = missing_external_data(proto, Path(base_dir))
        if missing:
            raise UserError("external weight data missing: " + ", ".join(missing), source or base_dir)
    for node in proto.graph.node:
        if not allow_subgraphs and any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise UserError(
                f"node {node.name or node.op_type!r} ({node.op_type}) has a subgraph; the mixed-precision rewrite "
                "supports graphs without If/Loop/Scan only (the CPU preview, --emulate, rewrites their bodies)",
                source,
            )
    return proto, (Path(base_dir) if base_dir is not None else None)


def node_name(node: onnx.NodeProto) -> str:
    return node.name or "node_of_" + next((o for o in node.output if o), "")


def infer_dtypes(model: onnx.ModelProto, shapes: dict[str, list[int | None]] | None = None) -> dict[str, int]:
    """Element type of every tensor, from shape inference on a weight-free copy (fast, no 2 GB limit);
    `shapes`, when given, receives each tensor's dims (None where not static)."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    g = light.graph
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    declared = {vi.name for vi in model.graph.input}
    for init in model.graph.initializer:
        if init.name not in declared:
            g.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    g.output.extend(model.graph.output)
    g.value_info.extend(model.graph.value_info)
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False)
    except Exception as exc:  # onnx raises several unrelated types; all mean "no types from inference"
        raise UserError(f"shape inference failed, so tensor dtypes are unknown: {str(exc).splitlines()[0]}") from None
    dtypes: dict[str, int] = {}
    for vi in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            dtypes.setdefault(vi.name, vi.type.tensor_type.elem_type)
            if shapes is not None and vi.type.tensor_type.HasField("shape"):
                shapes.setdefault(vi.name, [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim])
    return dtypes


def constant_node_tensor(node: onnx.NodeProto) -> onnx.TensorProto:
    """The value of a float Constant node as a TensorProto, whichever attribute holds it."""
    for a in node.attribute:
        if a.name == "value":
            return a.t
        if a.name == "value_float":
            return numpy_helper.from_array(np.asarray(a.f, np.float32))
        if a.name == "value_floats":
            return numpy_helper.from_array(np.asarray(a.floats, np.float32))
    raise UserError(f"Constant node {node.name!r} has no float value attribute")


def _max_abs(arr: np.ndarray) -> float:
    """The largest finite |x| (0 when there is none)."""
    if arr.size and arr.dtype.kind == "f":
        top, bottom = float(arr.max()), float(arr.min())
        if math.isfinite(top) and math.isfinite(bottom):  # all finite (max/min propagate NaN): no masked copy
            return max(top, -bottom)
    finite = np.abs(arr[np.isfinite(arr)]) if arr.size else arr
    return float(finite.max()) if finite.size else 0.0


# ---- planning --------------------------------------------------------------------------------------------
def make_plan(
    model: ModelLike,
    low: str,
    pins,
    *,
    init_max: float = 65504.0,
    base_dir: str | os.PathLike | None = None,
    round_all: bool = False,
    peaks: dict[str, float] | None = None,
    weights: DerivedWeights | None = None,
) -> Plan:
    """`peaks`: an earlier plan's `peaks` of the same model and weights: those constants are not read again
    (a 2.4 GB model's weights take ~0.4 s to scan; the pin search plans the same model once per pin set).
    `weights`: where the values of `model`'s placeholders come from (`writing.by_reference`); the plan's
    derived weights are added to it."""
    if low not in LOW_TYPES:
        raise UserError(f"unknown low precision {low!r}; choose fp16 or bf16")
    proto, base_dir = prepare_model(model, base_dir, allow_subgraphs=round_all)
    source = None if isinstance(model, onnx.ModelProto) else str(model)
    low_type = LOW_TYPES[low]
    names = [node_name(n) for g in all_graphs(proto.graph) for n in g.node]  # pins may name nodes in bodies
    pin_set = set(pins)
    known = set(names)
    unknown = [p for p in pin_set if p not in known]
    if unknown:
        raise UserError("; ".join(UnknownName(p, suggest(p, names)).message() for p in sorted(unknown)))

    opset = _default_opset(proto)
    target = _target_opset(proto, low_type, pin_set, round_all)
    upgrade = None
    if target and target > opset:
        try:
            proto = upgrade_opset(proto, target)
            upgrade = (opset, target)
        except Exception as exc:  # the converter raises several types; any means "no upgrade"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if round_all:  # without Cast to bfloat16 the emulation would silently run FP32: refuse
                raise UserError(
                    f"the bf16 emulation needs opset {target} (Cast to bfloat16) but the model is opset {opset} and "
                    f"onnx's version converter failed: {reason[:200]}",
                    source,
                ) from None
            # mixed: go on at the model's opset; the nodes the spec keeps FP32 are listed with their reason
    plan = _plan_at(proto, low, low_type, pin_set, init_max, round_all, weights or DerivedWeights(base_dir), peaks or {})
    plan.opset_upgrade = upgrade
    return plan


def _plan_at(proto: onnx.ModelProto, low: str, low_type: int, pin_set: set[str], init_max: float, round_all: bool, weights: DerivedWeights,
             known_peaks: dict[str, float]) -> Plan:  # fmt: skip
    graph = proto.graph
    nodes = list(graph.node)
    names = [node_name(n) for n in nodes]
    shapes: dict[str, list[int | None]] = {}
    dtypes = infer_dtypes(proto, shapes)
    for init in graph.initializer:
        dtypes.setdefault(init.name, init.data_type)
    graph_inputs = {vi.name for vi in graph.input}
    # initializers also listed as graph inputs can be overridden at run time: treated as inputs, not constants
    consts: dict[str, onnx.TensorProto] = {
        i.name: i for i in graph.initializer if i.data_type == FLOAT and i.name not in graph_inputs
    }
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for t in dict.fromkeys(n.input):
            if t:
                consumers.setdefault(t, []).append(i)
        if n.op_type == "Constant" and (n.domain or "") == "" and dtypes.get(n.output[0]) == FLOAT:
            consts[n.output[0]] = constant_node_tensor(n)

    untyped = [(names[i], o) for i, n in enumerate(nodes) for o in n.output if o and not dtypes.get(o)]
    if untyped:
        node, tensor = untyped[0]
        raise UserError(
            f"cannot infer the dtype of tensor {tensor!r} (output of node {node!r}"
            + (f", and {len(untyped) - 1} more" if len(untyped) > 1 else "")
            + "); precision rewriting needs every tensor typed"
        )

    ins = [tuple(n.input) for n in nodes]
    outs = [tuple(n.output) for n in nodes]
    order = _topological_order(ins, outs, graph_inputs | {i.name for i in graph.initializer})
    plan = Plan(proto, low, low_type, order, names, [], dtypes, consts, consumers, weights=weights, shapes=shapes)
    # a rewrite may hold an FP32 and a low copy of a weight: past the limit, derive weights on demand
    plan.lazy = any(is_external(t) for t in graph.initializer) or 2 * sum(nbytes(t) for t in graph.initializer) > writing.EXTERNAL_DATA_LIMIT
    host = _host_computed(nodes, order, {i.name for i in graph.initializer if i.name not in graph_inputs})
    for i, sig in enumerate(_signatures(proto, dtypes)):
        if subgraphs(nodes[i]):  # If/Loop/Scan: the emulation rewrites the bodies; the node itself moves data
            plan.nodes.append(NodePlan("flow"))
            continue
        float_touch, mode, low_in, low_out, reason = _classify(*sig, LOW_TYPE_STR[low_type], round_all)
        if names[i] in pin_set and float_touch and mode != "const":
            plan.pinned.append(names[i])
            plan.nodes.append(NodePlan("fp32"))
            continue
        if i in host and mode in ("low", "auto"):
            plan.nodes.append(NodePlan("host"))
            continue
        if mode == "auto":
            plan.auto_fp32.append(KeptFp32(names[i], nodes[i].op_type, reason))
        plan.nodes.append(NodePlan(mode, low_in, low_out))

    _apply_init_max(plan, nodes, init_max, known_peaks)
    auto = {a.node: a.reason for a in plan.auto_fp32}
    overflow = {n: f"reads {o.name} (|x| up to {o.max_abs:g} > init_max)" for o in plan.overflow for n in o.kept_fp32}
    reasons = {"fp32": lambda n: PINNED, "auto": auto.get, "overflow": overflow.get, "host": lambda n: HOST_REASON}
    for i in order:
        why = reasons.get(plan.nodes[i].mode)
        if why:
            plan.kept_fp32.append(KeptFp32(names[i], nodes[i].op_type, why(names[i]) or plan.nodes[i].mode))
    return plan


def _default_opset(proto: onnx.ModelProto) -> int:
    return next((imp.version for imp in proto.opset_import if imp.domain in ("", "ai.onnx")), 0)


def _signatures(proto: onnx.ModelProto, dtypes: dict[str, int], opset: int | None = None):
    """(op, domain, opset, input dtypes, output dtypes) per node, at the model's opset or at `opset`."""
    opsets = {imp.domain or "": imp.version for imp in proto.opset_import}
    opsets.setdefault("ai.onnx", opsets.get("", 0))
    if opset is not None:
        opsets[""] = opsets["ai.onnx"] = opset
    get = dtypes.get
    for n in proto.graph.node:
        domain = n.domain or ""
        if domain == "ai.onnx":
            domain = ""
        yield (n.op_type, domain, opsets.get(domain), tuple(get(t, 0) if t else -1 for t in n.input), tuple(get(t, 0) if t else -1 for t in n.output))


def _target_opset(proto: onnx.ModelProto, low_type: int, pins: set[str], round_all: bool) -> int | None:
    """The default-domain opset the rewrite needs, or None to keep the model's."""
    opset = _default_opset(proto)
    if not opset or opset >= MAX_UPGRADE_OPSET:
        return None
    if round_all:  # the emulation only adds Casts: only Cast to bfloat16 needs a newer opset
        return CAST_BF16_OPSET if low_type == TensorProto.BFLOAT16 and opset < CAST_BF16_OPSET else None
    # mixed: the lowest opset that keeps the fewest nodes FP32 by the typing rules (node types do not change)
    dtypes = infer_dtypes(proto)
    for init in proto.graph.initializer:
        dtypes.setdefault(init.name, init.data_type)
    names = [node_name(n) for n in proto.graph.node]
    low_str = LOW_TYPE_STR[low_type]

    def kept(version: int) -> int:
        return sum(
            1
            for name, sig in zip(names, _signatures(proto, dtypes, version))
            if name not in pins and _classify(*sig, low_str, False)[1] == "auto"
        )

    best, best_kept = opset, kept(opset)
    for version in range(opset + 1, MAX_UPGRADE_OPSET + 1):
        k = kept(version)
        if k < best_kept:
            best, best_kept = version, k
    return best if best > opset else None


def upgrade_opset(proto: onnx.ModelProto, target: int) -> onnx.ModelProto:
    """The model converted to default-domain opset `target` by onnx's version converter.

    The converter serialises the model, so large initializers (the weights) are lifted out as graph inputs
    first and put back afterwards: no 2 GB limit, no copy of the weights. Small ones stay, since some
    adapters read their values (e.g. Upsample scales).
    """
    from onnx import version_converter

    light = onnx.ModelProto()
    light.CopyFrom(_without_initializers(proto))
    lifted = {}
    for init in proto.graph.initializer:
        if _numel(init) > 64 or init.data_location == TensorProto.EXTERNAL:
            lifted[init.name] = init
            light.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
        else:
            light.graph.initializer.append(init)
    converted = version_converter.convert_version(light, target)
    declared = {vi.name for vi in proto.graph.input}
    kept_inputs = [vi for vi in converted.graph.input if vi.name not in lifted or vi.name in declared]
    del converted.graph.input[:]
    converted.graph.input.extend(kept_inputs)
    small = list(converted.graph.initializer)
    del converted.graph.initializer[:]
    order = {init.name: k for k, init in enumerate(proto.graph.initializer)}
    for init in sorted((*lifted.values(), *small), key=lambda t: order.get(t.name, len(order))):
        converted.graph.initializer.append(init)
    converted.ir_version = max(proto.ir_version, min(converted.ir_version, 10))
    return converted


def _without_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    for field_name in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(out, field_name, getattr(proto, field_name))
    out.opset_import.extend(proto.opset_import)
    out.metadata_props.extend(proto.metadata_props)
    out.functions.extend(proto.functions)
    g = out.graph
    g.name = proto.graph.name
    g.node.extend(proto.graph.node)
    g.input.extend(proto.graph.input)
    g.output.extend(proto.graph.output)
    g.value_info.extend(proto.graph.value_info)
    return out


def _numel(t: onnx.TensorProto) -> int:
    return int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1


def _host_computed(nodes: list[onnx.NodeProto], order: list[int], constants: set[str]) -> set[int]:
    """Nodes whose inputs all derive from constants and tensor shapes (never from tensor values)."""
    known = set(constants)
    host: set[int] = set()
    for i in order:
        n = nodes[i]
        if (n.op_type == "Constant" and (n.domain or "") == "") or n.op_type in SHAPE_OPS:
            known.update(n.output)
            continue
        inputs = [t for t in n.input if t]
        if inputs and all(t in known for t in inputs) and not subgraphs(n):
            known.update(n.output)
            host.add(i)
    return host


@functools.lru_cache(maxsize=4096)
def _classify(op_type: str, domain: str, opset: int | None, in_types: tuple[int, ...], out_types: tuple[int, ...], low_str: str, round_all: bool = False):
    """(touches float, mode, low input positions, low output positions, auto-FP32 reason) for a node
    signature: nodes of the same op and dtypes classify alike, so 10k-node graphs cost a few hundred calls.
    Dtype -1 marks an omitted optional input/output, 0 an unknown dtype. With `round_all` the allowed
    types are ignored: every float tensor of the node's data slots goes low (the emulation)."""
    if op_type == "Constant" and domain == "":
        return False, ("const" if out_types and out_types[0] == FLOAT else "keep"), frozenset(), frozenset(), ""
    if FLOAT not in in_types and FLOAT not in out_types:
        return False, "keep", frozenset(), frozenset(), ""
    flexible = op_type in FLEXIBLE_INPUT_OPS
    typing = op_typing(op_type, opset, domain) if opset is not None else None
    if typing is None:
        if round_all:  # no schema (a custom op, a plugin in TensorRT): its float data is low like the rest
            low_in = frozenset(k for k, t in enumerate(in_types) if t == FLOAT and not flexible)
            return True, "low", low_in, frozenset(k for k, t in enumerate(out_types) if t == FLOAT), ""
        return True, "auto", frozenset(), frozenset(), f"no ONNX schema for {domain or 'ai.onnx'}::{op_type}"

    # which type parameters carry float32 here, and at which positions
    bound: dict[str, tuple[list[int], list[int]]] = {}
    for pos, t in enumerate(in_types):
        slot = typing.input_slot(pos)
        if t != -1 and slot and not slot.fixed and not flexible:
            bound.setdefault(slot.param, ([], []))[0].append(pos)
    for pos, t in enumerate(out_types):
        slot = typing.output_slot(pos)
        if t != -1 and slot and not slot.fixed:
            bound.setdefault(slot.param, ([], []))[1].append(pos)
    float_params = {
        p: io
        for p, io in bound.items()
        if any(in_types[k] == FLOAT for k in io[0]) or any(out_types[k] == FLOAT for k in io[1])
    }
    if round_all:
        # data slots (type parameters) go low; fixed tensor(float) inputs are parameters (Resize scales) and
        # stay; every float output is rounded, fixed-typed ones included
        low_in = frozenset(k for io in float_params.values() for k in io[0])
        low_out = frozenset(k for io in float_params.values() for k in io[1]) | frozenset(
            k for k, t in enumerate(out_types) if t == FLOAT
        )
        return True, ("low" if low_in or low_out else "keep"), low_in, low_out, ""
    if not float_params:
        if FLOAT in in_types and not flexible:
            return True, "auto", frozenset(), frozenset(), f"{op_type}-{typing.since_version} takes tensor(float) only"
        return True, "keep", frozenset(), frozenset(), ""
    attr_typed = op_type in DTYPE_ATTRIBUTE or op_type == "ConstantOfShape"
    convertible, refused = [], []
    for p, (ins, outs) in float_params.items():
        if low_str in typing.allowed.get(p, ()) and (ins or attr_typed):
            convertible.append(p)
        else:
            refused.append(p)
    if not convertible:
        p = refused[0]
        kinds = sorted(s[len("tensor(") : -1] for s in typing.allowed.get(p, ()) if s.startswith("tensor("))
        reason = f"{op_type}-{typing.since_version}: type {p} allows {', '.join(kinds)} (no {low_str[7:-1]})"
        if low_str in typing.allowed.get(p, ()):
            reason = f"{op_type}: output dtype is set by an attribute trt_tui does not rewrite"
        return True, "auto", frozenset(), frozenset(), reason
    low_in = frozenset(k for p in convertible for k in float_params[p][0])
    low_out = frozenset(k for p in convertible for k in float_params[p][1])
    return True, "low", low_in, low_out, ""


def _peaks(plan: Plan, names: list[str]) -> dict[str, float]:
    """`plan.const_max_abs` of each name; weights in external data are read on two threads (numpy's reads and
    reductions release the GIL): a 2.4 GB model's weights take ~0.4 s instead of ~0.9 s, every weight read
    once before anything else can run."""
    external = [n for n in names if is_external(plan.consts[n])]
    if len(external) < 8:
        return {n: plan.const_max_abs(n) for n in names}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="trt_tui_peaks") as pool:
        read = dict(zip(external, pool.map(plan.const_max_abs, external)))
    return {n: read[n] if n in read else plan.const_max_abs(n) for n in names}


def _apply_init_max(plan: Plan, nodes: list[onnx.NodeProto], init_max: float, known_peaks: dict[str, float]) -> None:
    """Consumers of constants beyond init_max stay FP32 (the constant would be inf in fp16)."""
    def low_readers(cname: str) -> list[int]:
        users = [i for i in plan.consumers.get(cname, ()) if plan.nodes[i].mode == "low"]
        # only positions that would actually be converted read the low-precision value
        return [i for i in users if any(nodes[i].input[k] == cname for k in plan.nodes[i].low_in)]

    wanted = [cname for cname in plan.consts if low_readers(cname)]
    read = _peaks(plan, [c for c in wanted if c not in known_peaks])  # read up front, in parallel
    peaks = plan.peaks = {c: known_peaks[c] if c in known_peaks else read[c] for c in wanted}
    for cname in list(plan.consts):
        users = low_readers(cname)  # again: a node an earlier constant kept FP32 reads nothing in low precision
        if not users:
            continue
        peak = peaks[cname]
        if peak > init_max:
            for i in users:
                plan.nodes[i] = NodePlan("overflow")
            plan.overflow.append(OverflowInitializer(cname, peak, tuple(plan.names[i] for i in users)))
    for i, n in enumerate(nodes):  # ConstantOfShape carries its value in an attribute
        if n.op_type == "ConstantOfShape" and plan.nodes[i].mode == "low":
            for a in n.attribute:
                if a.name == "value" and _max_abs(numpy_helper.to_array(a.t)) > init_max:
                    plan.nodes[i] = NodePlan("overflow")
                    peak = _max_abs(numpy_helper.to_array(a.t))
                    plan.overflow.append(OverflowInitializer(f"{plan.names[i]}.value", peak, (plan.names[i],)))
