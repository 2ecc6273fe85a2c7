"""The gated emulation (precision/switchable.py) computes, for any pin set, exactly what `emulate` computes
with those pins: every tensor of the original graph, bit for bit (the search trusts it for every evaluation).
Fixtures cover the cases its gating treats apart: fused MatMul + bias Add, recurrent nodes unrolled with
per-step rounding, data movement, constants read by low and FP32 nodes, bool outputs of low nodes."""

import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.modelgen.demo import build_demo_model
from trt_tui.core.modelgen.synth import transformer_encoder
from trt_tui.core.precision import emulate
from trt_tui.core.precision.switchable import NotSwitchable, emulate_switchable

from tests.core.precision.helpers import ir10, run
from tests.core.precision.test_recurrent import recurrent_model


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check_every_pin_set(model: onnx.ModelProto, feeds: dict[str, np.ndarray], low: str, trials=(0.0, 1.0, 0.5, 0.1, 0.9)):
    gated = emulate_switchable(model, low)
    names = [t for n in model.graph.node for t in n.output if t]
    rng = random.Random(7)
    for frac in trials:
        pins = [p for p in gated.flags if rng.random() < frac]
        want = run(emulate(model, low, pins).model, names, feeds)
        got = run(gated.model, names, {**feeds, **gated.flag_feed(pins)})
        differ = [t for t in names if not same_bits(want[t], got[t])]
        assert not differ, f"{low}, {len(pins)} pins: {differ[:5]}"
    return gated


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_demo_model_every_tensor_bit_for_bit(low):
    model = build_demo_model()
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
        else:
            feeds[vi.name] = np.full(dims, 3, dtype=np.int64)
    gated = check_every_pin_set(model, feeds, low)
    assert len(gated.flags) > 100


def test_fused_matmul_bias_pairs_in_every_combination():
    model = transformer_encoder(layers=1, d=32, ffn=64, seq=8, batch=1)
    feeds = {model.graph.input[0].name: np.random.default_rng(1).standard_normal((1, 8, 32)).astype(np.float32) * 3}
    gated = emulate_switchable(model, "fp16")
    fused = emulate(model, "fp16", []).fused_matmuls
    assert fused, "the fixture must have a MatMul fused with its bias Add"
    names = [t for n in model.graph.node for t in n.output if t]
    adds = {n.name: n for n in model.graph.node if n.op_type == "Add"}
    mm = fused[0]
    mm_out = next(n.output[0] for n in model.graph.node if n.name == mm)
    add = next(name for name, n in adds.items() if mm_out in n.input)
    for pins in ([], [mm], [add], [mm, add]):
        want = run(emulate(model, "fp16", pins).model, names, feeds)
        got = run(gated.model, names, {**feeds, **gated.flag_feed(pins)})
        assert all(same_bits(want[t], got[t]) for t in names), pins


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_recurrent_nodes_unrolled_or_plain_by_their_pin(op):
    model, _ = recurrent_model(op)
    rng = np.random.default_rng(2)
    feeds = {vi.name: rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim]).astype(np.float32) for vi in model.graph.input}
    gated = emulate_switchable(model, "fp16")
    assert gated.result.recurrent_per_step == ["rnn"]
    names = [o.name for o in model.graph.output]
    for pins in ([], ["rnn"]):
        want = run(emulate(model, "fp16", pins).model, names, feeds)
        got = run(gated.model, names, {**feeds, **gated.flag_feed(pins)})
        assert all(same_bits(want[t], got[t]) for t in names), pins


def test_bool_outputs_of_low_nodes_and_shared_constants():
    """Greater on floats (a low node with a bool output: ORT's CPU Where has no bool kernel), and one constant
    read by a low and a pinned node (the pinned one reads it unrounded)."""
    c = numpy_helper.from_array(np.array([0.1, 1.0001, 3.14159], np.float32), "c")
    nodes = [
        helper.make_node("Mul", ["x", "c"], ["a"], name="mul"),
        helper.make_node("Add", ["x", "c"], ["b"], name="add"),
        helper.make_node("Greater", ["a", "b"], ["gt"], name="gt"),
        helper.make_node("Where", ["gt", "a", "b"], ["y"], name="pick"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [c])  # fmt: skip
    model = ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    feeds = {"x": np.array([1.2345678, -0.3333333, 2.7182818], np.float32)}
    check_every_pin_set(model, feeds, "fp16", trials=(0.0, 1.0, 0.5, 0.3, 0.7, 0.2))
    gated = emulate_switchable(model, "fp16")
    for pins in (["mul"], ["add"], ["gt"], ["mul", "pick"]):
        names = ["a", "b", "gt", "y"]
        want = run(emulate(model, "fp16", pins).model, names, feeds)
        got = run(gated.model, names, {**feeds, **gated.flag_feed(pins)})
        assert all(same_bits(want[t], got[t]) for t in names), pins


def test_models_with_bodies_are_refused_and_unknown_pins_change_nothing():
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])])
    node = helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then, else_branch=other)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                                           helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    with pytest.raises(NotSwitchable):
        emulate_switchable(ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])), "fp16")
    gated = emulate_switchable(build_demo_model(), "fp16")
    assert gated.flag_feed(["no such node"]) == gated.flag_feed([])
