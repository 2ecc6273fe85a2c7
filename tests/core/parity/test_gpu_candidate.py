"""The `cuda` candidate and `calibrate` (issue 17): CPU-side logic here; GPU runs skip without the CUDA EP."""

from __future__ import annotations

import json
import math

import onnxruntime as ort
import pytest

from trt_tui.cli import main
from trt_tui.core.parity import providers
from trt_tui.core.parity.calibrate import Calibration, RatioStats
from trt_tui.core.parity.runners import default_providers, parse_candidate

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
needs_gpu = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA execution provider here (onnxruntime-gpu on a GPU machine runs these)")

ORT_VERBOSE_LOG = """\
2026-11-26 02:40:01.1 [I:onnxruntime:, session_state_utils.cc:200 SaveInitializedTensors] Saving initialized tensors.
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1154 VerifyEachNodeIsAssignedToAnEp] Node placements
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1157 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 3
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1160 VerifyEachNodeIsAssignedToAnEp]   MatMul (/layers.0/MatMul)
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1160 VerifyEachNodeIsAssignedToAnEp]   Cast (/layers.0/Cast)
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1160 VerifyEachNodeIsAssignedToAnEp]   MemcpyToHost (Memcpy_token_1)
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1157 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1
2026-11-26 02:40:01.2 [V:onnxruntime:, session_state.cc:1160 VerifyEachNodeIsAssignedToAnEp]   Softmax (/layers.0/Softmax)
2026-11-26 02:40:01.3 [V:onnxruntime:, session_state.cc:126 CreateGraphInfo] SaveMLValueNameIndexMapping
"""


def test_parse_placements_reads_ort_verbose_partitioning():
    placed = providers.parse_placements(ORT_VERBOSE_LOG)
    assert placed["CUDAExecutionProvider"] == ["/layers.0/MatMul", "/layers.0/Cast", "Memcpy_token_1"]
    assert placed["CPUExecutionProvider"] == ["/layers.0/Softmax"]
    assert providers.parse_placements("All nodes placed on [CUDAExecutionProvider]. Number of nodes: 17") == {
        "CUDAExecutionProvider": []}
    assert providers.memcpy_or_internal("Memcpy_token_1")


