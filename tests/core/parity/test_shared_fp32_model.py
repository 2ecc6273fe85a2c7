"""A comparison runs the index's own parse of the model (no second copy of its inline weights), never writes
to it, and parses the file again when it changed since it was indexed or when random nodes must be seeded."""

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.graph import load_graph
from trt_tui.core.parity import engine
from trt_tui.core.parity.engine import compare
from trt_tui.core.parity.inputs import InputSpec


def _gru_model(path, *, random: bool = False):
    """A GRU (static-shape copy for the emulation) whose weights are big enough to be read by reference."""
    rng = np.random.default_rng(0)
    H, F = 32, 16
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.3, n)
             for n, s in (("W", (1, 3 * H, F)), ("R", (1, 3 * H, H)), ("P", (H, H)))]  # fmt: skip
    nodes = [helper.make_node("GRU", ["x", "W", "R"], ["y", "h"], name="gru", hidden_size=H, linear_before_reset=1),
             helper.make_node("MatMul", ["h", "P"], ["p"], name="proj")]  # fmt: skip
    if random:
        nodes.append(helper.make_node("RandomNormalLike", ["p"], ["noise"], name="noise"))
        nodes.append(helper.make_node("Add", ["p", "noise"], ["out"], name="add"))
    else:
        nodes.append(helper.make_node("Relu", ["p"], ["out"], name="relu"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


@pytest.mark.parametrize("candidate", ["emulate", "mixed"])
def test_the_index_model_is_shared_and_left_unchanged(tmp_path, monkeypatch, candidate):
    path = _gru_model(tmp_path / "gru.onnx")
    index = load_graph(path)
    before = index.model.SerializeToString()
    loads = []
    monkeypatch.setattr(engine, "load_model", lambda p, **kw: loads.append(p) or onnx.load(str(p)))
    shared = compare(path, candidate, precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}), index=index)
    assert loads == [] and index.model.SerializeToString() == before
    fresh = compare(path, candidate, precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}))
    assert [(d.name, d.max_abs, d.rel_rms) for d in shared.tensors] == [(d.name, d.max_abs, d.rel_rms) for d in fresh.tensors]


def test_a_file_changed_since_it_was_indexed_is_read_again(tmp_path, monkeypatch):
    path = _gru_model(tmp_path / "gru.onnx")
    index = load_graph(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    loads = []
    real = engine.load_model
    monkeypatch.setattr(engine, "load_model", lambda p, **kw: loads.append(p) or real(p, **kw))
    compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}), index=index)
    assert loads == [path]


def test_a_model_with_random_nodes_gets_its_own_copy_to_seed(tmp_path):
    path = _gru_model(tmp_path / "noisy.onnx", random=True)
    index = load_graph(path)
    before = index.model.SerializeToString()
    result = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}), index=index)
    assert any("seeded alike" in w for w in result.warnings)
    assert index.model.SerializeToString() == before
