"""The result of a layer-wise comparison: verdict, first divergence, ranked table, versioned JSON and CSV.

Schema `trt_tui.compare/1` (bump the number on any incompatible change; readers check it):
{"schema", "model", "reference", "candidate", "precision", "passed", "iterations", "first_divergence",
 "first_nonfinite", "tensors": [{"name", "node", "op_type", "topo_index", "shape", "max_abs", "mean_abs",
 "median_abs", "p99_abs", "rel_rms", "cosine", "nonfinite_ref", "nonfinite_cand", "headroom", "worst_index",
 "worst_ref", "worst_cand", "passed", "tolerance", "histogram": {bucket label: count},
 "worst": [{"index", "ref", "cand", "abs", "iteration"}, ...], ...}], "unpaired", "errors", "warnings", "batches",
 "max_memory", "cancelled", "elapsed_s", "shape_divergence", "nothing_low", "low_precision",
 "targets": [{"target", "output", "measured", "passed"}, ...]}. Non-finite floats are written as the strings
"inf"/"nan". "histogram" (|c - r| over fixed decades, see metrics.HIST_LABELS), "worst" (the top-k elements) and
"targets" (a preset's output targets; when present they decide "passed") were added within /1: readers of /1
ignore keys they do not know, so adding keys needs no new number.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field

from trt_tui.core import jsonio
from trt_tui.core.fileio import atomic_write
from trt_tui.core.parity.constants import DIVERGENCE_GROWTH, RANK_KEYS
from trt_tui.core.parity.metrics import LayerDrift, _json_float

SCHEMA = "trt_tui.compare/1"
CSV_COLUMNS = [
    "topo_index", "name", "node", "op_type", "shape", "passed", "max_abs", "mean_abs", "median_abs", "p99_abs",
    "rel_rms", "cosine", "nonfinite_ref", "nonfinite_cand", "headroom", "worst_index", "worst_ref", "worst_cand",
    "required_atol", "required_rtol",
]  # fmt: skip


def _marker(d: LayerDrift | None) -> dict | None:
    if d is None:
        return None
    return {"name": d.name, "node": d.node, "op_type": d.op_type, "topo_index": d.topo_index,
            "rel_rms": _json_float(d.rel_rms), "max_abs": _json_float(d.max_abs), "growth": _json_float(d.growth),
            "nonfinite_ref": d.nonfinite_ref, "nonfinite_cand": d.nonfinite_cand}  # fmt: skip


@dataclass
class ShapeDivergence:
    """The first tensor (topological order) whose shape differs between the two sides: a finding of its own
    kind (e.g. fp16 really produces a shorter waveform), reported once instead of one error per tensor
    downstream. `downstream`: how many other tensors differ in shape too (none of them is compared)."""

    name: str
    node: str
    op_type: str
    topo_index: int
    reference_shape: list[int]
    candidate_shape: list[int]
    downstream: int = 0

    def one_line(self) -> str:
        more = f"; {self.downstream} more tensor(s) downstream differ in shape (not compared)" if self.downstream else ""
        ref, cand = ("x".join(map(str, s)) or "scalar" for s in (self.reference_shape, self.candidate_shape))
        return f"#{self.topo_index} {self.name} ({self.op_type} node {self.node}): reference {ref} vs candidate {cand}{more}"

    def to_json(self) -> dict:
        return {"name": self.name, "node": self.node, "op_type": self.op_type, "topo_index": self.topo_index,
                "reference_shape": self.reference_shape, "candidate_shape": self.candidate_shape,
                "downstream": self.downstream}  # fmt: skip


@dataclass
class CompareResult:
    model: str
    reference: str
    candidate: str
    tensors: list[LayerDrift]  # topological order
    precision: str | None = None
    iterations: int = 1
    unpaired: dict[str, list[str]] = field(default_factory=dict)  # "reference_only"/"candidate_only" -> names
    errors: list[str] = field(default_factory=list)  # tensors that could not be compared (shape mismatch ...)
    warnings: list[str] = field(default_factory=list)
    batches: int = 0
    max_memory: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    constants_skipped: int = 0  # tensors computable from constants alone (weights): never compared
    shape_divergence: ShapeDivergence | None = None  # the first tensor whose shape differs (fails the run)
    low_precision: object | None = None  # core.precision.summary.LowPrecisionSummary of a rewritten candidate
    nothing_low: str | None = None  # why the candidate ran nothing in low precision: never a PASS (CLI exit 2)
    # a preset's output targets (`[comparison] targets`, e.g. from trt-tui search): each {"target", "output",
    # "measured", "passed"}; when there are any, they decide the verdict instead of every tensor's tolerance
    targets: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Everything compared is within tolerance (or, with output targets, every target is met), nothing
        failed to compare, and the run was not cut short."""
        within = all(t["passed"] for t in self.targets) if self.targets else all(d.passed for d in self.tensors)
        return (bool(self.tensors) and not self.errors and not self.cancelled and self.shape_divergence is None
                and self.nothing_low is None and within)  # fmt: skip

    @property
    def kept_fp32(self) -> list:
        """Every candidate node kept FP32, with its reason (KeptFp32), when the candidate is a trt_tui rewrite."""
        return list(self.low_precision.kept_fp32) if self.low_precision is not None else []

    @property
    def failed(self) -> list[LayerDrift]:
        return [d for d in self.tensors if not d.passed]

    @property
    def first_divergence(self) -> LayerDrift | None:
        """The topologically first tensor outside its tolerance whose node adds error of its own (rel_rms at
        least DIVERGENCE_GROWTH times its inputs', or non-finite where the reference is not); when every
        failing tensor only carries drift from upstream, the first failing one."""
        failed = [d for d in self.tensors if not d.passed]
        own = (d for d in failed if (d.growth is not None and d.growth >= DIVERGENCE_GROWTH) or d.nonfinite_cand > d.nonfinite_ref)
        return next(own, failed[0] if failed else None)

    @property
    def first_nonfinite(self) -> LayerDrift | None:
        """The topologically first tensor where the candidate has inf/NaN that the reference does not."""
        return next((d for d in self.tensors if d.nonfinite_cand > d.nonfinite_ref), None)

    def ranked(self, key: str = "rel_rms", top: int | None = None) -> list[LayerDrift]:
        """Worst first (cosine: lowest first; topo_index: graph order). NaN ranks as the worst."""
        if key not in RANK_KEYS:
            raise ValueError(f"rank key must be one of {', '.join(RANK_KEYS)}")
        if key == "topo_index":
            rows = list(self.tensors)
        else:
            sign = 1.0 if key == "cosine" else -1.0

            def score(d: LayerDrift) -> tuple[bool, float]:
                v = getattr(d, key)
                return (d.passed, -math.inf if math.isnan(v) else sign * v)

            rows = sorted(self.tensors, key=score)
        return rows if top is None else rows[:top]

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "reference": self.reference,
            "candidate": self.candidate,
            "precision": self.precision,
            "passed": self.passed,
            "iterations": self.iterations,
            "first_divergence": _marker(self.first_divergence),
            "first_nonfinite": _marker(self.first_nonfinite),
            "tensors": [d.to_json() for d in self.tensors],
            "counts": {"compared": len(self.tensors), "failed": len(self.failed), "errors": len(self.errors)},
            "unpaired": self.unpaired,
            "errors": self.errors,
            "warnings": self.warnings,
            "batches": self.batches,
            "max_memory": self.max_memory,
            "cancelled": self.cancelled,
            "elapsed_s": round(self.elapsed_s, 3),
            "constants_skipped": self.constants_skipped,
            "shape_divergence": self.shape_divergence.to_json() if self.shape_divergence else None,
            "nothing_low": self.nothing_low,
            "low_precision": self.low_precision.to_json() if self.low_precision is not None else None,
            "targets": [{k: _json_float(v) for k, v in t.items()} for t in self.targets],  # "nan": not None (not compared)
        }

    def write_json(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        # a row per tensor on one line (jsonio.dumps): ~10x faster than indenting every field at scale
        atomic_write(path, jsonio.dumps(self.to_json(), indent=1, one_line_from=2) + "\n", overwrite=overwrite)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for d in self.tensors:
            row = d.to_json()
            writer.writerow(["x".join(map(str, v)) if isinstance(v := row[c], list) else v for c in CSV_COLUMNS])
        return buf.getvalue()

    def write_csv(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        atomic_write(path, self.to_csv(), overwrite=overwrite)
