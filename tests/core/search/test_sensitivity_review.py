"""A review of the sensitivity model (the all-low copy, the in-graph sums): cases the corpus did not cover."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_tui.core import precision
from trt_tui.core.precision.common import round_through
from trt_tui.core.precision.plan import make_plan
from trt_tui.core.search import sensitivity
from trt_tui.core.search.evaluate import OrtModel, PinnedEmulation
from trt_tui.core.search.sensitivity import rank_nodes, rel_error

F = TensorProto.FLOAT


def _lstm_model(seq: int = 6, hidden: int = 8, feat: int = 5) -> onnx.ModelProto:
    """x [batch (dynamic), seq, feat] -> Transpose -> LSTM (static sequence: the emulation unrolls it, rounding
    its state per step) -> Mul; and an LSTM reading the graph input itself."""
    rng = np.random.default_rng(0)
    w = lambda *s: helper.make_tensor(f"w{len(s)}_{s[0]}_{s[-1]}", F, s, rng.normal(0, 0.5, s).astype(np.float32).ravel())  # noqa: E731
    wx, rx, bx = w(1, 4 * hidden, feat), w(1, 4 * hidden, hidden), w(1, 8 * hidden)
    w2 = helper.make_tensor("w2", F, [1, 4 * hidden, feat], rng.normal(0, 0.5, (1, 4 * hidden, feat)).astype(np.float32).ravel())
    r2 = helper.make_tensor("r2", F, [1, 4 * hidden, hidden], rng.normal(0, 0.5, (1, 4 * hidden, hidden)).astype(np.float32).ravel())
    g = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], name="tr", perm=[1, 0, 2]),
         helper.make_node("LSTM", ["xt", wx.name, rx.name, bx.name], ["y"], name="lstm", hidden_size=hidden),
         helper.make_node("LSTM", ["xs", "w2", "r2"], ["y2"], name="lstm_in", hidden_size=hidden),
         helper.make_node("Mul", ["y", "two"], ["out"], name="mul"),
         helper.make_node("Mul", ["y2", "two"], ["out2"], name="mul2")],
        "g", [helper.make_tensor_value_info("x", F, ["batch", seq, feat]),
              helper.make_tensor_value_info("xs", F, [seq, "batch", feat])],
        [helper.make_tensor_value_info("out", F, None), helper.make_tensor_value_info("out2", F, None)],
        [wx, rx, bx, w2, r2, helper.make_tensor("two", F, [], [2.0])],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _feeds(model, n=2, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(2, 6, 5)).astype(np.float32), "xs": rng.normal(size=(6, 2, 5)).astype(np.float32)}
            for _ in range(n)]  # fmt: skip


def _all_low_differs(model: onnx.ModelProto, feed: dict[str, np.ndarray], low: str) -> list[str]:
    """The float tensors whose value in the sensitivity model's all-low copy is not bit for bit the gated
    nothing-pinned evaluation's (the copy's tensors that pinned copies read, made graph outputs)."""
    plan = make_plan(model, low, [], round_all=True)
    produced, floats = sensitivity.sensitivity_tensors(plan)
    det, _, _, pins, drifted, fed, wires, _ = sensitivity._detached_model(plan, {})
    probed = precision.emulate(det, low, pins, peaks=plan.peaks)
    sensitivity.rewire(probed.model, wires)
    low_of = {t: drifted[t] for t in floats if t in drifted and t not in fed.values()}
    del probed.model.graph.output[:]
    probed.model.graph.output.extend(helper.make_tensor_value_info(n, F, None) for n in low_of.values())
    session = OrtModel(probed.model, list(low_of.values()), weights=probed.weights)
    ref = OrtModel(plan.model, produced).run(feed)
    ins = {**feed, **ref, **{n: round_through(feed[x], plan.low_type) for n, x in fed.items()}}
    got = session.run({k: v for k, v in ins.items() if k in session.inputs})
    session.close()
    with PinnedEmulation(plan.model, low, outputs=floats).pinned(()) as run:
        want = run(feed)
    return [t for t, n in low_of.items() if not np.array_equal(want[t].view(np.uint32), got[n].view(np.uint32))]


@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_the_all_low_copy_unrolls_a_recurrent_node_as_the_all_low_run_does(low):
    """The graph inputs of the sensitivity model keep their declared shapes: the all-low copy of an LSTM with a
    static sequence is unrolled (state rounded per step), bit for bit the gated nothing-pinned run; so is the
    low copy of one fed its reference sequence."""
    model = _lstm_model()
    plan = make_plan(model, low, [], round_all=True)
    det, _, _, pins, _, _, _, _ = sensitivity._detached_model(plan, {})
    probed = precision.emulate(det, low, pins, peaks=plan.peaks)
    assert sorted(precision.emulate(plan.model, low, []).recurrent_per_step) == ["lstm", "lstm_in"]
    assert {"lstm__low", "lstm_in__low", "lstm__solo", "lstm_in__solo"} <= set(probed.recurrent_per_step)
    assert _all_low_differs(model, _feeds(model, 1)[0], low) == []


def test_a_recurrent_node_s_local_error_is_its_per_step_rounding():
    """The LSTM's local error: the node alone in fp16 (every other node pinned), as the emulation rounds it."""
    model = _lstm_model()
    feeds = _feeds(model, 1)
    ranking = rank_nodes(model, "fp16", feeds, ["out", "out2"])
    ref = OrtModel(model, ["y"]).run(feeds[0])
    alone = precision.emulate(model, "fp16", ["tr", "lstm_in", "mul", "mul2"])
    got = OrtModel(alone.model, ["y"], weights=alone.weights).run(feeds[0])
    assert ranking.local_error["lstm"] == pytest.approx(rel_error(ref["y"], got["y"]), rel=1e-6)


