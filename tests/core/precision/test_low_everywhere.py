"""Issue 11.2: bf16 is never a silent no-op. The emulation rounds every non-pinned float tensor whatever the
ONNX typing rules say (Conv, LSTM, Pad, Gemm too; opset <= 12 models upgraded so Cast to bfloat16 exists);
the mixed rewrite upgrades the opset the low type needs and lists every node it keeps FP32 with its reason."""

import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.cli import main
from trt_tui.core.errors import UserError
from trt_tui.core.precision import emulate, emulation_session, read_low_precision, to_mixed_precision
from trt_tui.core.precision import plan as plan_module

from tests.core.precision.helpers import ir10

RNG = np.random.default_rng(0)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32) * 0.3


def conv_lstm(opset: int, custom: bool = False) -> onnx.ModelProto:
    """Conv -> Pad -> Gemm -> LSTM -> (custom op): the ops real opset-11/12 models keep FP32 by the spec."""
    n = helper.make_node
    inits = [
        numpy_helper.from_array(w(4, 2, 3, 3), "conv_w"),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 6 * 6 * 4], np.int64), "flat"),
        numpy_helper.from_array(w(144, 16), "gemm_w"),
        numpy_helper.from_array(np.array([1, 2, 8], np.int64), "seq_shape"),
        numpy_helper.from_array(w(1, 32, 8), "lstm_w"),
        numpy_helper.from_array(w(1, 32, 8), "lstm_r"),
    ]
    nodes = [
        n("Conv", ["x", "conv_w"], ["c"], name="conv"),
        n("Pad", ["c", "pads"], ["p"], name="pad"),
        n("Reshape", ["p", "flat"], ["f"], name="flatten"),
        n("Gemm", ["f", "gemm_w"], ["g"], name="gemm"),
        n("Reshape", ["g", "seq_shape"], ["s"], name="to_seq"),
        n("LSTM", ["s", "lstm_w", "lstm_r"], ["y", "y_h", "y_c"], name="lstm", hidden_size=8),
    ]
    outputs = [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in ("y", "y_h", "y_c")]
    opsets = [helper.make_opsetid("", opset)]
    if custom:
        nodes.append(n("Scale", ["y_c"], ["z"], name="custom", domain="com.example"))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1, 8]))
        opsets.append(helper.make_opsetid("com.example", 1))
    graph = helper.make_graph(nodes, "conv_lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])], outputs, inits)
    return ir10(helper.make_model(graph, opset_imports=opsets))


def default_opset(model):
    return next(i.version for i in model.opset_import if i.domain == "")


def representable(arr, low) -> bool:
    dtype = np.float16 if low == "fp16" else ml_dtypes.bfloat16
    return np.array_equal(arr.astype(dtype).astype(np.float32), arr)


@pytest.mark.parametrize("opset", [11, 12, 17])
@pytest.mark.parametrize("low", ["fp16", "bf16"])
def test_emulation_rounds_conv_pad_gemm_lstm_at_any_opset(opset, low):
    result = emulate(conv_lstm(opset), low, [])
    assert result.kept_fp32 == [] and not result.low_precision.ran_nothing_low
    assert {"c", "g", "y", "y_h", "y_c"} <= set(result.rounded_tensors)  # Pad/Reshape pass precision through
    assert {"conv_w", "gemm_w", "lstm_w", "lstm_r"} <= set(result.pre_rounded_constants)
    if low == "bf16" and opset < 13:
        assert result.opset_upgrade == (opset, 13) and default_opset(result.model) == 13
    session = emulation_session(result.model)
    outs = session.run(None, {"x": RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)})
    for value in outs:
        assert representable(value, low)


def test_emulated_outputs_differ_from_fp32_in_bf16_on_opset_11():
    """The real-model symptom: bf16 on opset 11 compared FP32 with FP32 (rel_rms exactly 0)."""
    import onnxruntime as ort

    model = conv_lstm(11)
    x = {"x": RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)}
    fp32 = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
    emu = emulation_session(emulate(model, "bf16", []).model).run(None, x)
    for a, b in zip(fp32, emu):
        rel = np.linalg.norm(a - b) / np.linalg.norm(a)
        assert 1e-4 < rel < 0.1


