"""`emulate`: an FP32 graph that reproduces FP16/BF16 storage rounding on ONNX Runtime CPU.

Why not run the real mixed-precision graph on ORT CPU? Measured: fp16 gets silent FP32 islands (errors 2-5x
too small) and bf16 mostly fails to run (shared/research/precision-emulation.md). Instead every output `Y`
of a non-pinned float node is rounded through the low precision by a Cast pair: the node writes
`Y__acc`, `Cast(to=low)` and `Cast(to=FLOAT)` write the rounded value back under the ORIGINAL name `Y`,
so every original tensor stays addressable for layer-wise comparisons. Constants read by low-precision
nodes are pre-rounded; data-movement ops pass precision through; a MatMul whose only consumer is a
constant-bias Add is treated as fused (rounded once, after the Add), like a GEMM epilogue.

The precision plan is the one `to_mixed_precision` uses with one difference: the ONNX typing rules do not
limit it (`make_plan(round_all=True)`). TensorRT runs Conv, LSTM, Pad, Gemm... in fp16/bf16 and the emulation
computes in FP32 anyway, so every non-pinned float tensor is rounded; only pins, init_max consumers and
nodes computed from constants/shapes stay FP32 (`result.kept_fp32`, with reasons). A bf16 emulation of an
opset < 13 model is upgraded to opset 13 first (Cast to bfloat16 needs it). `result.low_precision` says
how many tensors are really rounded (see summary.py). Kernels are assumed to accumulate in FP32; only
storage rounding is modelled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import onnx
from onnx import helper

from trt_tui.core.precision.common import SHORT, Names, fix_stale_shapes, add_cast, round_through, set_metadata, skeleton, tensor_from
from trt_tui.core.precision.opsupport import PASS_THROUGH_OPS
from trt_tui.core.precision.common import subgraphs
from trt_tui.core.precision.recurrent import is_recurrent, sequence_axis, unroll_blocker, write_unrolled
from trt_tui.core.precision.common import all_graphs, outer_references
from trt_tui.core.precision.plan import FLOAT, node_name, ModelLike, OverflowInitializer, Plan, make_plan
from trt_tui.core.precision.writing import DerivedWeights, save_model
from trt_tui.core.precision.summary import KeptFp32, LowPrecisionSummary, write_low_precision

METADATA_KEY = "trt_tui.emulation"


@dataclass
class EmulationResult:
    model: onnx.ModelProto
    low: str
    pinned: list[str]
    rounded_tensors: list[str] = field(default_factory=list)  # original names now holding rounded values
    cast_pairs: list[tuple[str, str]] = field(default_factory=list)  # (Cast to low, Cast back to FLOAT) nodes
    rounded_inputs: list[str] = field(default_factory=list)  # FP32 tensors rounded where a low node reads them
    pre_rounded_constants: list[str] = field(default_factory=list)
    fused_matmuls: list[str] = field(default_factory=list)
    auto_fp32: list[KeptFp32] = field(default_factory=list)
    overflow_initializers: list[OverflowInitializer] = field(default_factory=list)
    weights: DerivedWeights | None = None  # the values of model's initializers (writing.py); save with save()
    kept_fp32: list[KeptFp32] = field(default_factory=list)  # every FP32 node, with its reason
    low_nodes: int = 0
    opset_upgrade: tuple[int, int] | None = None
    shape_fixes: list[str] = field(default_factory=list)  # stale shape declarations of the source, corrected
    recurrent_per_step: list[str] = field(default_factory=list)  # GRU/LSTM/RNN nodes unrolled, state rounded per step
    recurrent_outputs_only: list[KeptFp32] = field(default_factory=list)  # those that could not be, with why

    def save(self, path, *, overwrite: bool = False):
        return save_model(self.model, path, overwrite=overwrite, weights=self.weights)

    @property
    def low_precision(self) -> LowPrecisionSummary:
        rounded = len(self.rounded_tensors) + len(self.rounded_inputs) + len(self.pre_rounded_constants)
        return LowPrecisionSummary(self.low, self.low_nodes, rounded, tuple(self.kept_fp32), self.opset_upgrade)

    def to_json(self) -> dict:
        return {
            "low_precision": self.low_precision.to_json(),
            "low": self.low,
            "pinned": list(self.pinned),
            "rounded_tensors": len(self.rounded_tensors),
            "cast_pairs": len(self.cast_pairs),
            "rounded_inputs": list(self.rounded_inputs),
            "pre_rounded_constants": len(self.pre_rounded_constants),
            "fused_matmuls": list(self.fused_matmuls),
            "auto_fp32": [a.to_json() for a in self.auto_fp32],
            "overflow_initializers": [o.to_json() for o in self.overflow_initializers],
            "recurrent_per_step": list(self.recurrent_per_step),
            "recurrent_outputs_only": [r.to_json() for r in self.recurrent_outputs_only],
        }


def emulate(
    model: ModelLike,
    low: str,
    pins,
    *,
    fuse_bias: bool = True,
    keep_io_types: bool = True,
    init_max: float = 65504.0,
    base_dir: str | os.PathLike | None = None,
    round_recurrent_state: bool = True,
    peaks: dict[str, float] | None = None,
    weights: DerivedWeights | None = None,
) -> EmulationResult:
    """The storage-rounding emulation of `to_mixed_precision(model, low, pins, ...)` as an FP32 model.

    `keep_io_types=False` also rounds float graph inputs (for every reader) and graph outputs, as an
    engine with fp16/bf16 IO would. `round_recurrent_state=True` rounds the running state of GRU/LSTM/RNN
    nodes at every step, as fp16/bf16 kernels keep it (recurrent.py); False rounds their outputs only.
    If/Loop/Scan models are refused with a UserError. `peaks`, `weights`: as make_plan's.
    """
    plan = make_plan(model, low, pins, init_max=init_max, base_dir=base_dir, round_all=True, peaks=peaks, weights=weights)
    return _Emulator(plan, fuse_bias, keep_io_types, round_recurrent_state, pins=set(pins), base_dir=base_dir).run()


class _Emulator:
    def __init__(
        self, plan: Plan, fuse_bias: bool, keep_io: bool, round_recurrent: bool = True, *,
        pins: set[str] = frozenset(), base_dir=None, names: Names | None = None, init_max: float = 65504.0,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.pins, self.base_dir, self.init_max = pins, base_dir, init_max
        self.round_recurrent = round_recurrent
        self.low = plan.low_type
        self.tag = SHORT[self.low]
        self.keep_io = keep_io
        self.fuse_bias = fuse_bias
        self.src = plan.model
        self.nodes = list(self.src.graph.node)
        self.names = names or Names(self.src)
        self.body_low_nodes = 0
        self.out = skeleton(self.src)
        self.exact: set[str] = set()  # tensors whose value under their name is already low-representable
        self.alias: dict[str, str] = {}  # tensor -> name of its rounded copy
        self.at_source: set[str] = set()  # graph inputs rounded before any reader (keep_io_types=False)
        self.fp32_alias: dict[str, str] = {}  # graph outputs rounded for IO: FP32 readers use the raw value
        self.res = EmulationResult(
            self.out, plan.low, list(plan.pinned), auto_fp32=plan.auto_fp32, overflow_initializers=plan.overflow,
            kept_fp32=plan.kept_fp32, opset_upgrade=plan.opset_upgrade, weights=plan.weights,
        )

    def run(self) -> EmulationResult:
        g = self.out.graph
        self.graph_outputs = {vi.name for vi in g.output}
        low_readers = self._const_low_readers()
        for init in self.src.graph.initializer:
            readers = low_readers.get(init.name)
            if init.name in self.plan.consts and readers:
                self._pre_round_initializer(init, readers)
            else:
                g.initializer.append(init)
        if not self.keep_io:  # an engine with low-precision IO rounds its inputs before anything reads them
            for vi in self.src.graph.input:
                if self.plan.dtypes.get(vi.name) == FLOAT and vi.name not in self.plan.consts:
                    self._rounded_alias(vi.name)
                    self.at_source.add(vi.name)
        self.fused = self._fusable_matmuls() if self.fuse_bias else set()
        for i in self.plan.order:
            self._emit(i, low_readers)
        set_metadata(self.out, METADATA_KEY, json.dumps({"low": self.plan.low, "cast_pairs": len(self.res.cast_pairs)}))
        self.res.low_nodes = sum(1 for n in self.plan.nodes if n.mode == "low") + self.body_low_nodes
        self.res.shape_fixes = self._fix_shapes()
        write_low_precision(self.out, self.res.low_precision)
        return self.res

    def _fix_shapes(self) -> list[str]:
        return fix_stale_shapes(self.out)

    # ---- constants ---------------------------------------------------------------------------------------
    def _const_low_readers(self) -> dict[str, tuple[int, int]]:
        """const -> (readers in low precision, all readers) for the constants low nodes read."""
        counts: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            np_ = self.plan.nodes[i]
            # a body reading an outer constant is a reader too (and an FP32 one for this count: the body rounds
            # its own copy where its readers are low), so the constant is never rounded in place under it
            reads = list(node.input) + (outer_references_of(node) if np_.mode == "flow" else [])
            for k, t in enumerate(reads):
                if t in self.plan.consts:
                    c = counts.setdefault(t, [0, 0])
                    c[1] += 1
                    c[0] += int(np_.mode == "low" and k in np_.low_in)
        return {t: (lo, total) for t, (lo, total) in counts.items() if lo}

    def _pre_round_initializer(self, init: onnx.TensorProto, readers: tuple[int, int]) -> None:
        g = self.out.graph
        rounded = lambda arr: round_through(arr, self.low)  # noqa: E731 - element-wise, so weights can stream
        self.res.pre_rounded_constants.append(init.name)
        if readers[0] == readers[1] and init.name not in self.graph_outputs:
            g.initializer.append(self.plan.derived(init.name, init.name, FLOAT, rounded))  # every reader is low: in place
            self.exact.add(init.name)
            return
        g.initializer.append(init)
        copy = self.names.fresh(f"{init.name}__{self.tag}r")
        g.initializer.append(self.plan.derived(init.name, copy, FLOAT, rounded))
        self.alias[init.name] = copy

    def _rounded_alias(self, tensor: str) -> str:
        """A rounded copy of an FP32-valued tensor, made once and shared by every low reader."""
        if tensor in self.alias:
            return self.alias[tensor]
        out = self.names.fresh(f"{tensor}__{self.tag}r")
        self._cast_pair(tensor, out, f"{tensor}__round_input")
        self.alias[tensor] = out
        self.res.rounded_inputs.append(tensor)
        return out

    def _cast_pair(self, source: str, target: str, base: str) -> None:
        mid = self.names.fresh(f"{target}__{self.tag}")
        first, second = self.names.fresh(f"{base}/to_{self.tag}"), self.names.fresh(f"{base}/to_fp32")
        add_cast(self.out.graph, first, source, mid, self.low)
        add_cast(self.out.graph, second, mid, target, FLOAT)
        self.res.cast_pairs.append((first, second))

    def _fusable_matmuls(self) -> set[str]:
        """MatMul outputs read only by one Add of a constant bias: rounded once, after the Add."""
        fused = set()
        for i, node in enumerate(self.nodes):
            if node.op_type != "MatMul" or self.plan.nodes[i].mode != "low":
                continue
            y = node.output[0]
            users = self.plan.consumers.get(y, [])
            if len(users) != 1 or y in self.graph_outputs:
                continue
            add = self.nodes[users[0]]
            if add.op_type == "Add" and self.plan.nodes[users[0]].mode == "low" and len(add.input) == 2:
                other = add.input[1] if add.input[0] == y else add.input[0]
                if other in self.plan.consts and other != y:
                    fused.add(y)
                    self.res.fused_matmuls.append(self.plan.names[i])
        return fused

    # ---- nodes -------------------------------------------------------------------------------------------
    def _emit(self, i: int, low_readers) -> None:
        src_node, np_ = self.nodes[i], self.plan.nodes[i]
        g = self.out.graph
        if np_.mode == "const":
            self._emit_constant(src_node, low_readers.get(src_node.output[0]))
            return
        if np_.mode == "flow":
            self._emit_control_flow(src_node)
            return
        low = np_.mode == "low"
        renamed: dict[int, str] = {}  # worked out before the node is added: rounding Casts go first
        for k, t in enumerate(src_node.input):
            if not t:
                continue
            if low and k in np_.low_in:
                if t not in self.exact and t not in self.fused:
                    renamed[k] = self._rounded_alias(t) if t not in self.alias else self.alias[t]
            elif t in self.fp32_alias:
                renamed[k] = self.fp32_alias[t]
            elif t in self.at_source:
                renamed[k] = self.alias[t]  # a graph input rounded at the source: every reader sees it
        if low and self.round_recurrent and is_recurrent(src_node) and self._unrolled(i, src_node, renamed):
            return
        node = g.node.add()
        node.CopyFrom(src_node)
        for k, name in renamed.items():
            node.input[k] = name
        pairs = []
        for k, t in enumerate(src_node.output):
            if not t:
                continue
            if low and k in np_.low_out:
                if src_node.op_type in PASS_THROUGH_OPS:
                    self.exact.add(t)
                    continue
                if t in self.fused:
                    continue
                pairs.append((k, t))
            elif not self.keep_io and t in self.graph_outputs and self.plan.dtypes.get(t) == FLOAT:
                pairs.append((k, t))  # FP32 node writing a low-precision graph output
        for k, t in pairs:
            acc = self.names.fresh(f"{t}__acc")
            node.output[k] = acc
            if not low:
                self.fp32_alias[t] = acc
            self.exact.add(t)
            self.res.rounded_tensors.append(t)
        for k, t in pairs:
            self._cast_pair(node.output[k], t, f"{node.name or t}__round_{k}")

    def _emit_control_flow(self, src_node: onnx.NodeProto) -> None:
        """If/Loop/Scan: the node as is, each body emulated like a model of its own (outer-scope reads become
        its inputs for the rewrite, then are dropped again: the body keeps reading the outer names)."""
        node = self.out.graph.node.add()
        node.CopyFrom(src_node)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                a.g.CopyFrom(self._emulated_body(a.g))
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    g.CopyFrom(self._emulated_body(g))

    def _emulated_body(self, body: onnx.GraphProto) -> onnx.GraphProto:
        sub = onnx.ModelProto()
        sub.ir_version = self.src.ir_version
        sub.opset_import.extend(self.src.opset_import)
        sub.functions.extend(self.src.functions)
        sub.graph.CopyFrom(body)
        for t in outer_references(body):
            dtype = self.plan.dtypes.get(t, 0)
            sub.graph.input.append(helper.make_tensor_value_info(t, dtype or FLOAT, None))
        body_names = {node_name(n) for g in all_graphs(body) for n in g.node}
        plan = make_plan(sub, self.plan.low, sorted(self.pins & body_names), init_max=self.init_max, base_dir=self.base_dir, round_all=True)
        inner = _Emulator(
            plan, self.fuse_bias, True, self.round_recurrent, pins=self.pins, base_dir=self.base_dir, names=self.names, init_max=self.init_max
        ).run()  # keep_io: a body's inputs and outputs are not the engine's IO
        self.plan.weights.derived.update(plan.weights.derived)
        r = self.res
        r.rounded_tensors += inner.rounded_tensors
        r.cast_pairs += inner.cast_pairs
        r.rounded_inputs += inner.rounded_inputs
        r.pre_rounded_constants += inner.pre_rounded_constants
        r.fused_matmuls += inner.fused_matmuls
        r.kept_fp32 += inner.kept_fp32
        r.pinned += inner.pinned
        r.recurrent_per_step += inner.recurrent_per_step
        r.recurrent_outputs_only += inner.recurrent_outputs_only
        self.body_low_nodes += inner.low_nodes
        out = inner.model.graph
        del out.input[:]
        out.input.extend(body.input)
        return out

    def _unrolled(self, i: int, src_node: onnx.NodeProto, renamed: dict[int, str]) -> bool:
        """Unroll a recurrent node so its state is rounded at every step (recurrent.py); False if it cannot be."""
        seq = self.plan.static_dim(src_node.input[0], sequence_axis(src_node))
        why = unroll_blocker(src_node, seq)
        if why is not None:
            self.res.recurrent_outputs_only.append(KeptFp32(self.plan.names[i], src_node.op_type, why))
            return False
        g = self.out.graph

        def add(op, inputs, outputs, name, **attrs):
            g.node.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

        inputs = [renamed.get(k, t) for k, t in enumerate(src_node.input)]
        opset = next((o.version for o in self.src.opset_import if o.domain in ("", "ai.onnx")), 0)
        write_unrolled(src_node, inputs, seq, add, self.names.fresh, lambda src, dst: self._cast_pair(src, dst, f"{dst}__round"),
                       fp16=self.low == onnx.TensorProto.FLOAT16, opset=opset, input_size=self.plan.static_dim(src_node.input[1], 2))  # fmt: skip
        for t in src_node.output:
            if t:  # every value in them was rounded at its step
                self.exact.add(t)
                self.res.rounded_tensors.append(t)
        self.res.recurrent_per_step.append(self.plan.names[i])
        return True

    def _emit_constant(self, node: onnx.NodeProto, readers: tuple[int, int] | None) -> None:
        out_name = node.output[0]
        g = self.out.graph
        if not readers:
            g.node.append(node)
            return
        rounded = tensor_from(round_through(self.plan.const_array(out_name), self.low), "")
        self.res.pre_rounded_constants.append(out_name)
        if readers[0] == readers[1] and out_name not in self.graph_outputs:
            g.node.append(helper.make_node("Constant", [], [out_name], name=node.name, value=rounded))
            self.exact.add(out_name)
            return
        g.node.append(node)
        copy = self.names.fresh(f"{out_name}__{self.tag}r")
        g.node.append(helper.make_node("Constant", [], [copy], name=self.names.fresh(f"{node.name or out_name}__{self.tag}r"), value=rounded))
        self.alias[out_name] = copy


def outer_references_of(node: onnx.NodeProto) -> list[str]:
    """What the bodies of an If/Loop/Scan node read from the enclosing graph."""
    refs: dict[str, None] = {}
    for g in subgraphs(node):
        refs.update(dict.fromkeys(outer_references(g)))
    return list(refs)
