"""Adversarial cases for the comparison's by-reference weights (writing.by_reference, DerivedWeights.derive
composing), the shared index model (engine._fp32_model) and the automatic budget (engine.auto_max_memory)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.parity.engine import _with_static_inputs


def _lstm_behind_pad(extra_inits=(), extra_nodes=(), H=32, F=16):
    """silero-like: X's length comes through a Pad shape inference cannot follow; weights big enough (> 4 KB)
    to be placeholders of a by-reference copy."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.5, n) for n, s in (("W", (1, 4 * H, F)), ("R", (1, 4 * H, H)))]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("all_pads", [9, 0, 0, 0, 2, 0, 0, 9]), ("s", [1]), ("e", [7]))]  # fmt: skip
    nodes = [
        helper.make_node("Slice", ["all_pads", "s", "e"], ["pads"]),
        helper.make_node("Pad", ["x", "pads"], ["xp"]),
        helper.make_node("LSTM", ["xp", "W", "R"], ["y", "h"], name="lstm", hidden_size=H),
        *extra_nodes,
    ]
    out = extra_nodes[-1].output[0] if extra_nodes else "h"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], [*inits, *extra_inits])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=10)


def _declared(model, feeds):
    static, _ = _with_static_inputs(model, feeds, None)
    return {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in static.graph.value_info}


def test_sequence_shape_probe_reads_big_placeholder_weights():
    feeds = [{"x": np.random.default_rng(1).standard_normal((6, 1, 16)).astype(np.float32)}]
    assert _declared(_lstm_behind_pad(), feeds) == {"xp": [8, 1, 16]}


@pytest.mark.parametrize("kind", ["int64", "bf16"])
def test_sequence_shape_probe_with_a_big_weight_of_a_type_it_cannot_feed(kind):
    """An int64 table or a bf16 weight above 4 KB is a placeholder in the by-reference copy but cannot be fed
    to the probe as an input: it must still reach the probe with its values (before by_reference it did)."""
    if kind == "int64":
        extra = numpy_helper.from_array(np.arange(1024, dtype=np.int64) % 32, "idx")
        nodes = [helper.make_node("Gather", ["h", "idx"], ["g"], axis=2)]
    else:
        bits = (np.random.default_rng(2).standard_normal((32, 128)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        extra = helper.make_tensor("wb", TensorProto.BFLOAT16, (32, 128), bits.tobytes(), raw=True)
        nodes = [helper.make_node("Cast", ["wb"], ["wf"], to=TensorProto.FLOAT), helper.make_node("MatMul", ["h", "wf"], ["g"])]
    feeds = [{"x": np.random.default_rng(1).standard_normal((6, 1, 16)).astype(np.float32)}]
    assert _declared(_lstm_behind_pad([extra], nodes), feeds) == {"xp": [8, 1, 16]}


def test_sequence_shape_probe_reads_weights_stored_in_float_data():
    model = _lstm_behind_pad()
    for t in model.graph.initializer:
        if t.name in ("W", "R"):
            values = numpy_helper.to_array(t)
            t.CopyFrom(helper.make_tensor(t.name, TensorProto.FLOAT, values.shape, values.ravel().tolist()))
            assert not t.HasField("raw_data")
    feeds = [{"x": np.random.default_rng(1).standard_normal((6, 1, 16)).astype(np.float32)}]
    assert _declared(model, feeds) == {"xp": [8, 1, 16]}


def _mlp(path, scale=0.3):
    rng = np.random.default_rng(0)
    F = 64
    inits = [numpy_helper.from_array((rng.standard_normal((F, F)) * scale).astype(np.float32), n) for n in ("W1", "W2")]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["m1"], name="mm1"), helper.make_node("Relu", ["m1"], ["r1"], name="relu"),
             helper.make_node("MatMul", ["r1", "W2"], ["y"], name="mm2")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, F])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


def _rows(result):
    return [d.to_json() for d in result.tensors]


def test_a_symlink_retargeted_since_indexing_runs_the_new_file(tmp_path):
    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.engine import compare
    from trt_tui.core.parity.inputs import InputSpec

    a, b, link = _mlp(tmp_path / "a.onnx"), _mlp(tmp_path / "b.onnx", scale=3.0), tmp_path / "m.onnx"
    link.symlink_to(a.name)
    index = load_graph(link)
    link.unlink()
    link.symlink_to(b.name)
    stale = compare(link, "emulate", precision="fp16", inputs=InputSpec(seed=1), index=index)
    assert _rows(stale) == _rows(compare(b, "emulate", precision="fp16", inputs=InputSpec(seed=1)))


def test_an_explicit_budget_is_used_exactly_and_reported(tmp_path):
    from trt_tui.core.parity.constants import DEFAULT_MAX_MEMORY, MIN_AUTO_MAX_MEMORY
    from trt_tui.core.parity.engine import CompareOptions, compare
    from trt_tui.core.parity.inputs import InputSpec

    path = _mlp(tmp_path / "m.onnx")
    given = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1), options=CompareOptions(max_memory=1000))
    assert given.max_memory == 1000 and given.batches == len(given.tensors)  # each tensor alone under 1000 bytes
    auto = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1))
    assert MIN_AUTO_MAX_MEMORY <= auto.max_memory <= DEFAULT_MAX_MEMORY and auto.batches == 1
    assert _rows(given) == _rows(auto)


def test_compare_rows_do_not_depend_on_weights_read_by_reference(tmp_path, monkeypatch):
    """End to end: the probe's refusal left the LSTM's state rounded at its outputs only (other rows than
    with the weights copied inline, as before by_reference)."""
    from trt_tui.core.parity.engine import compare
    from trt_tui.core.parity.inputs import InputSpec
    from trt_tui.core.precision import writing

    table = numpy_helper.from_array(np.arange(1024, dtype=np.int64) % 32, "idx")
    path = tmp_path / "lstm.onnx"
    onnx.save(_lstm_behind_pad([table], [helper.make_node("Gather", ["h", "idx"], ["g"], axis=2)]), path)
    by_reference = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}))
    monkeypatch.setattr(writing, "INLINE_MAX_BYTES", 1 << 40)  # nothing read by reference: inline copies
    copied = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1, dims={"T": 6}))
    assert by_reference.tensors and _rows(by_reference) == _rows(copied)


def test_a_given_budget_below_one_tensor_says_so(tmp_path):
    """--max-memory 1k cannot be kept (the input alone is bigger): one warning line, the comparison still runs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from trt_tui.core.parity.engine import CompareOptions, compare

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])])  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    small = compare(path, "emulate", options=CompareOptions(max_memory=1024))
    assert [w for w in small.warnings if "--max-memory 1K is below what tensor 'y'" in w and "(32K)" in w]
    assert not [w for w in compare(path, "emulate").warnings if "--max-memory" in w]  # the automatic budget: silent
    assert np.isfinite(small.tensors[0].rel_rms)
