"""Tiny stateful models named the way real exports name them (VADs, GRU/LSTM enhancers, decoders), for the
contract-init tests. Each output is a cheap function of one input (Tanh of it, or of its mean for a
different shape); what matters is the names, dtypes and shapes.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def model(inputs: list[tuple[str, int, list]], outputs: list[tuple[str, int, list, str]], opset: int = 17) -> onnx.ModelProto:
    """inputs: (name, type, shape); outputs: (name, type, shape, source input). Output = f(source)."""
    nodes = []
    for name, elem, _shape, src in outputs:
        op = "Tanh" if elem == F else "Identity"
        nodes.append(helper.make_node(op, [src], [name], name=f"/{name}/{op}"))
    graph = helper.make_graph(
        nodes, "stateful",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s, _ in outputs],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def lstm_vad() -> onnx.ModelProto:
    """silero v4 style: input, sr, h, c -> output, hn, cn."""
    return model(
        [("input", F, ["batch", 512]), ("sr", I64, []), ("h", F, [2, "batch", 64]), ("c", F, [2, "batch", 64])],
        [("output", F, ["batch", 512], "input"), ("hn", F, [2, "batch", 64], "h"), ("cn", F, [2, "batch", 64], "c")],
    )


def state_vad() -> onnx.ModelProto:
    """silero v5 style: input, state, sr -> output, stateN."""
    return model(
        [("input", F, ["batch", 512]), ("state", F, [2, "batch", 128]), ("sr", I64, [])],
        [("output", F, ["batch", 512], "input"), ("stateN", F, [2, "batch", 128], "state")],
    )


def gru_enhancer() -> onnx.ModelProto:
    """An enhancer whose audio output has exactly the shape of its audio input, with h0 -> hn states."""
    return model(
        [("noisy", F, [1, 1, 256]), ("h0", F, [1, 1, 128]), ("c0", F, [1, 1, 128])],
        [("enhanced", F, [1, 1, 256], "noisy"), ("hn", F, [1, 1, 128], "h0"), ("cn", F, [1, 1, 128], "c0")],
    )


def enhancer_unnamed_states() -> onnx.ModelProto:
    """Audio in and out of the same shape, and a cache pair named in/out."""
    return model(
        [("input", F, [1, 1, 256]), ("cache_in", F, [1, 64, 4]), ("erb_state_in", F, [1, 2, 32])],
        [("output", F, [1, 1, 256], "input"), ("cache_out", F, [1, 64, 4], "cache_in"),
         ("erb_state_out", F, [1, 2, 32], "erb_state_in")],
    )  # fmt: skip


def conv_out_like_signal() -> onnx.ModelProto:
    """A conv feature output shaped like the signal input, and nothing named like state."""
    return model([("x", F, [1, 64, 16])], [("conv_out", F, [1, 64, 16], "x")])


def prefixed_and_kv() -> onnx.ModelProto:
    """in_/out_ prefixes, next_/new_ prefixes, present/past_key_values, a length."""
    return model(
        [("tokens", F, [1, 8, 16]), ("in_hidden", F, [1, 32]), ("past_key_values.0.key", F, [1, 2, 4, 8]),
         ("mem", F, [1, 8]), ("cache_len", I64, [1])],
        [("logits", F, [1, 8, 16], "tokens"), ("out_hidden", F, [1, 32], "in_hidden"),
         ("present.0.key", F, [1, 2, 4, 8], "past_key_values.0.key"), ("new_mem", F, [1, 8], "mem"),
         ("next_cache_len", I64, [1], "cache_len")],
    )  # fmt: skip


def unknown_dims() -> onnx.ModelProto:
    """Unnamed dims (neither value nor name) and a negative dim (-1) on the signal and the state."""
    m = model(
        [("audio", F, [None, 8, None]), ("h", F, [1, 8])],
        [("y", F, [None, 8, None], "audio"), ("h_next", F, [1, 8], "h")],
    )
    m.graph.input[1].type.tensor_type.shape.dim[0].dim_value = -1  # some exporters write -1 for "unknown"
    m.graph.output[1].type.tensor_type.shape.dim[0].dim_value = -1
    return m
