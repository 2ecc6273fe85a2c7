from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trt_tui.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO_CONTRACT = REPO / "contracts" / "demo_streaming_encoder.contract.json"
# the subprocess must import this checkout's trt_tui whether or not it is pip-installed
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}


def test_init_writes_a_guessed_contract_and_never_overwrites(demo_model, tmp_path, capsys):
    out = tmp_path / "demo.contract.json"
    assert main(["contract", "init", str(demo_model), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "state cache_last_channel_next -> cache_last_channel" in text and "guessed" in text
    doc = json.loads(out.read_text())
    assert len(doc["state"]) == 3
    assert main(["contract", "init", str(demo_model), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["contract", "init", str(demo_model), "-o", str(out), "--force"]) == 0


def test_validate_guessed_contract_warns_but_passes(demo_model, tmp_path, capsys):
    out = tmp_path / "c.json"
    main(["contract", "init", str(demo_model), "-o", str(out)])
    capsys.readouterr()
    assert main(["contract", "validate", str(out), "--model", str(demo_model)]) == 0
    captured = capsys.readouterr()
    assert "valid against" in " ".join(captured.out.split())
    assert "warning: state[0]: guessed" in captured.err


def test_validate_shipped_contract(demo_model, capsys):
    assert main(["contract", "validate", str(DEMO_CONTRACT), "--model", str(demo_model), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"contract": str(DEMO_CONTRACT), "valid": True, "problems": [], "warnings": []}


def test_validate_lists_every_problem_exit_2(tmp_path, capsys):
    doc = json.loads(DEMO_CONTRACT.read_text())
    doc["state"][0]["input"] = "nope"
    doc["invariants"][0]["check"] = "sometimes"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    assert main(["contract", "validate", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"{p}: state[0].input: 'nope' is not an input")
    assert err[1].startswith(f"{p}: invariants[0].check: must be one of")
    assert err[-1] == f"{p}: 2 problem(s); not a valid contract"


def test_malformed_json_one_line_exit_2(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"format": "trt-tui-contract",\n "version": 1\n "inputs": {}}')
    proc = subprocess.run([sys.executable, "-m", "trt_tui", "contract", "validate", str(p)], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"trt-tui: error: {p}:3:2: invalid JSON: Expecting ',' delimiter"]


def test_contract_help_documents_the_schema(capsys):
    try:
        main(["contract", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for key in ("state", "schedule", "masks", "invariants", "tolerances", "guessed"):
        assert key in out


def test_init_then_stream_on_unknown_dims_and_lstm_names(tmp_path, capsys):
    """contract init never writes a contract that stream rejects; a VAD's h/c states are paired by name."""
    import onnx

    from tests.core.streaming import stateful_models

    for build in (stateful_models.unknown_dims, stateful_models.lstm_vad):
        model = tmp_path / f"{build.__name__}.onnx"
        onnx.save(build(), model)
        contract = tmp_path / f"{build.__name__}.contract.json"
        assert main(["contract", "init", str(model), "-o", str(contract)]) == 0
        capsys.readouterr()
        rc = main(["stream", str(model), "--contract", str(contract), "--chunks", "3"])
        out = capsys.readouterr().out
        assert rc in (0, 1), out
        assert "3 chunks" in out
