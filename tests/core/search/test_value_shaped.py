"""An output whose shape follows a value that low precision rounds (a Range's limit): the nothing-pinned run has
another shape. It is a failing candidate (one line saying so), and the sensitivity pass measures it by numpy
(the graph cannot subtract tensors of different shapes)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.core.search.session import prepare_search
from trt_tui.core.search.targets import Criterion, parse_target


def _range_model(tmp_path):
    """limit = max(x); y = Range(0, limit, 1) * 0.001. With max(x) = 10001, fp16 rounds the limit to 10000:
    10000 elements where FP32 has 10001."""
    g = helper.make_graph(
        [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0, name="max"),
         helper.make_node("Mul", ["m", "k"], ["limit"], name="scale"),
         helper.make_node("Range", ["zero", "limit", "one"], ["r"], name="range"),
         helper.make_node("Mul", ["r", "c"], ["y"], name="out")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("k", TensorProto.FLOAT, [], [1.0]), helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
         helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]), helper.make_tensor("c", TensorProto.FLOAT, [], [0.001])],
    )  # fmt: skip
    path = tmp_path / "range.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = np.zeros(64, np.float32)
    x[3] = 10001.0
    np.savez(tmp_path / "x.npz", x=x)
    return path, tmp_path / "x.npz"


def test_another_shape_fails_the_target_in_one_line():
    crit = Criterion(["y"], [parse_target("y:rel_rms<=1e-3")])
    checks = crit.check([{"y": np.zeros(5, np.float32)}], [{"y": np.zeros(4, np.float32)}])
    assert not checks["y"].passed and checks["y"].fraction == 0.0
    assert checks["y"].failed == ["shape [4] where the reference has [5]"]


def test_the_search_pins_what_sets_the_shape(tmp_path, monkeypatch):
    from trt_tui.core.search import sensitivity

    made = []
    measure = sensitivity.measure_in_graph
    monkeypatch.setattr(sensitivity, "measure_in_graph", lambda *a, **k: made.append(a[-1]) or measure(*a, **k))
    path, sample = _range_model(tmp_path)
    result = prepare_search(path, targets=["y:rel_rms<=1e-3"], inputs=[sample]).run()
    assert len(made) == 2 and "r" not in made[0] and "r" in made[1]  # sums in the graph failed: numpy's then
    assert result.status == "found" and result.passed
    baseline = next(e for e in result.log if e["phase"] == "baseline")
    assert not baseline["passed"] and "shape [10000]" in baseline["failed"]["y"][0]
    assert "range" in result.pins  # the Range (or what feeds its limit) stays FP32
    assert result.outputs["y"]["with"]["rel_rms"] <= 1e-3
