"""The sensitivity model's measurements summed in the graph (measure_in_graph): the same figures as numpy's over
the copies' outputs, nothing held but sums."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_tui.core.graph import load_graph
from trt_tui.core.parity.inputs import InputSpec, random_feeds
from trt_tui.core.search import sensitivity
from trt_tui.core.search.sensitivity import measure_in_graph, rank_nodes, rel_from_sums


def _same(a, b, rel):
    assert a.order[:10] == b.order[:10]  # further down, near-ties may swap
    for name, e in a.local_error.items():
        assert b.local_error[name] == pytest.approx(e, rel=rel, abs=1e-15)
        assert b.gain[name] == pytest.approx(a.gain[name], rel=rel, abs=1e-15)
        assert b.score[name] == pytest.approx(a.score[name], rel=rel, abs=1e-15)


def test_sums_in_the_graph_measure_what_numpy_does(demo_model, monkeypatch):
    model = onnx.load(str(demo_model))
    feeds = random_feeds(load_graph(demo_model), InputSpec(seed=3, iterations=1), [])
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 1 << 62)  # every copy an output: numpy's sums
    numpy_ = rank_nodes(model, "fp16", feeds, ["log_probs"])
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 0)  # every sum in the graph
    graph = rank_nodes(model, "fp16", feeds, ["log_probs"])
    _same(numpy_, graph, 1e-5)  # float32 sums in ONNX Runtime against numpy's float64: measured < 4e-7 here


def _overflowing_model() -> onnx.ModelProto:
    """x -> Mul by 1e30 (inf in fp16, finite in FP32) -> Exp (inf in FP32 too: a reference with inf) -> Add."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
         helper.make_node("Mul", ["a", "big"], ["b"], name="scale"),
         helper.make_node("Exp", ["b"], ["c"], name="exp"),
         helper.make_node("Mul", ["a", "half"], ["d"], name="half"),
         helper.make_node("Add", ["d", "a"], ["y"], name="out")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 256]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [64, 256])],
        [helper.make_tensor("w", TensorProto.FLOAT, [256, 256], np.random.default_rng(0).normal(0, 0.1, 256 * 256)),
         helper.make_tensor("big", TensorProto.FLOAT, [], [1e30]), helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_reference_with_inf_is_measured_by_numpy(monkeypatch):
    model = _overflowing_model()
    feeds = [{"x": np.random.default_rng(1).normal(size=(64, 256)).astype(np.float32)}]
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 1 << 62)
    numpy_ = rank_nodes(model, "fp16", feeds, ["y", "c"])
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 0)
    graph = rank_nodes(model, "fp16", feeds, ["y", "c"])
    assert numpy_.order == graph.order
    for name, e in numpy_.local_error.items():
        assert graph.local_error[name] == pytest.approx(e, rel=1e-5)


def test_rel_from_sums_follows_rel_error_rules():
    assert rel_from_sums(4.0, 16.0) == 0.5
    assert rel_from_sums(0.0, 0.0) == 0.0 and rel_from_sums(1.0, 0.0) == float("inf")
    assert rel_from_sums(float("nan"), 1.0) == float("inf") and rel_from_sums(float("inf"), 1.0) == float("inf")


def test_below_opset_7_the_outputs_stay(demo_model):
    model = onnx.load(str(demo_model))
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 6
    before = [o.name for o in model.graph.output]
    assert measure_in_graph(model, [(before[0], before[0])], [], [before[0]], TensorProto.FLOAT16, set()) == {}
    assert [o.name for o in model.graph.output] == before
