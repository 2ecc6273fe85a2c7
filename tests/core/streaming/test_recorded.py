"""Recorded references (issue 16): the recorder's formats, lazy reading, several candidates in one run,
the answer against ONNX Runtime FP32, the seeds' acceptance vocabulary, a reference that does not fit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from trt_tui.cli import main
from trt_tui.core.errors import UserError
from trt_tui.core.modelgen.cache_stream import cache_stream_model, contract_doc, record_reference
from trt_tui.core.streaming.contract import ContractError, parse_contract
from trt_tui.core.streaming.recorded import open_recording
from trt_tui.core.streaming.signoff import criterion_rows
from trt_tui.recorder import Recorder


@pytest.fixture
def cache_model(tmp_path):
    model = tmp_path / "cache_stream.onnx"
    onnx.save(cache_stream_model(), model)
    contract = tmp_path / "cache_stream.contract.json"
    contract.write_text(json.dumps(contract_doc()))
    return model, contract


def _arrays():
    return (
        {"x": np.arange(6, dtype=np.float32).reshape(1, 2, 3), "n": np.array([7], np.int64), "h": np.float16(0.5) * np.ones((2, 2), np.float16)},
        {"y": np.linspace(0, 1, 4).astype(np.float64), "flag": np.array([True, False])},
    )  # fmt: skip


@pytest.mark.parametrize("name, encoding", [("rec", "base64"), ("rec.jsonl", "base64"), ("rec.jsonl", "list")])
def test_recorder_formats_round_trip(tmp_path, name, encoding):
    ins, outs = _arrays()
    with Recorder(tmp_path / name, meta={"model": "m"}, encoding=encoding) as rec:
        for i in range(3):
            rec.write(inputs={**ins, "i": np.array(i)}, outputs=outs)
    r = open_recording(tmp_path / name)
    assert len(r) == 3 and r.meta == {"model": "m"}
    got_in, got_out = r.chunk(2)
    for k, v in {**ins, "i": np.array(2)}.items():
        assert got_in[k].dtype == v.dtype and got_in[k].shape == v.shape and np.array_equal(got_in[k], v)
    for k, v in outs.items():
        assert got_out[k].dtype == v.dtype and np.array_equal(got_out[k], v)
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / name)


def test_jsonl_reads_bare_nested_lists_and_skips_blank_lines(tmp_path):
    p = tmp_path / "seed_style.jsonl"
    p.write_text(json.dumps({"inputs": {"x": [[1, 2]]}, "outputs": {"y": {"dtype": "float32", "shape": [2], "data": [1, 2]}}})
                 + "\n\n" + json.dumps({"inputs": {"x": [[3, 4]]}, "outputs": {"y": [3.0, 4.0]}}) + "\n")  # fmt: skip
    r = open_recording(p)
    assert len(r) == 2
    ins, outs = r.chunk(1)
    assert ins["x"] == [[3, 4]] and outs["y"] == [3.0, 4.0]


def test_reading_is_lazy_one_chunk_at_a_time(tmp_path):
    """Only the chunk asked for is read: a damaged later chunk does not stop the earlier ones."""
    record_reference(tmp_path / "ref.jsonl", 6)
    record_reference(tmp_path / "ref", 6)
    lines = (tmp_path / "ref.jsonl").read_text().splitlines()
    lines[5] = lines[5][: len(lines[5]) // 2]  # chunk 4 (after the header line) cut in half
    (tmp_path / "ref.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "ref" / "chunk_000004.npz").unlink()
    for path in (tmp_path / "ref.jsonl", tmp_path / "ref"):
        r = open_recording(path)
        assert len(r) == 6
        for i in range(4):
            r.chunk(i)
        with pytest.raises(UserError, match="chunk 4"):
            r.chunk(4)
        r.chunk(5)


def test_unfinished_folder_is_refused(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "chunk_000000.npz").write_bytes(b"")
    with pytest.raises(UserError, match="no manifest.json"):
        open_recording(tmp_path / "rec")


@pytest.mark.parametrize("mode", ["closed-loop", "functional"])
def test_candidates_against_a_recorded_reference_one_table(cache_model, tmp_path, capsys, mode):
    """The numpy 'framework' recorded; ORT FP32, fp16 and bf16 emulation in one run; fp16 is worse than ORT."""
    model, contract = cache_model
    record_reference(tmp_path / "ref", 40)
    out_json = tmp_path / "r.json"
    rc = main(["stream", str(model), "--contract", str(contract), "--reference", f"recorded:{tmp_path / 'ref'}",
               "--candidate", "emulate:fp16", "--candidate", "emulate:bf16", "--mode", mode, "--json", str(out_json)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1  # fp16 misses the seeds' p95 < 5e-4 on this model
    assert "onnxruntime fp32, emulate fp16, emulate bf16 vs recorded:" in out
    assert "is emulate fp16 worse than onnxruntime fp32 against the reference on encoder_output? YES, worse" in out
    assert "| p95 encoder_output max_abs" in out and "| < 5e-4" in out
    data = json.loads(out_json.read_text())
    labels = [c["label"] for c in data["candidates"]]
    assert labels == ["onnxruntime fp32", "emulate fp16", "emulate bf16"]
    by = {c["label"]: c for c in data["candidates"]}
    assert by["onnxruntime fp32"]["passed"] and not by["emulate fp16"]["passed"]
    assert by["onnxruntime fp32"]["chunks_run"] == 40
    # ONNX Runtime FP32 sits off the float64 framework a little, never exactly on it
    assert 0 < by["onnxruntime fp32"]["outputs"]["encoder_output"]["worst_max_abs"] < 1e-5
    worse = {a["candidate"]: a["verdict"] for a in data["versus_onnxruntime_fp32"]}
    assert worse == {"emulate fp16": "worse", "emulate bf16": "worse"}
    rows = {r["metric"]: r["status"] for r in by["emulate fp16"]["signoff"]}
    assert rows["p95 encoder_output max_abs"] == "FAIL" and rows["contract invariants"] == "PASS"


def test_record_then_replay_the_onnxruntime_run(cache_model, tmp_path, capsys):
    """--record writes the ORT FP32 run; replayed as the reference, ORT FP32 matches it exactly."""
    model, contract = cache_model
    rec = tmp_path / "ort_ref.jsonl"
    assert main(["stream", str(model), "--contract", str(contract), "--chunks", "5", "--record", str(rec)]) in (0, 1)
    assert main(["stream", str(model), "--contract", str(contract), "--chunks", "5", "--record", str(rec)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["stream", str(model), "--contract", str(contract), "--reference", f"recorded:{rec}", "--candidate", "ort",
                 "--json", "-"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["chunks_run"] == 5 and data["outputs"]["encoder_output"]["worst_max_abs"] == 0.0


def _stream_exit(args):
    proc = subprocess.run([sys.executable, "-m", "trt_tui", "stream", *args], capture_output=True, text=True)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_a_reference_that_does_not_match_the_contract_is_one_line_exit_2(cache_model, tmp_path):
    model, contract = cache_model
    bad = tmp_path / "bad"
    with Recorder(bad) as rec:
        rec.write(inputs={"audio_signal": np.zeros((1, 16, 9), np.float32), "cache": np.zeros((1, 16, 32), np.float32),
                          "cache_len": np.zeros(1, np.int64)},
                  outputs={"encoder_output": np.zeros((1, 16, 8), np.float32)})  # fmt: skip
    rc, err = _stream_exit([str(model), "--contract", str(contract), "--reference", f"recorded:{bad}"])
    assert rc == 2 and len(err) == 1, err
    assert str(bad) in err[0] and "chunk 0: input audio_signal has shape [1, 16, 9] in the recording, the contract says [1, 16, 8]" in err[0]
    missing = tmp_path / "missing.jsonl"
    with Recorder(missing) as rec:
        rec.write(inputs={"audio_signal": np.zeros((1, 16, 8), np.float32)}, outputs={"encoder_output": np.zeros((1, 16, 8), np.float32)})
    rc, err = _stream_exit([str(model), "--contract", str(contract), "--reference", f"recorded:{missing}"])
    assert rc == 2 and len(err) == 1 and "the recording has no output 'cache_next'" in err[0], err
    rc, err = _stream_exit([str(model), "--contract", str(contract), "--reference", f"recorded:{tmp_path / 'nope'}"])
    assert rc == 2 and len(err) == 1 and "no such file or folder" in err[0]


def test_acceptance_vocabulary_parses_and_rejects_nonsense():
    doc = contract_doc()
    c = parse_contract(doc)
    (crit,) = c.criteria
    assert crit.percentiles == ((0.95, 5e-4), (1.0, 1e-3)) and crit.within == 5e-4 and crit.min_rate == 0.8
    rows = criterion_rows(c.criteria, lambda o, m: [1e-4] * 9 + [7e-4])
    assert [r.status for r in rows] == ["PASS", "PASS", "PASS", "WARN"]
    doc["acceptance"]["outputs"]["encoder_output"] = {"percentiles": {"q5": 1, "p95": float("nan")}, "warn_above": 2, "fail_above": 1}
    doc["acceptance"]["outputs"]["nope"] = {"fail_above": 1}
    with pytest.raises(ContractError) as exc:
        parse_contract(doc)
    text = str(exc.value)
    assert "percentiles.q5: must be a percentile" in text and "percentiles.p95: must be finite" in text
    assert "warn_above (2) is above fail_above (1)" in text and "acceptance.outputs.nope: is not an output" in text


def test_the_recorder_needs_numpy_only():
    """A framework script imports trt_tui.recorder without ONNX, ONNX Runtime, Polygraphy, Textual or rich."""
    code = ("import sys, trt_tui.recorder; heavy = [m for m in ('onnx', 'onnxruntime', 'polygraphy', 'textual', 'rich', "
            "'trt_tui.core') if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stream_on_a_model_with_external_data(tmp_path, capsys):
    """Issue 14 item 5 at test size: weights in external data, several candidates, a recorded reference."""
    model = tmp_path / "ext" / "cache_stream.onnx"
    model.parent.mkdir()
    onnx.save(cache_stream_model(features=32, cache=16, frames=4), model, save_as_external_data=True,
              all_tensors_to_one_file=True, location="cache_stream.data", size_threshold=1024)  # fmt: skip
    assert (model.parent / "cache_stream.data").stat().st_size >= 32 * 32 * 4
    contract = tmp_path / "c.json"
    contract.write_text(json.dumps(contract_doc(features=32, cache=16, frames=4)))
    record_reference(tmp_path / "ref", 6, features=32, cache=16, frames=4)
    rc = main(["stream", str(model), "--contract", str(contract), "--reference", f"recorded:{tmp_path / 'ref'}",
               "--candidate", "emulate", "--candidate", "mixed", "--json", "-"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert rc in (0, 1) and data["chunks_run"] == 6
    assert [c["label"] for c in data["candidates"]] == ["onnxruntime fp32", "emulate fp16", "mixed fp16"]
    assert 0 < data["candidates"][0]["outputs"]["encoder_output"]["worst_max_abs"] < 1e-5
