"""Adversarial fixtures for the gated emulation (precision/switchable.py): for every pin set tried (none, all,
each node alone, every pair on tiny graphs, random ones), every node output of the original graph is, bit for
bit, what `emulate(model, low, pins)` gives. Each fixture aims at one way the gating could go wrong: shared
weights and Constants, multi-output nodes, fused MatMul + bias, data movement, integer/bool outputs, -0.0 and
NaN payloads, data-dependent output shapes (NonZero, Range), old opsets, unnamed nodes, PinnedEmulation's
fallbacks."""

from __future__ import annotations

import itertools
import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

from trt_tui.core.precision import emulate
from trt_tui.core.precision.switchable import emulate_switchable

from tests.core.precision.helpers import ir10, run
from tests.core.precision.test_recurrent import recurrent_model
from tests.core.precision.test_switchable import same_bits

RNG = np.random.default_rng(11)


def rnd(*shape, scale=3.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def vi(name, dtype=TP.FLOAT, shape=None):
    return H.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = H.make_graph(nodes, "g", inputs, outputs, list(inits))
    return ir10(H.make_model(graph, opset_imports=[H.make_opsetid("", opset)]))


def pin_sets(flags: list[str], pairs: bool = True) -> list[list[str]]:
    """None, all, each alone, every pair (tiny graphs), and three random sets."""
    sets = [[], list(flags), *([f] for f in flags)]
    if pairs and len(flags) <= 8:
        sets += [list(p) for p in itertools.combinations(flags, 2)]
    rng = random.Random(3)
    return sets + [[f for f in flags if rng.random() < q] for q in (0.3, 0.5, 0.7)]


def assert_gated_matches(m, feeds, low="fp16", sets=None, extra_pins=()):
    gated = emulate_switchable(m, low)
    names = list(dict.fromkeys(t for n in m.graph.node for t in n.output if t))
    for pins in sets if sets is not None else pin_sets(list(gated.flags)):
        pins = [*pins, *extra_pins]
        want = run(emulate(m, low, pins).model, names, feeds)
        got = run(gated.model, names, {**feeds, **gated.flag_feed(pins)})
        differ = [t for t in names if not same_bits(want[t], got[t])]
        assert not differ, f"{low}, pins {pins}: {differ}"
    return gated


W = NH.from_array(rnd(4, 4), "W")
B = NH.from_array(rnd(4), "B")


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_weight_and_constant_shared_by_low_and_pinned_readers(low):
    """A Constant read by low nodes only holds its rounding under its name in `emulate` unless one reader is
    pinned (then the raw value): the gated graph selects it by its readers' flags."""
    nodes = [
        H.make_node("MatMul", ["x", "W"], ["a"], name="mm1"),
        H.make_node("MatMul", ["a", "W"], ["b"], name="mm2"),
        H.make_node("Constant", [], ["c"], name="cst", value=NH.from_array(rnd(4), "")),
        H.make_node("Add", ["b", "c"], ["d"], name="add"),
        H.make_node("Mul", ["a", "c"], ["e"], name="mul"),
        H.make_node("Constant", [], ["c2"], name="cst2", value=NH.from_array(rnd(4), "")),
        H.make_node("Mul", ["e", "c2"], ["e2"], name="mul2"),
        H.make_node("Shape", ["c2"], ["c2_shape"], name="c2_shape"),  # a non-low reader: raw under the name
        H.make_node("Sub", ["d", "e2"], ["y"], name="sub"),
    ]
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y", shape=[2, 4]), vi("a", shape=[2, 4])], [W])
    assert_gated_matches(m, {"x": rnd(2, 4)}, low)


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_fused_matmul_bias_whose_add_is_a_graph_output_and_back_to_back_pairs(low):
    nodes = [
        H.make_node("Constant", [], ["B2"], name="bconst", value=NH.from_array(rnd(4), "")),
        H.make_node("MatMul", ["x", "W"], ["m1"], name="mmA"),
        H.make_node("Add", ["B", "m1"], ["z1"], name="addA"),  # bias first
        H.make_node("MatMul", ["z1", "W"], ["m2"], name="mmB"),
        H.make_node("Add", ["m2", "B2"], ["z2"], name="addB"),  # bias from a Constant node
        H.make_node("Tanh", ["z1"], ["y"], name="tanh"),
    ]
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("z1", shape=[2, 4]), vi("z2"), vi("y")], [W, B])
    gated = assert_gated_matches(m, {"x": rnd(2, 4)}, low)
    assert sorted(gated.result.fused_matmuls) == ["mmA", "mmB"]


