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

fp16 nodes that cuDNN can run (what ONNX Runtime's CUDA EP runs them on) are unrolled as cuDNN's fp16
arithmetic instead (`unroll_cudnn`), because rounding the state alone read 0.2-0.6x of the CUDA EP's drift.
ORT sets the RNN descriptor's math precision to the data type (CUDNN_DATA_HALF, "true half") with tensor-op
math, so: products accumulate in fp16 (rounded after every 16 terms), every elementwise step is an fp16
operation, and the activations are sigmoid(x) = 1/(1+exp(-x)) and tanh(x) = 2*sigmoid(2x)-1, each operation
rounded: that tanh has an absolute error of about ulp(1) near zero, most of the drift. Fitted on the lent
H200 (ORT 1.31 CUDA, cuDNN 9) node by node on the corpus' recurrent models, fed the nodes' real inputs: the
openWakeWord bidirectional LSTMs bit for bit (every step, both layers); silero's LSTM 60-77% and the GRU
62-66% of the fp16 values identical; drift ratios 0.93-1.05 on Y, Y_h and Y_c (state rounding alone:
0.18-0.72). bf16 (no cuDNN kernel in ORT) and configurations cuDNN has no kernel for (GRU with
linear_before_reset=0, non-default activations, clip, input_forget, peepholes) keep the step model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

RECURRENT_OPS = frozenset({"GRU", "LSTM", "RNN"})
MAX_UNROLL_STEPS = 4096  # beyond this the unrolled graph is too big to be worth it: outputs-only rounding
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}
MMA_K = 16  # cuDNN's fp16 products accumulate in fp16, rounded after every 16 terms of the sum
DEFAULT_ACTIVATIONS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}


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


def write_unrolled(
    node: onnx.NodeProto,
    inputs: list[str],
    seq_len: int,
    emit: Callable[..., onnx.NodeProto],
    fresh: Callable[[str], str],
    round_state: Callable[[str, str], None],
    *,
    fp16: bool,
    opset: int,
    input_size: int | None,
) -> None:
    """`unroll_cudnn` where the node is fp16 and cuDNN has its configuration, else `unroll` (the step model)."""
    fresh = _numbered(fresh)
    if fp16 and input_size and cudnn_blocker(node, opset) is None:
        unroll_cudnn(node, inputs, seq_len, input_size, emit, fresh, round_state)
    else:
        unroll(node, inputs, seq_len, emit, fresh, round_state)


def _numbered(fresh: Callable[[str], str]) -> Callable[[str], str]:
    """`fresh` with a running number per base: an unrolled node asks for the same base thousands of times,
    and `fresh` alone probes base_2, base_3, ... from the start each time (quadratic: 126 s for 34k nodes)."""
    count: dict[str, int] = {}

    def numbered(base: str) -> str:
        k = count[base] = count.get(base, 0) + 1
        return fresh(base if k == 1 else f"{base}_{k}")

    return numbered


