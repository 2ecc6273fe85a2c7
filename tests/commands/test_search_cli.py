"""`trt-tui search`: exit codes, JSON (trt_tui.search/1), the preset it writes (never over a file)."""

from __future__ import annotations

import json
from pathlib import Path

from trt_tui.cli import main

REPO = Path(__file__).resolve().parents[2]
TARGET = "log_probs:rel_rms<=2.5e-4"


def test_search_demo_writes_json_and_a_preset_never_overwriting(demo_model, tmp_path, capsys):
    out_json, preset = tmp_path / "s.json", tmp_path / "found.toml"
    args = ["search", str(demo_model), "--target", TARGET, "--samples", "2", "--json", str(out_json), "-o", str(preset)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "found a passing pin set" in text and "evaluations" in text and "held-out samples: 1, passed" in text
    data = json.loads(out_json.read_text())
    assert data["schema"] == "trt_tui.search/1" and data["passed"] and data["pins"]
    assert data["evaluations"] == len([e for e in data["log"] if e["evaluation"] > 0])
    before = preset.read_text()
    assert main(["preset", "validate", str(preset)]) == 0
    capsys.readouterr()
    assert main(["preset", "export", str(preset), "--format", "trtexec"]) == 0
    exported = capsys.readouterr().out
    assert all(f"{p}:fp32" in exported for p in data["pins"]) and "--layerPrecisions=*:fp16" in exported
    # never overwritten without --force
    assert main(args) == 2
    assert "pass --force to overwrite" in capsys.readouterr().err
    assert preset.read_text() == before


def test_search_json_to_stdout(demo_model, capsys):
    assert main(["search", str(demo_model), "--target", TARGET, "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "trt_tui.search/1" and data["status"] == "found"


def test_search_from_a_preset_uses_its_tolerances_and_copies_it(tmp_path, capsys):
    preset = REPO / "presets" / "demo_fp16.toml"
    out = tmp_path / "copy.toml"
    assert main(["search", "--preset", str(preset), "--json", str(tmp_path / "r.json"), "-o", str(out)]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["criterion"][0].startswith("tolerances (median")
    text = out.read_text()
    # the preset's settings, its own name (and artefacts: search_preset_out's tests)
    assert 'name = "copy"' in text and "batch = 64" in text and "optimization_level = 0" in text


def test_search_bad_input_is_one_line_exit_2(demo_model, tmp_path, capsys):
    assert main(["search", str(demo_model)]) == 2
    assert "no target" in capsys.readouterr().err
    assert main(["search", str(demo_model), "--target", "rel_rms>=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bounded with <=" in err
    assert main(["search", str(tmp_path / "missing.onnx"), "--target", "rel_rms<=1"]) == 2
    assert main(["search", str(demo_model), "--target", "rel_rms<=1", "--inputs", str(tmp_path)]) == 2
    assert "no .npz or .json sample" in capsys.readouterr().err


def test_search_unreachable_is_exit_1(demo_model, capsys):
    assert main(["search", str(demo_model), "--target", TARGET, "--budget", "1"]) == 1
    assert "budget spent" in capsys.readouterr().out


def test_search_stateful_contract_writes_a_preset(models, tmp_path, capsys):
    from trt_tui.core.graph import load_graph
    from trt_tui.core.modelgen.streaming import RUNNING_SUM_UPDATE
    from trt_tui.core.streaming.contract_model import contract_from_model

    path = models["running_norm"]
    contract = tmp_path / "rn.contract.json"
    contract.write_text(json.dumps(contract_from_model(load_graph(path))))
    out, preset = tmp_path / "r.json", tmp_path / "rn.toml"
    assert main(["search", str(path), "--contract", str(contract), "--chunks", "60", "--json", str(out), "-o", str(preset)]) == 0
    data = json.loads(out.read_text())
    assert RUNNING_SUM_UPDATE in data["pins"] and data["samples"] == {"stream_chunks": 60}
    assert RUNNING_SUM_UPDATE in preset.read_text()
    assert main(["preset", "validate", str(preset)]) == 0
    assert main(["search", str(path), "--contract", str(contract), "--target", "rel_rms<=1"]) == 2


def test_the_preset_search_writes_keeps_its_target_for_compare_and_search(demo_model, tmp_path, capsys):
    """search -o writes the target it met as `[comparison] targets`: compare --preset judges the pins by it
    (the per-tensor tolerances failed a search answer: a new user's trial), search --preset takes it again."""
    preset = tmp_path / "found.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "-o", str(preset)]) == 0
    assert 'targets = ["log_probs:rel_rms<=2.5e-4"]' in preset.read_text()
    capsys.readouterr()
    out_json = tmp_path / "c.json"
    assert main(["compare", "--preset", str(preset), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "target log_probs:rel_rms<=0.00025 on log_probs:" in text and "met" in text
    assert "verdict: PASS (the preset's output targets decide it" in text
    data = json.loads(out_json.read_text())
    assert data["passed"] and [t["output"] for t in data["targets"]] == ["log_probs"] and data["targets"][0]["passed"]
    assert data["counts"]["failed"] >= 0  # tolerances still reported per tensor
    assert main(["search", "--preset", str(preset), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["criterion"] == ["log_probs:rel_rms<=0.00025"]
    # a target the pins do not meet fails compare (exit 1), whatever the tolerances say
    strict = tmp_path / "strict.toml"
    strict.write_text(preset.read_text().replace("rel_rms<=2.5e-4", "rel_rms<=1e-9"))
    assert main(["compare", "--preset", str(strict)]) == 1
    assert "not met" in capsys.readouterr().out


def test_bad_preset_targets_are_one_line_exit_2(demo_model, tmp_path, capsys):
    preset = tmp_path / "p.toml"
    assert main(["search", str(demo_model), "--target", TARGET, "-o", str(preset)]) == 0
    capsys.readouterr()
    for bad, said in (("log_probs:rms<1", "comparison.targets: bad target"), ("nope:rel_rms<=1", "names no graph output")):
        broken = tmp_path / f"b{len(said)}.toml"
        broken.write_text(preset.read_text().replace("log_probs:rel_rms<=2.5e-4", bad))
        assert main(["compare", "--preset", str(broken)]) == 2
        err = capsys.readouterr().err
        assert said in err and str(broken) in err and "Traceback" not in err


def test_the_table_judges_only_the_targeted_metrics(demo_model, capsys):
    """A new user's finding: every metric row said FAIL though only rel_rms was targeted, under no header."""
    assert main(["search", str(demo_model), "--target", "log_probs:rel_rms<=1e-6", "--budget", "2"]) == 1
    out = capsys.readouterr().out
    assert "no passing set found" in out  # the budget ran out: exit 1, and the status says why
    rows = [line for line in out.splitlines() if "│" in line]
    assert "target" in out and any("rel_rms" in r and "<=1e-06 FAIL" in r for r in rows)
    assert not any(("max_abs" in r or "cosine" in r) and "FAIL" in r for r in rows)


def test_a_budget_that_keeps_a_passing_set_says_so(demo_model, capsys):
    assert main(["search", str(demo_model), "--target", "log_probs:rel_rms<=1e-4", "--budget", "4"]) == 0
    assert "kept the smallest passing set found" in capsys.readouterr().out


def test_nothing_to_pin_says_none_needed(demo_model, capsys):
    assert main(["search", str(demo_model), "--target", "rel_rms<=1"]) == 0
    out = capsys.readouterr().out
    assert "pins: none needed" in out and "0 of 0" not in out


def test_a_cosine_bound_above_one_is_bad_input(demo_model, capsys):
    """It read as 'the FP32 model misses its own target' (exit 1): no model can meet cosine >= 1.5."""
    assert main(["search", str(demo_model), "--target", "cosine>=1.5"]) == 2
    assert "a cosine bound lies in [-1, 1]" in capsys.readouterr().err


def test_a_bound_is_shown_and_judged_as_given(demo_model, capsys):
    """cosine>=0.99999999 read 'cosine>=1' (:g), and the table judged that text: a passing set showed FAIL."""
    assert main(["search", str(demo_model), "--target", "log_probs:cosine>=0.99999999", "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert "target: log_probs:cosine>=0.99999999" in out and "FAIL" not in out
    row = next(line for line in out.splitlines() if "cosine" in line and "│" in line)
    assert ">=0.99999999 met" in row and "│ 1 " not in row  # the cosine with the digits that compare to the bound


def test_a_set_kept_before_the_held_out_check_says_so(demo_model, capsys):
    assert main(["search", str(demo_model), "--target", "log_probs:rel_rms<=2.5e-4", "--samples", "4", "--budget", "3"]) == 0
    assert "passed on 3 of 4 samples" in capsys.readouterr().out


def test_a_json_path_in_a_missing_folder_is_refused_before_searching(demo_model, tmp_path, capsys):
    """A typo in --json's folder was found only when writing, after the whole search: its result lost (exit 2
    with the -o preset already written)."""
    preset = tmp_path / "found.toml"
    args = ["search", str(demo_model), "--target", TARGET, "--json", str(tmp_path / "nope" / "r.json"), "-o", str(preset)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "folder to write into does not exist" in captured.err and captured.err.count("\n") == 1
    assert "evaluation" not in captured.out and not preset.exists()


def test_flags_of_the_other_route_are_refused_not_ignored(models, tmp_path, capsys):
    """--inputs or --samples with --contract, --stream-inputs without one: each was silently ignored (the
    search ran on other data than the user gave); now one line, exit 2, as --chunks without --contract."""
    from trt_tui.core.graph import load_graph
    from trt_tui.core.streaming.contract_model import contract_from_model

    path = models["running_norm"]
    contract = tmp_path / "rn.contract.json"
    contract.write_text(json.dumps(contract_from_model(load_graph(path))))
    sample = tmp_path / "s.npz"
    sample.write_bytes(b"")
    base = ["search", str(path), "--contract", str(contract), "--chunks", "4"]
    assert main([*base, "--inputs", str(sample)]) == 2
    assert "--stream-inputs" in capsys.readouterr().err
    assert main([*base, "--samples", "3"]) == 2
    assert "--samples applies without --contract" in capsys.readouterr().err
    assert main(["search", str(path), "--target", "rel_rms<=1", "--stream-inputs", str(sample)]) == 2
    err = capsys.readouterr().err
    assert "--stream-inputs applies to a stateful model's --contract" in err and err.count("\n") == 1


def _log_of_relu(path: Path) -> Path:
    """y = log(relu(x @ W)): -inf wherever x @ W <= 0, bit for bit the same in every FP32 run."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"), helper.make_node("Relu", ["m"], ["r"], name="relu"),
             helper.make_node("Log", ["r"], ["y"], name="log")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])], [w])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_an_fp32_output_holding_inf_is_said_so_not_called_nondeterministic(tmp_path, capsys):
    """An output with -inf in every FP32 run (log of 0, a masked logit) missed the target against itself and
    was reported as 'run twice, it differs from itself' with an empty table and a numpy RuntimeWarning."""
    model = _log_of_relu(tmp_path / "log.onnx")
    out = tmp_path / "r.json"
    assert main(["search", str(model), "--target", "y:rel_rms<=1e-3", "--range=-1,1", "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert "differs from itself" not in captured.out and "RuntimeWarning" not in captured.err
    assert "the FP32 output holds" in captured.out and "inf/NaN" in captured.out
    assert "FP32 vs FP32" in captured.out and "FAIL" in captured.out  # its errors shown, not an empty table
    data = json.loads(out.read_text())
    assert data["status"] == "fp32-fails" and data["reasons"][0].startswith("y: the FP32 output holds")


def test_matching_infinities_counted_equal_are_searched_and_the_preset_keeps_the_switch(tmp_path, capsys):
    """--infinities-compare-equal (Polygraphy's switch): the -inf of log(0) in both runs is no difference, the
    target is judged on the finite elements; the -o preset says so, and compare --preset judges alike."""
    model = _log_of_relu(tmp_path / "log.onnx")
    preset, out = tmp_path / "found.toml", tmp_path / "r.json"
    args = ["search", str(model), "--target", "y:rel_rms<=1e-3", "--range=-1,1", "--infinities-compare-equal"]
    assert main([*args, "--json", str(out), "-o", str(preset)]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] and data["status"] in ("found", "no-pins-needed")
    assert data["outputs"]["y"]["with"]["nonfinite"] > 0 and data["outputs"]["y"]["with"]["rel_rms"] < 1e-3
    assert "infinities_compare_equal = true" in preset.read_text()
    capsys.readouterr()
    assert main(["compare", "--preset", str(preset), "--range=-1,1"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["preset", "export", str(preset), "--format", "polygraphy"]) == 0
    assert "--infinities-compare-equal" in capsys.readouterr().out


def _reshape_model(path: Path, dim) -> Path:
    """Reshape(x, [2, -1]) @ W(3x4): runs only when x has 6 elements; x's one axis is `dim` (a name, or None:
    unnamed), so random samples set it to 1 and ONNX Runtime fails."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([2, -1], np.int64), "shape")
    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "W")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "W"], ["y"], name="mm")]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [dim])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape, w])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_model_that_fails_on_defaulted_dims_says_how_to_set_them(tmp_path, capsys):
    """`compare` adds the way out when ONNX Runtime fails on random samples whose dynamic dims were set to 1;
    the search's one line (nudenet_320n: 'Concat ... mismatched dimensions of 1 and 2') did not."""
    _reshape_model(tmp_path / "m.onnx", "N")
    assert main(["search", str(tmp_path / "m.onnx"), "--target", "rel_rms<=1e-3"]) == 2
    err = capsys.readouterr().err
    assert "ONNX Runtime failed" in err and "--dim NAME=N" in err
    assert main(["search", str(tmp_path / "m.onnx"), "--target", "rel_rms<=1e-3", "--dim", "N=6"]) in (0, 1)


def test_an_unnamed_defaulted_axis_gets_the_way_out_too(tmp_path, capsys):
    """An unnamed dynamic axis (neither dim_value nor dim_param) set to 1 is warned as 'unnamed dynamic axis 0
    of ...', not 'dynamic dim ...': the hint was added only for named dims."""
    _reshape_model(tmp_path / "m.onnx", None)
    assert main(["search", str(tmp_path / "m.onnx"), "--target", "rel_rms<=1e-3"]) == 2
    err = capsys.readouterr().err
    assert "unnamed dynamic axis 0 of 'x'" in err and "ONNX Runtime failed" in err and "--dim NAME=N" in err
    assert main(["search", str(tmp_path / "m.onnx"), "--target", "rel_rms<=1e-3", "--dim", "x:0=6"]) in (0, 1)
