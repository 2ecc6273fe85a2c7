"""The layer-wise comparison engine: exact-name pairing, batches under a memory budget, streamed results.

    comparison = prepare_comparison("model.onnx", "emulate", precision="fp16", pins=[...])
    for update in comparison.run(cancel=event):      # one BatchUpdate per batch, topological order
        table.add_rows(update.drifts)                 # LayerDrift rows, ready to show
    result = comparison.result()                      # CompareResult: verdict, first divergence, JSON/CSV

or `compare(...)` to do all of it with an optional `on_batch` callback.

Tensors are paired by exact name only (Polygraphy's default pairing falls back to position with only a
warning). Each batch holds the reference's and the candidate's tensors for at most about `max_memory`
bytes, and every tensor is reduced to its statistics as soon as both sides have it, then dropped.
Cancellation is checked between batches, so the rows already streamed stay valid.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from concurrent.futures import wait as futures_wait
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from trt_tui.core.errors import UserError
from trt_tui.core.model_checks import check_runnable
from trt_tui.core.tolerance import parse_target
from trt_tui.core.graph import GraphIndex, file_id, load_graph
from trt_tui.core.parity.constants import AUTO_MAX_MEMORY_SHARE, DEFAULT_MAX_MEMORY, MIN_AUTO_MAX_MEMORY, UNIT_ROUNDOFF
from trt_tui.core.precision.recurrent import declare_sequence_shapes
from trt_tui.core.precision.summary import LowPrecisionSummary
from trt_tui.core.parity.candidates import CandidateContext, candidate_kind
from trt_tui.core.parity.determinism import RANDOM_SEED, random_note, refuse_unseedable, seed_random_ops
from trt_tui.core.parity.inputs import InputSpec, import_for_random_feeds, load_feeds, load_saved_outputs, random_feeds
from trt_tui.core.parity.metrics import (
    BF16_MAX,
    FP16_MAX,
    TOP_K,
    LayerDrift,
    TolerancePolicy,
    Workspace,
    default_tolerance,
    merge_iterations,
    tensor_drift,
)
from trt_tui.core.parity.results import CompareResult, ShapeDivergence
from trt_tui.core.parity.runners import (
    CandidateSpec,
    default_providers,
    load_model,
    parse_candidate,
    parse_reference,
)
from trt_tui.core.parity.providers import GPU_PROVIDERS, require_cuda
from trt_tui.core.parity.segments import KEEP_FREED_BYTES
from trt_tui.core.parity.sides import OnnxSide, SavedSide
from trt_tui.core.weights import WeightSource, nbytes, weight_bytes_by_output

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}  # fmt: skip


def parse_size(text: str) -> int:
    """'512M', '2G', '1.5GiB', '1048576' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"bad size {text!r}: expected e.g. 512M or 2G")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size <= 0:
        raise UserError(f"bad size {text!r}: must be positive")
    return size


@dataclass
class CompareOptions:
    tolerances: TolerancePolicy | None = None  # None: the candidate precision's default (metrics.default_tolerance)
    max_memory: int | None = None  # bytes of tensors (and the weights reading them) held at once; None: auto_max_memory
    quantiles: tuple[float, ...] = (0.99,)
    match: str | None = None  # regex (searched) on tensor names: compare only these
    providers: Sequence[str] | None = None
    top_k: int = TOP_K  # worst elements (index, both values) kept per tensor for the drill-down and JSON
    targets: tuple[str, ...] = ()  # output targets (tolerance.parse_target) that decide the verdict, e.g. a preset's


@dataclass
class BatchUpdate:
    """One batch's rows, streamed as soon as they are computed."""

    batch: int  # 0-based
    batches: int
    drifts: list[LayerDrift]  # topological order, merged over iterations
    done: int  # tensors compared so far
    total: int  # tensors to compare in all
    elapsed_s: float
    errors: list[str] = field(default_factory=list)


# Threads that reduce a batch's tensors at once (each tensor whole on one thread, so results do not depend on
# it): one per core this process may use, at most 4. They run beside ONNX Runtime's own threads (the next
# inference): more would only take turns; measured on 2 cores, 4 threads cost ~3 s more wall and ~4 s more
# CPU than 2 on a parakeet-scale comparison.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
REDUCE_THREADS = max(1, min(4, CORES))


