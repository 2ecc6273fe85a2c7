"""`trt-tui preset ...` end to end, in process (the CLI's main) except where the exit path matters."""

import json
import os
import stat

import pytest

from trt_tui.cli import main
from trt_tui.core.preset import load_preset, resolve_preset
from trt_tui.core.resources import demo_model_path

from tests.core.preset.conftest import PRESETS


def test_new_writes_a_valid_preset(tmp_path, capsys):
    out = tmp_path / "p.toml"
    rc = main(["preset", "new", str(demo_model_path()), "-o", str(out), "--pin-op", "LayerNormalization", "--pin-match", "Softmax$", "--batch", "16"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    r = resolve_preset(load_preset(out))
    assert len(r.pinned_nodes) == 13 and r.precision_constraints == "obey"
    assert r.profiles[0]["length"] == ((1,), (16,), (16,))
    assert main(["preset", "new", str(demo_model_path()), "-o", str(out)]) == 2  # never overwrites silently
    assert "already exists" in capsys.readouterr().err
    assert main(["preset", "new", str(demo_model_path()), "-o", str(out), "--force", "--trt", "11", "--precision", "bf16"]) == 0
    text = out.read_text()
    assert "trt = 11" in text and "constraints" not in text and "strongly_typed" not in text


def test_new_refuses_unknown_pins(tmp_path, capsys):
    out = tmp_path / "p.toml"
    assert main(["preset", "new", str(demo_model_path()), "-o", str(out), "--pin", "/decoder/LogSoftmx"]) == 2
    assert "did you mean '/decoder/LogSoftmax'" in capsys.readouterr().err and not out.exists()


def test_new_with_unvalued_dims_writes_and_reports(tmp_path, models, capsys):
    out = tmp_path / "p.toml"
    assert main(["preset", "new", str(models["int64_input"]), "-o", str(out)]) == 1
    assert out.exists() and "profiles[0].dims.seq" in capsys.readouterr().err


def test_validate_text_and_json(write_bad, capsys):
    assert main(["preset", "validate", str(PRESETS / "demo_fp16.toml")]) == 0
    assert "ok (0 error(s), 0 warning(s))" in capsys.readouterr().out
    assert main(["preset", "validate", str(write_bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert not data["ok"] and {p["key_path"] for p in data["problems"]} >= {"pins.names", "builder.optimization_level"}


@pytest.fixture
def write_bad(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(f'model = "{demo_model_path()}"\n[pins]\nnames = ["/nope"]\n[builder]\noptimization_level = 8\n')
    return path


def test_malformed_toml_exit_2_one_line(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text('model = "m.onnx"\n[pins\n')
    assert main(["preset", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{path}:2:6: invalid TOML" in err


def test_show(capsys):
    assert main(["preset", "show", str(PRESETS / "demo_bf16.toml")]) == 0
    out = capsys.readouterr().out
    assert "bf16, no TF32" in out and "13 node(s)" in out and "/decoder/LogSoftmax" in out
    assert main(["preset", "show", str(PRESETS / "demo_bf16.toml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16"


def test_diff(capsys):
    assert main(["preset", "diff", str(PRESETS / "demo_fp16.toml"), str(PRESETS / "demo_fp16.toml")]) == 0
    assert "presets are the same" in capsys.readouterr().out
    assert main(["preset", "diff", str(PRESETS / "demo_fp16.toml"), str(PRESETS / "demo_bf16.toml"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    changes = {c["key"]: (c["a"], c["b"]) for c in data["changes"]}
    assert changes["precision.mode"] == ("fp16", "bf16") and changes["precision.tf32"] == (True, False)
    assert data["pinned_nodes"] == {"only_a": [], "only_b": []}


def test_export_stdout_and_script_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(PRESETS.parent)  # run from the checkout's root: paths inside it are relative
    assert main(["preset", "export", "presets/demo_fp16.toml", "--format", "trtexec"]) == 0
    assert capsys.readouterr().out == (PRESETS.parent / "tests/core/preset/golden/demo_fp16.trtexec.txt").read_text()
    script = tmp_path / "build.sh"
    assert main(["preset", "export", "presets/demo_fp16.toml", "-f", "script", "-o", str(script)]) == 0
    assert script.stat().st_mode & stat.S_IXUSR
    text = script.read_text()
    assert 'cd "$(dirname "${BASH_SOURCE[0]}")"' in text
    assert f"--onnx={demo_model_path()}" in text and "../" not in text  # outside the script's folder: absolute
    assert main(["preset", "export", "presets/demo_fp16.toml", "-f", "script", "-o", str(script)]) == 2  # no clobber


def test_export_and_show_outside_the_model_folder_give_absolute_paths(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["preset", "export", str(PRESETS / "demo_fp16.toml"), "-f", "trtexec"]) == 0
    out = capsys.readouterr().out
    assert "../" not in out and f"--onnx={demo_model_path()}" in out
    assert f"--saveEngine={PRESETS / 'demo_fp16.plan'}" in out
    assert main(["preset", "show", str(PRESETS / "demo_fp16.toml")]) == 0
    out = capsys.readouterr().out
    assert "/../" not in out and f"model               {demo_model_path()}" in out
    monkeypatch.chdir(PRESETS.parent)
    assert main(["preset", "show", "presets/demo_fp16.toml"]) == 0
    out = capsys.readouterr().out
    assert "model               src/trt_tui/data/demo_streaming_encoder.onnx" in out
    assert "engine              presets/demo_fp16.plan" in out


def test_export_trtexec_refuses_unsafe_names(tmp_path, models, capsys):
    path = tmp_path / "odd.toml"
    path.write_text(f'model = "{models["odd_names"]}"\n[pins]\nop_types = ["Softmax"]\n')
    assert main(["preset", "export", str(path), "-f", "trtexec"]) == 2
    assert "cannot be written on a trtexec command line" in capsys.readouterr().err
