import json
import math

from trt_tui.cli import main


def test_exit_codes_table_json_csv(pair, tmp_path, capsys):
    ref, cand = pair
    out = tmp_path / "r.json"
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--json", str(out), "--csv", str(tmp_path / "r.csv"), "--top", "3"]) == 1
    text = capsys.readouterr().out
    assert "first divergence: #" in text and "verdict: FAIL" in text
    data = json.loads(out.read_text())
    assert data["schema"] == "trt_tui.compare/1" and data["passed"] is False
    assert data["first_divergence"]["name"] == data["tensors"][0]["name"]
    for key in ("name", "node", "op_type", "topo_index", "shape", "max_abs", "mean_abs", "p99_abs", "rel_rms", "cosine",
                "nonfinite_ref", "nonfinite_cand", "passed"):
        assert key in data["tensors"][0]
    assert (tmp_path / "r.csv").read_text().count("\n") == len(data["tensors"]) + 1
    # keys added within /1 (issue #8): the |diff| histogram and the worst elements with indices and both values
    for t in data["tensors"]:
        assert sum(t["histogram"].values()) == t["iterations"] * math.prod(t["shape"])
        assert len(t["worst"]) == min(8, sum(t["histogram"].values()))
        assert t["worst"][0]["index"] == t["worst_index"] and set(t["worst"][0]) == {"index", "ref", "cand", "abs", "iteration"}
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--json", str(out), "--worst", "2"]) == 1
    assert {len(t["worst"]) for t in json.loads(out.read_text())["tensors"]} == {2}
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--atol", "0.05", "--check-error-stat", "max"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_json_to_stdout_and_bad_input(pair, capsys):
    ref, _ = pair
    assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert main(["compare", str(ref), "--candidate", "engine:/no/such.plan"]) == 2
    assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", "--max-memory", "lots"]) == 2
    assert main(["compare", str(ref), "--pin", "no_such_node", "--candidate", f"onnx:{ref}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "no such file" in err and "bad size" in err and "no_such_node" in err


def test_preset_supplies_model_precision_pins_and_tolerances(tmp_path, capsys):
    from pathlib import Path

    preset = Path(__file__).resolve().parents[2] / "presets" / "demo_fp16.toml"
    out = tmp_path / "r.json"
    assert main(["compare", "--preset", str(preset), "--json", str(out)]) == 0  # atol/rtol 1e-3 from the preset
    data = json.loads(out.read_text())
    assert data["candidate"].startswith("emulate fp16 +") and data["model"].endswith("demo_streaming_encoder.onnx")
    assert data["tensors"][0]["tolerance"]["atol"] == 1e-3 and not data["warnings"]
    assert main(["compare", "--preset", str(preset), "--atol", "0", "--rtol", "0"]) == 1  # flags override it