def _tensor_order(index: GraphIndex) -> dict[str, tuple[int, int, str, str]]:
    """Float tensors computed by top-level nodes -> (topo_index, output slot, node, op_type). Tensors computable
    from constants alone are weights, not layers (GraphIndex.constant_tensors): never compared."""
    order = {}
    constant = index.constant_tensors
    for node in index.top_level_nodes:
        for slot, t in enumerate(node.outputs):
            info = index.tensor(t) if t else None
            if t and t not in constant and (info is None or info.dtype in (None, "undefined") or info.is_float):
                order[t] = (node.topo_index, slot, node.name, node.op_type)
    return order


def estimate_sizes(model: onnx.ModelProto, feeds: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, int]:
    """Bytes of each tensor as float32, from shape inference with the concrete input shapes.

    Unknown shapes fall back to the largest known size (or the largest input), erring on the side of more batches.
    """
    graph = onnx.GraphProto()
    graph.node.extend(model.graph.node)
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.INT64 or int(np.prod(t.dims, dtype=np.int64)) <= 64:
            graph.initializer.append(t)  # shape-like constants: Reshape & co. need their values
        else:  # weights: only their dims matter, and a value_info gives them without copying the data
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    for i in model.graph.input:
        if i.name in feeds:
            arr = feeds[i.name]
            graph.input.append(onnx.helper.make_tensor_value_info(i.name, i.type.tensor_type.elem_type, list(arr.shape)))
    probe = onnx.helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    probe.functions.extend(model.functions)
    shapes: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
        for vi in (*inferred.graph.value_info, *inferred.graph.output):
            dims = vi.type.tensor_type.shape.dim
            if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                shapes[vi.name] = int(np.prod([d.dim_value for d in dims], dtype=np.int64)) * 4
    except Exception:  # shape inference is a best effort here; the fallback below still bounds batches
        pass
    fallback = max([*shapes.values(), *(a.size * 4 for a in feeds.values()), 4])
    return {t: shapes.get(t, fallback) for t in names}


