"""`trt-tui build` and `trt-tui builds`, end to end on the demo model: the CPU preview for real, trtexec
through the test double (tests/core/builds/fake_trtexec.py), TensorRT's absence as one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import onnx
import pytest

from trt_tui.cli import main

FAKE = Path(__file__).parents[1] / "core" / "builds" / "bin" / "trtexec"
SOFTMAX = "/encoder/layers.1/self_attn/Softmax"


@pytest.fixture
def preset(tmp_path, demo_model, monkeypatch) -> Path:
    monkeypatch.setenv("TRT_TUI_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(FAKE))
    monkeypatch.setenv("FAKE_TRTEXEC_PYTHON", sys.executable)
    path = tmp_path / "demo.toml"
    path.write_text(
        f'schema = 1\nname = "demo"\nmodel = "{demo_model}"\ntrt = 10\n\n[precision]\nmode = "fp16"\n\n'
        '[pins]\nop_types = ["Softmax"]\n\n[[profiles]]\nname = "b4"\nbatch = 4\n'
    )
    return path


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_emulate_writes_both_onnx_files_and_says_no_engine(preset, tmp_path, capsys):
    assert main(["build", str(preset), "--backend", "emulate", "--json"]) == 0
    job = _json(capsys)
    r = job["result"]
    assert job["state"] == "succeeded" and r["engine_built"] is False and r["engine_path"] is None
    assert "no TensorRT engine was built" in r["message"]
    build_dir = Path(job["build_dir"])
    assert build_dir.parent == tmp_path / "state" / "builds"
    mixed = onnx.load(build_dir / r["artifacts"]["mixed_onnx"], load_external_data=False)
    assert any(n.op_type == "Cast" for n in mixed.graph.node)
    assert (build_dir / r["artifacts"]["emulated_onnx"]).stat().st_size > 0
    assert (build_dir / "preset.toml").read_text() == preset.read_text()
    request = json.loads((build_dir / "request.json").read_text())
    assert SOFTMAX in request["settings"]["pinned_nodes"] and request["settings"]["trt_major"] == 10


def test_trtexec_build_reports_performance_and_pin_mismatches(preset, tmp_path, capsys, monkeypatch):
    layers = {"Layers": [{"Name": "__myl_Softmax", "LayerType": "kgen", "Metadata": f"[ONNX Layer: {SOFTMAX}]",
                          "Inputs": [{"Name": "a", "Format/Datatype": "Row major linear FP16 format"}],
                          "Outputs": [{"Name": "b", "Format/Datatype": "Row major linear FP16 format"}]}]}
    (tmp_path / "layers.json").write_text(json.dumps(layers))
    monkeypatch.setenv("FAKE_TRTEXEC_LAYERS", str(tmp_path / "layers.json"))
    assert main(["build", str(preset), "--backend", "trtexec"]) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "throughput: 8.66824 qps" in out and "GPU compute (ms)" in out
    flat = " ".join(out.split())
    assert f"{SOFTMAX}: did not run in FP32: ran in fp16 in layer" in flat and "1 mismatch" in out
    job_id = out.split()[0]
    argv = json.loads((tmp_path / "state" / "builds" / job_id / "command.json").read_text())["argv"]
    assert argv[0] == str(FAKE) and "--fp16" in argv and any(a.startswith("--layerPrecisions=") for a in argv)

    assert main(["builds", "show", job_id[:15], "--json"]) == 0
    shown = _json(capsys)
    assert shown["id"] == job_id and shown["log_tail"][-1].startswith("&&&& PASSED")
    assert shown["result"]["pin_check"]["mismatches"] == [SOFTMAX]
    assert main(["builds", "cancel", job_id]) == 0
    assert "already finished (succeeded)" in capsys.readouterr().out


def test_timeout_exit_1_and_history(preset, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    assert main(["build", str(preset), "--backend", "trtexec", "--timeout", "1", "--json"]) == 1
    job = _json(capsys)
    assert job["state"] == "timed_out" and job["result"]["engine_built"] is False
    assert main(["builds", "list", "--json"]) == 0
    listed = _json(capsys)
    assert [(j["id"], j["state"]) for j in listed] == [(job["id"], "timed_out")]
    assert main(["builds"]) == 0 and "timed_out" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_missing_tensorrt_is_one_line_exit_2(preset, capsys):
    assert main(["build", str(preset), "--backend", "tensorrt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["trt-tui: error: backend tensorrt is not available: the TensorRT Python package is not "
                   "installed (pip install 'trt-tui[trt]')"]


def test_bad_input_is_one_line_exit_2(preset, tmp_path, capsys):
    assert main(["build", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"trt-tui: error: {tmp_path / 'missing.toml'}: no such file"
    assert main(["builds", "show", "nope"]) == 2
    assert "no build with id 'nope'" in capsys.readouterr().err
    assert main(["build", str(preset), "--timeout", "0", "--backend", "emulate"]) == 2
    assert "--timeout must be positive" in capsys.readouterr().err


def test_trt11_trtexec_build_converts_first_in_the_same_process_group(preset, tmp_path, capsys, monkeypatch):
    text = preset.read_text().replace("trt = 10", "trt = 11")
    preset.write_text(text)
    assert main(["build", str(preset), "--backend", "trtexec", "--json"]) == 0
    job = _json(capsys)
    build_dir = Path(job["build_dir"])
    argv = json.loads((build_dir / "command.json").read_text())["argv"]
    assert argv[1:4] == ["-m", "trt_tui.core.build.worker", str(build_dir)] and argv[4] == "--exec"
    assert f"--onnx={build_dir / 'model.mixed.onnx'}" in argv and "--fp16" not in argv
    assert (build_dir / "model.mixed.onnx").stat().st_size > 0
    names = [p["name"] for p in job["result"]["phases"]]
    assert names[0] == "writing the mixed-precision ONNX" and "engine built" in names
    assert any("targets TensorRT 11.x but trtexec is TensorRT 10.9.0" in n for n in job["result"]["notes"])

    # The exec'd trtexec keeps the worker's pid and group: cancel still stops all of it.
    from tests.core.builds.conftest import alive, assert_group_gone, wait_for
    from trt_tui.core.build.manager import JobManager, default_backends
    from trt_tui.core.build.request import request_from_preset

    monkeypatch.setenv("FAKE_TRTEXEC_MODE", "hang")
    monkeypatch.setenv("FAKE_TRTEXEC_PIDFILE", str(tmp_path / "pids"))
    backends = default_backends()
    m = JobManager(tmp_path / "state", backends=backends, kill_grace_s=0.5)
    try:
        job = m.submit(request_from_preset(preset, "trtexec", backends))
        assert wait_for(lambda: (tmp_path / "pids").exists(), timeout=30)
        leader, grandchild = map(int, (tmp_path / "pids").read_text().split())
        assert m.cancel(job.id) == "cancelling"
        assert m.wait(job.id, 10).state.value == "cancelled"
    finally:
        m.close()
    assert not alive(grandchild)
    assert_group_gone(leader)


def test_builds_show_says_progress_in_words_and_list_elides_whole_words(preset, capsys):
    """build.log keeps the worker's `@@trt_tui {...}` lines: `builds show` says them as the TUI does, and
    `builds list` never cuts a message mid-word."""
    from trt_tui.commands.output import elide

    assert main(["build", str(preset), "--backend", "emulate", "--json"]) == 0
    job_id = _json(capsys)["id"]
    assert main(["builds", "show", job_id, "--log", "200"]) == 0
    out = capsys.readouterr().out
    assert "@@trt_tui" not in out and "» " in out
    assert main(["builds", "list"]) == 0
    assert "@@trt_tui" not in capsys.readouterr().out
    sentence = "no TensorRT engine was built: the emulate backend writes the mixed ONNX and its CPU emulation only"
    short = elide(sentence, 40)
    assert len(short) <= 40 and short.endswith("…") and sentence.startswith(short[:-1]) and sentence[len(short) - 1] == " "
    path = "/root/.local/state/trt_tui/builds/20261126-050000-abcdef/build.log"
    assert elide(path, 30) == "/root/.local/st…cdef/build.log" and len(elide(path, 30)) == 30
    assert elide("short", 30) == "short"
