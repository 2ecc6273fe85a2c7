import json
import subprocess
import sys

import pytest

from trt_tui.cli import main


def test_inspect_json(demo_model, capsys):
    assert main(["inspect", str(demo_model), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["op_types"]["LayerNormalization"] == 10
    assert {"name", "op_type", "topo_index", "inputs", "outputs", "scope"} <= set(data["nodes"][0])
    assert data["inputs"][0] == {"name": "audio_signal", "dtype": "float32", "shape": ["B", 32, 8], "dynamic_axes": [0]}
    assert data["warnings"] == []


def test_inspect_filters(demo_model, capsys):
    assert main(["inspect", str(demo_model), "--op", "Softmax", "--match", "layers\\.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in data["nodes"]] == ["/encoder/layers.1/self_attn/Softmax"]


@pytest.mark.parametrize("flag", ["--op-types", "--nodes", "--io", None])
def test_inspect_tables(demo_model, capsys, flag):
    args = ["inspect", str(demo_model)] + ([flag] if flag else [])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.strip()


@pytest.mark.parametrize("fixture", ["truncated", "not_onnx"])
def test_bad_input_one_line_exit_2(models, fixture):
    proc = subprocess.run(
        [sys.executable, "-m", "trt_tui", "inspect", str(models[fixture])], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(models[fixture]) in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.onnx")]) == 2
    err = capsys.readouterr().err
    assert "nope.onnx: no such file" in err


def test_missing_external_data_warns(models, capsys):
    assert main(["inspect", str(models["missing_external_data"]), "--json"]) == 0
    assert "weights.bin" in json.loads(capsys.readouterr().out)["warnings"][0]


def test_piped_tables_never_wrap(demo_model):
    """Piped to a file or a pipe (no terminal), tables keep whole names and one row per line (no 80-column fold)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    run = [sys.executable, "-m", "trt_tui", "inspect", str(demo_model)]
    names = [n["name"] for n in json.loads(subprocess.run(run + ["--json"], capture_output=True, text=True, env=env).stdout)["nodes"]]
    proc = subprocess.run(run + ["--nodes"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == len(names) == 147  # one line per node: nothing folded onto a second line
    for name, row in zip(names, rows):
        assert f" {name} " in row
    assert max(len(line) for line in proc.stdout.splitlines()) > 80
