"""The bundled demo model: a small streaming conformer-like encoder with explicit caches.

Shaped like the seeds' streaming exports (T-one, parakeet): per chunk it takes `audio_signal`
(B x 32 features x 8 frames), `length`, an attention left-context cache `cache_last_channel`
(layers x B x 16 x d), a depthwise-conv left-context cache `cache_last_time` (layers x B x d x 4) and
`cache_last_channel_len` (int64), and returns `log_probs`, `encoded_lengths` and the next caches.
Deterministic (fixed seed); `python -m trt_tui.core.modelgen.demo OUT.onnx` regenerates it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from trt_tui.core.modelgen.builder import GraphBuilder

FEATURES = 32
CHUNK = 8  # frames per chunk
D_MODEL = 64
HEADS = 4
FFN = 128
LAYERS = 2
CACHE_CHANNEL = 16  # attention left context (frames)
KERNEL = 5  # depthwise conv kernel; the time cache holds KERNEL - 1 frames
VOCAB = 32



@dataclass(frozen=True)
class EncoderShape:
    """The encoder's sizes: the demo's by default; `PARAKEET` is the seeds' 0.6 B model's scale."""

    features: int = FEATURES
    chunk: int = CHUNK
    d_model: int = D_MODEL
    heads: int = HEADS
    ffn: int = FFN
    layers: int = LAYERS
    cache_channel: int = CACHE_CHANNEL
    kernel: int = KERNEL
    vocab: int = VOCAB


DEMO = EncoderShape()
# parakeet-tdt-0.6b's encoder signature (128 mel features, 24 layers of d_model 1024, a 256-frame attention
# cache, conv cache of 4): about 0.6 B parameters, 2.4 GB of FP32 weights; chunk frames after subsampling
PARAKEET = EncoderShape(features=128, chunk=74, d_model=1024, heads=8, ffn=4096, layers=24, cache_channel=256,
                        kernel=5, vocab=1025)  # fmt: skip

STATE_PAIRS = {
    "cache_last_channel_next": "cache_last_channel",
    "cache_last_time_next": "cache_last_time",
    "cache_last_channel_len_next": "cache_last_channel_len",
}


def build_demo_model(seed: int = 1234, shape: EncoderShape = DEMO, builder: GraphBuilder | None = None) -> onnx.ModelProto:
    """The demo encoder (or one of another `shape`; `builder` may write weights to external data as it goes)."""
    g = builder or GraphBuilder("demo_streaming_encoder", seed=seed)
    FEATURES, HEADS, FFN, LAYERS, KERNEL, VOCAB = shape.features, shape.heads, shape.ffn, shape.layers, shape.kernel, shape.vocab
    B, T, d, C, K1 = "B", shape.chunk, shape.d_model, shape.cache_channel, shape.kernel - 1
    audio = g.input("audio_signal", TensorProto.FLOAT, [B, FEATURES, T])
    length = g.input("length", TensorProto.INT64, [B])
    cache_ch = g.input("cache_last_channel", TensorProto.FLOAT, [LAYERS, B, C, d])
    cache_t = g.input("cache_last_time", TensorProto.FLOAT, [LAYERS, B, d, K1])
    cache_len = g.input("cache_last_channel_len", TensorProto.INT64, [B])
    dh = d // HEADS

    with g.scope("encoder"):
        with g.scope("pre_encode"):
            x = g.op("Transpose", [audio], perm=[0, 2, 1])
            x = g.linear(x, FEATURES, d)
        with g.scope("att_mask"):
            # frames of the attention cache older than cache_len are padding: mask them out
            positions = g.const(np.arange(C + T), np.int64)
            first_valid = g.op("Sub", [g.const(C, np.int64), cache_len])
            first_valid = g.op("Reshape", [first_valid, g.const([-1, 1, 1, 1], np.int64)])
            invalid = g.op("Less", [positions, first_valid])
            att_bias = g.op("Where", [invalid, g.const(-10000.0), g.const(0.0)])
        new_ch, new_t = [], []
        for layer in range(LAYERS):
            with g.scope(f"layers.{layer}"):
                idx = g.const(layer, np.int64)
                layer_ch = g.op("Gather", [cache_ch, idx], axis=0)
                layer_t = g.op("Gather", [cache_t, idx], axis=0)
                with g.scope("norm_feed_forward1"):
                    h = g.layer_norm(x, d)
                with g.scope("feed_forward1"):
                    h = g.feed_forward(h, d, FFN)
                x = g.op("Add", [x, g.op("Mul", [h, g.const(0.5)])])

                with g.scope("norm_self_att"):
                    h = g.layer_norm(x, d)
                with g.scope("self_attn"):
                    kv_in = g.op("Concat", [layer_ch, h], axis=1)
                    new_ch.append(
                        g.op("Slice", [kv_in, g.const([T], np.int64), g.const([C + T], np.int64), g.const([1], np.int64)])
                    )
                    with g.scope("linear_q"):
                        q = g.linear(h, d, d)
                    with g.scope("linear_k"):
                        k = g.linear(kv_in, d, d)
                    with g.scope("linear_v"):
                        v = g.linear(kv_in, d, d)
                    heads = g.const([0, -1, HEADS, dh], np.int64)
                    q = g.op("Transpose", [g.op("Reshape", [q, heads])], perm=[0, 2, 1, 3])
                    k = g.op("Transpose", [g.op("Reshape", [k, heads])], perm=[0, 2, 3, 1])
                    v = g.op("Transpose", [g.op("Reshape", [v, heads])], perm=[0, 2, 1, 3])
                    scores = g.op("Mul", [g.op("MatMul", [q, k]), g.const(1.0 / np.sqrt(dh))])
                    scores = g.op("Add", [scores, att_bias])
                    attn = g.op("Softmax", [scores], axis=-1)
                    ctx = g.op("Transpose", [g.op("MatMul", [attn, v])], perm=[0, 2, 1, 3])
                    ctx = g.op("Reshape", [ctx, g.const([0, -1, d], np.int64)])
                    with g.scope("linear_out"):
                        h = g.linear(ctx, d, d)
                x = g.op("Add", [x, h])

                with g.scope("norm_conv"):
                    h = g.layer_norm(x, d)
                with g.scope("conv"):
                    with g.scope("pointwise_conv1"):
                        h = g.linear(h, d, 2 * d)
                    a, b = g.op("Split", [h, g.const([d, d], np.int64)], n_out=2, axis=-1)
                    h = g.op("Mul", [a, g.op("Sigmoid", [b])])
                    h = g.op("Transpose", [h], perm=[0, 2, 1])
                    conv_in = g.op("Concat", [layer_t, h], axis=2)
                    new_t.append(
                        g.op("Slice", [conv_in, g.const([T], np.int64), g.const([K1 + T], np.int64), g.const([2], np.int64)])
                    )
                    with g.scope("depthwise_conv"):
                        w = g.weight((d, 1, KERNEL), scale=0.3)
                        bias = g.initializer(g.rng.normal(0, 0.02, d).astype(np.float32))
                        h = g.op("Conv", [conv_in, w, bias], group=d, kernel_shape=[KERNEL])
                    h = g.swish(h)
                    h = g.op("Transpose", [h], perm=[0, 2, 1])
                    with g.scope("pointwise_conv2"):
                        h = g.linear(h, d, d)
                x = g.op("Add", [x, h])

                with g.scope("norm_feed_forward2"):
                    h = g.layer_norm(x, d)
                with g.scope("feed_forward2"):
                    h = g.feed_forward(h, d, FFN)
                x = g.op("Add", [x, g.op("Mul", [h, g.const(0.5)])])
                with g.scope("norm_out"):
                    x = g.layer_norm(x, d)

        with g.scope("cache"):
            ch = g.op("Concat", [g.op("Unsqueeze", [c, g.const([0], np.int64)]) for c in new_ch], axis=0)
            tt = g.op("Concat", [g.op("Unsqueeze", [c, g.const([0], np.int64)]) for c in new_t], axis=0)
            next_len = g.op("Min", [g.op("Add", [cache_len, g.const(T, np.int64)]), g.const(C, np.int64)])

    with g.scope("decoder"):
        logits = g.linear(x, d, VOCAB)
        log_probs = g.op("LogSoftmax", [logits], axis=-1)

    g.output(log_probs, "log_probs", TensorProto.FLOAT, [B, T, VOCAB])
    g.output(length, "encoded_lengths", TensorProto.INT64, [B])
    g.output(ch, "cache_last_channel_next", TensorProto.FLOAT, [LAYERS, B, C, d])
    g.output(tt, "cache_last_time_next", TensorProto.FLOAT, [LAYERS, B, d, K1])
    g.output(next_len, "cache_last_channel_len_next", TensorProto.INT64, [B])
    return g.build(doc="trt_tui demo: streaming conformer-like encoder with explicit caches (synthetic weights)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m trt_tui.core.modelgen.demo OUT.onnx", file=sys.stderr)
        return 2
    onnx.save(build_demo_model(), argv[0])
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