def test_matmul_read_twice_or_a_graph_output_is_not_fused():
    nodes = [H.make_node("MatMul", ["x", "W"], ["mmo"], name="mm"), H.make_node("Add", ["mmo", "B"], ["z"], name="bias"),
             H.make_node("Mul", ["mmo", "z"], ["y"], name="mul")]  # fmt: skip
    assert_gated_matches(model(nodes, [vi("x", shape=[2, 4])], [vi("y")], [W, B]), {"x": rnd(2, 4)})
    nodes = nodes[:2]
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("z"), vi("mmo")], [W, B])
    assert not assert_gated_matches(m, {"x": rnd(2, 4)}).result.fused_matmuls


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_multi_output_nodes_split_topk_layernorm(low):
    nodes = [
        H.make_node("Mul", ["x", "x"], ["sq"], name="sq"),
        H.make_node("Split", ["sq"], ["s1", "s2"], name="split", axis=1, num_outputs=2),
        H.make_node("TopK", ["s1", "k"], ["tv", "ti"], name="topk", axis=1),
        H.make_node("LayerNormalization", ["s2", "g", "bb"], ["ln", "lm", "lis"], name="ln", axis=-1),
        H.make_node("Cast", ["ti"], ["tif"], name="cast", to=TP.FLOAT),
        H.make_node("Add", ["tv", "tif"], ["o1"], name="add1"),
        H.make_node("Add", ["ln", "lm"], ["o2"], name="add2"),
    ]
    inits = [NH.from_array(np.array([2], np.int64), "k"), NH.from_array(rnd(2), "g"), NH.from_array(rnd(2), "bb")]
    m = model(nodes, [vi("x", shape=[3, 4])], [vi("o1"), vi("o2"), vi("lis")], inits, opset=18)
    assert_gated_matches(m, {"x": rnd(3, 4)}, low)


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_lstm_with_all_outputs_between_low_and_pinned_nodes(low):
    """Y, Y_h and Y_c, an empty optional input (sequence_lens), a low producer and readers of every output."""
    base, _ = recurrent_model("LSTM", seq=3)
    g = base.graph
    g.node[0].input[0] = "x_in"
    g.node.insert(0, H.make_node("Mul", ["x", "x"], ["x_in"], name="pre"))
    g.node.extend([H.make_node("Add", ["y_h", "y_c"], ["hc"], name="hc"), H.make_node("ReduceSum", ["y"], ["ys"], name="ys", keepdims=0)])
    g.output.extend([vi("hc"), vi("ys")])
    feeds = {v.name: rnd(*[d.dim_value for d in v.type.tensor_type.shape.dim], scale=1.0) for v in g.input}
    gated = assert_gated_matches(base, feeds, low)
    assert gated.result.recurrent_per_step == ["rnn"]


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_data_movement_chain_between_low_and_pinned_nodes(low):
    nodes = [
        H.make_node("Mul", ["x", "x"], ["a"], name="mul"),
        H.make_node("Reshape", ["a", "shp"], ["r"], name="reshape"),
        H.make_node("Transpose", ["r"], ["t"], name="tr", perm=[1, 0]),
        H.make_node("Concat", ["t", "t"], ["c"], name="concat", axis=0),
        H.make_node("Slice", ["c", "st", "en"], ["s"], name="slice"),
        H.make_node("Gather", ["s", "idx"], ["gth"], name="gather", axis=0),
        H.make_node("Sqrt", ["gth"], ["q"], name="sqrt"),
        H.make_node("Add", ["q", "t"], ["y"], name="add"),
    ]
    inits = [NH.from_array(np.array(v, np.int64), n) for n, v in (("shp", [4, 2]), ("st", [1]), ("en", [3]), ("idx", [1, 0]))]
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y")], inits)
    assert_gated_matches(m, {"x": rnd(2, 4)}, low, sets=pin_sets([n.name for n in nodes], pairs=low == "fp16"))


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_integer_and_bool_outputs_of_low_nodes(low):
    nodes = [
        H.make_node("Mul", ["x", "x"], ["a"], name="mul"),
        H.make_node("ArgMax", ["a"], ["am"], name="argmax", axis=1),
        H.make_node("Greater", ["a", "x"], ["gt"], name="gt"),
        H.make_node("Where", ["gt", "a", "x"], ["w"], name="where"),
        H.make_node("Cast", ["am"], ["amf"], name="cast", to=TP.FLOAT),
        H.make_node("Cast", ["a"], ["ab"], name="cast_bool", to=TP.BOOL),
        H.make_node("Cast", ["a"], ["i8"], name="cast_i8", to=TP.INT8),  # no Where kernel for int8 in ORT
        H.make_node("Add", ["w", "amf"], ["y"], name="add"),
    ]
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y"), vi("ab", TP.BOOL), vi("i8", TP.INT8)])
    x = rnd(2, 4)
    x[0, 0] = x[0, 1] * (1 + 1e-4)  # a near-tie: the argmax flips under rounding
    assert_gated_matches(m, {"x": x}, low, sets=pin_sets([n.name for n in nodes], pairs=low == "fp16"))


