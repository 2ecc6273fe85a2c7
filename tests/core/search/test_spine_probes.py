"""Adversarial probes of the spine (review of 38da1bc): odd graph shapes must not crash the sensitivity pass,
and a block's measured gain must be the one a brute-force run gives (only the block start drifted)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.precision.common import round_through
from trt_tui.core.precision.plan import make_plan
from trt_tui.core.search import sensitivity
from trt_tui.core.search.evaluate import PinnedEmulation
from trt_tui.core.search.sensitivity import rank_nodes, rel_error, sensitivity_tensors
from trt_tui.core.search.spine import spine_blocks

F = TensorProto.FLOAT
RNG = np.random.default_rng(3)


def _w(name, shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "probe", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(m)
    return m


def _vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def _feeds(model, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def _ranked(model, low="fp16", outputs=None, capture=None):
    outputs = outputs or [o.name for o in model.graph.output]
    if capture is not None:
        real = sensitivity._gains

        def spy(*a, **k):
            capture.update(a[6] if len(a) > 6 else k.get("spine") or {})
            return real(*a, **k)

        sensitivity._gains = spy
    try:
        r = rank_nodes(model, low, [_feeds(model)], outputs)
    finally:
        if capture is not None:
            sensitivity._gains = real
    assert r.order, "no candidate"
    assert all(math.isfinite(g) and g >= 0 for g in r.gain.values()), r.gain
    return r


# ---- shapes of graph the spine may mishandle ---------------------------------------------------------------


def residual_chain(n=4, side_input=False):
    """x -> (h = h + W h)^n -> y, optionally a second float input m added inside each block."""
    nodes, inits = [], []
    h = "x"
    for k in range(n):
        inits.append(_w(f"W{k}", [8, 8]))
        nodes.append(helper.make_node("MatMul", [h, f"W{k}"], [f"mm{k}"], name=f"mm{k}"))
        nodes.append(helper.make_node("Tanh", [f"mm{k}"], [f"t{k}"], name=f"tanh{k}"))
        br = f"t{k}"
        if side_input:
            nodes.append(helper.make_node("Mul", [br, "m"], [f"tm{k}"], name=f"side{k}"))
            br = f"tm{k}"
        nodes.append(helper.make_node("Add", [h, br], [f"h{k}"], name=f"res{k}"))
        h = f"h{k}"
    nodes.append(helper.make_node("Sigmoid", [h], ["y"], name="out"))
    ins = [_vi("x", [4, 8])] + ([_vi("m", [4, 8])] if side_input else [])
    return _model(nodes, ins, [_vi("y", [4, 8])], inits)


def test_several_float_inputs():
    _ranked(residual_chain(side_input=True))


def test_graph_input_that_is_also_a_graph_output():
    nodes = [helper.make_node("Tanh", ["x"], ["a"], name="tanh"), helper.make_node("Sigmoid", ["a"], ["y"], name="sig")]
    m = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8]), _vi("x", [4, 8])])
    _ranked(m)
    _ranked(m, outputs=["x", "y"])


def test_checked_output_also_read_by_other_nodes():
    nodes = [helper.make_node("Tanh", ["x"], ["h"], name="tanh"), helper.make_node("Sigmoid", ["h"], ["y"], name="sig")]
    m = _model(nodes, [_vi("x", [4, 8])], [_vi("h", [4, 8]), _vi("y", [4, 8])])
    cap = {}
    _ranked(m, capture=cap)
    assert "h" not in cap  # a checked output is its own end: no block past it


def test_split_and_lstm_on_the_spine():
    H = 8
    nodes = [
        helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1),
        helper.make_node("Mul", ["a", "b"], ["ab"], name="mul"),
        helper.make_node("Concat", ["ab", "a"], ["c"], name="cat", axis=1),  # [4, 8]
        helper.make_node("Unsqueeze", ["c", "ax0"], ["seq"], name="unsq"),  # [1, 4, 8]
        helper.make_node("LSTM", ["seq", "Wl", "Rl"], ["Y", "Y_h", ""], name="lstm", hidden_size=H),
        helper.make_node("Squeeze", ["Y_h", "ax0"], ["hs"], name="sq"),
        helper.make_node("Add", ["hs", "c"], ["r"], name="res"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="out"),
    ]
    inits = [_w("Wl", [1, 4 * H, 8]), _w("Rl", [1, 4 * H, H]), numpy_helper.from_array(np.array([0], np.int64), "ax0")]
    m = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, H])], inits)
    cap = {}
    _ranked(m, capture=cap)
    assert "x" in cap and cap["x"][0] == "c"  # Split's two outputs meet again at the Concat


def test_node_reading_the_same_tensor_twice():
    nodes = [helper.make_node("Tanh", ["x"], ["a"], name="tanh"), helper.make_node("Mul", ["a", "a"], ["sq"], name="sq"),
             helper.make_node("Sigmoid", ["sq"], ["y"], name="sig")]
    _ranked(_model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8])]))


def test_shape_tensors_and_constants_inside_a_block():
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"], name="tanh"),
        helper.make_node("Shape", ["a"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "i0"], ["d0"], name="gather"),
        helper.make_node("Concat", ["d0", "minus1"], ["s2"], name="shape_cat", axis=0),
        helper.make_node("Reshape", ["a", "s2"], ["ar"], name="reshape"),
        helper.make_node("Constant", [], ["k"], name="const", value=numpy_helper.from_array(np.float32(0.5))),
        helper.make_node("Mul", ["ar", "k"], ["b"], name="scale"),
        helper.make_node("Add", ["a", "b"], ["r"], name="res"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sig"),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "i0"), numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    cap = {}
    _ranked(_model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8])], inits), capture=cap)
    assert cap.get("a", ("",))[0] == "r"


def test_unnamed_nodes():
    m = residual_chain()
    for n in m.graph.node:
        n.name = ""
    _ranked(m)


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_bf16_and_fp16(low):
    _ranked(residual_chain(), low=low)


def test_if_node_inside_a_block_is_left_out():
    then_g = helper.make_graph([helper.make_node("Tanh", ["a"], ["t_out"], name="then_tanh")], "then", [], [_vi("t_out", [4, 8])])
    else_g = helper.make_graph([helper.make_node("Relu", ["a"], ["e_out"], name="else_relu")], "else", [], [_vi("e_out", [4, 8])])
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"], name="tanh"),
        helper.make_node("ReduceSum", ["a"], ["sa"], name="sum", keepdims=0),
        helper.make_node("Greater", ["sa", "zero"], ["cond"], name="gt"),
        helper.make_node("If", ["cond"], ["b"], name="if", then_branch=then_g, else_branch=else_g),
        helper.make_node("Add", ["a", "b"], ["r"], name="res"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sig"),
    ]
    inits = [numpy_helper.from_array(np.float32(0), "zero")]
    m = _model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8])], inits)
    plan = make_plan(m, "fp16", [], round_all=True)
    blocks = spine_blocks(plan, list(plan.model.graph.node), {"y"})
    assert all(not any(plan.model.graph.node[i].op_type == "If" for i in b.nodes) for b in blocks.values())
    cap = {}
    _ranked(m, capture=cap)
    # the branch reads a from the outer scope: a's error reaches r through the If too, which a copy of the
    # block cannot hold; measured without it, the block's gain would miss that path
    assert "a" not in cap
    feed = _feeds(m)
    for s, (d, k) in cap.items():
        assert k == pytest.approx(_brute_block_gain(m, "fp16", feed, s, d), rel=1e-3), (s, d, k)


# ---- the block gain against a brute-force run ------------------------------------------------------------


def _brute_block_gain(model, low, feed, s, d):
    """The FP32 model with only s replaced by the all-low run's value of s (its rounding where s is a graph
    input): rel error at d over rel error at s."""
    plan = make_plan(model, low, [], round_all=True)
    _, floats = sensitivity_tensors(plan)
    em = PinnedEmulation(plan.model, low, outputs=floats)
    try:
        with em.pinned((), floats) as run:
            low_run = {**feed, **run(feed)}
    finally:
        em.close()
    ref_s = feed[s] if s in feed else None
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    for n in cut.graph.node:
        for k, o in enumerate(n.output):
            if o == s:
                n.output[k] = s + "__cut"
    is_input = any(vi.name == s for vi in cut.graph.input)
    if not is_input:
        cut.graph.input.append(_vi(s, None))
    del cut.graph.output[:]
    cut.graph.output.extend([_vi(d, None), _vi(s + "__cut" if not is_input else s, None)])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(cut.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    full = onnx.ModelProto()
    full.CopyFrom(model)
    del full.graph.output[:]
    full.graph.output.extend([_vi(d, None)] + ([] if is_input else [_vi(s, None)]))
    ref_sess = ort.InferenceSession(full.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ref = ref_sess.run(None, feed)
    ref_d, ref_s = ref[0], (ref_s if is_input else ref[1])
    drift = round_through(feed[s], plan.low_type) if is_input else low_run[s]
    got_d = sess.run([d], {**{k: v for k, v in feed.items() if k != s}, s: drift} if is_input
                     else {**feed, s: drift})[0]  # fmt: skip
    return rel_error(ref_d, got_d) / rel_error(ref_s, drift)


@pytest.mark.parametrize("side_input", [False, True])
def test_measured_block_gains_match_brute_force(side_input):
    m = residual_chain(n=3, side_input=side_input)
    cap = {}
    _ranked(m, capture=cap)
    assert cap
    feed = _feeds(m)
    for s, (d, k) in cap.items():
        brute = _brute_block_gain(m, "fp16", feed, s, d)
        assert k == pytest.approx(brute, rel=1e-3), (s, d, k, brute)


def test_initializers_listed_as_graph_inputs(tmp_path):
    """Old exports (keep_initializers_as_inputs): weights are graph inputs with a default; the feed omits them."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.inputs import InputSpec, random_feeds
    from trt_tui.core.search.session import prepare_search

    m = residual_chain(n=2)
    m.graph.input.extend(_vi(i.name, list(i.dims)) for i in m.graph.initializer)
    path = tmp_path / "kiai.onnx"
    onnx.save(m, path)
    feeds = random_feeds(load_graph(path), InputSpec(seed=2, iterations=1), [])
    assert set(feeds[0]) == {"x"}  # the weights keep their defaults
    assert rank_nodes(m, "fp16", feeds, ["y"]).order  # the spine started a block at W0 and read its feed: KeyError
    result = prepare_search(path, targets=["y:rel_rms<=1e-4"]).run()
    assert result.exit_code in (0, 1)


