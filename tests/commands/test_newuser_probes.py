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


# ---- second new-user pass (CLI polish) --------------------------------------------------------------------
def test_messages_of_a_second_new_user_pass(demo_model, tmp_path, capsys):
    """A folder is 'not an ONNX file'; a model given as a contract says so; an --op that matches nothing says
    which op types exist; a negative --limit or --iterations 0 is refused as a bad flag (exit 2)."""
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is a directory, not an ONNX file" in capsys.readouterr().err
    assert main(["contract", "validate", str(demo_model)]) == 2
    assert "this is an ONNX model, not a contract file" in capsys.readouterr().err
    assert main(["inspect", str(demo_model), "--op", "Nope", "--nodes"]) == 0
    assert "no node matches --op 'Nope' (op types in this model: Add, Concat" in capsys.readouterr().err
    assert main(["builds", "list", "--limit", "-3", "--state-dir", str(tmp_path / "s")]) == 2
    assert "expected an integer >= 1, not -3" in capsys.readouterr().err
    assert main(["calibrate", str(demo_model), "--iterations", "0"]) == 2
    assert "expected an integer >= 1, not 0" in capsys.readouterr().err


def test_a_contract_of_another_model_says_so_first(models, capsys):
    """The demo's contract given for another model: the first problem names the model it was written for."""
    from pathlib import Path

    contract = Path(__file__).parents[2] / "contracts" / "demo_streaming_encoder.contract.json"
    assert main(["contract", "validate", str(contract), "--model", str(models["conv_cache"])]) == 2
    problems = [line for line in capsys.readouterr().err.splitlines() if ": warning: " not in line]
    assert "model: written for demo_streaming_encoder.onnx, no input in common with" in problems[0]


def test_top_and_a_folder_as_output_are_refused_up_front(demo_model, tmp_path, capsys):
    """compare --top -2 printed 'worst -2 of 142 tensors'; convert -o FOLDER --force named a temp path."""
    assert main(["compare", str(demo_model), "--top", "-2"]) == 2
    assert "expected an integer >= 1, not -2" in capsys.readouterr().err
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["convert", str(demo_model), "--precision", "fp16", "-o", str(folder), "--force"]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: is not a regular file; refusing to replace it" in err and ".tmp" not in err
    assert folder.is_dir() and not any(tmp_path.glob(".out*"))
