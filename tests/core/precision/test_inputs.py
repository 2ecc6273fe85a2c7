"""What both rewrites accept and refuse: pins, subgraphs, external data, precision names."""

import onnx
import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.precision import emulate, to_mixed_precision
from trt_tui.core.modelgen.synth import transformer_encoder

REWRITES = [to_mixed_precision, emulate]


@pytest.mark.parametrize("rewrite", REWRITES)
def test_unknown_pin_names_one_line_with_suggestion(models, rewrite):
    with pytest.raises(UserError) as exc:
        rewrite(onnx.load(models["transformer"]), "fp16", ["/encoder/layers.0/self_attn/Softmx"])
    text = exc.value.one_line()
    assert "no node named '/encoder/layers.0/self_attn/Softmx'" in text
    assert "did you mean '/encoder/layers.0/self_attn/Softmax'" in text


def test_subgraph_models_refused_clearly_by_the_mixed_rewrite(models):
    with pytest.raises(UserError, match=r"if_subgraph.onnx: node 'branch' \(If\) has a subgraph"):
        to_mixed_precision(models["if_subgraph"], "fp16", [])
    emulate(models["if_subgraph"], "fp16", [])  # the emulation rewrites the bodies (test_subgraphs.py)


@pytest.mark.parametrize("rewrite", REWRITES)
def test_unknown_precision(models, rewrite):
    with pytest.raises(UserError, match="unknown low precision 'fp8'"):
        rewrite(models["transformer"], "fp8", [])


@pytest.mark.parametrize("rewrite", REWRITES)
def test_external_data_stays_on_disk(tmp_path, rewrite):
    path = tmp_path / "ext.onnx"
    onnx.save(transformer_encoder(layers=1), path, save_as_external_data=True, location="w.bin", size_threshold=0)
    from_path = rewrite(path, "fp16", [])
    # no weight is read into the rewritten proto: unchanged ones point at w.bin, changed ones are derived
    from trt_tui.core.precision.writing import INLINE_BYTES
    from trt_tui.core.weights import nbytes

    assert all(i.data_location == onnx.TensorProto.EXTERNAL for i in from_path.model.graph.initializer if nbytes(i) > INLINE_BYTES)
    bare = onnx.load(path, load_external_data=False)
    with pytest.raises(UserError, match="external weight data that is not loaded"):
        rewrite(bare, "fp16", [])
    with_dir = rewrite(bare, "fp16", [], base_dir=tmp_path)
    assert with_dir.model.SerializeToString() == from_path.model.SerializeToString()


def test_missing_external_data_named(models):
    with pytest.raises(UserError, match="external weight data missing: weights.bin"):
        to_mixed_precision(models["missing_external_data"], "fp16", [])


def test_input_model_is_not_modified(models):
    model = onnx.load(models["demo"])
    before = model.SerializeToString()
    to_mixed_precision(model, "fp16", [model.graph.node[5].name])
    emulate(model, "bf16", [model.graph.node[5].name])
    assert model.SerializeToString() == before


@pytest.mark.parametrize("fixture", ["unnamed_nodes", "odd_names", "int64_input"])
def test_awkward_graphs_rewrite_cleanly(models, fixture):
    model = onnx.load(models[fixture])
    pin = "node_of_" + model.graph.node[0].output[0] if not model.graph.node[0].name else model.graph.node[0].name
    for rewrite in REWRITES:
        out = rewrite(model, "fp16", [pin]).model
        onnx.checker.check_model(out, full_check=True)
