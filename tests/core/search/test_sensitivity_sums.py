"""The sensitivity model's copies reduced to sums in the graph (big models): the same measurements, less held."""

from __future__ import annotations

import onnx
import pytest

from trt_tui.core.graph import load_graph
from trt_tui.core.parity.inputs import InputSpec, random_feeds
from trt_tui.core.search import sensitivity
from trt_tui.core.search.sensitivity import reduce_in_graph, rel_from_sums, rank_nodes


def test_sums_in_the_graph_measure_what_the_full_outputs_do(demo_model, monkeypatch):
    model = onnx.load(str(demo_model))
    feeds = random_feeds(load_graph(demo_model), InputSpec(seed=3, iterations=1), [])
    full = rank_nodes(model, "fp16", feeds, ["log_probs"])
    monkeypatch.setattr(sensitivity, "REDUCE_MIN_BYTES", 0)  # every model counts as big
    reduced = rank_nodes(model, "fp16", feeds, ["log_probs"])
    assert reduced.order[:10] == full.order[:10]  # further down, near-ties may swap (sums differ by ~1e-9)
    for name, e in full.local_error.items():
        assert reduced.local_error[name] == pytest.approx(e, rel=1e-6, abs=1e-15)
        assert reduced.gain[name] == pytest.approx(full.gain[name], rel=1e-6, abs=1e-15)
        assert reduced.score[name] == pytest.approx(full.score[name], rel=1e-6, abs=1e-15)


def test_rel_from_sums_follows_rel_error_rules():
    assert rel_from_sums(4.0, 16.0) == 0.5
    assert rel_from_sums(0.0, 0.0) == 0.0 and rel_from_sums(1.0, 0.0) == float("inf")
    assert rel_from_sums(float("nan"), 1.0) == float("inf") and rel_from_sums(float("inf"), 1.0) == float("inf")


def test_below_opset_10_the_outputs_stay(demo_model):
    model = onnx.load(str(demo_model))
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 9
    before = [o.name for o in model.graph.output]
    assert reduce_in_graph(model, [(before[0], before[0])]) == {}
    assert [o.name for o in model.graph.output] == before