def test_the_all_low_copy_keeps_a_graph_output_s_rounding():
    """A MatMul whose output is a graph output is rounded before its bias Add (not fused), in the all-low run
    and so in its copy (there the copy is no graph output)."""
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), helper.make_node("Add", ["y", "b"], ["z"], name="add"),
         helper.make_node("Tanh", ["z"], ["out"], name="tanh")],
        "g", [helper.make_tensor_value_info("x", F, [4, 16])],
        [helper.make_tensor_value_info("out", F, None), helper.make_tensor_value_info("y", F, None)],
        [helper.make_tensor("w", F, [16, 16], rng.normal(size=256).astype(np.float32)),
         helper.make_tensor("b", F, [16], rng.normal(size=16).astype(np.float32))],
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert _all_low_differs(model, {"x": rng.normal(size=(4, 16)).astype(np.float32)}, "fp16") == []


def _loop_model(n: int = 8) -> onnx.ModelProto:
    """A Loop whose float loop-carried value comes from a node (so it gets a pinned copy per that edge) and whose
    body reads two outer tensors that nothing else reads (sig's and tanh's outputs)."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["v_in", "bo"], ["m"], name="bmul"), helper.make_node("Add", ["m", "x2"], ["v_out"], name="badd"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"], name="bid")],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", F, None)],
    )  # fmt: skip
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "half"], ["a"], name="mul"), helper.make_node("Sigmoid", ["x"], ["bo"], name="sig"),
         helper.make_node("Tanh", ["x"], ["x2"], name="tanh"), helper.make_node("Loop", ["trip", "c0", "a"], ["v"], name="loop", body=body),
         helper.make_node("Mul", ["v", "half"], ["out"], name="outmul")],
        "g", [helper.make_tensor_value_info("x", F, [4, n])], [helper.make_tensor_value_info("out", F, None)],
        [helper.make_tensor("half", F, [], [0.5]), helper.make_tensor("trip", TensorProto.INT64, [], [3]),
         helper.make_tensor("c0", TensorProto.BOOL, [], [True])],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("size", [0, 1 << 62])
def test_a_loop_s_pinned_copy_reads_the_outer_tensors_its_body_reads(size, monkeypatch):
    """The pinned copy of a Loop (per float input edge) has a body reading outer tensors: they are fed (the
    reference's), not left undefined (ONNX Runtime refused the model when no rounding sum happened to feed them:
    tensors under SUM_MIN_SIZE)."""
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", size)
    model = _loop_model()
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(size=(4, 8)).astype(np.float32)} for _ in range(2)]
    ranking = rank_nodes(model, "fp16", feeds, ["out"])
    assert set(ranking.order) == {"mul", "outmul"}
    assert all(0 < e < 1e-3 for e in ranking.local_error.values())


def test_the_all_low_copy_of_a_model_keeping_initializers_as_inputs():
    """Weights listed as graph inputs (keep_initializers_as_inputs) are inputs to the emulation (rounded as such,
    no bias fused into its MatMul): the sensitivity model keeps them inputs, so its all-low copy is the run's."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", F, [16, 16], rng.normal(size=256).astype(np.float32))
    b = helper.make_tensor("b", F, [16], rng.normal(size=16).astype(np.float32))
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"), helper.make_node("Add", ["y", "b"], ["z"], name="add"),
         helper.make_node("Tanh", ["z"], ["out"], name="tanh")],
        "g", [helper.make_tensor_value_info("x", F, [4, 16]), helper.make_tensor_value_info("w", F, [16, 16]),
              helper.make_tensor_value_info("b", F, [16])],
        [helper.make_tensor_value_info("out", F, None)], [w, b],
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert _all_low_differs(model, {"x": rng.normal(size=(4, 16)).astype(np.float32)}, "fp16") == []