def test_cpu_is_the_default_and_cuda_gets_tf32_off(monkeypatch):
    assert default_providers() == ["cpu"]  # the preview never moves to a GPU by itself
    monkeypatch.setattr(providers, "available", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert providers.resolve(["cuda", "cpu"]) == [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]
    assert providers.uses_gpu(providers.resolve(["cuda"]))


def test_cuda_candidate_parses_and_labels():
    spec = parse_candidate("cuda", precision="bf16", pins=["a"])
    assert spec.kind == "cuda" and spec.label == "cuda bf16 +1 pinned"


@pytest.mark.skipif(HAS_CUDA, reason="checks the message given when the CUDA EP is missing")
@pytest.mark.parametrize("argv", [["compare", "{m}", "--candidate", "cuda"], ["calibrate", "{m}"]])
def test_cuda_without_the_gpu_build_is_one_line_exit_2(demo_model, capsys, argv):
    code = main([a.format(m=demo_model) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "onnxruntime-gpu" in err[0] and "CUDA execution provider" in err[0]


def test_help_says_which_onnxruntime_build_is_installed(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "ONNX Runtime: onnxruntime" in capsys.readouterr().out


def test_calibration_ratios_per_op_type_and_output():
    cal = Calibration("m.onnx", "fp16", {
        "a": ("MatMul", 1.0e-3, 1.0e-3), "b": ("MatMul", 0.8e-3, 1.0e-3), "c": ("GRU", 0.6e-3, 1.0e-3),
        "d": ("Relu", 1e-4, 0.0),  # exact on the GPU: no ratio
    }, outputs=["c"], skipped=1)  # fmt: skip
    by_op = cal.by_op_type()
    assert set(by_op) == {"MatMul", "GRU"} and by_op["GRU"].median == pytest.approx(0.6)
    assert by_op["MatMul"].median == pytest.approx(0.9) and by_op["MatMul"].within == 1.0
    doc = json.loads(json.dumps(cal.to_json()))
    assert doc["schema"] == "trt_tui.calibrate/1" and doc["outputs"]["c"]["ratio"] == pytest.approx(0.6)
    assert doc["overall"]["count"] == 3
    s = RatioStats.of([1.0, 2.0, 3.0])
    assert s.median == 2.0 and math.isclose(s.within, 1 / 3)


@needs_gpu
def test_cuda_candidate_runs_layer_wise_on_the_gpu(demo_model):
    from trt_tui.core.parity.engine import compare

    result = compare(demo_model, "cuda", precision="fp16")
    assert result.tensors and any(d.rel_rms > 0 for d in result.tensors)
    assert result.candidate.startswith("cuda fp16")


@needs_gpu
def test_calibrate_on_the_demo(demo_model, tmp_path):
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(demo_model), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["overall"]["count"] > 10 and 0.5 < doc["overall"]["median"] < 2


def test_emulation_gets_static_shapes_so_recurrent_state_is_rounded_per_step(tmp_path):
    """A GRU over a dynamic time dim is unrolled (state rounded every step) once the comparison's feeds fix T."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from trt_tui.core.parity.engine import _with_static_inputs, compare
    from trt_tui.core.parity.inputs import InputSpec

    rng = np.random.default_rng(0)
    H, F = 8, 4
    inits = [onnx.numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.5, n)
             for n, s in (("W", (1, 3 * H, F)), ("R", (1, 3 * H, H)))]  # fmt: skip
    node = helper.make_node("GRU", ["x", "W", "R"], ["y", "h"], name="gru", hidden_size=H)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
                              [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)], inits)  # fmt: skip
    path = tmp_path / "gru.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=10), path)
    static, _ = _with_static_inputs(onnx.load(path), [{"x": np.zeros((50, 1, F), np.float32)}], tmp_path)
    assert [d.dim_value for d in static.graph.input[0].type.tensor_type.shape.dim] == [50, 1, F]
    result = compare(path, "emulate", precision="fp16", inputs=InputSpec(seed=1, dims={"T": 50}))
    assert {d.name for d in result.tensors} >= {"h"} and not any("not static" in w for w in result.warnings)


def test_sequence_length_behind_shape_arithmetic_is_read_by_running_the_model():
    """silero VAD: X's length comes through a Pad whose pads are sliced from a constant, which shape inference
    cannot follow; one ORT run declares it, so the LSTM is unrolled (state rounded per step) all the same."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from trt_tui.core.parity.engine import _with_static_inputs
    from trt_tui.core.precision import emulate

    rng = np.random.default_rng(0)
    H, F = 8, 4
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.5, n) for n, s in (("W", (1, 4 * H, F)), ("R", (1, 4 * H, H)))]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("all_pads", [9, 0, 0, 0, 2, 0, 0, 9]), ("s", [1]), ("e", [7]))]  # fmt: skip
    nodes = [
        helper.make_node("Slice", ["all_pads", "s", "e"], ["pads"]),  # [0, 0, 0, 2, 0, 0]: 2 more steps
        helper.make_node("Pad", ["x", "pads"], ["xp"]),
        helper.make_node("LSTM", ["xp", "W", "R"], ["y", "h"], name="lstm", hidden_size=H),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
                              [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=10)
    feeds = [{"x": rng.standard_normal((6, 1, F)).astype(np.float32)}]
    static, weights = _with_static_inputs(model, feeds, None)
    declared = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in static.graph.value_info}
    assert declared == {"xp": [8, 1, F]}
    assert emulate(static, "fp16", [], weights=weights).recurrent_per_step == ["lstm"]
    blind, weights = _with_static_inputs(model, feeds, None)
    del blind.graph.value_info[:]
    assert "not static" in emulate(blind, "fp16", [], weights=weights).recurrent_outputs_only[0].reason
