"""Synthetic models of any size, for benchmarks and tests (deterministic, no torch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from trt_tui.core.modelgen.builder import GraphBuilder


def transformer_encoder(
    layers: int = 2,
    d: int = 64,
    heads: int = 4,
    ffn: int = 128,
    seq: int | str = "T",
    batch: int | str = "B",
    vocab: int = 32,
    decomposed_ln: bool = False,
    seed: int = 0,
    logit_scale: float = 1.0,
) -> onnx.ModelProto:
    """A pre-norm transformer encoder: input `x` [batch, seq, d] -> `log_probs` [batch, seq, vocab].

    `decomposed_ln` writes LayerNorm as ReduceMean/Sub/Pow/... (opset<17 exports); `logit_scale` multiplies
    the attention scores (large values overflow fp16 at the QK MatMul, for overflow tests).
    """
    g = GraphBuilder("transformer_encoder", seed=seed)
    x = g.input("x", TensorProto.FLOAT, [batch, seq, d])
    dh = d // heads
    with g.scope("encoder"):
        for i in range(layers):
            with g.scope(f"layers.{i}"):
                with g.scope("norm1"):
                    h = g.layer_norm(x, d, decomposed=decomposed_ln)
                with g.scope("self_attn"):
                    with g.scope("q_proj"):
                        q = g.linear(h, d, d)
                    with g.scope("k_proj"):
                        k = g.linear(h, d, d)
                    with g.scope("v_proj"):
                        v = g.linear(h, d, d)
                    shape = g.const([0, -1, heads, dh], np.int64)
                    q = g.op("Transpose", [g.op("Reshape", [q, shape])], perm=[0, 2, 1, 3])
                    k = g.op("Transpose", [g.op("Reshape", [k, shape])], perm=[0, 2, 3, 1])
                    v = g.op("Transpose", [g.op("Reshape", [v, shape])], perm=[0, 2, 1, 3])
                    s = g.op("Mul", [g.op("MatMul", [q, k]), g.const(logit_scale / np.sqrt(dh))])
                    a = g.op("Softmax", [s], axis=-1)
                    c = g.op("Transpose", [g.op("MatMul", [a, v])], perm=[0, 2, 1, 3])
                    c = g.op("Reshape", [c, g.const([0, -1, d], np.int64)])
                    with g.scope("out_proj"):
                        h = g.linear(c, d, d)
                x = g.op("Add", [x, h])
                with g.scope("norm2"):
                    h = g.layer_norm(x, d, decomposed=decomposed_ln)
                with g.scope("ffn"):
                    h = g.feed_forward(h, d, ffn)
                x = g.op("Add", [x, h])
        with g.scope("norm_final"):
            x = g.layer_norm(x, d, decomposed=decomposed_ln)
    with g.scope("decoder"):
        y = g.op("LogSoftmax", [g.linear(x, d, vocab)], axis=-1)
    g.output(y, "log_probs", TensorProto.FLOAT, [batch, seq, vocab])
    return g.build()


def wide_graph(n_nodes: int, width: int = 16, seed: int = 0) -> onnx.ModelProto:
    """A cheap graph with about `n_nodes` nodes (repeated LayerNorm/MatMul/Add/Relu/Softmax blocks)."""
    g = GraphBuilder("wide_graph", seed=seed)
    x = g.input("x", TensorProto.FLOAT, ["B", width])
    w = g.weight((width, width))
    block = 0
    while len(g.nodes) < n_nodes - 2:
        with g.scope(f"blocks.{block}"):
            h = g.op("MatMul", [x, w])
            h = g.op("Add", [h, g.const(np.full(width, 0.01, np.float32))])
            h = g.op("Relu", [h])
            h = g.op("LayerNormalization", [h, g.const(np.ones(width, np.float32)), g.const(np.zeros(width, np.float32))], axis=-1)
            h = g.op("Softmax", [h], axis=-1)
            x = g.op("Add", [x, h])
        block += 1
    g.output(x, "y", TensorProto.FLOAT, ["B", width])
    return g.build()
