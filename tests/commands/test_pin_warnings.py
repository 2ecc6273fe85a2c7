"""Issue 11 item 10: a --pin-op the model lacks is a warning naming the op on every front, and the run goes on."""

from __future__ import annotations

from trt_tui.cli import main
from trt_tui.core.resources import demo_model_path

CONTRACT = demo_model_path().with_name("demo_streaming_encoder.contract.json")
WARNING = "pin op type 'Sofmax': the model has no such node; did you mean 'Softmax'"


def test_absent_op_type_warns_and_runs_on_every_front(demo_model, tmp_path, capsys):
    runs = {
        "compare": ["compare", str(demo_model), "--pin-op", "Sofmax", "--top", "1"],
        "convert": ["convert", str(demo_model), "--precision", "fp16", "--pin-op", "Sofmax", "-o", str(tmp_path / "m.onnx")],
        "stream": ["stream", str(demo_model), "--contract", str(CONTRACT), "--pin-op", "Sofmax", "--chunks", "2"],
        "preset": ["preset", "new", str(demo_model), "-o", str(tmp_path / "p.toml"), "--pin-op", "Sofmax"],
    }
    for front, argv in runs.items():
        assert main(argv) in (0, 1), front  # ran: a verdict, not bad input
        captured = capsys.readouterr()
        assert WARNING in captured.out + captured.err, front
    assert (tmp_path / "m.onnx").exists() and (tmp_path / "p.toml").exists()


def test_unknown_node_name_is_still_an_error(demo_model, capsys):
    assert main(["compare", str(demo_model), "--pin", "/encoder/layers.0/self_attn/Softmx"]) == 2
    assert "did you mean '/encoder/layers.0/self_attn/Softmax'" in capsys.readouterr().err
