"""Streaming a model too big to hold whole (issue 14 item 5, at test size): both sides run segment by segment,
each segment's session holding only its weights, with the same results as whole sessions."""

from __future__ import annotations

import json
import os
import tempfile

import onnx
import pytest

from trt_tui.core.modelgen.demo import build_demo_model
from trt_tui.core.streaming import memory
from trt_tui.core.streaming.session import setup_stream, stream_all

from .conftest import DEMO_CONTRACT


@pytest.fixture
def external_demo(tmp_path):
    model = tmp_path / "ext" / "demo_streaming_encoder.onnx"
    model.parent.mkdir()
    onnx.save(build_demo_model(), model, save_as_external_data=True, all_tensors_to_one_file=True,
              location="demo.data", size_threshold=1024)  # fmt: skip
    return model


def _reports(model, candidates, chunks=4):
    setup = setup_stream(model, DEMO_CONTRACT, candidates=candidates)
    reports = stream_all(setup, chunks=chunks)
    return setup, {label: r.to_json() for label, r in reports.items()}


def _numbers(report: dict) -> dict:
    """The report without timings."""
    drop = {"ref_seconds", "cand_seconds", "elapsed_s", "seconds"}
    if isinstance(report, dict):
        return {k: _numbers(v) for k, v in report.items() if k not in drop}
    if isinstance(report, list):
        return [_numbers(v) for v in report]
    return report


def test_segmented_stream_matches_whole_sessions(external_demo, tmp_path, monkeypatch):
    candidates = ["emulate", "mixed", "ort"]  # mixed keeps a whole session (CandidateKind.segmentable)
    whole_setup, whole = _reports(external_demo, candidates)
    assert whole_setup.segment_bytes is None  # a few MB of weights: whole sessions
    monkeypatch.setattr(memory, "STREAM_SEGMENT_BYTES", 64 << 10)  # force segments of 64 KB of weights
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the rounded weights are written, then removed
    seg_setup, segmented = _reports(external_demo, candidates)
    assert seg_setup.segment_bytes == 64 << 10
    assert json.dumps(_numbers(segmented), sort_keys=True) == json.dumps(_numbers(whole), sort_keys=True)
    assert not [p for p in os.listdir(tmp_path) if "trt_tui_segments" in p]


def test_rounded_weights_of_a_killed_stream_are_removed_by_the_next_run(external_demo, tmp_path, monkeypatch):
    """A stream killed with SIGKILL leaves its staging folder (GBs of rounded weights at scale) behind:
    it carries our pid-tagged naming, so the next run removes it once its writer is gone."""
    from trt_tui.core.fileio import TMP_TAG

    stale = tmp_path / f".trt_tui_segments.{TMP_TAG}-999999999-abcd1234.tmp"  # a pid no process has
    stale.mkdir()
    (stale / "candidate.onnx.data").write_bytes(b"\0" * 1024)
    monkeypatch.setattr(memory, "STREAM_SEGMENT_BYTES", 64 << 10)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _reports(external_demo, ["emulate"])
    assert not [p for p in os.listdir(tmp_path) if "trt_tui_segments" in p]


def test_weight_batches_bound_each_segment(external_demo):
    from trt_tui.core.parity.segments import SegmentPlan, weight_batches
    from trt_tui.core.weights import WeightSource, load_without_weights, nbytes

    model = load_without_weights(external_demo)
    sizes = {t.name: nbytes(t) for t in model.graph.initializer}
    budget = 64 << 10
    plan = SegmentPlan(model, weight_batches(model, budget), WeightSource(external_demo.parent))
    assert len(plan.segments) > 3
    ran = [i for seg in plan.segments for i in seg.nodes]
    assert len(ran) == len(set(ran))  # every node once
    biggest = max(sum(sizes.get(t, 0) for t in set(plan.nodes[i].input)) for i in ran)
    for seg in plan.segments:
        held = sum(sizes[t] for t in {t for i in seg.nodes for t in plan.nodes[i].input if t in sizes})
        assert held <= max(budget, biggest) or len(seg.nodes) == 1
    assert {o.name for o in model.graph.output} <= {t for seg in plan.segments for t in seg.targets}


def test_the_estimate_counts_one_segment_of_weights():
    assert memory.segment_bytes(100 << 20) is None
    assert memory.segment_bytes(3 << 30) == memory.STREAM_SEGMENT_BYTES
    assert memory.segment_bytes(300 << 20, max_memory=400 << 20) == 100 << 20
