"""Evaluating pin sets of a stateful streaming model: the contract's closed-loop check is the criterion.

A pin set passes when the stream passes (`StreamReport.passed`: per-chunk tolerances, pass rate, no error
growth, invariants) over N chunks, each side feeding back its own state. The FP32 reference stream does not
depend on the pins: it runs once and is replayed (same feeds, same state) for every evaluation. The
sensitivity pass looks at the last chunk, where the reference state has built up.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx

from trt_tui.core.search.evaluate import OrtModel, PinnedEmulation, SearchSamples, Verdict, nothing_pinned_plan
from trt_tui.core.streaming.contract import Contract
from trt_tui.core.streaming.engine import StreamReport, run_stream
from trt_tui.core.streaming.feeds import StreamInputs
from trt_tui.core.weights import WeightSource


class _ReplayReference:
    """The FP32 reference: runs on the first stream, then returns the recorded outputs chunk by chunk."""

    def __init__(self, model: onnx.ModelProto, weights=None) -> None:
        self.session = OrtModel(model, label="FP32 reference", weights=weights)
        self.feeds: list[dict[str, np.ndarray]] = []
        self.outputs: list[dict[str, np.ndarray]] = []
        self.position = 0
        self.inferences = 0

    def rewind(self) -> None:
        self.position = 0

    def infer(self, feed_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        k = self.position
        self.position += 1
        if k < len(self.outputs):
            return self.outputs[k]  # the reference state is the same every run, hence the same feeds
        out = self.session.run(feed_dict)
        self.inferences += 1
        self.feeds.append(dict(feed_dict))
        self.outputs.append(out)
        return out


class _Candidate:
    def __init__(self, run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> None:
        self.run = run
        self.inferences = 0

    def infer(self, feed_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.inferences += 1
        return self.run(feed_dict)


class StreamEvaluator:
    stateful = True

    def __init__(self, model: onnx.ModelProto, low: str, contract: Contract, chunks: int, inputs: StreamInputs, *,
                 mode: str = "closed-loop", fuse_bias: bool = True, base_dir=None):  # fmt: skip
        from trt_tui.core import precision

        precision.check_ort_keeps_rounding()
        self.model = model
        self.low = low
        self.contract = contract
        self.chunks = chunks
        self.inputs = inputs
        self.mode = mode
        self.fuse_bias = fuse_bias
        self.samples = SearchSamples([])
        self.weights = WeightSource(base_dir)
        self.reference = _ReplayReference(model, self.weights)
        self.plan, self.low_nodes = nothing_pinned_plan(model, low, base_dir)  # handed to the first sensitivity pass
        self.emulation = PinnedEmulation(model, low, fuse_bias=fuse_bias, base_dir=base_dir, runs=chunks, plan=self.plan)  # graph outputs
        self.cache: dict[frozenset[str], Verdict] = {}
        self._candidate_inferences = 0
        self.outputs = list(contract.outputs)

    @property
    def inferences(self) -> int:
        return self.reference.inferences + self._candidate_inferences

    @property
    def has_held_out(self) -> bool:
        return False

    def describe(self) -> list[str]:
        return [f"contract {self.contract.path.name if self.contract.path else '(inline)'}: {self.mode} over {self.chunks} chunks "
                "(per-chunk tolerances, pass rate, no error growth, invariants)"]  # fmt: skip

    def is_cached(self, pins: frozenset[str], *, every_sample: bool = False) -> bool:
        return pins in self.cache

    def _stream(self, candidate) -> StreamReport:
        self.reference.rewind()
        return run_stream(self.contract, self.reference, candidate, mode=self.mode, chunks=self.chunks, inputs=self.inputs)

    def fp32_check(self) -> Verdict:
        """The FP32 model against the recorded FP32 stream (its session, run again): a contract it fails is not a
        precision problem."""
        again = _Candidate(self.reference.session.run)
        report = self._stream(again)
        self._candidate_inferences += again.inferences
        return _verdict(report)

    def check(self, pins: frozenset[str], *, every_sample: bool = False) -> tuple[Verdict, bool]:
        if pins in self.cache:
            return self.cache[pins], True
        with self.emulation.pinned(pins) as run:
            cand = _Candidate(run)
            report = self._stream(cand)
        self._candidate_inferences += cand.inferences
        verdict = _verdict(report)
        self.cache[pins] = verdict
        return verdict, False

    def sensitivity_samples(self) -> list[dict[str, np.ndarray]]:
        """The last chunk's feeds with the reference state (recorded by the first stream)."""
        if not self.reference.feeds:
            self._stream(_NullCandidate(self.reference))
        return [self.reference.feeds[-1]]

    def first_sample(self) -> dict[str, np.ndarray] | None:
        """The first chunk's feeds (state included), once a stream ran."""
        return self.reference.feeds[0] if self.reference.feeds else None

    def state_pairs(self) -> dict[str, str]:
        return {p.output: p.input for p in self.contract.state}

    def sensitivity_inputs(self) -> dict:
        """rank_nodes' arguments besides the model and samples (the plan for the first pass: handed over)."""
        kwargs = {"plan": self.plan, "state_pairs": self.state_pairs(), "chunks": self.chunks}
        self.plan = None
        return kwargs

    def close(self) -> None:
        self.plan = None
        self.reference.session.close()
        self.emulation.close()


class _NullCandidate:
    """The reference's own outputs as the candidate (records the reference stream without a second model)."""

    def __init__(self, reference: _ReplayReference) -> None:
        self.reference = reference

    def infer(self, feed_dict):
        return self.reference.outputs[self.reference.position - 1]


def _verdict(report: StreamReport) -> Verdict:
    errors: dict[str, dict[str, float]] = {}
    failed: dict[str, list[str]] = {}
    for name, s in report.outputs.items():
        finite = [e for e in s.errors if math.isfinite(e)]
        row = {"worst_max_abs": s.worst_max_abs, "failed_chunks": float(s.failed)}
        if s.errors:
            row[f"{report.metric}_mean"] = float(np.mean(finite)) if finite else math.inf
            row[f"{report.metric}_max"] = max(s.errors)
        trend = report.trends.get(name)
        if trend is not None and name in report.trend_outputs:
            row["slope"] = trend.slope
        errors[name] = row
        why = []
        if s.failed:
            why.append(f"{s.failed}/{s.chunks} chunks outside tolerance (first {s.first_failure})")
        if name in report.growing:
            why.append("error grows chunk after chunk")
        if why:
            failed[name] = why
    return Verdict(report.passed, errors, failed, list(report.reasons), samples=report.chunks_run)