def layernorm_chain(n=16):
    """A residual stream of n blocks, each h = h + tanh(LN(h) W), LN decomposed (x - mean(x)): the shape whose
    chained gains the spine corrects."""
    nodes, inits = [], []
    h = "x"
    for k in range(n):
        inits.append(_w(f"W{k}", [16, 16], 0.5))
        nodes += [
            helper.make_node("ReduceMean", [h], [f"mu{k}"], name=f"l{k}/mean", axes=[-1]),
            helper.make_node("Sub", [h, f"mu{k}"], [f"c{k}"], name=f"l{k}/sub"),
            helper.make_node("Mul", [f"c{k}", f"c{k}"], [f"sq{k}_"], name=f"l{k}/sq"),
            helper.make_node("ReduceMean", [f"sq{k}_"], [f"var{k}"], name=f"l{k}/var", axes=[-1]),
            helper.make_node("Sqrt", [f"var{k}"], [f"sd{k}"], name=f"l{k}/sqrt"),
            helper.make_node("Div", [f"c{k}", f"sd{k}"], [f"n{k}"], name=f"l{k}/div"),
            helper.make_node("MatMul", [f"n{k}", f"W{k}"], [f"mm{k}"], name=f"l{k}/mm"),
            helper.make_node("Tanh", [f"mm{k}"], [f"t{k}"], name=f"l{k}/tanh"),
            helper.make_node("Add", [h, f"t{k}"], [f"h{k}"], name=f"l{k}/res"),
        ]
        h = f"h{k}"
    nodes.append(helper.make_node("MatMul", [h, "Wo"], ["y"], name="head"))
    inits.append(_w("Wo", [16, 4]))
    return _model(nodes, [_vi("x", [8, 16])], [_vi("y", [8, 4])], inits)


