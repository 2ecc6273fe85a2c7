"""Models with external data: weights stay on disk, reach sessions as OrtValues, never inside model bytes.

The 2 GB protobuf limit is the failure this guards against (issue 14): a segment's model bytes must not
grow with the weights, and a comparison of a model with external data must read them from the file.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_tui.core.errors import UserError
from trt_tui.core.parity.engine import CompareOptions, compare
from trt_tui.core.parity.segments import SegmentPlan
from trt_tui.core.weights import INLINE_MAX_BYTES, WeightSource, load_without_weights, on_disk


def _mlp_with_external_data(folder, d=256, layers=3):
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Softmax", [f"mm{i}"], [f"sm{i}"], name=f"sm{i}", axis=-1))
        x = f"sm{i}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, d])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [4, d])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    path = folder / "mlp.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="mlp.data",
                    size_threshold=0)  # fmt: skip
    return path


def test_segment_models_carry_no_weights(tmp_path):
    path = _mlp_with_external_data(tmp_path)
    model = load_without_weights(path)
    names = [t for n in model.graph.node for t in n.output]
    plan = SegmentPlan(model, [names[:2], names[2:]], WeightSource(path.parent))
    dtypes = {"x": np.dtype(np.float32), "sm0": np.dtype(np.float32)}
    for k in range(2):
        sub, supplied = plan.submodel(k, dtypes)
        assert not supplied, "weights in the model's data file are mapped by ONNX Runtime, not copied"
        assert all(on_disk(t) for t in sub.graph.initializer if t.name.startswith("w"))
        assert len(sub.SerializeToString()) < INLINE_MAX_BYTES * 4  # names and file offsets only
    inline = onnx.load(path)  # weights in memory: supplied as OrtValues, never inside the segment's bytes
    plan = SegmentPlan(inline, [names[:2], names[2:]], WeightSource(None))
    sub, supplied = plan.submodel(0, dtypes)
    assert supplied and len(sub.SerializeToString()) < INLINE_MAX_BYTES * 4


def test_compare_reads_external_data_and_matches_inline(tmp_path):
    path = _mlp_with_external_data(tmp_path)
    inline = tmp_path / "inline" / "mlp.onnx"
    inline.parent.mkdir()
    onnx.save_model(onnx.load(path), inline)
    a = compare(path, "emulate", precision="fp16")
    b = compare(inline, "emulate", precision="fp16")
    rows_a = {d.name: d.rel_rms for d in a.tensors}
    rows_b = {d.name: d.rel_rms for d in b.tensors}
    assert rows_a == rows_b and rows_a["sm2"] > 0


def test_external_data_outside_the_model_folder_is_one_line(tmp_path):
    path = _mlp_with_external_data(tmp_path)
    model = load_without_weights(path)
    init = model.graph.initializer[0]
    for entry in init.external_data:
        if entry.key == "location":
            entry.value = "../mlp.data"
    with pytest.raises(UserError, match="outside the model's folder"):
        WeightSource(path.parent).array(init)
    for entry in init.external_data:
        if entry.key == "location":
            entry.value = os.path.abspath(tmp_path / "mlp.data")
    with pytest.raises(UserError, match="must be a relative path"):
        WeightSource(path.parent).array(init)


def test_external_data_too_short_is_one_line(tmp_path):
    path = _mlp_with_external_data(tmp_path)
    data = tmp_path / "mlp.data"
    data.write_bytes(data.read_bytes()[:1000])
    model = load_without_weights(path)
    with pytest.raises(UserError, match="does not hold shape"):
        WeightSource(path.parent).array(model.graph.initializer[1])


def test_bf16_tensors_cross_segment_edges_as_float32():
    """ONNX Runtime's Python API cannot return or take numpy bf16: segments widen bf16 at their edges, exactly."""
    from trt_tui.core.parity.segments import SegmentedExecutor

    nodes = [helper.make_node("Cast", ["x"], ["a"], to=TensorProto.BFLOAT16, name="to_bf16"),
             helper.make_node("Cast", ["a"], ["b"], to=TensorProto.FLOAT, name="to_f32")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    x = np.array([1.0, 1.00390625 + 1e-3, 3.14159], np.float32)
    executor = SegmentedExecutor(SegmentPlan(model, [["a"], ["b"]]), [{"x": x}])
    got = {}
    for k in range(2):
        with executor.open(k) as seg:
            got.update(seg.run(0))
    import ml_dtypes

    expected = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert got["a"].dtype == np.float32
    np.testing.assert_array_equal(got["a"], expected)
    np.testing.assert_array_equal(got["b"], expected)


def test_small_constants_saved_external_still_run_whole_and_in_segments(tmp_path):
    """size_threshold=0 puts shape constants in the data file too; ORT needs them inline when reading bytes."""
    from trt_tui.core.parity.runners import make_runners

    d = 16
    w = onnx.numpy_helper.from_array(np.ones((d, d), np.float32), "w")
    shape = onnx.numpy_helper.from_array(np.array([2, -1], np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("Reshape", ["m", "shape"], ["y"], name="rs")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, shape])  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path,
                    save_as_external_data=True, location="m.data", size_threshold=0)  # fmt: skip
    x = np.ones((4, d), np.float32)
    with make_runners(path, "emulate") as pair:
        ref, cand = pair.infer({"x": x})
    assert ref["y"].shape == (2, 2 * d)
    result = compare(path, "emulate", precision="fp16")
    assert {t.name for t in result.tensors} >= {"m", "y"}


def test_rounded_weights_are_fed_on_the_cpu_and_give_the_same_rows(tmp_path, monkeypatch):
    """The emulation's rounded weights reach a CPU segment as graph inputs fed at each run (ONNX Runtime copies
    initializers given as OrtValues); the rows are those of the initializer route, field for field."""
    from trt_tui.core.parity import segments

    path = _mlp_with_external_data(tmp_path, d=640)  # 1.6 MB weights: supplied, not inlined in the segment
    seen = []  # per segment session: (weights fed as inputs, weights given as initializers)
    make = segments.ort_runner

    def spy(model_bytes, *args, initializers=None, **kwargs):
        sub = onnx.load_from_string(model_bytes)
        seen.append(({i.name for i in sub.graph.input} & {"w0", "w1", "w2"}, set(initializers or ())))
        return make(model_bytes, *args, initializers=initializers, **kwargs)

    monkeypatch.setattr(segments, "ort_runner", spy)
    one_segment = CompareOptions(max_memory=128 << 20)  # every weight in one segment, whatever the default
    as_inputs = compare(path, "emulate", precision="fp16", options=one_segment)
    assert ({"w0", "w1", "w2"}, set()) in seen  # the candidate's weights: fed, none given as OrtValues
    seen.clear()
    monkeypatch.setattr(segments, "FEEDABLE_TYPES", frozenset())  # as bf16 weights (and GPU runs) still go
    as_initializers = compare(path, "emulate", precision="fp16", options=one_segment)
    assert (set(), {"w0", "w1", "w2"}) in seen
    assert [d.to_json() for d in as_inputs.tensors] == [d.to_json() for d in as_initializers.tensors]
