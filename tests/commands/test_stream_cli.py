from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trt_tui.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = str(REPO / "contracts" / "demo_streaming_encoder.contract.json")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}


def test_stream_demo_passes_writes_json_and_png(demo_model, tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["stream", str(demo_model), "--contract", DEMO_CONTRACT, "--chunks", "12", "--json", str(out_json), "--png", str(out_png)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "emulate fp16 vs onnxruntime fp32, closed-loop, 12 chunks of 8 frames" in text
    assert "cache_last_channel_next (masked)" in text and "log_probs: max_abs against chunk" in text
    assert "PASS: 12/12 chunks" in text
    data = json.loads(out_json.read_text())
    assert data["passed"] and data["chunks_run"] == 12 and len(data["chunks"]) == 12 and len(data["series"]["log_probs"]) == 12
    assert data["chunks"][0]["outputs"]["log_probs"]["quantiles"]["p95"] >= 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 2  # never overwrites silently
    assert "already exists" in capsys.readouterr().err


def test_stream_json_to_stdout_functional_mode(demo_model, capsys):
    assert main(["stream", str(demo_model), "--contract", DEMO_CONTRACT, "--chunks", "3", "--mode", "functional", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "functional" and data["candidate"] == "emulate fp16"


def test_stream_with_preset_pins(demo_model, capsys):
    preset = str(REPO / "presets" / "demo_fp16.toml")
    assert main(["stream", str(demo_model), "--contract", DEMO_CONTRACT, "--preset", preset, "--chunks", "3", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["preset"] == "demo-fp16-good"
    assert "/encoder/layers.0/norm_feed_forward1/LayerNormalization" in data["pinned_nodes"]
    assert "/decoder/LogSoftmax" in data["pinned_nodes"]


def test_stream_broken_cache_length_exits_1(models, capsys):
    assert main(["stream", str(models["broken_cache_len"]), "--contract", DEMO_CONTRACT, "--chunks", "3"]) == 1
    out = capsys.readouterr().out
    assert "chunk 1: reference: cache_last_channel_len_next non-decreasing: decreased from 8 to 0 at [0]" in out
    assert "FAIL: " in out and "invariant violation" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--candidate", "outputs:saved.json"], "must be a runner"),
        (["--candidate", "engine:/nonexistent.plan"], "/nonexistent.plan: no such file"),
        (["--chunks", "0"], "--chunks must be at least 1"),
        (["--plot-output", "encoded_lengths"], "is not a float output"),
        (["--pin", "/no/such/node"], "no node named '/no/such/node'"),
    ],
)
def test_stream_bad_input_exit_2(demo_model, capsys, extra, message):
    assert main(["stream", str(demo_model), "--contract", DEMO_CONTRACT, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_stream_wrong_contract_one_line_exit_2(models):
    proc = subprocess.run(
        [sys.executable, "-m", "trt_tui", "stream", str(models["conv_cache"]), "--contract", DEMO_CONTRACT],
        capture_output=True, text=True, env=ENV,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"trt-tui: error: {DEMO_CONTRACT}: ") and "'x' is missing" in lines[0]


def test_stream_inputs_file(demo_model, tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "in.npz", audio_signal=np.random.default_rng(0).standard_normal((2, 1, 32, 8)).astype(np.float32))
    base = ["stream", str(demo_model), "--contract", DEMO_CONTRACT, "--inputs", str(tmp_path / "in.npz")]
    assert main([*base, "--chunks", "2", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["chunks_run"] == 2
    assert main([*base, "--json", "-"]) == 0  # no --chunks: what the file holds
    assert json.loads(capsys.readouterr().out)["chunks_run"] == 2
    assert main([*base, "--chunks", "5"]) == 2
    assert "in.npz: holds 2 chunks but 5 were asked for" in capsys.readouterr().err


def test_stream_refuses_a_run_too_big_for_memory_with_the_figure(demo_model, tmp_path, capsys):
    """Issue 12 item 7: dims B=1000000 validated and then grew to 21.7 GB; now refused before the first chunk."""
    doc = json.loads(Path(DEMO_CONTRACT).read_text())
    doc["dims"]["B"] = 1000000
    doc.pop("profiles")
    p = tmp_path / "huge.contract.json"
    p.write_text(json.dumps(doc))
    assert main(["stream", str(demo_model), "--contract", str(p), "--chunks", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{p}: a stream run would need about" in err and "GiB" in err and "B=1000000" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # a small run under a smaller --max-memory is refused too; the demo fits in 1G
    assert main(["stream", str(demo_model), "--contract", str(DEMO_CONTRACT), "--chunks", "2", "--max-memory", "1K"]) == 2
    assert "more than --max-memory (1.0 KiB)" in capsys.readouterr().err
    assert main(["stream", str(demo_model), "--contract", str(DEMO_CONTRACT), "--chunks", "2", "--max-memory", "1G"]) == 0


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_stream_rejects_non_finite_numbers_in_contracts(demo_model, tmp_path, capsys, bad):
    text = Path(DEMO_CONTRACT).read_text()
    text = text.replace('"log_probs": {"atol": 5e-3', f'"log_probs": {{"atol": {bad}', 1)
    text = text.replace('"check": "range", "min": 0, "max": 16', f'"check": "range", "min": 0, "max": {bad}', 1)
    p = tmp_path / "nan.contract.json"
    p.write_text(text)
    assert main(["stream", str(demo_model), "--contract", str(p), "--chunks", "2"]) == 2
    err = capsys.readouterr().err
    assert "tolerances.outputs.log_probs.atol: must be finite" in err
    assert "invariants[2].max: must be finite" in err
