"""A streaming model with an attention-like cache, its ONNX export AND an independent numpy implementation
of the same computation: the "framework" of a recorded-reference run (tests, the recorded-reference
benchmark, the recorder example), for machines without torch.

    audio_signal [1, F, T], cache [1, F, C], cache_len [1] (int64)
    h            = concat(cache, audio_signal) along time           [1, F, C+T]
    z            = tanh(h^T @ W)^T   (W: F x F, a dense mix of the features)
    encoder_output = z[..., C:]                                     [1, F, T]
    cache_next     = (h + z)[..., T:] / 2                           [1, F, C]  (fed back: error can persist)
    cache_len_next = min(cache_len + T, C)

The numpy side computes in float64 and rounds to float32 at the end, as a framework on another backend
would: ONNX Runtime FP32 then sits a little off the reference, and fp16 candidates clearly further.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from trt_tui.core.modelgen.builder import GraphBuilder


def weights(features: int, seed: int = 3) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((features, features)) / np.sqrt(features)).astype(np.float32)


def cache_stream_model(features: int = 16, cache: int = 32, frames: int = 8, seed: int = 3) -> onnx.ModelProto:
    g = GraphBuilder("cache_stream", seed=seed)
    x = g.input("audio_signal", TensorProto.FLOAT, [1, features, frames])
    c = g.input("cache", TensorProto.FLOAT, [1, features, cache])
    n = g.input("cache_len", TensorProto.INT64, [1])
    with g.scope("mix"):
        h = g.op("Concat", [c, x], axis=2)
        ht = g.op("Transpose", [h], perm=[0, 2, 1])
        z = g.op("MatMul", [ht, g.initializer(weights(features, seed), "mix.weight")])
        z = g.op("Tanh", [z])
        z = g.op("Transpose", [z], perm=[0, 2, 1])
    with g.scope("out"):
        i64 = np.int64
        y = g.op("Slice", [z, g.const([cache], i64), g.const([cache + frames], i64), g.const([2], i64)])
        s = g.op("Mul", [g.op("Add", [h, z]), g.const(0.5)])
        c_next = g.op("Slice", [s, g.const([frames], i64), g.const([frames + cache], i64), g.const([2], i64)])
        n_next = g.op("Min", [g.op("Add", [n, g.const([frames], i64)]), g.const([cache], i64)])
    g.output(y, "encoder_output", TensorProto.FLOAT, [1, features, frames])
    g.output(c_next, "cache_next", TensorProto.FLOAT, [1, features, cache])
    g.output(n_next, "cache_len_next", TensorProto.INT64, [1])
    return g.build(doc="trt_tui: a streaming cache model with a numpy twin (core.modelgen.cache_stream)")


def reference_step(w: np.ndarray, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One chunk of the same computation in numpy (float64 inside): the 'framework' reference."""
    x = feeds["audio_signal"].astype(np.float64)
    c = feeds["cache"].astype(np.float64)
    frames, cache = x.shape[2], c.shape[2]
    h = np.concatenate([c, x], axis=2)
    z = np.tanh(np.transpose(h, (0, 2, 1)) @ w.astype(np.float64)).transpose(0, 2, 1)
    return {
        "encoder_output": z[:, :, cache:].astype(np.float32),
        "cache_next": ((h + z) * 0.5)[:, :, frames:].astype(np.float32),
        "cache_len_next": np.minimum(feeds["cache_len"] + frames, cache).astype(np.int64),
    }


def chunk_input(features: int, frames: int, index: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng([seed, index]).standard_normal((1, features, frames)).astype(np.float32)


def contract_doc(features: int = 16, cache: int = 32, frames: int = 8, chunks: int = 50) -> dict:
    """The model's streaming contract, with the seeds' acceptance vocabulary for encoder_output."""
    return {
        "format": "trt-tui-contract", "version": 1, "model": "cache_stream.onnx",
        "inputs": {
            "audio_signal": {"dtype": "float32", "shape": [1, features, frames], "feed": {"kind": "normal"}},
            "cache": {"dtype": "float32", "shape": [1, features, cache]},
            "cache_len": {"dtype": "int64", "shape": [1]},
        },
        "outputs": {
            "encoder_output": {"dtype": "float32", "shape": [1, features, frames]},
            "cache_next": {"dtype": "float32", "shape": [1, features, cache]},
            "cache_len_next": {"dtype": "int64", "shape": [1]},
        },
        "state": [{"output": "cache_next", "input": "cache"}, {"output": "cache_len_next", "input": "cache_len"}],
        "schedule": {"chunks": chunks, "seed": 0},
        "tolerances": {"default": {"atol": 1e-2, "rtol": 1e-2, "stat": "max"},
                       "outputs": {"encoder_output": {"atol": 1e-3, "rtol": 0, "stat": "p95"},
                                   "cache_len_next": {"atol": 0, "rtol": 0, "stat": "max"}}},
        "masks": {"cache_next": {"axis": 2, "length": {"output": "cache_len_next"}, "keep": "last", "batch_axis": 0}},
        "invariants": [{"output": "cache_len_next", "check": "monotonic"},
                       {"output": "cache_len_next", "check": "range", "min": 0, "max": cache}],
        "trend": {"metric": "max_abs", "outputs": ["encoder_output"]},
        "acceptance": {"min_pass_rate": 0.8, "outputs": {"encoder_output": {
            "percentiles": {"p95": 5e-4, "p100": 1e-3}, "pass_rate": {"within": 5e-4, "min": 0.8},
            "warn_above": 5e-4, "fail_above": 1e-3}}},
    }  # fmt: skip


def record_reference(path, chunks: int, features: int = 16, cache: int = 32, frames: int = 8, *, seed: int = 3,
                     overwrite: bool = False, encoding: str = "base64") -> None:  # fmt: skip
    """Run the numpy twin chunk after chunk (its own state fed back) and record it with trt_tui.recorder."""
    from trt_tui.recorder import Recorder

    w = weights(features, seed)
    state = {"cache": np.zeros((1, features, cache), np.float32), "cache_len": np.zeros(1, np.int64)}
    with Recorder(path, meta={"model": "cache_stream", "framework": "numpy float64"}, overwrite=overwrite,
                  encoding=encoding) as rec:  # fmt: skip
        for i in range(chunks):
            feeds = {"audio_signal": chunk_input(features, frames, i), **state}
            out = reference_step(w, feeds)
            rec.write(inputs=feeds, outputs=out)
            state = {"cache": out["cache_next"], "cache_len": out["cache_len_next"]}
