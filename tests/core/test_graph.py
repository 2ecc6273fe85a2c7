import onnx
import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.demo import build_demo_model
from trt_tui.core.resources import demo_model_path


def test_demo_model_indexed(demo_model):
    g = load_graph(demo_model)
    assert g.shape_inference_ok and not g.warnings
    assert g.op_counts["LayerNormalization"] == 10
    assert g.op_counts["Softmax"] == 2 and g.op_counts["LogSoftmax"] == 1
    assert [t.name for t in g.inputs] == [
        "audio_signal", "length", "cache_last_channel", "cache_last_time", "cache_last_channel_len",
    ]  # fmt: skip
    assert g.inputs[0].shape == ("B", 32, 8) and g.inputs[0].dynamic_axes == (0,)
    assert g.inputs[1].dtype == "int64"
    sm = g.node("/encoder/layers.0/self_attn/Softmax")
    assert sm.scope == "encoder/layers.0/self_attn"
    out = g.tensor(sm.outputs[0])
    assert out.dtype == "float32" and out.shape[1:] == (4, 8, 24)
    assert [n.topo_index for n in g.nodes] == list(range(len(g.nodes)))
    assert g.consumers_of(sm) and g.producers_of(sm)


def test_shipped_demo_model_is_reproducible():
    """The committed demo model is exactly what the generator makes (deterministic)."""
    shipped = onnx.load(str(demo_model_path()))
    assert shipped.SerializeToString() == build_demo_model().SerializeToString()


def test_unnamed_nodes_get_parser_names(models):
    g = load_graph(models["unnamed_nodes"])
    unnamed = [n for n in g.nodes if n.name_was_empty]
    assert unnamed
    for n in unnamed:
        assert n.name == f"node_of_{n.outputs[0]}"
        assert "unnamed" in n.flags
    assert any("unnamed" in w for w in g.warnings)


def test_odd_names_flagged(models):
    g = load_graph(models["odd_names"])
    flagged = {n.name for n in g.nodes if "trtexec-unsafe-name" in n.flags}
    assert flagged == {"layer,0/MatMul", "block:1/Softmax"}
    assert g.node("/my block/relu out").scope == "my block"


def test_subgraph_nodes_listed_under_parent(models):
    g = load_graph(models["if_subgraph"])
    inner = [n for n in g.nodes if n.parent == "branch"]
    assert {n.name for n in inner} == {"then/Softmax", "else/Relu", "else/Neg"}
    parent = g.node("branch")
    assert all(n.topo_index == parent.topo_index and "in-subgraph" in n.flags for n in inner)


def test_int64_input_and_symbolic_dims(models):
    g = load_graph(models["int64_input"])
    assert g.inputs[0].dtype == "int64" and g.inputs[0].shape == ("batch", "seq")
    assert g.outputs[0].shape == ("batch", "seq", 16)


def test_big_graph(models):
    g = load_graph(models["wide_1200"])
    assert len(g.nodes) > 1000


def test_missing_external_data_is_reported(models):
    g = load_graph(models["missing_external_data"])
    assert any("weights.bin" in w for w in g.warnings)


@pytest.mark.parametrize("fixture", ["truncated", "not_onnx"])
def test_corrupt_files_raise_one_line(models, fixture):
    with pytest.raises(UserError) as info:
        load_graph(models[fixture])
    text = info.value.one_line()
    assert str(models[fixture]) in text and "\n" not in text


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_graph(tmp_path / "nope.onnx")


def test_duplicate_names_flagged(tmp_path, models):
    m = onnx.load(str(models["transformer"]))
    m.graph.node[1].name = m.graph.node[0].name
    p = tmp_path / "dupes.onnx"
    onnx.save(m, p)
    g = load_graph(p)
    assert any("duplicated" in w for w in g.warnings)
    assert "duplicate-name" in g.nodes[0].flags


def test_shape_inference_failure_keeps_going(tmp_path, models):
    m = onnx.load(str(models["transformer"]))
    # a MatMul whose weight has an impossible shape: inference fails, indexing must not
    from onnx import numpy_helper
    import numpy as np

    for i, init in enumerate(m.graph.initializer):
        if init.name.endswith("q_proj/w"):
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.zeros((3, 5), np.float32), init.name))
            break
    p = tmp_path / "bad_shapes.onnx"
    onnx.save(m, p)
    g = load_graph(p)
    assert len(g.nodes) == len(m.graph.node)
    assert not g.shape_inference_ok
    assert any("shape inference failed" in w for w in g.warnings)


def test_filter(demo_model):
    g = load_graph(demo_model)
    assert len(g.filter(op="layernormalization")) == 10
    assert {n.op_type for n in g.filter(match="self_attn/Soft")} == {"Softmax"}
    with pytest.raises(UserError, match="bad regular expression"):
        g.filter(match="(")


def test_unsorted_graph_gets_topological_indices(tmp_path, models):
    m = onnx.load(str(models["transformer"]))
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(reversed(nodes))
    p = tmp_path / "reversed.onnx"
    onnx.save(m, p)
    g = load_graph(p, infer_shapes=False)
    position = {n.name: n.topo_index for n in g.nodes}
    for n in g.nodes:
        for producer in g.producers_of(n):
            assert position[producer] < position[n.name]
