"""Issue 17.4: GRU/LSTM/RNN nodes in the emulation round their running state at every step, as fp16/bf16
kernels keep it; fp16 nodes cuDNN can run are unrolled as cuDNN's fp16 arithmetic (every operation rounded,
tanh = 2*sigmoid(2x)-1). Checked against numpy step-by-step references of both. `round_recurrent_state=False`
keeps the outputs-only rounding."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.precision import emulate, emulation_session
from trt_tui.core.precision.common import round_through
from trt_tui.core.precision.opsupport import LOW_TYPES

from tests.core.precision.helpers import ir10

SEQ, BATCH, INPUT, HIDDEN = 12, 2, 5, 8
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def recurrent_model(op, direction="forward", lbr=0, layout=0, seq=SEQ, initial=True, seed=0):
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    w = {
        "W": rng.standard_normal((dirs, g * HIDDEN, INPUT)).astype(np.float32) * 0.7,
        "R": rng.standard_normal((dirs, g * HIDDEN, HIDDEN)).astype(np.float32) * 0.7,
        "B": rng.standard_normal((dirs, 2 * g * HIDDEN)).astype(np.float32) * 0.3,
    }
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    inputs = ["x", "W", "R", "B", ""]
    x_shape = [BATCH, seq, INPUT] if layout else [seq, BATCH, INPUT]
    h_shape = [BATCH, dirs, HIDDEN] if layout else [dirs, BATCH, HIDDEN]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    if initial:
        inputs.append("h0")
        graph_inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, h_shape))
        if op == "LSTM":
            inputs.append("c0")
            graph_inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, h_shape))
    outs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": HIDDEN, "direction": direction}
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    if layout:
        attrs["layout"] = 1
    node = helper.make_node(op, inputs, outs, name="rnn", **attrs)
    graph = helper.make_graph([node], "rec", graph_inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))
    inferred = onnx.shape_inference.infer_shapes(model).graph
    typed = {vi.name: vi for vi in (*inferred.value_info, *inferred.output)}
    for vi in model.graph.output:  # outputs with their inferred shapes: the checker wants a shape field
        vi.CopyFrom(typed.get(vi.name, vi))
    return model, w


def numpy_reference(op, w, feeds, low, direction="forward", lbr=0, layout=0, per_step=True):
    """The emulation's intended semantics: inputs/weights rounded, FP32 math per step, the state rounded
    after every step (per_step) or only the outputs (per_step=False)."""
    rnd = (lambda v: round_through(v, LOW_TYPES[low])) if low else (lambda v: v)
    step_rnd = rnd if per_step else (lambda v: v)
    x = rnd(feeds["x"])
    if layout:
        x = x.transpose(1, 0, 2)
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    seq = x.shape[0]
    ys, hs, cs = [], [], []
    for d, way in enumerate(dirs):
        W, R, B = rnd(w["W"][d]), rnd(w["R"][d]), rnd(w["B"][d])
        g = GATES[op]
        Wb, Rb = B[: g * HIDDEN], B[g * HIDDEN :]
        h0 = feeds.get("h0")
        h = rnd(h0.transpose(1, 0, 2)[d] if layout else h0[d]) if h0 is not None else np.zeros((BATCH, HIDDEN), np.float32)
        c0 = feeds.get("c0")
        c = rnd(c0.transpose(1, 0, 2)[d] if layout else c0[d]) if c0 is not None else np.zeros((BATCH, HIDDEN), np.float32)
        y = [None] * seq
        for t in range(seq) if way == "forward" else range(seq - 1, -1, -1):
            xt = x[t]
            if op == "RNN":
                h = np.tanh(xt @ W.T + h @ R.T + Wb + Rb)
            elif op == "GRU":
                Wz, Wr, Wh = np.split(W, 3)
                Rz, Rr, Rh = np.split(R, 3)
                bz, br, bh = np.split(Wb, 3)
                rz, rr, rh = np.split(Rb, 3)
                z = sigmoid(xt @ Wz.T + h @ Rz.T + bz + rz)
                r = sigmoid(xt @ Wr.T + h @ Rr.T + br + rr)
                if lbr:
                    hh = np.tanh(xt @ Wh.T + r * (h @ Rh.T + rh) + bh)
                else:
                    hh = np.tanh(xt @ Wh.T + (r * h) @ Rh.T + rh + bh)
                h = (1 - z) * hh + z * h
            else:
                gates = xt @ W.T + h @ R.T + Wb + Rb
                gi, go, gf, gc = np.split(gates, 4, axis=-1)
                c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gc)
                h = sigmoid(go) * np.tanh(c)
                c = step_rnd(c)
            h = step_rnd(h)
            y[t] = h
        ys.append(np.stack(y))
        hs.append(h)
        cs.append(c)
    y = np.stack(ys, axis=1)  # [seq, dirs, batch, hidden]
    out = [rnd(y.transpose(2, 0, 1, 3) if layout else y), rnd(np.stack(hs, axis=1 if layout else 0))]
    if op == "LSTM":
        out.append(rnd(np.stack(cs, axis=1 if layout else 0)))
    return out


def cudnn_reference(op, w, feeds, direction="forward", layout=0, chunk=16):
    """cuDNN's fp16 ("true half") arithmetic, step by step: products accumulated in fp16 per 16 terms, both
    biases summed in fp16 and added after them, every elementwise operation rounded except the fused
    multiply-adds (GRU r*(Rh+b)+x, LSTM f*c+i*g); sigmoid = 1/(1+exp(-x)), tanh = 2*sigmoid(2x)-1
    (GRU: linear_before_reset=1)."""
    r = lambda v: round_through(np.asarray(v, np.float32), LOW_TYPES["fp16"])
    with np.errstate(over="ignore"):
        sg = lambda v: r(1.0 / r(1.0 + r(np.exp(-v))))
    th = lambda v: r(2.0 * sg(2.0 * v) - 1.0)

    def matmul16(a, bt):
        acc = None
        for s in range(0, a.shape[-1], chunk):
            part = a[..., s : s + chunk] @ bt[s : s + chunk]
            acc = r(part if acc is None else acc + part)
        return acc

    x = r(feeds["x"])
    if layout:
        x = x.transpose(1, 0, 2)
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    seq, H = x.shape[0], HIDDEN
    ys, hs, cs = [], [], []
    for d, way in enumerate(dirs):
        W, R, B = r(w["W"][d]), r(w["R"][d]), r(w["B"][d])
        gh = GATES[op] * H
        wb, rb = B[:gh], B[gh:]
        both = r(wb + rb)
        xw = matmul16(x, W.T)
        h0, c0 = feeds.get("h0"), feeds.get("c0")
        pick = lambda s: r(s.transpose(1, 0, 2)[d] if layout else s[d]) if s is not None else np.zeros((BATCH, H), np.float32)
        h, c = pick(h0), pick(c0)
        y = [None] * seq
        for t in range(seq) if way == "forward" else range(seq - 1, -1, -1):
            rh = matmul16(h, R.T)
            if op == "GRU":
                zr = sg(r(r(xw[t, :, : 2 * H] + rh[:, : 2 * H]) + both[: 2 * H]))
                z, rr = zr[:, :H], zr[:, H:]
                n = th(r(rr * r(rh[:, 2 * H :] + rb[2 * H :]) + r(xw[t, :, 2 * H :] + wb[2 * H :])))
                h = r(r(r(1 - z) * n) + r(z * h))
            else:
                pre = r(r(xw[t] + rh) + both)
                if op == "LSTM":
                    iof = sg(pre[:, : 3 * H])
                    c = r(iof[:, 2 * H :] * c + r(iof[:, :H] * th(pre[:, 3 * H :])))
                    h = r(iof[:, H : 2 * H] * th(c))
                else:
                    h = th(pre)
            y[t] = h
        ys.append(np.stack(y))
        hs.append(h)
        cs.append(c)
    y = np.stack(ys, axis=1)
    out = [y.transpose(2, 0, 1, 3) if layout else y, np.stack(hs, axis=1 if layout else 0)]
    if op == "LSTM":
        out.append(np.stack(cs, axis=1 if layout else 0))
    return out


def cudnn_applies(op, lbr, low):
    return low == "fp16" and (op != "GRU" or lbr == 1)


def feeds_for(model, seed=1):
    rng = np.random.default_rng(seed)
    return {vi.name: rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim]).astype(np.float32) for vi in model.graph.input}


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


CASES = [
    ("GRU", "forward", 0, 0), ("GRU", "reverse", 1, 0), ("GRU", "bidirectional", 0, 0),
    ("LSTM", "forward", 0, 0), ("LSTM", "bidirectional", 0, 0), ("LSTM", "forward", 0, 1),
    ("RNN", "forward", 0, 0), ("RNN", "reverse", 0, 0),
]  # fmt: skip


@pytest.mark.parametrize("low", ["fp16", "bf16"])
@pytest.mark.parametrize("op, direction, lbr, layout", CASES)
def test_state_rounded_at_every_step_matches_numpy(op, direction, lbr, layout, low):
    model, w = recurrent_model(op, direction, lbr, layout)
    feeds = feeds_for(model)
    result = emulate(model, low, [])
    assert result.recurrent_per_step == ["rnn"] and not result.recurrent_outputs_only
    got = emulation_session(result.model).run(None, feeds)
    per_step = numpy_reference(op, w, feeds, low, direction, lbr, layout, per_step=True)
    outputs_only = numpy_reference(op, w, feeds, low, direction, lbr, layout, per_step=False)
    fp32 = numpy_reference(op, w, feeds, None, direction, lbr, layout)
    if cudnn_applies(op, lbr, low):  # cuDNN's fp16 arithmetic: the same operations, the same roundings
        cudnn = cudnn_reference(op, w, feeds, direction, layout)
        for g, ref, step in zip(got, cudnn, per_step):
            assert g.shape == ref.shape
            assert rel(g, ref) < 1e-3 and rel(g, ref) < 0.1 * rel(step, ref), (rel(g, ref), rel(step, ref))
        per_step = cudnn
    for g, ref, old, exact in zip(got, per_step, outputs_only, fp32):
        assert g.shape == ref.shape
        assert np.array_equal(round_through(g, LOW_TYPES[low]), g)  # every value low-representable
        # the same rounding points as the reference: far closer to it than the outputs-only rounding is
        assert rel(g, ref) < 0.1 * rel(old, ref) or rel(g, ref) < 1e-6, (rel(g, ref), rel(old, ref))
        assert rel(g, exact) > 0  # low precision really ran
    # today's behaviour on demand: one node, outputs rounded once
    old_model = emulate(model, low, [], round_recurrent_state=False)
    assert not old_model.recurrent_per_step and sum(n.op_type == op for n in old_model.model.graph.node) == 1
    if layout:  # ORT's CPU kernels have no layout 1: only the unrolled form (run as layout 0) runs
        return
    got_old = emulation_session(old_model.model).run(None, feeds)
    for g, old in zip(got_old, outputs_only):
        assert rel(g, old) < 1e-3


def test_dynamic_sequence_length_keeps_outputs_rounding_with_reason():
    model, _ = recurrent_model("GRU")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "T"
    result = emulate(model, "fp16", [])
    assert not result.recurrent_per_step
    assert [(r.node, r.op_type) for r in result.recurrent_outputs_only] == [("rnn", "GRU")]
    assert "not static" in result.recurrent_outputs_only[0].reason
    feeds = feeds_for(recurrent_model("GRU")[0])
    emulation_session(result.model).run(None, feeds)


def test_original_output_names_and_no_initial_state():
    model, w = recurrent_model("LSTM", initial=False)
    result = emulate(model, "bf16", [])
    assert [o.name for o in result.model.graph.output] == ["y", "y_h", "y_c"]
    produced = {o for n in result.model.graph.node for o in n.output}
    assert {"y", "y_h", "y_c"} <= produced
    feeds = feeds_for(model)
    got = emulation_session(result.model).run(None, feeds)
    ref = numpy_reference("LSTM", w, feeds, "bf16")
    for g, r in zip(got, ref):
        assert rel(g, r) < 1e-2


def test_convert_switch(tmp_path, capsys):
    from trt_tui.cli import main

    src = tmp_path / "gru.onnx"
    onnx.save(recurrent_model("GRU")[0], src)
    assert main(["convert", str(src), "--precision", "fp16", "--emulate", "-o", str(tmp_path / "a.onnx")]) == 0
    assert "recurrent state rounded at every step: 1 node(s)" in capsys.readouterr().out
    assert sum(n.op_type == "GRU" for n in onnx.load(tmp_path / "a.onnx").graph.node) == SEQ
    assert main(["convert", str(src), "--precision", "fp16", "--emulate", "--no-round-recurrent-state", "-o", str(tmp_path / "b.onnx")]) == 0
    assert sum(n.op_type == "GRU" for n in onnx.load(tmp_path / "b.onnx").graph.node) == 1


@pytest.mark.parametrize("op, direction, layout, initial", [
    ("LSTM", "bidirectional", 1, True), ("LSTM", "forward", 0, False), ("GRU", "bidirectional", 0, False), ("RNN", "bidirectional", 1, True),
])  # fmt: skip
def test_cudnn_fp16_arithmetic_matches_numpy(op, direction, layout, initial):
    model, w = recurrent_model(op, direction, lbr=1, layout=layout, initial=initial)
    feeds = feeds_for(model)
    result = emulate(model, "fp16", [])
    assert not any(n.op_type == op for n in result.model.graph.node)  # decomposed into elementary operations
    got = emulation_session(result.model).run(None, feeds)
    for g, ref in zip(got, cudnn_reference(op, w, feeds, direction, layout)):
        assert g.shape == ref.shape and rel(g, ref) < 1e-3, rel(g, ref)


def test_configurations_cudnn_lacks_keep_the_step_model():
    from trt_tui.core.precision.recurrent import cudnn_blocker

    cases = {
        "linear_before_reset=0": recurrent_model("GRU", lbr=0)[0],
        "activations": recurrent_model("RNN")[0],
        "clip": recurrent_model("LSTM")[0],
    }
    rnn_node = cases["activations"].graph.node[0]
    rnn_node.attribute.append(helper.make_attribute("activations", ["Relu"]))
    cases["clip"].graph.node[0].attribute.append(helper.make_attribute("clip", 3.0))
    for why, model in cases.items():
        node = model.graph.node[0]
        assert why.split("=")[0] in cudnn_blocker(node, 14)
        result = emulate(model, "fp16", [])
        assert result.recurrent_per_step == ["rnn"]
        assert sum(n.op_type == node.op_type for n in result.model.graph.node) == SEQ  # one step node per step
    assert cudnn_blocker(recurrent_model("LSTM")[0].graph.node[0], 14) is None
    assert "opset" in cudnn_blocker(recurrent_model("LSTM")[0].graph.node[0], 8)
    # bf16 has no cuDNN kernel in ONNX Runtime: the step model
    bf16 = emulate(recurrent_model("LSTM")[0], "bf16", [])
    assert sum(n.op_type == "LSTM" for n in bf16.model.graph.node) == SEQ


@pytest.mark.parametrize("op", ["GRU", "LSTM"])
def test_cudnn_fp16_products_accumulate_per_16_terms(op, monkeypatch):
    import sys

    here = sys.modules[__name__]
    monkeypatch.setattr(here, "HIDDEN", 24)  # K = 24 and 40: full chunks of 16 and a partial one
    monkeypatch.setattr(here, "INPUT", 40)
    model, w = recurrent_model(op, "forward", lbr=1)
    feeds = feeds_for(model)
    got = emulation_session(emulate(model, "fp16", []).model).run(None, feeds)
    per16 = cudnn_reference(op, w, feeds)
    fp32_sums = cudnn_reference(op, w, feeds, chunk=1 << 20)
    for g, ref, other in zip(got, per16, fp32_sums):
        assert rel(g, ref) < 1e-3 and rel(g, ref) < 0.2 * rel(other, ref), (rel(g, ref), rel(other, ref))


def test_unrolled_names_cost_no_probing():
    """An unrolled node asks for one base thousands of times: numbering each base keeps that linear (a long
    silero sequence took 126 s to emulate while every name probed base_2, base_3, ... from the start)."""
    from trt_tui.core.precision.recurrent import _numbered

    used, probes = set(), 0

    def fresh(base):
        nonlocal probes
        name, k = base, 1
        while name in used:
            probes += 1
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    numbered = _numbered(fresh)
    names = [numbered("lstm/const") for _ in range(2000)]
    assert len(set(names)) == 2000 and probes == 0


def test_sequence_shapes_are_probed_with_the_weights_fed_in_place():
    """The probe run that finds a recurrent node's sequence length reads the model's big weights as inputs
    instead of a serialised copy of the model: the same shape declared, the model untouched."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from trt_tui.core.precision.recurrent import _probe_fed_its_weights, declare_sequence_shapes

    rng = np.random.default_rng(0)
    hidden, feat = 32, 16
    w = numpy_helper.from_array(rng.standard_normal((1, 3 * hidden, feat)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 3 * hidden, hidden)).astype(np.float32), "R")
    pads = numpy_helper.from_array(np.array([2, 0, 0, 3, 0, 0], np.int64), "pads")  # a Pad shape inference keeps
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"]),
             helper.make_node("GRU", ["xp", "W", "R"], ["y", "h"], hidden_size=hidden)]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, feat])],
                              [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)], [w, r, pads])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    before = model.SerializeToString()
    probe, fed = _probe_fed_its_weights(model)
    assert set(fed) == {"W", "R"} and {i.name for i in probe.graph.input} >= {"W", "R"}
    assert [t.name for t in probe.graph.initializer] == ["pads"] and np.array_equal(fed["W"], numpy_helper.to_array(w))
    assert declare_sequence_shapes(model, {"x": np.zeros((4, 1, feat), np.float32)}) == ["xp"]
    declared = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.value_info}
    assert declared == {"xp": [9, 1, feat]}
    del model.graph.value_info[:]
    assert model.SerializeToString() == before  # the probe never touched the model itself