def test_initializer_that_is_also_a_graph_input():
    nodes = [H.make_node("MatMul", ["x", "W"], ["a"], name="mm"), H.make_node("Add", ["a", "W0"], ["y"], name="add")]
    m = model(nodes, [vi("x", shape=[2, 4]), vi("W0", shape=[4])], [vi("y")], [W, NH.from_array(rnd(4), "W0")])
    assert_gated_matches(m, {"x": rnd(2, 4)})
    assert_gated_matches(m, {"x": rnd(2, 4), "W0": rnd(4)})


@pytest.mark.parametrize("opset,low", [(12, "bf16"), (8, "bf16"), (8, "fp16")])
def test_old_opsets(opset, low):
    """bf16 upgrades the model to opset 13 (Cast to bfloat16); fp16 keeps opset 8, where Where does not exist."""
    nodes = [H.make_node("MatMul", ["x", "W"], ["a"], name="mm"), H.make_node("Relu", ["a"], ["r"], name="relu"),
             H.make_node("Softmax", ["r"], ["y"], name="sm", axis=1)]  # fmt: skip
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y")], [W], opset=opset)
    assert_gated_matches(m, {"x": rnd(2, 4)}, low)


def test_empty_optional_inputs_and_unnamed_nodes():
    """Clip without min, Resize without roi; unnamed nodes (pinned as node_of_<output>), one of them sharing
    its generated name with a named node (one pin pins both, in `emulate` as in the flags)."""
    nodes = [
        H.make_node("Mul", ["x", "x"], ["a"]),
        H.make_node("Clip", ["a", "", "mx"], ["c"], name="node_of_a"),
        H.make_node("Resize", ["c", "", "sc"], ["rs"], mode="linear"),
        H.make_node("Exp", ["rs"], ["y"]),
    ]
    inits = [NH.from_array(np.array(2.5, np.float32), "mx"), NH.from_array(np.array([1, 1, 2, 2], np.float32), "sc")]
    m = model(nodes, [vi("x", shape=[1, 1, 2, 4])], [vi("y")], inits)
    gated = assert_gated_matches(m, {"x": rnd(1, 1, 2, 4, scale=1.0)})
    assert sorted(gated.flags) == ["node_of_a", "node_of_rs", "node_of_y"]


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_nan_inf_and_signed_zero(low):
    """NaN payloads, infinities, values that overflow fp16, -0.0 (ORT's Where turns a -0.0 in its X input into
    +0.0: a pinned Mul by zero read by a Div gave +inf for -inf), subnormals."""
    k = NH.from_array(np.array([1.0001, np.nan, -np.inf, 70000.0], np.float32), "k")
    nodes = [
        H.make_node("Mul", ["x", "k"], ["a"], name="mul"), H.make_node("Add", ["a", "x"], ["b"], name="add"),
        H.make_node("Mul", ["b", "zero"], ["bz"], name="mulz"), H.make_node("Div", ["one", "bz"], ["inv"], name="inv"),
        H.make_node("Relu", ["b"], ["r"], name="relu"), H.make_node("Div", ["r", "x"], ["y"], name="div"),
    ]  # fmt: skip
    zero, one = NH.from_array(np.zeros(4, np.float32), "zero"), NH.from_array(np.array(1.0, np.float32), "one")
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y"), vi("inv")], [k, zero, one])
    x = np.array([[np.nan, np.inf, -np.inf, 1e-8], [-0.0, -3.0, 65520.0, 0.0]], np.float32)
    x[1, 3] = np.array([0xFFC12345], np.uint32).view(np.float32)[0]  # a NaN with a payload
    assert_gated_matches(m, {"x": x}, low, sets=pin_sets([n.name for n in nodes], pairs=low == "fp16"))


def test_data_dependent_output_shapes():
    """NonZero and Range of values that rounding changes: the FP32 and low copies have other shapes (a Where
    broadcast one into the other or failed)."""
    nodes = [H.make_node("Mul", ["x", "s"], ["a"], name="mul"), H.make_node("NonZero", ["a"], ["nz"], name="nonzero"),
             H.make_node("ReduceMax", ["x"], ["lim"], name="rmax", keepdims=0),
             H.make_node("Range", ["s0", "lim", "s"], ["r"], name="range")]  # fmt: skip
    inits = [NH.from_array(np.array(1.0, np.float32), "s"), NH.from_array(np.array(0.0, np.float32), "s0")]
    m = model(nodes, [vi("x", shape=[4])], [vi("nz", TP.INT64), vi("r")], inits)
    assert_gated_matches(m, {"x": np.array([1e-8, 2e-8, 10.001, 3e-9], np.float32)})