def _mib(n: int) -> str:
    """A byte count as --max-memory writes one (12.5M, 1K, 300B)."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n}B"


def auto_max_memory(tensor_bytes: int, weight_bytes: int) -> int:
    """The default budget: a share of what the compared tensors and the model's weights take on both sides,
    within [MIN_AUTO_MAX_MEMORY, DEFAULT_MAX_MEMORY] (constants.py says why). The weights once each: a batch's
    cost charges a weight to every node reading it (captcha_crnn: 262 MB charged for 18 MB of weights)."""
    share = 2 * (tensor_bytes + weight_bytes) // AUTO_MAX_MEMORY_SHARE
    return min(DEFAULT_MAX_MEMORY, max(MIN_AUTO_MAX_MEMORY, share))


def make_batches(names: Sequence[str], sizes: dict[str, int], max_memory: int) -> list[list[str]]:
    """Consecutive (topological) groups whose two-sided size stays within max_memory; a huge tensor goes alone."""
    batches: list[list[str]] = []
    current: list[str] = []
    held = 0
    for t in names:
        cost = 2 * sizes[t]
        if current and held + cost > max_memory:
            batches.append(current)
            current, held = [], 0
        current.append(t)
        held += cost
    if current:
        batches.append(current)
    return batches


class Comparison:
    """A prepared comparison (sides built, tensors paired, batches planned). Run it once with `run()`."""

    def __init__(self, index: GraphIndex, reference, candidate, feeds: list[dict[str, np.ndarray]],
                 options: CompareOptions, *, precision: str | None = None, warnings: list[str] | None = None):  # fmt: skip
        self.index = index
        self.reference = reference
        self.candidate = candidate
        self.feeds = feeds
        self.options = options
        self.precision = precision
        self.low_max = BF16_MAX if precision == "bf16" else FP16_MAX
        self.warnings = list(warnings or [])
        self.errors: list[str] = []
        self.rows: list[LayerDrift] = []
        self.shape_mismatches: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # tensor -> (ref, cand)
        # what a trt_tui rewrite put in low precision (emulate, mixed, a converted onnx:); None: not known
        self.low_precision: LowPrecisionSummary | None = None
        self.cancelled = False
        self._started = time.perf_counter()
        self._elapsed = 0.0
        self._pool = None  # reduction threads, made on first use
        self._scratch = threading.local()  # each reduction thread's metrics.Workspace

        order = _tensor_order(index)
        ref_names, cand_names = reference.names(), candidate.names()
        pattern = re.compile(options.match) if options.match else None
        wanted = [t for t in order if pattern is None or pattern.search(t)]
        self.names = [t for t in wanted if t in ref_names and t in cand_names]
        self.meta = order
        self.constants_skipped = sum(1 for n in index.top_level_nodes for t in n.outputs
                                     if t in index.constant_tensors and t not in index.initializers)  # fmt: skip
        # A rewritten ONNX candidate has private tensors (e.g. pre-rounding values), a marked TensorRT engine
        # built from a preset has its own (Casts of the mixed ONNX, unnamed layers): not worth listing.
        private = candidate.private_names
        foreign = (lambda t: t in order) if private else (lambda t: True)
        self.unpaired = {
            "reference_only": [t for t in wanted if t in ref_names and t not in cand_names],
            "candidate_only": sorted(t for t in cand_names - ref_names if foreign(t)),
        }
        if not self.names:
            raise UserError(f"{reference.label} and {candidate.label} expose no float tensor under the same name", index.path)
        sizes = estimate_sizes(index.model, feeds[0], self.names)  # the reference graph, without its weights
        tensor_bytes = sum(sizes.values())
        # --max-memory bounds weights too: a tensor's cost includes the weights its node reads (both sides)
        for t, extra in weight_bytes_by_output(index.model).items():
            if t in sizes:
                sizes[t] += extra
        self.max_memory = options.max_memory or auto_max_memory(tensor_bytes, sum(nbytes(t) for t in index.model.graph.initializer))
        self.batches = make_batches(self.names, sizes, self.max_memory)
        biggest = max(self.names, key=lambda t: sizes[t])
        if options.max_memory and 2 * sizes[biggest] > options.max_memory:  # a given budget it cannot keep
            self.warnings.append(
                f"--max-memory {_mib(options.max_memory)} is below what tensor {biggest!r} alone takes on both sides "
                f"with the weights its node reads ({_mib(2 * sizes[biggest])}): such tensors go in a batch of their own")  # fmt: skip
        self.views = _flat_views(index, order, self.batches)
        self.viewed = set(self.views.values())
        # Both sides ONNX models on the CPU: each side's inference runs on its own thread with half the cores
        # for ONNX Runtime's intra-op threads, instead of one after the other with all of them. Same numbers
        # (an intra-op thread computes whole output elements); on 2 cores two single-threaded sessions waste
        # no time in ONNX Runtime's parallel loops waiting for a core the reduction threads hold (measured on a
        # parakeet-scale comparison, 5 A/B runs: CPU time -9%, wall time -7% by their medians).
        self._concurrent = all(isinstance(side, OnnxSide) and side.on_cpu for side in (reference, candidate))
        if self._concurrent:
            reference.threads = candidate.threads = max(1, CORES // 2)
        for side in (reference, candidate):
            if isinstance(side, OnnxSide):  # freed memory kept for the next segment: in step with the budget
                side.keep_freed = min(KEEP_FREED_BYTES, 2 * self.max_memory)
        self._side_pool = None  # the reference side's thread, made on first use
        reference.prepare(self.batches, feeds)
        candidate.prepare(self.batches, feeds)

    def run(self, cancel: threading.Event | None = None) -> Iterator[BatchUpdate]:
        """Compare batch after batch, yielding each batch's rows; stops early (cancelled) when `cancel` is set.

        An inference's tensors are reduced while the next inference runs (or the next batch's sessions are made):
        ONNX Runtime and the reduction threads share the cores instead of taking turns. At most one inference's
        tensors wait for their reduction that way, and only when they fit in half of --max-memory (else the
        reduction is waited for first, as before). A batch's rows are yielded once all its reductions are done."""
        policy = self.options.tolerances or TolerancePolicy(default_tolerance(self.precision))
        state = _Pipeline()

        def stopped() -> bool:
            return cancel is not None and cancel.is_set()

        for k, batch in enumerate(self.batches):
            if stopped():
                self.cancelled = True
                break
            current = _BatchRows(k, batch)
            state.batches.append(current)
            with self.reference.open(k) as ref, self.candidate.open(k) as cand:
                for i in range(len(self.feeds)):
                    r_out, c_out = self._run_sides(ref, cand, i)
                    yield from self._settle(state, running=current)  # the previous inference's reductions ran meanwhile
                    if stopped() and k:  # cancelled on the previous batch's rows: this one is never shown, as before
                        self.cancelled = True
                        state.abandon()
                        break
                    held: dict[str, tuple] = {}  # a view's source: its arrays and reduction, this iteration
                    for t in batch:
                        r, c = r_out.pop(t), c_out.pop(t)
                        if not (_floatish(r) or _floatish(c)):
                            continue  # a tensor typed only at run time turned out not to be float
                        if r.shape != c.shape:  # a finding of its own kind (ShapeDivergence), not an error line
                            if not self.shape_mismatches:  # shown while streaming; the result holds the finding
                                current.notes.append(f"{t}: shape differs, reference {r.shape} vs candidate {c.shape}")
                            self.shape_mismatches.setdefault(t, (tuple(r.shape), tuple(c.shape)))
                            current.per_tensor.pop(t, None)
                            continue
                        if t in current.per_tensor:
                            tolerance = policy.for_tensor(t)
                            source = held.get(self.views.get(t))
                            if source is not None and source[3] == tolerance:
                                future = self._submit(self._drift_of_view, t, r, c, *source)
                            else:
                                future = self._reduce(t, r, c, tolerance)
                            if t in self.viewed:
                                held[t] = (r, c, future, tolerance)
                            state.pending.append((current.per_tensor[t], future, r.nbytes + c.nbytes))
                        del r, c
                    del r_out, c_out, held
                    if sum(n for _, _, n in state.pending) > self.max_memory // 2:
                        yield from self._settle(state, running=current)  # too big to hold during the next inference
            if self.cancelled:
                break
        yield from self._settle(state)
        self._close_pool()
        for side in (self.reference, self.candidate):
            side.close()
            if isinstance(side, OnnxSide) and side.placements:
                self._report_cpu_fallbacks(side)

    def _run_sides(self, ref, cand, i: int) -> tuple[dict, dict]:
        """Both sides' tensors of iteration i: at once on two threads when both are CPU ONNX sides, else in turn."""
        if not self._concurrent:
            return ref.run(i), cand.run(i)
        if self._side_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._side_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trt_tui_reference")
        pending = self._side_pool.submit(ref.run, i)
        try:
            c_out = cand.run(i)
            r_out = pending.result()  # (a Ctrl-C may land while waiting here too)
        except BaseException as exc:
            futures_wait([pending])  # the reference's session must be done before its segment is closed
            ref_error = pending.exception()
            if isinstance(exc, Exception) and ref_error is not None and ref_error is not exc:
                raise ref_error from None  # both failed: the reference's error, as when the sides run in turn
            raise
        return r_out, c_out

    def _settle(self, state: _Pipeline, running: _BatchRows | None = None) -> Iterator[BatchUpdate]:
        """Wait for the pending reductions (in submission order: iterations stay in order per tensor), then
        yield the batches before `running` (the one still being run), all of their reductions being done."""
        for rows, future, _ in state.pending:
            rows.append(future.result())
        state.pending = []
        while state.batches and state.batches[0] is not running:
            finished = state.batches.pop(0)
            drifts = []
            for t, ds in finished.per_tensor.items():
                if not ds:
                    continue
                d = merge_iterations(ds)
                d.topo_index, _, d.node, d.op_type = self.meta[t]
                drifts.append(d)
            state.done += len(finished.batch)
            self.rows.extend(drifts)
            self._elapsed = time.perf_counter() - self._started
            yield BatchUpdate(finished.k, len(self.batches), drifts, state.done, len(self.names), self._elapsed, finished.notes)

    def _reduce(self, t: str, r: np.ndarray, c: np.ndarray, tolerance):
        """`tensor_drift` of one tensor on the reduction threads: a batch's tensors are reduced in parallel (numpy
        releases the GIL in its loops); identical results, each tensor's reduction runs whole on one thread,
        with that thread's scratch arrays (metrics.Workspace)."""
        return self._submit(self._drift, t, r, c, tolerance)

    def _submit(self, fn, *args):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=REDUCE_THREADS, thread_name_prefix="trt_tui_reduce")
        return self._pool.submit(fn, *args)

    def _drift(self, t: str, r: np.ndarray, c: np.ndarray, tolerance) -> LayerDrift:
        workspace = getattr(self._scratch, "workspace", None)
        if workspace is None:
            workspace = self._scratch.workspace = Workspace()  # one per reduction thread, gone with it
        return tensor_drift(t, r, c, tolerance, quantiles=self.options.quantiles, low_max=self.low_max,
                            top_k=self.options.top_k, workspace=workspace)  # fmt: skip

    def _drift_of_view(self, t: str, r, c, r_src, c_src, source, tolerance) -> LayerDrift:
        """A flat view's row: its source's (`_view_of`) once both sides hold the same elements as the source's,
        checked element for element (two comparison passes instead of the ~25 of a reduction: a parakeet-scale
        encoder's Reshape/Unsqueeze/Identity outputs are ~10% of its elements); else reduced as any tensor.
        Runs after its source's reduction, submitted before it (the pool starts tasks in order: no deadlock)."""
        drift = source.result()
        same = (r.dtype == r_src.dtype and c.dtype == c_src.dtype and r.size == r_src.size and c.size == c_src.size
                and not (drift.nonfinite_ref or drift.nonfinite_cand)  # NaN: array_equal says unequal anyway
                and np.array_equal(r.reshape(-1), r_src.reshape(-1)) and np.array_equal(c.reshape(-1), c_src.reshape(-1)))  # fmt: skip
        return _view_of(drift, t, r.shape) if same else self._drift(t, r, c, tolerance)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._side_pool is not None:
            self._side_pool.shutdown(wait=True)
            self._side_pool = None

    def _report_cpu_fallbacks(self, side: OnnxSide) -> None:
        """A GPU run's float nodes that ONNX Runtime put on its CPU EP (shape arithmetic is CPU by design)."""
        compared = set(self.names)
        outputs = {n.name: n.outputs for n in self.index.nodes}
        nodes = [n for n in side.cpu_fallbacks() if any(t in compared for t in outputs.get(n, ()))]
        if nodes:
            self.warnings.append(f"{side.label}: {len(nodes)} compute node(s) ran on ONNX Runtime's CPU EP, not the GPU "
                                 "(no CUDA kernel for that op and type): " + ", ".join(nodes[:10])
                                 + (" ..." if len(nodes) > 10 else ""))  # fmt: skip

    def _set_growth(self, rows: list[LayerDrift]) -> None:
        """Each row's rel_rms over the largest of its inputs' (graph inputs and weights count as rounded once,
        u/2; other inputs not compared count as 0): how much of its error the node adds itself."""
        floor = UNIT_ROUNDOFF.get(self.precision or "", 0.0) / 2
        rel = {d.name: d.rel_rms for d in rows}
        external = {t.name for t in self.index.inputs} | self.index.constant_tensors
        for d in rows:
            node = self.index.node(d.node) if d.node else None
            if node is None:
                continue
            carried = [rel[t] if t in rel else floor if t in external else 0.0 for t in node.inputs if t]
            base = max([floor, *carried])
            if math.isnan(d.rel_rms):
                d.growth = math.inf
            elif base > 0:
                d.growth = d.rel_rms / base
            else:
                d.growth = math.inf if d.rel_rms > 0 else 0.0

    def _shape_divergence(self) -> ShapeDivergence | None:
        """The topologically first tensor whose shape differs, its producer and both shapes."""
        if not self.shape_mismatches:
            return None
        first = min(self.shape_mismatches, key=lambda t: self.meta[t][:2])
        topo, _, node, op_type = self.meta[first]
        ref_shape, cand_shape = self.shape_mismatches[first]
        return ShapeDivergence(first, node, op_type, topo, list(ref_shape), list(cand_shape), len(self.shape_mismatches) - 1)

    def _nothing_low(self, rows: list[LayerDrift]) -> str | None:
        """Why this candidate ran nothing in low precision (None: it did, or it cannot be told). A comparison
        of FP32 with FP32 must never PASS: the rewrite's own count says so, or, when low precision was asked
        for, every compared tensor is bit-identical to the reference."""
        if self.low_precision is not None and self.low_precision.ran_nothing_low:
            return self.low_precision.one_line()
        if self.precision and rows and not self.cancelled and all(d.max_abs == 0 and d.nonfinite_cand == d.nonfinite_ref for d in rows):
            return f"nothing ran in {self.precision}: every compared tensor is bit-identical to the FP32 reference"
        return None

    def result(self) -> CompareResult:
        rows = sorted(self.rows, key=lambda d: (d.topo_index, self.meta[d.name][1]))
        self._set_growth(rows)
        return CompareResult(
            model=str(self.index.path), reference=self.reference.label, candidate=self.candidate.label, tensors=rows,
            precision=self.precision, iterations=len(self.feeds), unpaired=self.unpaired, errors=self.errors,
            warnings=self.warnings, batches=len(self.batches), max_memory=self.max_memory,
            cancelled=self.cancelled, elapsed_s=self._elapsed, constants_skipped=self.constants_skipped,
            shape_divergence=self._shape_divergence(), low_precision=self.low_precision,
            nothing_low=self._nothing_low(rows), targets=self._targets(rows),
        )  # fmt: skip

    def _targets(self, rows: list[LayerDrift]) -> list[dict]:
        """Each output target against the graph outputs it names: met when its metric is within the bound and no
        element's difference is inf/NaN (LayerDrift.nonfinite_difference: the search's check, on the worst
        iteration's row)."""
        by_name = {d.name: d for d in rows}
        outputs = [t.name for t in self.index.outputs if t.name in by_name]
        checks = []
        for target in map(parse_target, self.options.targets):
            # no graph output compared (--match): the target checks nothing, which must not pass by the tolerances
            for name in [target.output] if target.output else outputs or [None]:
                row = by_name.get(name)
                if row is None:
                    checks.append({"target": target.text, "output": name, "measured": None, "passed": False})
                    continue
                measured = getattr(row, target.metric)
                met = target.met_by(measured) and not row.nonfinite_difference()
                checks.append({"target": target.text, "output": name, "measured": measured, "passed": met})
        return checks


