import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto

from trt_tui.cli import main
from trt_tui.core.precision import emulation_session

from tests.corpus.finding_models import pinned_gru  # corpus finding F7, reduced

REPO = Path(__file__).resolve().parents[2]
TRT11_PRESET = REPO / "presets" / "demo_fp16_trt11.toml"


def convert_json(capsys, *args) -> dict:
    assert main(["convert", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_mixed_with_pin_flags(demo_model, tmp_path, capsys):
    out = tmp_path / "mixed.onnx"
    data = convert_json(capsys, demo_model, "--precision", "fp16", "--pin-op", "softmax", "--pin-match", r"norm_out", "--keep-io-types", "-o", out, "--check")
    assert data["mode"] == "mixed" and data["keep_io_types"] is True
    assert len(data["pinned"]) == 4 and all("Softmax" in p or "norm_out" in p for p in data["pinned"])
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert sum(n.op_type == "Cast" for n in model.graph.node) == len(data["casts_inserted"])


def test_emulate_writes_a_runnable_fp32_model(demo_model, tmp_path, capsys):
    out = tmp_path / "emu.onnx"
    data = convert_json(capsys, demo_model, "--precision", "bf16", "--emulate", "-o", out)
    assert data["mode"] == "emulate" and data["cast_pairs"] > 50
    # the emulation rounds Conv too (TensorRT runs it in bf16), whatever ONNX's typing rules say
    assert data["auto_fp32"] == [] and data["low_precision"]["kept_fp32"] == []
    emulation_session(out)


def test_summary_and_no_clobber(demo_model, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["convert", str(demo_model), "--precision", "fp16", "--pin-op", "LayerNormalization", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"wrote {out}: fp16 mixed precision") and "10 pinned FP32" in text
    before = out.read_bytes()
    assert main(["convert", str(demo_model), "--precision", "bf16", "-o", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["convert", str(demo_model), "--precision", "bf16", "-o", str(out), "--force"]) == 0
    assert out.read_bytes() != before


def test_preset_drives_precision_pins_and_io(tmp_path, capsys):
    out = tmp_path / "trt11.onnx"
    data = convert_json(capsys, "--preset", TRT11_PRESET, "-o", out)
    from trt_tui.core.preset import load_preset, resolve_preset

    resolved = resolve_preset(load_preset(TRT11_PRESET))
    assert data["low"] == resolved.precision == "fp16"
    assert data["pinned"] == resolved.pinned_nodes and len(data["pinned"]) > 10
    assert data["keep_io_types"] is resolved.keep_io_types
    assert main(["convert", "--preset", str(TRT11_PRESET), "--precision", "bf16", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--preset takes precision and pins from the preset" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp16", "--pin", "/encoder/layers.0/self_attn/Softmx"], "did you mean '/encoder/layers.0/self_attn/Softmax'"),
        ([], "convert needs MODEL and --precision"),
    ],
)
def test_bad_input_one_line_exit_2(demo_model, tmp_path, capsys, args, message):
    assert main(["convert", str(demo_model), *args, "-o", str(tmp_path / "o.onnx")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o.onnx").exists()


def test_bad_pin_from_a_real_process(demo_model, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, "-m", "trt_tui", "convert", str(demo_model), "--precision", "fp16", "--pin", "nope", "-o", str(tmp_path / "o.onnx")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"trt-tui: error: {demo_model}: no node named 'nope'")


def test_subgraph_model_refused(models, tmp_path, capsys):
    assert main(["convert", str(models["if_subgraph"]), "--precision", "fp16", "-o", str(tmp_path / "o.onnx")]) == 2
    assert "has a subgraph" in capsys.readouterr().err


def _corrupting(monkeypatch, name):
    """Make the rewrite `name` return a model ONNX Runtime cannot load (a node reads an undefined tensor)."""
    from trt_tui.core import precision

    real = getattr(precision, name)

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        result.model.graph.node[-1].input[0] = "no_such_tensor"
        return result

    monkeypatch.setattr(precision, name, broken)


@pytest.mark.parametrize("name, flags", [("to_mixed_precision", []), ("emulate", ["--emulate"])])
def test_invalid_result_is_exit_2_and_leaves_no_file(demo_model, tmp_path, capsys, monkeypatch, name, flags):
    """Issue 11.3: what convert writes is validated by default; an invalid model never takes OUT's name."""
    _corrupting(monkeypatch, name)
    out = tmp_path / "o.onnx"
    assert main(["convert", str(demo_model), "--precision", "fp16", *flags, "-o", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{out}: the written model fails onnx.checker" in lines[0]
    assert list(tmp_path.iterdir()) == []  # neither the target nor the staging folder
    # --no-check is the user's choice for huge models: written as is, and said so
    assert main(["convert", str(demo_model), "--precision", "fp16", *flags, "-o", str(out), "--no-check"]) == 0
    assert out.exists() and "not validated (--no-check)" in capsys.readouterr().out


def test_valid_model_ort_cpu_cannot_run_is_a_note(demo_model, tmp_path, capsys):
    """A bf16 mixed model is valid (for TensorRT) although ORT's CPU provider has no bf16 kernels: exit 0, said."""
    out = tmp_path / "bf16.onnx"
    data = convert_json(capsys, demo_model, "--precision", "bf16", "-o", out)
    assert data["checked"] is True and out.exists()
    assert any("ONNX Runtime's CPU provider cannot run it" in w for w in data["warnings"])


def test_checker_complaint_of_the_source_itself_is_a_note(tmp_path, capsys):
    """Graph outputs without a shape fail onnx.checker's full check in the source too: not the rewrite's fault."""
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    src = tmp_path / "noshape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), src)
    data = convert_json(capsys, src, "--precision", "fp16", "--emulate", "-o", tmp_path / "o.onnx")
    assert any("the source model fails onnx.checker the same way" in w for w in data["warnings"])


def test_validation_loads_in_a_child_at_the_default_optimisation_level(tmp_path, capsys):
    """F7: ORT is loaded as users load it (ORT_ENABLE_ALL), in a child: a crash is one line and exit 2."""
    import onnxruntime as ort

    src = tmp_path / "gru.onnx"
    onnx.save(pinned_gru(), src)
    out = tmp_path / "o.onnx"
    code = main(["convert", str(src), "--precision", "fp16", "--pin", "gru", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    if code == 2:  # this ONNX Runtime still crashes on it: said in one line, nothing written
        assert len(err) == 1 and "ONNX Runtime crashed (signal" in err[0] and not out.exists()
    else:  # a fixed ONNX Runtime: the file is there and loads at the default level
        assert code == 0 and out.exists()
        ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def test_big_models_validate_with_optimisations_off(tmp_path, capsys, monkeypatch):
    """Above VALIDATE_OPTIMISED_MAX_BYTES of weights ORT loads unoptimised (no folded FP32 copies of the
    weights): the F7 model, which only crashes when optimised, then loads; the summary says so."""
    from trt_tui.core.precision import writing

    monkeypatch.setattr(writing, "VALIDATE_OPTIMISED_MAX_BYTES", 0)
    src = tmp_path / "gru.onnx"
    onnx.save(pinned_gru(), src)
    assert main(["convert", str(src), "--precision", "fp16", "--pin", "gru", "-o", str(tmp_path / "o.onnx")]) == 0
    assert "validated: onnx.checker + ONNX Runtime load (optimisations off: weights above 0 MB)" in capsys.readouterr().out


def _shape_chain_model(path, n: int = 12):
    """x -> Relu -> y, plus a chain of n float Adds on Shape(x): n nodes kept FP32 for one reason."""
    import numpy as np

    from trt_tui.core.modelgen.builder import GraphBuilder

    g = GraphBuilder("shape_chain")
    x = g.input("x", TensorProto.FLOAT, [1, 4])
    s = g.op("Cast", [g.op("Shape", [x])], to=TensorProto.FLOAT)
    for _ in range(n):
        s = g.op("Add", [s, g.const(np.ones(2, np.float32))])
    g.output(g.op("Relu", [x]), "y", TensorProto.FLOAT, [1, 4])
    g.output(s, "dims", TensorProto.FLOAT, [2])
    onnx.save(g.build(), path)
    return path


def test_kept_fp32_grouped_by_reason_verbose_lists_all(tmp_path, capsys):
    """53 nodes kept FP32 for one reason are one line (count + a few names), not 53; --verbose lists each."""
    model = _shape_chain_model(tmp_path / "m.onnx")
    assert main(["convert", str(model), "--precision", "fp16", "-o", str(tmp_path / "o.onnx")]) == 0
    out = capsys.readouterr().out
    kept = [line for line in out.splitlines() if "computed from constants" in line]
    assert len(kept) == 1 and "(14): " in kept[0] and kept[0].endswith("... (+6)")
    assert "--verbose lists every node" in out
    assert main(["convert", str(model), "--precision", "fp16", "-o", str(tmp_path / "o.onnx"), "--force", "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("      ") and line.strip().endswith(")") for line in lines) == 14  # one node a line
    assert not any("--verbose lists" in line for line in lines)