def test_pins_of_nodes_that_are_not_low_change_nothing():
    """Shape (its output is not float), host-computed nodes (constants and shapes only), an overflow reader and
    a Constant: pinned or not, the same values; they get no flag."""
    big = NH.from_array(np.array([1e5, 1.0, 2.0, 3.0], np.float32), "big")
    nodes = [
        H.make_node("Mul", ["x", "x"], ["a"], name="mul"),
        H.make_node("Shape", ["a"], ["shp"], name="shape"),
        H.make_node("Cast", ["shp"], ["shpf_all"], name="shape_f", to=TP.FLOAT),  # host: from a shape
        H.make_node("ReduceMax", ["shpf_all"], ["shpf"], name="shape_max", keepdims=0),
        H.make_node("Constant", [], ["c"], name="cst", value=NH.from_array(rnd(4), "")),
        H.make_node("Sqrt", ["c"], ["cs"], name="host_sqrt"),  # host: from a constant
        H.make_node("Mul", ["a", "big"], ["ov"], name="overflow"),  # reads a constant beyond init_max
        H.make_node("Add", ["ov", "cs"], ["y0"], name="add"),
        H.make_node("Add", ["y0", "shpf"], ["y"], name="add2"),
    ]
    m = model(nodes, [vi("x", shape=[1, 4])], [vi("y")], [big])
    gated = emulate_switchable(m, "fp16")
    assert {"host_sqrt", "overflow", "cst", "shape_f"}.isdisjoint(gated.flags)
    feeds = {"x": rnd(1, 4)}
    for extra in (["host_sqrt", "overflow", "cst", "shape_f", "shape"], []):
        assert_gated_matches(m, feeds, sets=pin_sets(list(gated.flags)), extra_pins=extra)


def test_pinned_emulation_falls_back_to_a_rewrite_per_set(monkeypatch):
    """PinnedEmulation: the gated session, or (weights over SWITCHABLE_MAX_BYTES, If bodies) one rewrite and
    session per set; every path gives emulate's values."""
    from trt_tui.core.search import evaluate

    nodes = [H.make_node("MatMul", ["x", "W"], ["mmo"], name="mm"), H.make_node("Add", ["mmo", "B"], ["z"], name="bias"),
             H.make_node("Tanh", ["z"], ["y"], name="tanh")]  # fmt: skip
    m = model(nodes, [vi("x", shape=[2, 4])], [vi("y")], [W, B])
    feed = {"x": rnd(2, 4)}
    names = ["mmo", "z", "y"]
    gated = evaluate.PinnedEmulation(m, "fp16", outputs=names)
    monkeypatch.setattr(evaluate, "SWITCHABLE_MAX_BYTES", 0)
    per_set = evaluate.PinnedEmulation(m, "fp16", outputs=names)
    assert gated.gated and not per_set.gated
    try:
        for pins in ([], ["mm"], ["bias"], ["mm", "tanh"]):
            want = run(emulate(m, "fp16", pins).model, names, feed)
            for em in (gated, per_set):
                with em.pinned(pins, names) as run_set:
                    got = run_set(feed)
                assert all(same_bits(want[t], got[t]) for t in names), (pins, em.gated)
        assert gated._gated is not None and per_set._gated is None
    finally:
        gated.close()
        per_set.close()

    then = H.make_graph([H.make_node("Identity", ["y"], ["t"])], "then", [], [vi("t", shape=[2, 4])])
    other = H.make_graph([H.make_node("Neg", ["y"], ["e"])], "else", [], [vi("e", shape=[2, 4])])
    nodes = [*nodes, H.make_node("If", ["cond"], ["out"], name="if", then_branch=then, else_branch=other)]
    m = model(nodes, [vi("x", shape=[2, 4]), vi("cond", TP.BOOL, [])], [vi("out")], [W, B])
    monkeypatch.setattr(evaluate, "SWITCHABLE_MAX_BYTES", 1 << 30)
    with_body = evaluate.PinnedEmulation(m, "fp16")
    assert not with_body.gated
    feed = {**feed, "cond": np.array(False)}
    try:
        for pins in ([], ["mm"]):
            want = run(emulate(m, "fp16", pins).model, ["out"], feed)
            with with_body.pinned(pins) as run_set:
                assert same_bits(want["out"], run_set(feed)["out"])
    finally:
        with_body.close()