@dataclass
class _BatchRows:
    """One batch's rows as its reductions come in: tensor -> one LayerDrift per iteration, in order."""

    k: int
    batch: list[str]
    per_tensor: dict[str, list[LayerDrift]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.per_tensor = {t: [] for t in self.batch}


@dataclass
class _Pipeline:
    """Reductions still running (rows to append to, future, bytes held) and the batches they belong to."""

    pending: list = field(default_factory=list)
    batches: list[_BatchRows] = field(default_factory=list)
    done: int = 0

    def abandon(self) -> None:
        """Drop the running batch (cancelled): its reductions' results are never used."""
        for _, future, _ in self.pending:
            future.cancel()
        self.pending = []
        self.batches = []


# Ops whose output holds its data input's elements in the same flat order (only the shape changes).
FLAT_VIEW_OPS = frozenset({"Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze"})


def _flat_views(index: GraphIndex, meta: dict, batches: Sequence[Sequence[str]]) -> dict[str, str]:
    """{compared output of a FLAT_VIEW_OPS node: its data input}, where that input is compared in the same batch
    (earlier in it: batches are topological). Such a row is its input's, relabelled (`_view_of`)."""
    views = {}
    for batch in batches:
        here = set(batch)
        for t in batch:
            _, _, node_name, op_type = meta[t]
            if op_type in FLAT_VIEW_OPS:
                node = index.node(node_name)
                if node is not None and node.inputs and node.inputs[0] in here:
                    views[t] = node.inputs[0]
    return views


def _view_of(drift: LayerDrift, t: str, shape: tuple[int, ...]) -> LayerDrift:
    """`drift` (of a tensor with the same elements in the same flat order) as the row of `t`, of `shape`: every
    statistic is over the same elements in the same order, so bit for bit what reducing `t` would give; only
    the indices are unravelled in the new shape."""

    def reindex(index: list[int]) -> list[int]:
        flat = int(np.ravel_multi_index(index, drift.shape)) if drift.shape else 0
        return [int(i) for i in np.unravel_index(flat, shape)] if shape else []

    return replace(drift, name=t, shape=[int(x) for x in shape],
                   worst_index=reindex(drift.worst_index) if drift.worst_index or not drift.shape else [],
                   worst=[{**e, "index": reindex(e["index"])} for e in drift.worst])  # fmt: skip


def _floatish(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"  # ml_dtypes' bfloat16 has kind "V"


def prepare_comparison(
    model: str | os.PathLike[str],
    candidate: CandidateSpec | str = "emulate",
    *,
    reference: str = "onnxruntime",
    precision: str = "fp16",
    pins: Sequence[str] = (),
    inputs: InputSpec | str | os.PathLike[str] | list[dict[str, np.ndarray]] | None = None,
    options: CompareOptions | None = None,
    index: GraphIndex | None = None,
) -> Comparison:
    """Build both sides, the feeds, the pairing and the batch plan. Bad input raises UserError. `index`: the
    model already indexed (a ComparisonRequest passes its own; None indexes it here)."""
    options = options or CompareOptions()
    index = index if index is not None else load_graph(model, map_weights=True)  # its model is the comparison's
    spec = parse_candidate(candidate, precision=precision, pins=pins) if isinstance(candidate, str) else candidate
    kind = candidate_kind(spec.kind)  # the registry (candidates.py): what it needs, how its side is built
    ref_kind, ref_path = parse_reference(reference)
    if kind.gpu:  # real fp16/bf16 GPU kernels: both sides on the CUDA EP (TF32 off), CPU EP as fallback
        require_cuda(f"the {spec.kind} candidate")
        providers = list(options.providers or GPU_PROVIDERS)
    else:
        providers = list(options.providers or default_providers())
    warnings: list[str] = []
    random = {n.name for n in index.random_nodes()}
    full = _fp32_model(model, index, random) if ref_kind == "onnxruntime" or kind.needs_model else None
    if random:  # the same seed on both sides, or a refusal for a side we cannot seed
        if ref_kind == "outputs":
            refuse_unseedable(index, "the reference")
        if not kind.seedable:
            refuse_unseedable(index, f"candidate {spec.label}")
        if full is not None:
            seeded = seed_random_ops(full, random)
            warnings.append(f"{random_note(index)}: seeded alike on both sides (seed {RANDOM_SEED:g}; {seeded} had none)")

    weights = WeightSource(Path(model).parent)  # external data stays on disk, mapped segment by segment
    ref_side = OnnxSide(full, "onnxruntime fp32", providers, weights) if ref_kind == "onnxruntime" else SavedSide(load_saved_outputs(ref_path))
    source, source_weights = full, None
    feed_warnings: list[str] = []
    feeds = None
    if kind.static_recurrent and _has_recurrent(full):
        # a GRU/LSTM/RNN's running state is rounded at every step only over a static sequence length: give
        # the emulation the shapes this comparison feeds (the reference runs the model as it is)
        feeds = _feeds(inputs, index, ref_kind == "outputs", kind.saved, feed_warnings)
        source, source_weights = _with_static_inputs(full, feeds, Path(model).parent)
    # else the inputs are drawn while the candidate is built (a model of GBs: its weights read for their range):
    # numpy releases the GIL in both (0.4 s of one busy core before a parakeet-scale model's first inference)
    from concurrent.futures import ThreadPoolExecutor

    import_for_random_feeds()  # on this thread: Polygraphy's imports race when two threads import at once
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trt_tui_feeds") as pool:
        drawing = None if feeds is not None else pool.submit(_feeds, inputs, index, ref_kind == "outputs", kind.saved, feed_warnings)
        setup = kind.setup(CandidateContext(spec, index, Path(model), source, providers, random, warnings,
                                            model_weights=source_weights))  # fmt: skip
        feeds = feeds if drawing is None else drawing.result()
    warnings.extend(feed_warnings)  # after the candidate's, as when they were made one after the other
    comparison = Comparison(index, ref_side, setup.side, feeds, options, precision=setup.precision, warnings=warnings)
    comparison.low_precision = setup.low_precision
    return comparison


def _fp32_model(model: str | os.PathLike[str], index: GraphIndex, random: set[str]) -> onnx.ModelProto:
    """The FP32 model the comparison runs (weights in external data left on disk). The index's own parse when
    the file is still the one it read and nothing will be changed in it (random nodes get a seed): a model's
    inline weights would otherwise be held twice for the whole run (52 MB of 340 on ddddocr_ocr). Nothing
    in a comparison writes to it (tested)."""
    if random or index.file_id is None or file_id(model) != index.file_id or Path(model).resolve() != Path(index.path).resolve():
        return load_model(model, map_weights=not random)  # seeding writes to it: a plain parse then
    check_runnable(index.model, Path(model))  # what load_model checks
    return index.model


def _feeds(inputs, index: GraphIndex, ref_saved: bool, cand_saved: bool, warnings: list[str]) -> list[dict[str, np.ndarray]]:
    """The comparison's input data (the same for a given `inputs`: random feeds are seeded). `*_saved`: that
    side is saved outputs, compared on the inputs that made them, never on random ones."""
    if isinstance(inputs, list):
        feeds = inputs
    elif isinstance(inputs, (str, os.PathLike)):
        feeds = load_feeds(inputs, index)
    else:
        for saved, label in ((ref_saved, "the reference"), (cand_saved, "the candidate")):
            if saved:
                raise UserError(f"{label} is saved outputs: give the inputs that produced them (--inputs FILE)")
        feeds = random_feeds(index, inputs or InputSpec(), warnings)
    if not feeds:
        raise UserError("no input data: zero iterations")
    return feeds


def _has_recurrent(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("GRU", "LSTM", "RNN") for n in model.graph.node)


def _with_static_inputs(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], base_dir: Path):
    """(A copy of `model` whose graph inputs have the feeds' concrete shapes, the DerivedWeights its big inline
    weights are read through, from `model`) when every iteration has the same shapes; else (model, None)."""
    from trt_tui.core.precision.writing import by_reference

    shapes = {k: v.shape for k, v in feeds[0].items()}
    if any({k: v.shape for k, v in f.items()} != shapes for f in feeds[1:]):
        return model, None
    out, weights = by_reference(model, base_dir)  # not a copy of the weights: they stay in `model`
    for vi in out.graph.input:
        if vi.name in shapes and vi.type.HasField("tensor_type"):
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == len(shapes[vi.name]):
                for d, n in zip(dims, shapes[vi.name]):
                    d.Clear()
                    d.dim_value = int(n)
    del out.graph.value_info[:]  # stale symbolic shapes would contradict the static ones
    declare_sequence_shapes(out, feeds[0], weights)  # sequence lengths shape inference cannot follow
    return out, weights


def compare(
    model: str | os.PathLike[str],
    candidate: CandidateSpec | str = "emulate",
    *,
    on_batch: Callable[[BatchUpdate], None] | None = None,
    cancel: threading.Event | None = None,
    **kwargs,
) -> CompareResult:
    """`prepare_comparison(model, candidate, **kwargs)`, run to the end (or `cancel`), calling `on_batch` per batch."""
    comparison = prepare_comparison(model, candidate, **kwargs)
    for update in comparison.run(cancel=cancel):
        if on_batch is not None:
            on_batch(update)
    return comparison.result()
