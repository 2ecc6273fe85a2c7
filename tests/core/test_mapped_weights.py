"""read_mapped: big inline weights become external data pointing into the .onnx file itself, read in place;
a comparison of such a parse gives the same rows as one of the plain parse."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.mapped_weights import MAP_MIN_BYTES, read_mapped
from trt_tui.core.weights import WeightSource, is_external

H, F = 64, 160  # LSTM weights of 4H x F and 4H x H floats: 160 KB and 64 KB, both mapped


def _lstm_model(path, *, float_data: bool = False):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 4 * H, F)).astype(np.float32) * 0.1
    r = rng.standard_normal((1, 4 * H, H)).astype(np.float32) * 0.1
    p = rng.standard_normal((H, 8)).astype(np.float32)  # 2 KB: stays inline
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(p, "P")]
    if float_data:  # typed field instead of raw_data: left inline
        inits[0] = helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel().tolist())
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y", "h"], name="lstm", hidden_size=H),
             helper.make_node("Squeeze", ["h"], ["hs"], name="sq"),
             helper.make_node("MatMul", ["hs", "P"], ["out"], name="proj")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.helper.set_model_props(model, {"k": "v"})
    onnx.save(model, path)
    return path


def test_big_inline_weights_point_into_the_file_with_the_same_values(tmp_path):
    path = _lstm_model(tmp_path / "m.onnx")
    plain, mapped = onnx.load(path), read_mapped(path)
    assert [is_external(t) for t in mapped.graph.initializer] == [True, True, False]
    source = WeightSource(tmp_path)
    for a, b in zip(plain.graph.initializer, mapped.graph.initializer):
        got = source.array(b) if is_external(b) else numpy_helper.to_array(b)
        assert np.array_equal(numpy_helper.to_array(a), got) and got.dtype == np.float32
    del plain.graph.initializer[:], mapped.graph.initializer[:]
    assert plain.SerializeToString() == mapped.SerializeToString()  # everything else as it was, metadata too
    assert mapped.ByteSize() < MAP_MIN_BYTES


def test_nothing_to_map_or_not_protobuf_gives_none(tmp_path):
    small = tmp_path / "small.onnx"
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])  # fmt: skip
    onnx.save(helper.make_model(graph), small)
    assert read_mapped(small) is None
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * (MAP_MIN_BYTES + 10))
    assert read_mapped(junk) is None
    typed = read_mapped(_lstm_model(tmp_path / "typed.onnx", float_data=True))
    assert [is_external(t) for t in typed.graph.initializer] == [False, True, False]


@pytest.mark.parametrize("candidate", ["emulate", "mixed"])
def test_a_comparison_of_the_mapped_parse_gives_the_same_rows(tmp_path, candidate):
    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.engine import compare
    from trt_tui.core.parity.inputs import InputSpec

    path = _lstm_model(tmp_path / "m.onnx")
    rows = {}
    for mapped in (False, True):
        index = load_graph(path, map_weights=mapped)
        assert any(is_external(t) for t in index.model.graph.initializer) == mapped
        result = compare(path, candidate, precision="fp16", inputs=InputSpec(seed=1, dims={"T": 5}), index=index)
        rows[mapped] = [d.to_json() for d in result.tensors]
        if candidate == "emulate":  # the LSTM's state rounded at every step: the fed sequence length was read
            assert not any("not static" in w for w in result.warnings)
    assert rows[True] == rows[False] and rows[True]


def test_the_compare_command_maps_but_a_build_candidate_does_not(tmp_path, monkeypatch):
    from trt_tui.core.parity import request as request_module

    path = _lstm_model(tmp_path / "m.onnx")
    seen = []
    real = request_module.load_graph
    monkeypatch.setattr(request_module, "load_graph", lambda p, map_weights=False: seen.append(map_weights) or real(p, map_weights=map_weights))
    request_module.build_request(path, map_weights=True)
    request_module.build_request(path, candidate="engine:x.plan", map_weights=True)
    assert seen == [True, False]
