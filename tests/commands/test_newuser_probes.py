"""What a new user tried and got a traceback or a wrong run for (one line, exit 2 now)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from trt_tui.cli import main


def test_run_time_ort_failure_is_one_line_with_the_dims_hint(tmp_path, capsys):
    # Concat of two inputs along axis 0 with a dynamic dim on axis 1 each: dims guessed as 1 and 2 clash
    nodes = [helper.make_node("Concat", ["a", "b"], ["c"], axis=0, name="cat"), helper.make_node("Relu", ["c"], ["y"], name="r")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, "H"]),
                                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    code = main(["compare", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--dim NAME=N" in err[0] and "Traceback" not in err[0]


def test_saved_reference_without_its_inputs_is_refused(demo_model, tmp_path, capsys):
    np.savez(tmp_path / "ref.npz", log_probs=np.zeros((1, 8, 32), np.float32))
    assert main(["compare", str(demo_model), "--reference", f"outputs:{tmp_path / 'ref.npz'}"]) == 2
    assert "--inputs FILE" in capsys.readouterr().err


def test_bf16_model_inputs_are_one_line(demo_model, tmp_path, capsys):
    out = tmp_path / "bf.onnx"
    assert main(["convert", str(demo_model), "--precision", "bf16", "-o", str(out)]) in (0, 1)
    capsys.readouterr()
    assert main(["compare", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bfloat16" in err[0] and "--keep-io-types" in err[0]


def test_a_missing_model_does_not_open_the_app(capsys):
    assert main(["/nonexistent/model.onnx"]) == 2
    assert "no such file" in capsys.readouterr().err