def test_cli_on_a_long_residual_chain(tmp_path, capsys):
    import json

    from trt_tui.cli import main
    from trt_tui.core.search.session import prepare_search

    path = tmp_path / "chain.onnx"
    onnx.save(layernorm_chain(), path)
    probe = prepare_search(path, targets=["y:rel_rms<=1e-9"], budget=1).run()
    bound = probe.outputs["y"]["without"]["rel_rms"] / 3
    out_json, preset = tmp_path / "s.json", tmp_path / "p.toml"
    code = main(["search", str(path), "--target", f"y:rel_rms<={bound:.3g}", "--json", str(out_json), "-o", str(preset),
                 "--minimal"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    data = json.loads(out_json.read_text())
    assert data["passed"] and data["pins"] and preset.exists()
    capsys.readouterr()
    assert main(["search", str(path), "--target", f"y:rel_rms<={bound:.3g}", "--json", "-", "--budget", "3"]) in (0, 1)
    data = json.loads(capsys.readouterr().out)
    assert data["evaluations"] <= 3


def test_int_constant_node_read_inside_a_block():
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"], name="tanh"),
        helper.make_node("Constant", [], ["shp"], name="shape_const", value=numpy_helper.from_array(np.array([8, 4], np.int64))),
        helper.make_node("Reshape", ["a", "shp"], ["ar"], name="reshape"),
        helper.make_node("Constant", [], ["back"], name="back_const", value=numpy_helper.from_array(np.array([4, 8], np.int64))),
        helper.make_node("Relu", ["ar"], ["rl"], name="relu"),
        helper.make_node("Reshape", ["rl", "back"], ["b"], name="reshape_back"),
        helper.make_node("Add", ["a", "b"], ["r"], name="res"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sig"),
    ]
    cap = {}
    _ranked(_model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8])]), capture=cap)
    assert cap.get("a", ("",))[0] == "r"


