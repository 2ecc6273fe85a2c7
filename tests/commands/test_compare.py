import json
import math

from tests.fixtures.stand_in_trt_runner import stand_in_trt_runner
from trt_tui.cli import main


def test_exit_codes_table_json_csv(pair, tmp_path, capsys):
    ref, cand = pair
    out = tmp_path / "r.json"
    tight = ["--atol", "1e-5", "--rtol", "1e-5", "--check-error-stat", "elemwise"]  # fp16 weights pass the defaults
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", *tight, "--json", str(out), "--csv", str(tmp_path / "r.csv"), "--top", "3"]) == 1
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
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", *tight, "--json", str(out), "--worst", "2", "--force"]) == 1
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
    # the preset gives every shape; only the integer inputs' chosen values are announced
    assert data["tensors"][0]["tolerance"]["atol"] == 1e-3 and all("integer input" in w for w in data["warnings"])
    assert main(["compare", "--preset", str(preset), "--atol", "0", "--rtol", "0"]) == 1  # flags override it


# ---- candidate trt[:PRESET]: a TensorRT engine built from a preset ------------------------------------------
def _preset(name="demo_fp16"):
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "presets" / f"{name}.toml"


def _tensorrt_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def test_trt_candidate_help_and_bad_input(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "trt[:PRESET]" in help_text and "--outputs-only" in help_text and "not the one you ship" in help_text
    assert main(["compare", str(_preset().parent.parent / "src/trt_tui/data/demo_streaming_encoder.onnx"), "--candidate", "trt"]) == 2
    assert main(["compare", "--preset", str(_preset()), "--outputs-only"]) == 2  # emulate has no marked engine
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "give --preset FILE or trt:PRESET" in err and "--outputs-only applies to" in err


def test_trt_candidate_without_tensorrt_is_one_line_exit_2(capsys):
    import pytest

    if _tensorrt_installed():
        pytest.skip("TensorRT is installed here: the missing-backend message cannot be shown")
    assert main(["compare", "--preset", str(_preset()), "--candidate", "trt"]) == 2
    assert main(["compare", "--candidate", f"trt:{_preset('demo_fp16_trt11')}", "--outputs-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and err.count("TensorRT is not installed on this machine") == 2


def test_trt_candidate_layer_wise_warns_that_the_marked_engine_is_not_shipped(monkeypatch, tmp_path, capsys):
    from trt_tui.core.parity.trt_preset import MARKED_ENGINE_WARNING

    calls = stand_in_trt_runner(monkeypatch)
    out = tmp_path / "r.json"
    assert main(["compare", "--candidate", f"trt:{_preset()}", "--json", str(out), "--max-memory", "8M"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "warning: layer-wise TensorRT comparison marks every tensor" in text and "--outputs-only" in text
    data = json.loads(out.read_text())
    assert MARKED_ENGINE_WARNING in data["warnings"] and data["candidate"].startswith("trt10 fp16 +")
    assert len(data["tensors"]) > 50 and data["batches"] > 1  # layer-wise, in batches
    spec, plan, same_model = calls[0]
    assert spec.preset.source_path.resolve() == _preset().resolve() and plan.mark_all and same_model  # the preset's model is the compared one


def test_trt_candidate_outputs_only_compares_final_outputs(monkeypatch, tmp_path, capsys):
    from trt_tui.core.parity.trt_preset import resolve_candidate_preset

    stand_in_trt_runner(monkeypatch)
    out = tmp_path / "r.json"
    assert main(["compare", "--preset", str(_preset("demo_bf16")), "--candidate", "trt", "--outputs-only", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    finals = set(resolve_candidate_preset(_preset("demo_bf16")).output_names)
    assert data["tensors"] and {t["name"] for t in data["tensors"]} <= finals
    assert data["candidate"].endswith("(demo-bf16, outputs only)") and data["precision"] == "bf16"
    assert not any("marks every tensor" in w for w in data["warnings"])
    assert "marks every tensor" not in capsys.readouterr().out


def test_infinities_compare_equal_flag(tmp_path, capsys):
    """The same -inf in both runs (log of 0) fails by Polygraphy's rule; with --infinities-compare-equal it is
    no difference, and the finite elements decide."""
    from tests.commands.test_search_cli import _log_of_relu

    model = str(_log_of_relu(tmp_path / "log.onnx"))
    common = ["compare", model, "--range=-1,1", "--atol", "1e-2", "--rtol", "1e-2"]
    assert main(common) == 1
    capsys.readouterr()
    assert main([*common, "--infinities-compare-equal"]) == 0


def test_a_preset_cosine_target_follows_the_infinities_switch(tmp_path, capsys):
    """A preset's cosine target passed the same -inf in both runs with the switch off (the cosine leaves
    non-finite elements out): off, inf - inf fails every check, targets included; on, it is no difference."""
    from tests.commands.test_search_cli import _log_of_relu

    model = _log_of_relu(tmp_path / "log.onnx")
    preset = tmp_path / "p.toml"
    assert main(["preset", "new", str(model), "-o", str(preset)]) == 0
    preset.write_text(preset.read_text().replace("[comparison]\n", '[comparison]\ntargets = ["y:cosine>=0.999"]\n'))
    capsys.readouterr()
    assert main(["compare", "--preset", str(preset), "--range=-1,1"]) == 1
    assert main(["compare", "--preset", str(preset), "--range=-1,1", "--infinities-compare-equal"]) == 0