def declare_sequence_shapes(model: onnx.ModelProto, feed: dict[str, np.ndarray], weights=None) -> list[str]:
    """Declare (as value_info) the concrete shape `feed` gives every top-level recurrent node's X.

    Shape inference loses the sequence length behind shape arithmetic it cannot follow (silero VAD: a Pad
    whose pads come from Slice/Transpose of constants, then Convs), which left the state rounded at the
    outputs only. So the model runs once on ONNX Runtime's CPU EP with those X as extra outputs. Models with
    external weights are left as they are unless `weights` reads them: the values of `model`'s placeholders
    (a `writing.by_reference` copy) and of its external data (its folder). Returns the tensors declared.
    """
    from trt_tui.core.weights import on_disk

    declared = {vi.name for vi in model.graph.value_info}
    wanted = list(dict.fromkeys(n.input[0] for n in model.graph.node if is_recurrent(n) and n.input and n.input[0] not in declared))
    external = any(on_disk(t) for t in model.graph.initializer)
    if not wanted or (external and getattr(weights, "base_dir", None) is None):
        return []
    import onnxruntime as ort

    probe, weights_fed = _probe_fed_its_weights(model, weights)
    outputs = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in wanted if t not in outputs)
    try:  # the probe holds no external reference: its weights are fed, or inline (_probe_fed_its_weights)
        session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        fed = {i.name for i in session.get_inputs()}
        values = session.run(wanted, {**{k: v for k, v in feed.items() if k in fed}, **weights_fed})
    except Exception:  # noqa: BLE001 - the comparison reports a model ORT cannot run; here it only means "no shape"
        return []
    for t, v in zip(wanted, values):
        model.graph.value_info.append(onnx.helper.make_tensor_value_info(t, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    return wanted


def _probe_fed_its_weights(model: onnx.ModelProto, source=None) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A copy of `model` whose big float weights are graph inputs, and those inputs (arrays over each weight's
    bytes, which ONNX Runtime reads in place). A copy of the model with its weights, serialised, then copied
    again by the session raised a comparison's peak memory on a 54 MB OCR model (ddddocr_ocr, which has an
    LSTM) from ~390 to ~466 MB."""
    from trt_tui.core.weights import FEEDABLE_TYPES, WeightSource, is_external, supplied_separately, weight_free

    probe = weight_free(model)  # nodes, inputs, outputs; its initializers are replaced below
    del probe.graph.initializer[:]
    weights: dict[str, np.ndarray] = {}
    for t in model.graph.initializer:
        # HasField, not `t.raw_data`: reading the field copies its bytes (upb)
        readable = t.HasField("raw_data") or (source is not None and is_external(t))  # a placeholder: `source` has it
        if supplied_separately(t) and t.data_type in FEEDABLE_TYPES and readable:
            weights[t.name] = (source or WeightSource()).array(t)  # over the bytes of raw_data
            probe.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        elif source is not None and is_external(t):  # a placeholder ORT cannot be fed (int64, bf16): its values inline
            probe.graph.initializer.append(_with_values(t, source))
        else:
            probe.graph.initializer.append(t)
    return probe, weights


def _with_values(init: onnx.TensorProto, source) -> onnx.TensorProto:
    """The placeholder `init` with its values (read through `source`) as raw bytes."""
    full = onnx.TensorProto()
    full.name, full.data_type = init.name, init.data_type
    full.dims.extend(init.dims)
    full.raw_data = np.ascontiguousarray(source.array(init)).tobytes()
    return full


def is_recurrent(node: onnx.NodeProto) -> bool:
    return node.op_type in RECURRENT_OPS and (node.domain or "") in ("", "ai.onnx")


def sequence_axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "layout"), 0)  # layout 1: X is [batch, seq, input]


def cudnn_blocker(node: onnx.NodeProto, opset: int) -> str | None:
    """Why `node` is not modelled as cuDNN's fp16 kernel (None: it is); such nodes keep the step model."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "GRU" and not attrs.get("linear_before_reset", 0):
        return "GRU with linear_before_reset=0 (cuDNN computes linear_before_reset=1 only)"
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    default = DEFAULT_ACTIVATIONS[node.op_type]
    if acts and [a.lower() for a in acts] != [a.lower() for a in default * (len(acts) // len(default))]:
        return f"activations {acts} (cuDNN has the defaults only)"
    if "clip" in attrs or attrs.get("input_forget", 0) or "activation_alpha" in attrs or "activation_beta" in attrs:
        return "clip, input_forget or activation_alpha/beta (no cuDNN equivalent)"
    if node.op_type == "LSTM" and len(node.input) > 7 and node.input[7]:
        return "LSTM peepholes (no cuDNN equivalent)"
    if opset < 9:
        return f"opset {opset} < 9"
    return None


def unroll_cudnn(
    node: onnx.NodeProto,
    inputs: list[str],
    seq_len: int,
    input_size: int,
    emit: Callable[..., onnx.NodeProto],
    fresh: Callable[[str], str],
    round_state: Callable[[str, str], None],
) -> None:
    """Write `node` unrolled as cuDNN's fp16 ("true half") arithmetic (module docstring).

    Same callbacks as `unroll`; `round_state` rounds to fp16. Per direction: the input products of all steps
    at once (as cuDNN does), then per step the recurrent product and the gate arithmetic. Products accumulate
    in fp16 over K-chunks of 16 (a tensor-core MMA's k: exact within the chunk, rounded after each); the
    two biases are summed in fp16 and added after the products (GRU's reset-gated h bias stays apart); the
    multiply-adds cuDNN fuses (GRU's r*(R_h h + b) + x, LSTM's f*c + i*g) round once.
    """
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op, hidden = node.op_type, int(attrs["hidden_size"])
    gh = GATES[op] * hidden
    layout = int(attrs.get("layout", 0))
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    base = node.name or node.output[0]

    def call(kind: str, args: list[str], **kw) -> str:
        out = fresh(f"{base}/{kind.lower()}")
        emit(kind, args, [out], fresh(f"{base}/{kind}"), **kw)
        return out

    def const(values, dtype) -> str:
        out = fresh(f"{base}/const")
        emit("Constant", [], [out], fresh(f"{base}/Constant"), value=numpy_helper.from_array(np.asarray(values, dtype)))
        return out

    one, two = const(1.0, np.float32), const(2.0, np.float32)

    def rnd(tensor: str) -> str:
        out = fresh(f"{tensor}__h")
        round_state(tensor, out)
        return out

    def take(tensor: str, start: int, stop: int, axis: int) -> str:  # tensor[start:stop] along axis
        return call("Gather", [tensor, const(np.arange(start, stop), np.int64)], axis=axis)

    def cols(tensor: str, k0: int, k1: int) -> str:  # gates k0..k1 of a [batch, gates*hidden] tensor
        return take(tensor, k0 * hidden, k1 * hidden, 1)

    def matmul16(a: str, a_axis: int, w_t: str, k: int) -> str:  # a @ w_t, fp16 accumulation per 16 of K
        acc = ""
        for s in range(0, k, MMA_K):
            part = call("MatMul", [take(a, s, min(s + MMA_K, k), a_axis), take(w_t, s, min(s + MMA_K, k), 0)])
            acc = rnd(call("Add", [acc, part]) if acc else part)
        return acc

    def sigmoid(x: str) -> str:  # 1 / (1 + exp(-x)), each operation in fp16
        return rnd(call("Reciprocal", [rnd(call("Add", [rnd(call("Exp", [call("Neg", [x])])), one]))]))

    def tanh(x: str) -> str:  # 2 * sigmoid(2x) - 1: cuDNN's fp16 tanh (absolute error ~ulp(1) near 0)
        return rnd(call("Sub", [call("Mul", [sigmoid(call("Mul", [x, two])), two]), one]))

    def add(a: str, b: str) -> str:
        return rnd(call("Add", [a, b]))

    def mul(a: str, b: str) -> str:
        return rnd(call("Mul", [a, b]))

    def fma(a: str, b: str, c: str) -> str:  # a*b + c, rounded once (an fp16 product is exact in fp32)
        return rnd(call("Add", [call("Mul", [a, b]), c]))

    x = call("Transpose", [inputs[0]], perm=[1, 0, 2]) if layout else inputs[0]
    init = [inputs[k] if len(inputs) > k and inputs[k] else "" for k in (5, 6)]
    if layout:
        init = [call("Transpose", [t], perm=[1, 0, 2]) if t else "" for t in init]
    zeros = ""
    if not all(init[: 2 if op == "LSTM" else 1]):  # a missing initial state is zeros of [batch, hidden]
        batch = call("Gather", [call("Shape", [x]), const([1], np.int64)], axis=0)
        zeros = call("ConstantOfShape", [call("Concat", [batch, const([hidden], np.int64)], axis=0)],
                     value=numpy_helper.from_array(np.zeros(1, np.float32)))  # fmt: skip
    y_steps: dict[int, list[str]] = {t: [] for t in range(seq_len)}
    finals: list[list[str]] = [[], []]  # h, c per direction
    y_shape = const([1, 1, -1, hidden], np.int64)
    state_shape = const([1, -1, hidden], np.int64)
    has_bias = len(inputs) > 3 and bool(inputs[3])
    for d, way in enumerate(dirs):
        idx = const(d, np.int64)  # a scalar index drops the direction axis
        w_t = call("Transpose", [call("Gather", [inputs[1], idx], axis=0)], perm=[1, 0])  # [input, gates*hidden]
        r_t = call("Transpose", [call("Gather", [inputs[2], idx], axis=0)], perm=[1, 0])  # [hidden, gates*hidden]
        xw = matmul16(x, 2, w_t, input_size)  # [seq, batch, gates*hidden]
        if has_bias:
            b = call("Gather", [inputs[3], idx], axis=0)
            w_bias, r_bias = take(b, 0, gh, 0), take(b, gh, 2 * gh, 0)
            both = add(w_bias, r_bias)
        h = call("Gather", [init[0], idx], axis=0) if init[0] else zeros
        c = (call("Gather", [init[1], idx], axis=0) if init[1] else zeros) if op == "LSTM" else ""
        if op == "GRU":  # x's h-gate part with its own bias, for every step at once
            xw_n = take(xw, 2 * hidden, 3 * hidden, 2)
            if has_bias:
                xw_n = add(xw_n, take(w_bias, 2 * hidden, 3 * hidden, 0))
        for t in range(seq_len) if way == "forward" else range(seq_len - 1, -1, -1):
            xt = call("Gather", [xw, const(t, np.int64)], axis=0)  # [batch, gates*hidden]
            rh = matmul16(h, 1, r_t, hidden)
            if op == "GRU":  # gates z, r, h; linear_before_reset=1
                zr = add(cols(xt, 0, 2), cols(rh, 0, 2))
                zr = sigmoid(add(zr, take(both, 0, 2 * hidden, 0)) if has_bias else zr)
                z, r = cols(zr, 0, 1), cols(zr, 1, 2)
                rh_n = cols(rh, 2, 3)
                if has_bias:
                    rh_n = add(rh_n, take(r_bias, 2 * hidden, 3 * hidden, 0))
                n = tanh(fma(r, rh_n, call("Gather", [xw_n, const(t, np.int64)], axis=0)))
                h = add(mul(rnd(call("Sub", [one, z])), n), mul(z, h))
            else:
                pre = add(xt, rh)
                if has_bias:
                    pre = add(pre, both)
                if op == "LSTM":  # gates i, o, f, c
                    iof = sigmoid(cols(pre, 0, 3))
                    c = fma(cols(iof, 2, 3), c, mul(cols(iof, 0, 1), tanh(cols(pre, 3, 4))))
                    h = mul(cols(iof, 1, 2), tanh(c))
                else:
                    h = tanh(pre)
            y_steps[t].append(call("Reshape", [h, y_shape]))
        finals[0].append(call("Reshape", [h, state_shape]))
        if op == "LSTM":
            finals[1].append(call("Reshape", [c, state_shape]))

    outputs = list(node.output) + [""] * 3
    if outputs[0]:
        per_step = [parts[0] if len(parts) == 1 else call("Concat", parts, axis=1) for _, parts in sorted(y_steps.items())]
        y = call("Concat", per_step, axis=0)  # [seq, dirs, batch, hidden]
        emit("Transpose" if layout else "Identity", [y], [outputs[0]], fresh(f"{base}/Y"), **({"perm": [2, 0, 1, 3]} if layout else {}))
    for k in range(2 if op == "LSTM" else 1):
        if outputs[1 + k]:
            state = finals[k][0] if len(finals[k]) == 1 else call("Concat", finals[k], axis=0)  # [dirs, batch, hidden]
            emit("Transpose" if layout else "Identity", [state], [outputs[1 + k]], fresh(f"{base}/state"), **({"perm": [1, 0, 2]} if layout else {}))