def test_layernorm_chain_block_gains_match_brute_force():
    m = layernorm_chain(n=3)
    cap = {}
    _ranked(m, capture=cap)
    feed = {"x": np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)}
    assert len(cap) >= 4
    for s, (d, k) in cap.items():
        assert k == pytest.approx(_brute_block_gain(m, "fp16", feed, s, d), rel=1e-3), (s, d, k)


def test_loop_node_on_the_spine():
    body = helper.make_graph(
        [helper.make_node("Mul", ["v_in", "a"], ["v_mul"], name="body_mul"),  # reads a from the outer scope
         helper.make_node("Tanh", ["v_mul"], ["v_out"], name="body_tanh"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="body_cond")],
        "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL), _vi("v_in", [4, 8])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("v_out", [4, 8])])  # fmt: skip
    nodes = [
        helper.make_node("Tanh", ["x"], ["a"], name="tanh"),
        helper.make_node("Loop", ["trip", "", "a"], ["v"], name="loop", body=body),
        helper.make_node("Add", ["a", "v"], ["r"], name="res"),
        helper.make_node("Sigmoid", ["r"], ["y"], name="sig"),
    ]
    inits = [numpy_helper.from_array(np.array(2, np.int64), "trip")]
    cap = {}
    _ranked(_model(nodes, [_vi("x", [4, 8])], [_vi("y", [4, 8])], inits), capture=cap)
    assert "a" not in cap and "r" in cap
