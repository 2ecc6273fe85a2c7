"""The error model the search predicts with: which pins remove which rounding, and the sets it picks."""

from __future__ import annotations

import math

import numpy as np

import onnx
from onnx import TensorProto

from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.parity.inputs import InputSpec, random_feeds
from trt_tui.core.precision.opsupport import PASS_THROUGH_OPS
from trt_tui.core.search.errormodel import ErrorModel, Source
from trt_tui.core.search.sensitivity import rank_nodes
from trt_tui.core.search.session import prepare_search
from trt_tui.core.search.targets import Criterion, parse_target


def chain_model() -> ErrorModel:
    """a -> b -> c (compute nodes 0, 1, 2): tensor ab needs {0, 1}, bc needs {1, 2}, c's output needs {2}."""
    sources = [Source("ab", frozenset({0, 1}), 4.0), Source("bc", frozenset({1, 2}), 4.0), Source("out", frozenset({2}), 1.0)]
    return ErrorModel(["a", "b", "c"], [0, 1, 2], sources, {0: 0.5}, low_nodes=frozenset({0, 1, 2}))


def test_a_tensor_is_kept_only_when_its_producer_and_readers_are_pinned():
    m = chain_model()
    assert m.weight(set()) == 9.5
    assert m.weight({1}) == 9.5  # b alone: ab rounded by a, bc rounded by c
    assert m.weight({0, 1}) == 5.0  # ab kept FP32, a's weights no longer rounded
    assert m.weight({0, 1, 2}) == 0.0


def test_build_picks_groups_and_prunes_what_the_goal_does_not_need():
    m = chain_model()
    assert m.build(5.5) == {1, 2}  # bc + out: 5 removed by 2 pins (ab: 4.5 by 2)
    assert m.build(0.6) == {0, 1, 2}
    assert m.build(100.0) == set()
    assert {0} <= m.build(5.5, must={0}) and m.weight(m.build(5.5, must={0})) <= 5.5


def test_overflow_is_forced_first():
    sources = [Source("ab", frozenset({0, 1}), math.inf), Source("out", frozenset({2}), 1.0)]
    m = ErrorModel(["a", "b", "c"], [0, 1, 2], sources, {}, low_nodes=frozenset({0, 1, 2}))
    assert m.forced == {0, 1}
    assert m.build(10.0) == {0, 1} and m.weight({0, 1}) == 1.0


def _ln_reshape_matmul() -> onnx.ModelProto:
    g = GraphBuilder("carry", seed=3)
    x = g.input("x", TensorProto.FLOAT, [4, 8])
    h = g.op("Mul", [x, g.const(1.5)], name="scale")
    h = g.op("Reshape", [h, g.const([4, 8], np.int64)], name="reshape")
    h = g.op("MatMul", [h, g.weight([8, 8])], name="matmul")
    g.output(g.op("Sigmoid", [h], name="sigmoid"), "y", TensorProto.FLOAT, [4, 8])
    return g.build()


def test_data_movement_is_pinned_only_between_fp32_nodes(tmp_path):
    path = tmp_path / "carry.onnx"
    onnx.save(_ln_reshape_matmul(), path)
    feeds = random_feeds(load_graph(path), InputSpec(seed=1), [])
    model = rank_nodes(onnx.load(path), "fp16", feeds, ["y"]).model
    names = {n: i for i, n in enumerate(model.names)}
    assert "reshape" not in {model.names[i] for i in model.candidates}  # data movement: never a candidate
    assert "reshape" in model.to_names({names["scale"], names["matmul"]})  # carries scale's FP32 value to matmul
    assert "reshape" not in model.to_names({names["scale"]})  # matmul rounds it anyway: the pin changes nothing
    # the tensor between them is kept FP32 only with both ends pinned
    source = next(s for s in model.sources if s.tensor.startswith("scale"))
    assert source.needs == {names["scale"], names["matmul"]}


def test_fraction_is_the_slack_of_a_passing_output():
    c = Criterion(["a"], [parse_target("a:rel_rms<=0.1")])
    ref = {"a": np.ones(100, np.float32)}
    close = {"a": np.ones(100, np.float32) * 1.05}
    far = {"a": np.ones(100, np.float32) * 1.2}
    assert abs(c.check([ref], [close])["a"].fraction - 2.0) < 1e-3  # 0.1 / 0.05: passes with 2x slack
    assert abs(c.check([ref], [far])["a"].fraction - 0.5) < 1e-3  # must halve


def test_the_sensitivity_pass_is_counted_as_one_evaluation(demo_model):
    result = prepare_search(demo_model, targets=["log_probs:rel_rms<=1.6e-4"]).run()
    phases = [e["phase"] for e in result.log]
    assert phases[:3] == ["fp32-check", "baseline", "sensitivity"] and phases.count("sensitivity") == 1
    assert result.evaluations == len(result.log) - 1  # the FP32 check is not an evaluation
    # + pruning: log2(95 candidates) - 1 tries at most; + the group-testing pass: 4 tries while it drops nothing
    assert result.passed and result.evaluations <= 3 + 6 + 4
    data = result.to_json()
    assert data["compute_pins"] + len(data["carriers"]) == len(data["pins"])
    op_of = {n.name: n.op_type for n in onnx.load(demo_model).graph.node}
    assert all(op_of[c] in PASS_THROUGH_OPS for c in data["carriers"])
