"""Two tiny streaming models that behave differently under fp16 when their state is fed back (fixtures).

- `conv_cache_model`: a causal depthwise conv whose left context (the last K-1 frames of its input) is the
  state. The cache is REPLACED every chunk by values of the previous chunk only, so rounding error cannot
  pile up: closed-loop error stays flat.
- `running_norm_model`: a streaming cumulative-mean normalisation (as in streaming feature front ends):
  the state is a running SUM of the frames seen so far and a frame count. Every chunk adds to the rounded
  sum, so fp16 rounding accumulates in closed loop (and grows with the sum's magnitude), while a functional
  run (reference state in) stays flat. Pinning the state-update node (`RUNNING_SUM_UPDATE`) to FP32 fixes it.
- `broken_cache_len_demo`: the demo encoder with its cache-length update broken (`Mod` instead of `Min`:
  8, 0, 8, 0, ...), for the monotonic invariant to catch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.modelgen.demo import build_demo_model

FEATURES = 16
CHUNK = 8
CONV_D = 32
KERNEL = 5

RUNNING_SUM_UPDATE = "/state/sum_update/Add"  # the node to pin for the running-sum state
CONV_STATE_PAIRS = {"conv_cache_next": "conv_cache"}
NORM_STATE_PAIRS = {"running_sum_next": "running_sum", "frame_count_next": "frame_count"}


def conv_cache_model(seed: int = 7) -> onnx.ModelProto:
    g = GraphBuilder("conv_cache_stream", seed=seed)
    B, K1 = "B", KERNEL - 1
    x = g.input("x", TensorProto.FLOAT, [B, FEATURES, CHUNK])
    cache = g.input("conv_cache", TensorProto.FLOAT, [B, CONV_D, K1])
    with g.scope("proj"):
        h = g.op("Transpose", [x], perm=[0, 2, 1])
        h = g.linear(h, FEATURES, CONV_D)
        h = g.op("Transpose", [h], perm=[0, 2, 1])
    with g.scope("conv"):
        conv_in = g.op("Concat", [cache, h], axis=2)
        cache_next = g.op("Slice", [conv_in, g.const([CHUNK], np.int64), g.const([K1 + CHUNK], np.int64), g.const([2], np.int64)])
        w = g.weight((CONV_D, 1, KERNEL), scale=0.4)
        bias = g.initializer(g.rng.normal(0, 0.02, CONV_D).astype(np.float32))
        y = g.op("Conv", [conv_in, w, bias], group=CONV_D, kernel_shape=[KERNEL])
        y = g.swish(y)
    with g.scope("out"):
        y = g.op("Transpose", [y], perm=[0, 2, 1])
        y = g.linear(y, CONV_D, FEATURES)
    g.output(y, "y", TensorProto.FLOAT, [B, CHUNK, FEATURES])
    g.output(cache_next, "conv_cache_next", TensorProto.FLOAT, [B, CONV_D, K1])
    return g.build(doc="trt_tui fixture: causal conv with a left-context cache (no error accumulation)")


def running_norm_model(seed: int = 11) -> onnx.ModelProto:
    g = GraphBuilder("running_norm_stream", seed=seed)
    B = "B"
    x = g.input("x", TensorProto.FLOAT, [B, FEATURES, CHUNK])
    running_sum = g.input("running_sum", TensorProto.FLOAT, [B, FEATURES])
    count = g.input("frame_count", TensorProto.INT64, [B])
    with g.scope("state"):
        # features with a DC offset (as log-mel energies have): the running sum keeps growing
        x = g.op("Add", [x, g.const(1.0)])
        chunk_sum = g.op("ReduceSum", [x, g.const([2], np.int64)], keepdims=0)
        # the update writes the state output itself (no Identity in between): a pin on it reaches the output
        sum_next = "running_sum_next"
        g.nodes.append(helper.make_node("Add", [running_sum, chunk_sum], [sum_next], name=RUNNING_SUM_UPDATE))
        with g.scope("count_update"):
            count_next = g.op("Add", [count, g.const(CHUNK, np.int64)])
        n = g.op("Unsqueeze", [g.op("Cast", [count_next], to=TensorProto.FLOAT), g.const([1], np.int64)])
        mean = g.op("Unsqueeze", [g.op("Div", [sum_next, n]), g.const([2], np.int64)])
    with g.scope("norm"):
        y = g.op("Sub", [x, mean])
        y = g.op("Transpose", [y], perm=[0, 2, 1])
    with g.scope("out"):
        y = g.linear(y, FEATURES, FEATURES)
    g.output(y, "y", TensorProto.FLOAT, [B, CHUNK, FEATURES])
    g.output(sum_next, "running_sum_next", TensorProto.FLOAT, [B, FEATURES])
    g.output(count_next, "frame_count_next", TensorProto.INT64, [B])
    return g.build(doc="trt_tui fixture: running-mean normalisation with a recurrent running-sum state")


def broken_cache_len_demo() -> onnx.ModelProto:
    """The demo model whose cache_last_channel_len_next wraps around (Mod) instead of saturating (Min)."""
    model = build_demo_model()
    for node in model.graph.node:
        if node.op_type == "Min" and node.name.startswith("/encoder/cache/"):
            node.op_type = "Mod"  # Mod(len + 8, 16): 8, 0, 8, 0, ... (int Mod needs fmod=0, the default)
            node.name = node.name.replace("Min", "Mod")
            return model
    raise AssertionError("the demo model has no cache-length Min node")  # the demo generator changed
