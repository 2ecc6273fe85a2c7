"""The streaming parity loop: run a reference and a candidate chunk after chunk, feeding the state back.

- functional mode feeds the REFERENCE's state outputs to both sides: each chunk measures one step of error;
- closed-loop mode lets each side feed back its own state: error that the state carries accumulates, as
  it does in deployment.

Per chunk and per output: the parity engine's drift metrics (`tensor_drift`), masked to the valid region,
the contract's invariants on both sides, pass/fail. Results are streamed: `iter_stream(...)` yields a
`ChunkResult` per chunk and `run_stream(..., on_chunk=callback)` calls `callback(result)` after each chunk,
then returns the `StreamReport` (pass rate, first failing chunk, error trend per output, invariant
failures, verdict). `cancel` (a `threading.Event` or any callable returning True) is checked between chunks;
a cancelled run returns the report of the chunks that ran, with `cancelled=True`.

Runners are anything with `infer(feed_dict) -> {name: ndarray}`: Polygraphy runners (as built by
`trt_tui.core.parity.runners.make_runners`), already activated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from trt_tui.core.errors import UserError
from trt_tui.core.parity.metrics import FP16_MAX, LayerDrift, quantile_label, tensor_drift
from trt_tui.core.parity.segments import infer_fn
from trt_tui.core.streaming.contract import MODES, TREND_METRICS, Contract, Criterion
from trt_tui.core.streaming.feeds import StreamInputs, initial_state
from trt_tui.core.streaming.invariants import InvariantChecker, InvariantResult
from trt_tui.core.streaming.masks import apply_mask
from trt_tui.core.streaming.schedule import plan_chunks
from trt_tui.core.streaming.trend import TrendFit, fit_trend

QUANTILES = (0.5, 0.95, 0.99)


class Runner(Protocol):
    def infer(self, feed_dict: dict[str, np.ndarray]) -> Mapping[str, np.ndarray]: ...


Cancel = Callable[[], bool] | object  # a callable, or anything with is_set() (threading.Event)


@dataclass
class ChunkResult:
    """One chunk: what the TUI plots live and the JSON report lists."""

    index: int
    frames: int | None
    drifts: dict[str, LayerDrift]  # per output, on the valid region when the output has a mask
    invariants: list[InvariantResult]  # every check on both sides
    errors: dict[str, float]  # the trend metric per float output
    passed: bool
    failed_outputs: list[str]
    valid_entries: dict[str, int] = field(default_factory=dict)  # masked outputs: entries compared
    ref_seconds: float = 0.0
    cand_seconds: float = 0.0
    # state inputs whose reference value fed to the next chunk differs from the initial state: a state that
    # never moves never received a real value
    state_moved: frozenset[str] = frozenset()

    @property
    def invariant_failures(self) -> list[InvariantResult]:
        return [r for r in self.invariants if not r.passed]

    def to_json(self) -> dict:
        return {
            "chunk": self.index,
            "frames": self.frames,
            "passed": self.passed,
            "failed_outputs": self.failed_outputs,
            "errors": {k: _jf(v) for k, v in self.errors.items()},
            "outputs": {k: _drift_json(d) for k, d in self.drifts.items()},
            "valid_entries": self.valid_entries,
            "invariant_failures": [r.to_json() for r in self.invariant_failures],
            "ref_seconds": round(self.ref_seconds, 6),
            "cand_seconds": round(self.cand_seconds, 6),
        }


@dataclass
class OutputSummary:
    name: str
    chunks: int = 0
    failed: int = 0
    first_failure: int | None = None
    worst_max_abs: float = 0.0
    errors: list[float] = field(default_factory=list)  # the trend metric, chunk by chunk
    by_metric: dict[str, list[float]] = field(default_factory=dict)  # every error metric, chunk by chunk

    def to_json(self, metric: str) -> dict:
        finite = [e for e in self.errors if math.isfinite(e)]
        return {
            "chunks": self.chunks,
            "failed": self.failed,
            "first_failure": self.first_failure,
            "worst_max_abs": _jf(self.worst_max_abs),
            f"{metric}_mean": _jf(float(np.mean(finite))) if finite else None,
            f"{metric}_p95": _jf(float(np.quantile(finite, 0.95))) if finite else None,
            f"{metric}_max": _jf(max(self.errors)) if self.errors else None,
        }


@dataclass
class StreamReport:
    mode: str
    chunks_requested: int
    metric: str
    results: list[ChunkResult] = field(default_factory=list)
    outputs: dict[str, OutputSummary] = field(default_factory=dict)
    trends: dict[str, TrendFit] = field(default_factory=dict)
    trend_outputs: tuple[str, ...] = ()
    cancelled: bool = False
    min_pass_rate: float = 1.0
    fail_on_growth: bool = True
    seconds: float = 0.0
    low_precision: bool = False  # the candidate is not the FP32 reference's own runtime: zero error is suspect
    static_unchecked: list[str] = field(default_factory=list)  # found before the run (see guards.py)
    state_inputs: tuple[str, ...] = ()
    float_outputs: tuple[str, ...] = ()
    _moved: set[str] = field(default_factory=set)
    criteria: tuple[Criterion, ...] = ()  # the contract's acceptance criteria (signoff.py)

    def metric_series(self, output: str, metric: str) -> list[float]:
        s = self.outputs.get(output)
        return list(s.by_metric.get(metric, [])) if s is not None else []

    @property
    def signoff(self) -> list:
        from trt_tui.core.streaming.signoff import report_rows

        return report_rows(self)

    @property
    def chunks_run(self) -> int:
        return len(self.results)

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def first_failure(self) -> int | None:
        return next((r.index for r in self.results if not r.passed), None)

    @property
    def invariant_failures(self) -> list[tuple[int, InvariantResult]]:
        return [(r.index, f) for r in self.results for f in r.invariant_failures]

    @property
    def growing(self) -> list[str]:
        return [n for n in self.trend_outputs if n in self.trends and self.trends[n].growing]

    @property
    def reasons(self) -> list[str]:
        """Why the run fails (empty when it passes)."""
        out = []
        if not self.results:
            out.append("no chunk ran")
        if self.results and self.pass_rate < self.min_pass_rate:
            out.append(f"pass rate {self.pass_rate:.1%} is below {self.min_pass_rate:.1%} (first failing chunk {self.first_failure})")
        inv = self.invariant_failures
        if inv:
            i, f = inv[0]
            out.append(f"{len(inv)} invariant violation(s), first at chunk {i}: {f.side} {f.check}: {f.detail}")
        if self.fail_on_growth and self.growing:
            out.append(f"error grows chunk after chunk: {', '.join(self.growing)}")
        from trt_tui.core.streaming.signoff import FAIL, criterion_rows

        failed_criteria = [r for r in criterion_rows(self.criteria, self.metric_series) if r.status == FAIL]
        if failed_criteria:
            out.append("acceptance: " + "; ".join(f"{r.metric} is {r.actual} (target {r.target})" for r in failed_criteria))
        zero = self.zero_error_outputs
        if zero and len(zero) == len([n for n in self.float_outputs if n in self.outputs]):
            out.append("nothing was checked: every float output matched the reference exactly on every chunk "
                       "although the candidate ran in low precision")  # fmt: skip
        return out

    @property
    def zero_error_outputs(self) -> list[str]:
        """Float outputs whose error was exactly zero on every chunk although low precision ran."""
        if not self.low_precision or not self.results:
            return []
        return [n for n in self.float_outputs if n in self.outputs and self.outputs[n].worst_max_abs == 0.0]

    @property
    def unchecked(self) -> list[str]:
        """'this contract checks nothing for X' notes: what the run could not have caught."""
        notes = list(self.static_unchecked)
        if self.results:
            for name in self.state_inputs:
                if name not in self._moved:
                    notes.append(f"this contract checks nothing for {name}: the state fed back stayed at its initial "
                                 f"value on all {self.chunks_run} chunks, so it never received a real value")  # fmt: skip
        for name in self.zero_error_outputs:
            notes.append(f"this contract checks nothing for {name}: its error was exactly 0 on all {self.chunks_run} "
                         "chunks while the candidate ran in low precision (is it fed back as an input, or not computed?)")  # fmt: skip
        return notes

    @property
    def passed(self) -> bool:
        return not self.reasons

    def add(self, result: ChunkResult) -> None:
        self.results.append(result)
        self._moved |= result.state_moved
        for name, d in result.drifts.items():
            s = self.outputs.setdefault(name, OutputSummary(name))
            s.chunks += 1
            if not d.passed:
                s.failed += 1
                if s.first_failure is None:
                    s.first_failure = result.index
            if not math.isnan(s.worst_max_abs) and (math.isnan(d.max_abs) or d.max_abs > s.worst_max_abs):
                s.worst_max_abs = d.max_abs  # NaN, once seen, stays the worst
            if name in result.errors:
                s.errors.append(result.errors[name])
                for m in TREND_METRICS:
                    s.by_metric.setdefault(m, []).append(float(getattr(d, m)))

    def fit_trends(self, alpha: float, min_growth: float) -> None:
        self.trends = {n: fit_trend(s.errors, alpha, min_growth) for n, s in self.outputs.items() if s.errors}

    def series(self, output: str) -> list[float]:
        return list(self.outputs[output].errors) if output in self.outputs else []

    def to_json(self, *, chunks: bool = True) -> dict:
        data = {
            "mode": self.mode,
            "passed": self.passed,
            "reasons": self.reasons,
            "cancelled": self.cancelled,
            "chunks_requested": self.chunks_requested,
            "chunks_run": self.chunks_run,
            "pass_rate": self.pass_rate,
            "min_pass_rate": self.min_pass_rate,
            "first_failure": self.first_failure,
            "trend_metric": self.metric,
            "trend_outputs": list(self.trend_outputs),
            "trends": {n: t.to_json() for n, t in self.trends.items()},
            "outputs": {n: s.to_json(self.metric) for n, s in self.outputs.items()},
            "series": {n: [_jf(e) for e in s.errors] for n, s in self.outputs.items()},
            "invariant_failures": [{"chunk": i, **f.to_json()} for i, f in self.invariant_failures],
            "checks_nothing": self.unchecked,
            "signoff": [r.to_json() for r in self.signoff] if self.results else [],
            "seconds": round(self.seconds, 4),
        }
        if chunks:
            data["chunks"] = [r.to_json() for r in self.results]
        return data


class StreamError(UserError):
    """A side failed to run a chunk (bad shapes for the model, a missing output...)."""


@dataclass
class RefChunk:
    """What the reference gives for one chunk: the stream inputs, the state it ran with, its outputs."""

    feeds: dict[str, np.ndarray]  # every input that is not a state
    state_in: dict[str, np.ndarray]  # the reference's state inputs of this chunk (functional mode feeds them)
    outputs: dict[str, np.ndarray]
    seconds: float = 0.0
    frames: int | None = None  # the recorded chunk's frames, when they do not come from the schedule


class ReferenceSource(Protocol):
    label: str
    available_chunks: int | None
    where: object  # the file to name in errors about chunk counts

    def chunk(self, plan) -> RefChunk: ...


class RunnerReference:
    """The reference as a runner (ONNX Runtime FP32): it runs on the contract's feeds (or --inputs) and feeds
    back its own state."""

    def __init__(self, contract: Contract, runner: Runner, inputs: StreamInputs | None = None,
                 label: str = "onnxruntime fp32") -> None:  # fmt: skip
        self.contract = contract
        self.inputs = inputs or StreamInputs(contract)
        self.label = label
        self.available_chunks = self.inputs.available_chunks
        self.where = self.inputs.file
        self._infer = infer_fn(runner)
        self._state: dict[str, np.ndarray] | None = None

    def chunk(self, plan) -> RefChunk:
        if self._state is None:
            self._state = initial_state(self.contract)
        feeds = self.inputs.feeds(plan)
        t0 = time.perf_counter()
        out = _infer(self._infer, {**feeds, **self._state}, "reference", plan.index, self.contract)
        seconds = time.perf_counter() - t0
        state_in = self._state
        # Copies: some runners (TensorRT through Polygraphy) reuse their output buffers on the next call.
        self._state = {p.input: np.array(out[p.output], copy=True) for p in self.contract.state}
        return RefChunk(feeds, state_in, out, seconds)


def iter_streams(
    contract: Contract,
    reference: ReferenceSource,
    candidates: Mapping[str, Runner],
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    cancel: Cancel | None = None,
) -> Iterator[dict[str, ChunkResult]]:
    """Run the chunks against every candidate; yield {candidate label: ChunkResult} as each chunk is known.

    All candidates get the same stream inputs (the reference's). Functional mode feeds every candidate the
    reference's state inputs; closed loop feeds each candidate its own state, starting from the reference's
    chunk-0 state.
    """
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose {' or '.join(MODES)}")
    if not candidates:
        raise UserError("no candidate to compare")
    n = contract.schedule.chunks if chunks is None else chunks
    if reference.available_chunks is not None and n > reference.available_chunks:
        raise UserError(f"holds {reference.available_chunks} chunks but {n} were asked for (use --chunks)", reference.where)
    single = len(candidates) == 1
    infers = {label: infer_fn(r) for label, r in candidates.items()}
    sides = {label: "candidate" if single else f"candidate {label}" for label in candidates}
    states: dict[str, dict[str, np.ndarray]] = {}
    initial: dict[str, np.ndarray] = {}
    checker = InvariantChecker(contract.invariants)
    metric = contract.trend.metric
    float_outputs = {n for n, s in contract.outputs.items() if s.dtype.startswith(("float", "bfloat"))}

    for plan in plan_chunks(contract.schedule, n):
        if _cancelled(cancel):
            return
        ref = reference.chunk(plan)
        if not initial:
            initial = {k: np.array(v, copy=True) for k, v in ref.state_in.items()}
            states = {label: {k: v.copy() for k, v in initial.items()} for label in candidates}
        ref_out = ref.outputs
        ref_inv = checker.check("reference", ref_out)
        moved = frozenset(
            p.input for p in contract.state
            if p.input in initial and not _same_values(ref_out[p.output], initial[p.input])
        )  # fmt: skip
        results: dict[str, ChunkResult] = {}
        for label, infer in infers.items():
            cand_state = ref.state_in if mode == "functional" else states[label]
            t1 = time.perf_counter()
            cand_out = _infer(infer, {**ref.feeds, **cand_state}, sides[label], plan.index, contract)
            t2 = time.perf_counter()
            drifts: dict[str, LayerDrift] = {}
            valid: dict[str, int] = {}
            errors: dict[str, float] = {}
            for name in contract.outputs:
                r, c = ref_out[name], cand_out[name]
                mask = contract.masks.get(name)
                if mask is not None:
                    r, c = apply_mask(mask, r, c, ref_out)
                    valid[name] = int(r.size)
                try:
                    d = _drift(name, r, c, contract.tolerance_for(name))
                except ValueError as exc:  # shape mismatch between the sides
                    raise StreamError(f"chunk {plan.index}: {exc}", contract.path) from None
                drifts[name] = d
                if name in float_outputs:
                    errors[name] = float(getattr(d, metric))
            invariants = ref_inv + checker.check(sides[label], cand_out)
            failed = [name for name, d in drifts.items() if not d.passed]
            passed = not failed and all(r.passed for r in invariants)
            states[label] = {p.input: np.array(cand_out[p.output], copy=True) for p in contract.state}
            frames = ref.frames if ref.frames is not None else plan.frames
            results[label] = ChunkResult(plan.index, frames, drifts, invariants, errors, passed, failed, valid,
                                         ref.seconds, t2 - t1, moved)  # fmt: skip
        yield results


def iter_stream(
    contract: Contract,
    reference: Runner,
    candidate: Runner,
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    inputs: StreamInputs | None = None,
    cancel: Cancel | None = None,
) -> Iterator[ChunkResult]:
    """One runner against the ONNX Runtime reference runner: each chunk's result as soon as it is known."""
    ref = RunnerReference(contract, reference, inputs)
    for results in iter_streams(contract, ref, {"candidate": candidate}, mode=mode, chunks=chunks, cancel=cancel):
        yield results["candidate"]


def new_report(contract: Contract, mode: str, n: int, *, low_precision: bool = True) -> StreamReport:
    return StreamReport(
        mode=mode, chunks_requested=n, metric=contract.trend.metric, trend_outputs=contract.trend_outputs(),
        min_pass_rate=contract.min_pass_rate, fail_on_growth=contract.trend.fail_on_growth,
        low_precision=low_precision, state_inputs=tuple(p.input for p in contract.state),
        float_outputs=tuple(n for n, s in contract.outputs.items() if s.dtype.startswith(("float", "bfloat"))),
        criteria=contract.criteria,
    )  # fmt: skip


def run_streams(
    contract: Contract,
    reference: ReferenceSource,
    candidates: Mapping[str, Runner],
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    on_chunk: Callable[[dict[str, ChunkResult]], None] | None = None,
    cancel: Cancel | None = None,
    low_precision: Mapping[str, bool] | None = None,
) -> dict[str, StreamReport]:
    """Run the whole stream against every candidate: {label: StreamReport}; `on_chunk({label: result})`."""
    n = contract.schedule.chunks if chunks is None else chunks
    lp = low_precision or {}
    reports = {label: new_report(contract, mode, n, low_precision=lp.get(label, False)) for label in candidates}
    t0 = time.perf_counter()
    for results in iter_streams(contract, reference, candidates, mode=mode, chunks=n, cancel=cancel):
        for label, result in results.items():
            reports[label].add(result)
        if on_chunk is not None:
            on_chunk(results)
    seconds = time.perf_counter() - t0
    for report in reports.values():
        report.cancelled = report.chunks_run < n
        report.fit_trends(contract.trend.alpha, contract.trend.min_growth)
        report.seconds = seconds
    return reports


def run_stream(
    contract: Contract,
    reference: Runner,
    candidate: Runner,
    *,
    mode: str = "closed-loop",
    chunks: int | None = None,
    inputs: StreamInputs | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    cancel: Cancel | None = None,
    low_precision: bool = False,
) -> StreamReport:
    """Run the whole stream; `on_chunk(result)` is called after every chunk (e.g. to plot it live).
    `low_precision`: the candidate rounds (so an output with zero error on every chunk checks nothing)."""
    ref = RunnerReference(contract, reference, inputs)
    cb = None if on_chunk is None else (lambda results: on_chunk(results["candidate"]))
    return run_streams(contract, ref, {"candidate": candidate}, mode=mode, chunks=chunks, on_chunk=cb, cancel=cancel,
                       low_precision={"candidate": low_precision})["candidate"]  # fmt: skip


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _drift(name: str, ref: np.ndarray, cand: np.ndarray, tol) -> LayerDrift:
    """`tensor_drift`, with a shortcut for equal integer tensors (lengths, counts: equal nearly always).

    The metrics cost ~1 ms a tensor whatever its size; a stream runs them for every output of every chunk.
    """
    ref, cand = np.asarray(ref), np.asarray(cand)
    if ref.dtype.kind in "iub" and ref.dtype == cand.dtype and ref.shape == cand.shape and np.array_equal(ref, cand):
        top = float(np.abs(ref.astype(np.float64)).max()) if ref.size else 0.0
        return LayerDrift(
            name=name, shape=list(ref.shape), dtype=str(ref.dtype), max_abs=0.0, mean_abs=0.0, median_abs=0.0,
            p99_abs=0.0, rel_rms=0.0, cosine=1.0, nonfinite_ref=0, nonfinite_cand=0, headroom=top / FP16_MAX,
            worst_index=[0] * ref.ndim if ref.size else [], worst_ref=float(ref.flat[0]) if ref.size else 0.0,
            worst_cand=float(cand.flat[0]) if cand.size else 0.0, passed=True, tolerance=tol,
            quantiles={quantile_label(q): 0.0 for q in QUANTILES},
        )  # fmt: skip
    return tensor_drift(name, ref, cand, tol, quantiles=QUANTILES)


def _cancelled(cancel) -> bool:
    if cancel is None:
        return False
    is_set = getattr(cancel, "is_set", None)
    return bool(is_set() if is_set is not None else cancel())


def _infer(infer: Callable, feeds: dict, side: str, index: int, contract: Contract) -> dict[str, np.ndarray]:
    try:
        out = infer(feeds)
    except UserError:
        raise
    except Exception as exc:  # ORT/TensorRT errors: name the chunk and the side, keep it on one line
        msg = " ".join(str(exc).split())
        raise StreamError(f"chunk {index}: the {side} failed: {msg[:300]}", contract.path) from exc
    missing = [n for n in contract.outputs if n not in out]
    missing += [p.output for p in contract.state if p.output not in out and p.output not in missing]
    if missing:
        raise StreamError(f"chunk {index}: the {side} returned no {', '.join(missing)}", contract.path)
    return dict(out)


def _jf(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _drift_json(d: LayerDrift) -> dict:
    keep = ("max_abs", "mean_abs", "p99_abs", "rel_rms", "cosine", "nonfinite_ref", "nonfinite_cand", "passed",
            "required_atol", "quantiles")  # fmt: skip
    full = d.to_json()
    return {k: full[k] for k in keep}
