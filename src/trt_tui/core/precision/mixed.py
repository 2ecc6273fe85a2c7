"""`to_mixed_precision`: a strongly-typed FP16/BF16 ONNX with chosen nodes in FP32 (what TensorRT 11 builds).

Every non-pinned float node computes in the low precision, pinned (and kept-FP32) nodes in FP32, with Cast
nodes exactly where a tensor's stored type differs from what its consumer needs. Original tensor names
are kept: each node still writes its own outputs; a graph output whose IO type must differ from the
producer's type is produced under `<name>__fp16` (etc.) and Cast to its original name.

Written by hand rather than with onnx-graphsurgeon: the rewrite is a single pass over NodeProtos with a
per-tensor map of available dtypes, and building gs Variables for 10k nodes costs more than the pass.

When the low type needs a newer opset (bf16: 13 for most ops, 22 for Conv/LSTM/GRU) the model is upgraded
with onnx's version converter first (plan.py); every node still kept FP32 is in `result.kept_fp32` with its
reason, and `result.low_precision` counts what really is low (summary.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import onnx
from onnx import helper

from trt_tui.core.precision.common import SHORT, Names, fix_stale_shapes, add_cast, set_metadata, skeleton, tensor_from, to_low
from trt_tui.core.precision.opsupport import DTYPE_ATTRIBUTE, FLEXIBLE_INPUT_OPS
from trt_tui.core.precision.plan import FLOAT, ModelLike, OverflowInitializer, Plan, make_plan
from trt_tui.core.precision.writing import DerivedWeights, save_model
from trt_tui.core.precision.summary import KeptFp32, LowPrecisionSummary, write_low_precision


@dataclass(frozen=True)
class CastInserted:
    node: str
    tensor: str  # the tensor it converts
    output: str
    to: str  # fp32 | fp16 | bf16

    def to_json(self) -> dict:
        return {"node": self.node, "tensor": self.tensor, "output": self.output, "to": self.to}


@dataclass
class MixedPrecisionResult:
    model: onnx.ModelProto
    low: str
    pinned: list[str]
    auto_fp32: list[KeptFp32] = field(default_factory=list)
    overflow_initializers: list[OverflowInitializer] = field(default_factory=list)
    casts_inserted: list[CastInserted] = field(default_factory=list)
    low_nodes: int = 0
    converted_initializers: int = 0
    kept_fp32: list[KeptFp32] = field(default_factory=list)  # every FP32 node, with its reason
    low_tensors: int = 0  # node outputs, initializers and constants stored in the low type
    weights: DerivedWeights | None = None  # the values of model's initializers (writing.py); save with save()
    opset_upgrade: tuple[int, int] | None = None
    shape_fixes: list[str] = field(default_factory=list)  # stale shape declarations of the source, corrected

    def save(self, path, *, overwrite: bool = False):
        return save_model(self.model, path, overwrite=overwrite, weights=self.weights)

    @property
    def low_precision(self) -> LowPrecisionSummary:
        return LowPrecisionSummary(self.low, self.low_nodes, self.low_tensors, tuple(self.kept_fp32), self.opset_upgrade)

    def to_json(self) -> dict:
        return {
            "low_precision": self.low_precision.to_json(),
            "low": self.low,
            "pinned": list(self.pinned),
            "low_nodes": self.low_nodes,
            "converted_initializers": self.converted_initializers,
            "auto_fp32": [a.to_json() for a in self.auto_fp32],
            "overflow_initializers": [o.to_json() for o in self.overflow_initializers],
            "casts_inserted": [c.to_json() for c in self.casts_inserted],
        }


def to_mixed_precision(
    model: ModelLike,
    low: str,
    pins,
    *,
    keep_io_types: bool = True,
    init_max: float = 65504.0,
    base_dir: str | os.PathLike | None = None,
) -> MixedPrecisionResult:
    """Rewrite an FP32 model to strongly-typed mixed precision; `pins` are exact node names kept in FP32.

    `model` may be a path (external data is loaded) or a ModelProto (pass `base_dir` if its external data
    is not loaded). Models with If/Loop/Scan subgraphs are refused with a UserError.
    """
    plan = make_plan(model, low, pins, init_max=init_max, base_dir=base_dir)
    return _Rewriter(plan, keep_io_types).run()


class _Rewriter:
    def __init__(self, plan: Plan, keep_io_types: bool) -> None:
        self.plan = plan
        self.low = plan.low_type
        self.keep_io = keep_io_types
        self.src = plan.model
        self.nodes = list(self.src.graph.node)
        self.names = Names(self.src)
        self.forms: dict[str, dict[int, str]] = {}  # tensor -> {elem type: name holding it in that type}
        self.out = skeleton(self.src)
        self.result = MixedPrecisionResult(
            self.out, plan.low, list(plan.pinned), plan.auto_fp32, plan.overflow,
            kept_fp32=plan.kept_fp32, opset_upgrade=plan.opset_upgrade, weights=plan.weights,
        )

    # ---- what each consumer needs ------------------------------------------------------------------------
    def required(self, i: int, k: int) -> int | None:
        """The dtype node i needs at input k, or None for 'whatever the tensor is'."""
        node, np_ = self.nodes[i], self.plan.nodes[i]
        if np_.mode == "low" and k in np_.low_in:
            return self.low
        if node.op_type in FLEXIBLE_INPUT_OPS:
            return None
        return FLOAT if self.plan.dtypes.get(node.input[k]) == FLOAT else None

    def graph_output_type(self, name: str) -> int | None:
        if self.plan.dtypes.get(name) != FLOAT:
            return None
        return FLOAT if self.keep_io else self.low

    # ---- the pass --------------------------------------------------------------------------------------
    def run(self) -> MixedPrecisionResult:
        g = self.out.graph
        needs = self._const_needs()
        for vi in g.input:
            dtype = self.plan.dtypes.get(vi.name)
            if dtype == FLOAT and not self.keep_io and vi.name not in self.plan.consts:
                vi.type.tensor_type.elem_type = self.low
                self.forms[vi.name] = {self.low: vi.name}
            elif dtype:
                self.forms[vi.name] = {dtype: vi.name}
        for init in self.src.graph.initializer:
            if init.name in self.plan.consts and init.name not in self.forms:
                self._materialise_initializer(init, needs.get(init.name, set()))
            else:
                g.initializer.append(init)
                self.forms.setdefault(init.name, {init.data_type: init.name})

        graph_outputs = {vi.name: self.graph_output_type(vi.name) for vi in g.output}
        for i in self.plan.order:
            self._emit(i, needs, graph_outputs)

        held = {name: t for forms in self.forms.values() for t, name in forms.items()}
        for vi in (*g.output, *g.value_info):
            if vi.name in held and vi.type.HasField("tensor_type"):
                vi.type.tensor_type.elem_type = held[vi.name]
        set_metadata(
            self.out,
            "trt_tui.mixed_precision",
            json.dumps({"low": self.plan.low, "pinned": len(self.plan.pinned), "keep_io_types": self.keep_io}),
        )
        self.result.low_nodes = sum(1 for n in self.plan.nodes if n.mode == "low")
        self.result.low_tensors = len({name for forms in self.forms.values() for t, name in forms.items() if t == self.low})
        self.result.shape_fixes = fix_stale_shapes(self.out)
        write_low_precision(self.out, self.result.low_precision)
        return self.result

    def _const_needs(self) -> dict[str, set[int | None]]:
        needs: dict[str, set[int | None]] = {}
        for i, node in enumerate(self.nodes):
            for k, t in enumerate(node.input):
                if t in self.plan.consts:
                    needs.setdefault(t, set()).add(self.required(i, k))
        for vi in self.src.graph.output:
            if vi.name in self.plan.consts:
                needs.setdefault(vi.name, set()).add(self.graph_output_type(vi.name))
        return needs

    def _materialise_initializer(self, init: onnx.TensorProto, need: set[int | None]) -> None:
        g = self.out.graph
        convert = lambda arr: to_low(arr, self.low)  # noqa: E731 - element-wise, so weights can stream
        if need == {self.low}:  # only low-precision readers: convert in place, keeping the name
            g.initializer.append(self.plan.derived(init.name, init.name, self.low, convert))
            self.forms[init.name] = {self.low: init.name}
            self.result.converted_initializers += 1
            return
        g.initializer.append(init)
        self.forms[init.name] = {FLOAT: init.name}
        if self.low in need:
            copy = self.names.fresh(f"{init.name}__{SHORT[self.low]}")
            g.initializer.append(self.plan.derived(init.name, copy, self.low, convert))
            self.forms[init.name][self.low] = copy
            self.result.converted_initializers += 1

    def _get(self, tensor: str, want: int | None) -> str:
        forms = self.forms.get(tensor)
        if want is None or not tensor or forms is None:
            return tensor
        if want in forms:
            return forms[want]
        source = forms.get(FLOAT) or next(iter(forms.values()))
        out = self.names.fresh(f"{tensor}__{SHORT.get(want, 'cast')}")
        name = self.names.fresh(f"{tensor}__cast_to_{SHORT.get(want, want)}")
        add_cast(self.out.graph, name, source, out, want)
        self.result.casts_inserted.append(CastInserted(name, tensor, out, SHORT.get(want, str(want))))
        forms[want] = out
        return out

    def _emit(self, i: int, needs, graph_outputs: dict[str, int | None]) -> None:
        src_node, np_ = self.nodes[i], self.plan.nodes[i]
        g = self.out.graph
        if np_.mode == "const":
            self._emit_constant(src_node, needs.get(src_node.output[0], set()))
            return
        inputs = [self._get(t, self.required(i, k)) if t else t for k, t in enumerate(src_node.input)]
        node = g.node.add()  # after _get: the Casts it inserts must precede the node
        node.CopyFrom(src_node)
        for k, t in enumerate(inputs):
            if t != src_node.input[k]:
                node.input[k] = t
        if np_.mode == "low":
            self._retype_attributes(node)
        casts_after = []
        for k, t in enumerate(src_node.output):
            if not t:
                continue
            stored = self.low if (np_.mode == "low" and k in np_.low_out) else self.plan.dtypes.get(t)
            want = graph_outputs.get(t)
            if t in graph_outputs and want is not None and want != stored:
                internal = self.names.fresh(f"{t}__{SHORT.get(stored, 'orig')}")
                node.output[k] = internal
                self.forms[t] = {stored: internal, want: t}
                cast = self.names.fresh(f"{t}__cast_to_{SHORT[want]}")
                casts_after.append((cast, internal, t, want))
                self.result.casts_inserted.append(CastInserted(cast, t, t, SHORT[want]))
            else:
                self.forms[t] = {stored: t}
        for cast in casts_after:
            add_cast(g, *cast)

    def _retype_attributes(self, node: onnx.NodeProto) -> None:
        attr_name = DTYPE_ATTRIBUTE.get(node.op_type)
        for a in node.attribute:
            if a.name == attr_name and a.i == FLOAT:
                a.i = self.low
            elif node.op_type == "ConstantOfShape" and a.name == "value" and a.t.data_type == FLOAT:
                a.t.CopyFrom(tensor_from(to_low(onnx.numpy_helper.to_array(a.t), self.low), a.t.name))

    def _emit_constant(self, node: onnx.NodeProto, need: set[int | None]) -> None:
        out_name = node.output[0]
        value = self.plan.const_array(out_name)
        g = self.out.graph
        if need == {self.low}:
            g.node.append(helper.make_node("Constant", [], [out_name], name=node.name, value=tensor_from(to_low(value, self.low), "")))
            self.forms[out_name] = {self.low: out_name}
            return
        g.node.append(node)
        self.forms[out_name] = {FLOAT: out_name}
        if self.low in need:
            copy = self.names.fresh(f"{out_name}__{SHORT[self.low]}")
            name = self.names.fresh(f"{node.name or out_name}__{SHORT[self.low]}")
            g.node.append(helper.make_node("Constant", [], [copy], name=name, value=tensor_from(to_low(value, self.low), "")))
            self.forms[out_name][self.low] = copy