def test_a_mask_that_is_minus_inf_in_a_later_sample_only(monkeypatch):
    """An attention mask (0 / -inf) with nothing masked in the first sample and padding in the second: numpy
    measures the finite elements; the graph's sums would read the -inf as an overflow (inf scores: forced pins),
    so that sample switches the pass to numpy's sums."""
    rng = np.random.default_rng(0)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"), helper.make_node("Add", ["a", "mask"], ["am"], name="addmask"),
         helper.make_node("Softmax", ["am"], ["p"], name="sm", axis=-1), helper.make_node("MatMul", ["p", "v"], ["out"], name="mm2")],
        "g", [helper.make_tensor_value_info("x", F, [64, 128]), helper.make_tensor_value_info("mask", F, [64, 128])],
        [helper.make_tensor_value_info("out", F, None)],
        [helper.make_tensor("w", F, [128, 128], rng.normal(0, 0.1, (128, 128)).astype(np.float32)),
         helper.make_tensor("v", F, [128, 64], rng.normal(size=(128, 64)).astype(np.float32))],
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    padded = np.zeros((64, 128), np.float32)
    padded[:, 100:] = -np.inf
    feeds = [{"x": rng.normal(size=(64, 128)).astype(np.float32), "mask": m} for m in (np.zeros((64, 128), np.float32), padded)]
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 1 << 62)
    numpy_ = rank_nodes(model, "fp16", feeds, ["out"])
    monkeypatch.setattr(sensitivity, "SUM_MIN_SIZE", 0)
    made = []
    measure = sensitivity.measure_in_graph
    monkeypatch.setattr(sensitivity, "measure_in_graph", lambda *a, **k: made.append(set(a[-1])) or measure(*a, **k))
    graph = rank_nodes(model, "fp16", feeds, ["out"])
    # the second sample sends what holds -inf there to numpy; the rest stays summed in the graph
    assert len(made) == 2 and made[0] == set() and {"mask", "am"} <= made[1] and "a" not in made[1]
    assert all(np.isfinite(s) for s in numpy_.score.values())
    for name, s in numpy_.score.items():
        assert graph.score[name] == pytest.approx(s, rel=1e-4)
