"""A flat view's row (Reshape, Unsqueeze, Identity ... of a compared tensor) is taken from its source's
reduction: it must be what reducing it again gives, field for field, and never when the values differ."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.parity import engine
from trt_tui.core.parity.engine import CompareOptions, compare
from trt_tui.core.parity.inputs import InputSpec


def _model(path, scale_before_reshape: float | None = None):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32) * 3, "w")
    shape = numpy_helper.from_array(np.array([6, 6], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    src = "y"
    inits = [w, shape, axes]
    if scale_before_reshape is not None:  # a candidate whose view holds other values than its source
        inits.append(numpy_helper.from_array(np.array(scale_before_reshape, np.float32), "k"))
        nodes.append(helper.make_node("Mul", ["y", "k"], ["ym"], name="scale"))
        src = "ym"
    nodes += [
        helper.make_node("Reshape", [src, "shape"], ["flat"], name="reshape"),
        helper.make_node("Unsqueeze", ["flat", "axes"], ["wide"], name="unsqueeze"),
        helper.make_node("Identity", ["wide"], ["same"], name="identity"),
        helper.make_node("Transpose", ["same"], ["t"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Relu", ["t"], ["out"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "views", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, path)
    return path


def _rows(result):
    return {d.name: {k: v for k, v in d.to_json().items()} for d in result.tensors}


@pytest.mark.parametrize("candidate", ["emulate", "other"])
def test_view_rows_equal_reducing_them_again(tmp_path, monkeypatch, candidate):
    ref = _model(tmp_path / "ref.onnx")
    cand = "emulate" if candidate == "emulate" else f"onnx:{_model(tmp_path / 'cand.onnx', 1.001)}"
    spec = InputSpec(iterations=3, seed=3)
    calls = []
    drift = engine.Comparison._drift_of_view
    monkeypatch.setattr(engine.Comparison, "_drift_of_view", lambda self, t, *a: calls.append(t) or drift(self, t, *a))
    reused = compare(ref, cand, inputs=spec, options=CompareOptions(top_k=4))
    assert sorted(set(calls)) == ["flat", "same", "wide"]  # not the Transpose: its elements are reordered
    monkeypatch.setattr(engine, "FLAT_VIEW_OPS", frozenset())
    again = compare(ref, cand, inputs=spec, options=CompareOptions(top_k=4))
    assert _rows(reused) == _rows(again)
    assert [d.worst_index for d in reused.tensors if d.name == "wide"][0][0] == 0  # unravelled in its own shape
    if candidate == "other":  # the candidate's view differs from its source: reduced, not copied
        rows = _rows(reused)
        assert rows["flat"]["rel_rms"] != rows["y"]["rel_rms"]
