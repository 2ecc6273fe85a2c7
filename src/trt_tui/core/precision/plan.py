"""The precision plan both rewrites share: which node computes in FP32 or in FP16/BF16, and why.

`make_plan` decides, per top-level node: `low` (computes in the low precision), `fp32` (pinned by the
user), `auto` (the ONNX spec gives the op no low-precision type: kept FP32 and reported), `overflow`
(reads a constant beyond `init_max`, as AutoCast's init_max rule: kept FP32 and reported), `const`
(a Constant node; its value is materialised per consumer precision) or `keep` (no float compute).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from trt_tui.core.errors import UserError
from trt_tui.core.graph import _topological_order, missing_external_data, read_model
from trt_tui.core.pins import UnknownName, suggest
from trt_tui.core.precision.opsupport import (
    DTYPE_ATTRIBUTE,
    FLEXIBLE_INPUT_OPS,
    LOW_TYPE_STR,
    LOW_TYPES,
    op_typing,
)

FLOAT = TensorProto.FLOAT
ModelLike = onnx.ModelProto | str | os.PathLike


@dataclass(frozen=True)
class AutoFp32:
    node: str
    op_type: str
    reason: str

    def to_json(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "reason": self.reason}


@dataclass(frozen=True)
class OverflowInitializer:
    name: str  # initializer or Constant output
    max_abs: float
    kept_fp32: tuple[str, ...]  # consumers kept in FP32 because of it

    def to_json(self) -> dict:
        return {"name": self.name, "max_abs": self.max_abs, "kept_fp32": list(self.kept_fp32)}


@dataclass
class NodePlan:
    mode: str  # keep | low | fp32 | auto | overflow | const
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
    auto_fp32: list[AutoFp32] = field(default_factory=list)
    overflow: list[OverflowInitializer] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def const_array(self, name: str) -> np.ndarray:
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = numpy_helper.to_array(self.consts[name])
        return arr


# ---- loading ---------------------------------------------------------------------------------------------
def prepare_model(model: ModelLike, base_dir: str | os.PathLike | None = None) -> onnx.ModelProto:
    """A model with its weights in memory: from a path (external data loaded) or a ModelProto.

    A ModelProto loaded without its external data needs `base_dir` (the folder of the .onnx file).
    Models with If/Loop/Scan subgraphs are refused: their outer-scope references would need Casts inside
    the bodies, which this rewrite does not do (TensorRT runs such bodies as separate subnetworks anyway).
    """
    source: str | None = None
    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        source = str(path)
        proto = read_model(path)
        base_dir = path.parent
    else:
        proto = model
    if any(t.data_location == TensorProto.EXTERNAL for t in proto.graph.initializer):
        if base_dir is None:
            raise UserError(
                "model has external weight data that is not loaded; pass the .onnx path or base_dir", source
            )
        missing = missing_external_data(proto, Path(base_dir))
        if missing:
            raise UserError("external weight data missing: " + ", ".join(missing), source or base_dir)
        loaded = onnx.ModelProto()
        loaded.CopyFrom(proto)
        onnx.external_data_helper.load_external_data_for_model(loaded, str(base_dir))
        proto = loaded
    for node in proto.graph.node:
        if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise UserError(
                f"node {node.name or node.op_type!r} ({node.op_type}) has a subgraph; precision rewriting "
                "supports graphs without If/Loop/Scan only",
                source,
            )
    return proto


def node_name(node: onnx.NodeProto) -> str:
    return node.name or "node_of_" + next((o for o in node.output if o), "")


def infer_dtypes(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor, from shape inference on a weight-free copy (fast, no 2 GB limit)."""
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
) -> Plan:
    if low not in LOW_TYPES:
        raise UserError(f"unknown low precision {low!r}; choose fp16 or bf16")
    proto = prepare_model(model, base_dir)
    low_type = LOW_TYPES[low]
    graph = proto.graph
    nodes = list(graph.node)
    names = [node_name(n) for n in nodes]

    pin_set = set(pins)
    known = set(names)
    unknown = [p for p in pin_set if p not in known]
    if unknown:
        raise UserError("; ".join(UnknownName(p, suggest(p, names)).message() for p in sorted(unknown)))

    dtypes = infer_dtypes(proto)
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
    plan = Plan(proto, low, low_type, order, names, [], dtypes, consts, consumers)
    low_str = LOW_TYPE_STR[low_type]
    opsets = {imp.domain or "": imp.version for imp in proto.opset_import}
    opsets.setdefault("ai.onnx", opsets.get("", 0))
    get = dtypes.get
    for i, n in enumerate(nodes):
        domain = n.domain or ""
        if domain == "ai.onnx":
            domain = ""
        sig = (n.op_type, domain, opsets.get(domain), tuple(get(t, 0) if t else -1 for t in ins[i]), tuple(get(t, 0) if t else -1 for t in outs[i]))
        float_touch, mode, low_in, low_out, reason = _classify(*sig, low_str)
        if names[i] in pin_set and float_touch and mode != "const":
            plan.pinned.append(names[i])
            plan.nodes.append(NodePlan("fp32"))
            continue
        if mode == "auto":
            plan.auto_fp32.append(AutoFp32(names[i], n.op_type, reason))
        plan.nodes.append(NodePlan(mode, low_in, low_out))

    _apply_init_max(plan, nodes, init_max)
    return plan


@functools.lru_cache(maxsize=4096)
def _classify(op_type: str, domain: str, opset: int | None, in_types: tuple[int, ...], out_types: tuple[int, ...], low_str: str):
    """(touches float, mode, low input positions, low output positions, auto-FP32 reason) for a node
    signature: nodes of the same op and dtypes classify alike, so 10k-node graphs cost a few hundred calls.
    Dtype -1 marks an omitted optional input/output, 0 an unknown dtype."""
    if op_type == "Constant" and domain == "":
        return False, ("const" if out_types and out_types[0] == FLOAT else "keep"), frozenset(), frozenset(), ""
    if FLOAT not in in_types and FLOAT not in out_types:
        return False, "keep", frozenset(), frozenset(), ""
    typing = op_typing(op_type, opset, domain) if opset is not None else None
    if typing is None:
        return True, "auto", frozenset(), frozenset(), f"no ONNX schema for {domain or 'ai.onnx'}::{op_type}"

    flexible = op_type in FLEXIBLE_INPUT_OPS
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


def _apply_init_max(plan: Plan, nodes: list[onnx.NodeProto], init_max: float) -> None:
    """Consumers of constants beyond init_max stay FP32 (the constant would be inf in fp16)."""
    for cname in list(plan.consts):
        users = [i for i in plan.consumers.get(cname, ()) if plan.nodes[i].mode == "low"]
        if not users:
            continue
        # only positions that would actually be converted read the low-precision value
        users = [i for i in users if any(nodes[i].input[k] == cname for k in plan.nodes[i].low_in)]
        if not users:
            continue
        peak = _max_abs(plan.const_array(cname))
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
