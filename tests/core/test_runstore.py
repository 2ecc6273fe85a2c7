"""Kept comparison runs: saved with JSON, CSV and plot, listed newest first, reopened equal, two compared;
and the Model Explorer node data export (CLI flag included)."""

import json
import math

import numpy as np
import pytest

from trt_tui.cli import main
from trt_tui.core.errors import UserError
from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.parity.model_explorer import node_data
from trt_tui.core.parity.results import CompareResult
from trt_tui.core.runstore import RunStore, compare_runs, compare_tensors


def _result(scale: float, names=("a", "b", "c")) -> CompareResult:
    rng = np.random.default_rng(0)
    tensors = []
    for i, name in enumerate(names):
        ref = rng.standard_normal((4, 8)).astype(np.float32)
        d = tensor_drift(name, ref, ref + scale * (i + 1) * rng.standard_normal(ref.shape).astype(np.float32),
                         Tolerance(atol=1e-3, rtol=1e-3, stat="median"))  # fmt: skip
        d.node, d.op_type, d.topo_index = f"n_{name}", "MatMul", i
        tensors.append(d)
    tensors[-1].rel_rms = math.inf if scale > 0.1 else tensors[-1].rel_rms
    return CompareResult("m.onnx", "onnxruntime fp32", "emulate fp16", tensors, precision="fp16")


def test_keep_list_reopen_and_compare(tmp_path):
    store = RunStore(tmp_path / "state")
    assert store.runs() == []
    first = store.save(_result(1e-4), pins=["n_a"], label="before")
    second = store.save(_result(1.0), pins=[])
    assert {p.name for p in first.dir.iterdir()} == {"meta.json", "result.json", "result.jsonl", "tensors.csv", "drift.png"}
    runs = store.runs()
    assert [r.id for r in runs] == [second.id, first.id]  # newest first
    assert first.verdict == "PASS" and second.verdict == "FAIL" and first.pins == 1 and first.label == "before"
    again = store.load(first.id)
    original = _result(1e-4)
    assert [d.name for d in again.tensors] == ["a", "b", "c"] and again.passed == original.passed
    assert again.tensors[1].rel_rms == pytest.approx(original.tensors[1].rel_rms)
    assert math.isinf(store.load(second.id).tensors[-1].rel_rms)  # "inf" in JSON comes back as inf
    changes = compare_runs(again, store.load(second.id))
    assert [c.change for c in changes] == ["worse", "worse", "worse"]
    assert [c.change for c in compare_runs(store.load(second.id), again)] == ["better"] * 3
    only = compare_runs(_result(1e-4, ("a", "b")), _result(1e-4, ("b", "z")))
    assert [(c.name, c.change) for c in only if c.change.startswith("only")] == [("a", "only in A"), ("z", "only in B")]
    # side by side reads the CSV only: the same changes as from the whole results (inf included)
    assert compare_tensors(store.load_summary(first.id), store.load_summary(second.id)) == changes
    (second.dir / "tensors.csv").write_text("not,a\ncsv,file\n")  # damaged: the whole result instead
    assert compare_tensors(store.load_summary(first.id), store.load_summary(second.id)) == changes


def test_damaged_runs_are_skipped_or_named(tmp_path):
    store = RunStore(tmp_path)
    run = store.save(_result(1e-4))
    (store.root / "20990101-000000-dead").mkdir()  # interrupted: no meta.json
    assert [r.id for r in store.runs()] == [run.id]
    (run.dir / "result.jsonl").write_text("{not json")
    (run.dir / "result.json").write_text("{not json")
    with pytest.raises(UserError, match="result.json"):
        store.load(run.id)


def test_model_explorer_node_data(pair, tmp_path):
    doc = node_data(_result(1.0))
    assert set(doc["results"]) == {"a", "b", "c"} and doc["results"]["c"]["value"] == 1e300
    values = [t["value"] for t in doc["thresholds"]]
    assert values == sorted(values) and all(t["bgColor"].startswith("#") for t in doc["thresholds"])
    ref, cand = pair
    out = tmp_path / "me.json"
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--model-explorer", str(out)]) in (0, 1)
    written = json.loads(out.read_text())
    assert written["results"] and all("value" in v for v in written["results"].values())
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--model-explorer", str(out)]) == 2  # exists
    assert main(["compare", str(ref), "--candidate", f"onnx:{cand}", "--model-explorer", str(ref), "--force"]) == 2


def test_runs_kept_within_one_second_list_newest_first(tmp_path, monkeypatch):
    import time
    from types import SimpleNamespace

    import trt_tui.core.runstore as runstore

    store = runstore.RunStore(tmp_path)
    clock = iter([1000.0, 1000.2, 1000.4, 1000.6])
    monkeypatch.setattr(runstore, "time", SimpleNamespace(time=lambda: next(clock), strftime=time.strftime,
                                                          localtime=time.localtime))  # fmt: skip
    tokens = iter(["ffff", "0000", "aaaa", "1111"])  # suffixes that sort against the creation order
    monkeypatch.setattr(runstore, "secrets", SimpleNamespace(token_hex=lambda n: next(tokens)))
    ids = [store.save(_result(1.0)).id for _ in range(4)]
    assert [r.id for r in store.runs()] == ids[::-1]


def test_a_kept_run_with_a_shape_divergence_reopens_as_failed():
    """The divergence fails the run; it was dropped on reopening, which then said PASS (a reviewer's find)."""
    from trt_tui.core.parity.results import ShapeDivergence
    from trt_tui.core.runstore import result_from_json

    r = np.ones(4, np.float32)
    divergence = ShapeDivergence("y", "n", "Resize", 3, [1, 8], [1, 7], downstream=2)
    result = CompareResult("m.onnx", "ref", "cand", [tensor_drift("x", r, r, Tolerance())], shape_divergence=divergence)
    assert not result.passed
    again = result_from_json(json.loads(json.dumps(result.to_json())))
    assert again.shape_divergence == divergence and not again.passed
