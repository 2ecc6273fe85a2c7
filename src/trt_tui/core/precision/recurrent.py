"""Per-step state rounding for GRU, LSTM and RNN nodes in the emulation.

An fp16/bf16 recurrent kernel keeps its running state (hidden h, and the LSTM cell c) in the low precision
from step to step inside the op; rounding only the op's outputs misses that error, which is what streaming
caches carry (measured: a GRU model's cache outputs read 0.59-0.85x of the CUDA EP's drift). So a recurrent
node with a static sequence length is unrolled into one single-step node of the same op per time step and
direction (ONNX Runtime's own kernel: activations, clip, linear_before_reset, input_forget and peepholes
keep their exact meaning; layout-1 nodes run as layout 0 between Transposes, since ORT's CPU has no layout 1), and each step's state outputs are rounded through the low precision before the
next step reads them. The original outputs (Y, Y_h, Y_c) are rebuilt under their original names by
Concat of the rounded per-step values.

Nodes that cannot be unrolled (dynamic or too long sequence, `sequence_lens` given, bidirectional with
activation_alpha/beta) keep the outputs-only rounding, and the reason is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

RECURRENT_OPS = frozenset({"GRU", "LSTM", "RNN"})
MAX_UNROLL_STEPS = 4096  # beyond this the unrolled graph is too big to be worth it: outputs-only rounding


def unroll_blocker(node: onnx.NodeProto, seq_len: int | None) -> str | None:
    """Why `node` cannot be unrolled (None: it can)."""
    attrs = {a.name: a for a in node.attribute}
    if len(node.input) > 4 and node.input[4]:
        return "sequence_lens is given (per-batch lengths): state rounded at the outputs only"
    if seq_len is None:
        return "sequence length is not static: state rounded at the outputs only"
    if seq_len > MAX_UNROLL_STEPS:
        return f"sequence length {seq_len} > {MAX_UNROLL_STEPS}: state rounded at the outputs only"
    direction = attrs["direction"].s.decode() if "direction" in attrs else "forward"
    if direction == "bidirectional" and ("activation_alpha" in attrs or "activation_beta" in attrs):
        return "bidirectional with activation_alpha/beta: state rounded at the outputs only"
    return None


def unroll(
    node: onnx.NodeProto,
    inputs: list[str],
    seq_len: int,
    emit: Callable[..., onnx.NodeProto],
    fresh: Callable[[str], str],
    round_state: Callable[[str, str], None],
) -> None:
    """Write the unrolled form of `node` reading `inputs` (already renamed to their rounded forms).

    `emit(op, inputs, outputs, name, **attrs)` appends a node; `fresh(base)` returns an unused name;
    `round_state(source, target)` writes `target` = `source` rounded through the low precision.
    """
    attrs = {a.name: a for a in node.attribute}
    layout = attrs["layout"].i if "layout" in attrs else 0
    direction = attrs["direction"].s.decode() if "direction" in attrs else "forward"
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    lstm = node.op_type == "LSTM"
    n_states = 2 if lstm else 1
    base = node.name or node.output[0]
    seq_axis, dir_axis_y, dir_axis_h = (1, 2, 1) if layout else (0, 1, 0)  # Gather/Concat use only opset-7 forms

    def const_i64(values: list[int]) -> str:
        name = fresh(f"{base}/idx")
        emit("Constant", [], [name], fresh(f"{base}/idx_const"), value=numpy_helper.from_array(np.asarray(values, np.int64)))
        return name

    def pick(tensor: str, index: int, axis: int) -> str:  # tensor[index] along axis, the axis kept (size 1)
        out = fresh(f"{tensor}__{axis}_{index}")
        emit("Gather", [tensor, const_i64([index])], [out], fresh(f"{base}/gather"), axis=axis)
        return out

    def transpose(tensor: str, perm: list[int]) -> str:
        out = fresh(f"{tensor}__t")
        emit("Transpose", [tensor], [out], fresh(f"{base}/transpose"), perm=perm)
        return out

    # steps run with layout 0 (ONNX Runtime's CPU kernels support no other); layout-1 tensors are transposed
    step_attrs = {}
    for name, a in attrs.items():
        if name in ("direction", "layout"):
            continue
        value = onnx.helper.get_attribute_value(a)
        step_attrs[name] = value.decode() if isinstance(value, bytes) else value
    x = inputs[0]
    y_parts: dict[int, list[str]] = {t: [] for t in range(seq_len)}  # per step: one rounded Y per direction
    final: list[list[str]] = [[] for _ in range(n_states)]  # per state: the last step's value per direction
    for d, way in enumerate(dirs):
        per_dir = dict(step_attrs)
        if direction == "bidirectional" and "activations" in per_dir:
            acts = list(per_dir["activations"])
            per_dir["activations"] = acts[d * len(acts) // 2 : (d + 1) * len(acts) // 2]
        weights = [pick(t, d, 0) if (t and len(dirs) > 1) else t for t in inputs[1:4]]
        while len(weights) < 3:
            weights.append("")
        peephole = ""
        if lstm and len(inputs) > 7 and inputs[7]:
            peephole = pick(inputs[7], d, 0) if len(dirs) > 1 else inputs[7]
        states = []
        for k in range(n_states):
            pos = 5 + k
            init = inputs[pos] if len(inputs) > pos and inputs[pos] else ""
            init = pick(init, d, dir_axis_h) if (init and len(dirs) > 1) else init
            states.append(transpose(init, [1, 0, 2]) if (init and layout) else init)
        steps = range(seq_len) if way == "forward" else range(seq_len - 1, -1, -1)
        for t in steps:
            x_t = pick(x, t, seq_axis)
            if layout:
                x_t = transpose(x_t, [1, 0, 2])
            tag = f"{base}/{way}/t{t}"
            acc = [fresh(f"{tag}/Y__acc")] + [fresh(f"{tag}/{s}__acc") for s in ("Y_h", "Y_c")[:n_states]]
            step_inputs = [x_t, *weights, "", *states]
            if lstm and peephole:
                step_inputs.append(peephole)
            while step_inputs and not step_inputs[-1]:
                step_inputs.pop()
            emit(node.op_type, step_inputs, acc, fresh(tag), **per_dir)
            y_t = fresh(f"{tag}/Y")
            round_state(acc[0], y_t)
            y_parts[t].append(transpose(y_t, [2, 0, 1, 3]) if layout else y_t)
            states = []
            for k in range(n_states):
                s = fresh(f"{tag}/{('Y_h', 'Y_c')[k]}")
                round_state(acc[1 + k], s)
                states.append(s)
        for k in range(n_states):
            final[k].append(transpose(states[k], [1, 0, 2]) if layout else states[k])

    outputs = list(node.output) + [""] * (1 + n_states - len(node.output))
    if outputs[0]:
        per_step = []
        for t in range(seq_len):
            parts = y_parts[t]
            if len(parts) == 1:
                per_step.append(parts[0])
            else:
                joined = fresh(f"{base}/t{t}/Y")
                emit("Concat", parts, [joined], fresh(f"{base}/concat_dirs"), axis=dir_axis_y)
                per_step.append(joined)
        emit("Concat", per_step, [outputs[0]], fresh(f"{base}/concat_steps"), axis=seq_axis)
    for k in range(n_states):
        if outputs[1 + k]:
            emit("Concat", final[k], [outputs[1 + k]], fresh(f"{base}/concat_state"), axis=dir_axis_h)


def is_recurrent(node: onnx.NodeProto) -> bool:
    return node.op_type in RECURRENT_OPS and (node.domain or "") in ("", "ai.onnx")


def sequence_axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "layout"), 0)  # layout 1: X is [batch, seq, input]