@pytest.mark.parametrize("opset", [11, 12])
def test_mixed_bf16_upgrades_the_opset_and_lists_what_stays_fp32(opset):
    result = to_mixed_precision(conv_lstm(opset, custom=True), "bf16", [])
    assert result.opset_upgrade == (opset, 22) and default_opset(result.model) == 22  # Conv/LSTM: bf16 from 22
    kept = [(k.node, k.op_type) for k in result.kept_fp32]
    assert kept == [("custom", "Scale")] and "no ONNX schema" in result.kept_fp32[0].reason
    types = {vi.name: vi.type.tensor_type.elem_type for vi in onnx.shape_inference.infer_shapes(result.model).graph.value_info}
    assert types["c"] == types["g"] == TensorProto.BFLOAT16
    onnx.checker.check_model(result.model)
    summary = read_low_precision(result.model)
    assert summary == result.low_precision and summary.low_nodes == 6 and summary.low_tensors > 0


def test_fp16_needs_no_upgrade():
    result = to_mixed_precision(conv_lstm(11), "fp16", [])
    assert result.opset_upgrade is None and result.kept_fp32 == []


def test_converter_failure(monkeypatch):
    """Emulation: refused in one line (never a silent FP32 run). Mixed: goes on, every FP32 node listed with why."""
    from onnx import version_converter

    def broken(model, target):
        raise RuntimeError("adapter missing\nmore")

    monkeypatch.setattr(version_converter, "convert_version", broken)
    with pytest.raises(UserError, match="bf16 emulation needs opset 13 .* version converter failed: adapter missing"):
        emulate(conv_lstm(11), "bf16", [])
    result = to_mixed_precision(conv_lstm(11), "bf16", [])
    assert result.opset_upgrade is None
    assert {k.node for k in result.kept_fp32} == {"conv", "pad", "flatten", "gemm", "to_seq", "lstm"}
    assert all("no bfloat16" in k.reason for k in result.kept_fp32)


def test_nothing_low_is_reported():
    """A model whose only float node is pinned: the summary says nothing ran in low precision."""
    n = helper.make_node
    graph = helper.make_graph(
        [n("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )  # fmt: skip
    model = ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    for rewrite in (emulate, to_mixed_precision):
        summary = rewrite(model, "bf16", ["relu"]).low_precision
        assert summary.ran_nothing_low and "nothing runs in bf16" in summary.one_line()
        assert summary.kept_fp32[0].reason == "pinned FP32 by the user"


def test_convert_prints_kept_fp32_with_reasons(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save(conv_lstm(11, custom=True), src)
    out = tmp_path / "o.onnx"
    assert main(["convert", str(src), "--precision", "bf16", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "opset upgraded 11 -> 22" in text and "kept FP32: 1 node(s):" in text
    assert "no ONNX schema for com.example::Scale (1): custom" in text
    assert "ONNX Runtime does not know the custom op com.example:Scale" in text  # valid; ORT lacks the plugin
    assert main(["convert", str(src), "--precision", "bf16", "-o", str(out), "--force", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["low_precision"]["kept_fp32"] == [{"node": "custom", "op_type": "Scale", "reason": "no ONNX schema for com.example::Scale"}]
    assert data["low_precision"]["ran_nothing_low"] is False and data["low_precision"]["opset"] == [11, 22]
    assert plan_module.MAX_UPGRADE_OPSET == 22


@pytest.mark.parametrize("rewrite", [emulate, to_mixed_precision])
def test_stale_output_declaration_is_corrected_not_fatal(rewrite):
    """Corpus finding F8 (ddddocr_ocr): the export declares an output [1, seqlen] that really is rank 3; after the
    bf16 opset upgrade inference saw it and the checker refused the rewrite. The declaration is corrected."""
    n = helper.make_node
    graph = helper.make_graph(
        [n("Reshape", ["x", "target"], ["r"], name="reshape"), n("Relu", ["r"], ["y"], name="relu")], "stale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seqlen"])],
        [numpy_helper.from_array(np.array([3, 4], np.int64), "target")],
    )  # fmt: skip
    model = ir10(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]))
    result = rewrite(model, "bf16", [])
    assert result.shape_fixes == ["output y is declared [1, seqlen] but the graph makes [3, 4]: declaration corrected"]
    onnx.checker.check_model(result.model, full_check=True)
