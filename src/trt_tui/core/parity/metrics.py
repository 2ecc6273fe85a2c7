"""Per-tensor drift metrics and Polygraphy-compatible pass/fail: the one results schema for a tensor.

`tensor_drift(name, ref, cand, tolerance)` reduces a (reference, candidate) pair to a `LayerDrift` at once,
so callers never need to keep both arrays around. Metrics follow the research note: rel_rms, p99 |d|,
max |d|, cosine similarity and non-finite counts rank drift well; max relative error does not (it explodes
near zero) and is only used, as Polygraphy does, inside the pass/fail check.

Pass/fail semantics match Polygraphy's SimpleCompareFunc (0.53): `reldiff = |c - r| / |r|` with zeros in the
reference nudged by 2.2e-16; "elemwise" fails when any element exceeds BOTH atol and rtol (NaN counts as
exceeding); "max" / "mean" / "median" / "quantile" fail when that statistic of the absolute difference
exceeds atol AND the same statistic of the relative difference exceeds rtol.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np

ERROR_STATS = ("elemwise", "max", "mean", "median", "quantile")
FP16_MAX = 65504.0
BF16_MAX = 3.3895313892515355e38
_EPS = 2.220446049250313e-16  # Polygraphy's epsilon for zeros in the divisor


@dataclass(frozen=True)
class Tolerance:
    atol: float = 1e-5
    rtol: float = 1e-5
    stat: str = "elemwise"  # one of ERROR_STATS
    quantile: float = 0.99  # used when stat == "quantile"

    def __post_init__(self) -> None:
        if self.stat not in ERROR_STATS:
            raise ValueError(f"error statistic must be one of {', '.join(ERROR_STATS)}, not {self.stat!r}")
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], not {self.quantile}")


@dataclass(frozen=True)
class TolerancePolicy:
    """Tolerances per output-name pattern (regex, searched); the first matching rule wins, else `default`."""

    default: Tolerance = Tolerance()
    rules: tuple[tuple[str, Tolerance], ...] = ()

    def for_tensor(self, name: str) -> Tolerance:
        for pattern, tol in self.rules:
            if re.search(pattern, name):
                return tol
        return self.default


@dataclass
class LayerDrift:
    """How far one candidate tensor is from its reference. One schema for the CLI, JSON, CSV and TUI."""

    name: str
    shape: list[int]
    dtype: str
    max_abs: float
    mean_abs: float
    median_abs: float
    p99_abs: float
    rel_rms: float
    cosine: float
    nonfinite_ref: int
    nonfinite_cand: int
    headroom: float  # max |ref| / max of the low-precision type (> 1 means the reference overflows it)
    worst_index: list[int]
    worst_ref: float
    worst_cand: float
    passed: bool
    tolerance: Tolerance
    quantiles: dict[str, float] = field(default_factory=dict)  # "p50", "p95", "p99.9" ... -> |d| quantile
    required_atol: float = 0.0  # the smallest atol that would pass with the chosen statistic (Polygraphy's
    required_rtol: float = 0.0  # "Minimum Required Tolerance")
    # filled by the comparison engine from the graph index
    node: str | None = None
    op_type: str | None = None
    topo_index: int | None = None
    iterations: int = 1  # how many iterations this row summarises (see merge_iterations)
    worst_iteration: int = 0  # the iteration whose metrics the row shows

    def to_json(self) -> dict:
        data = asdict(self)
        data["tolerance"] = asdict(self.tolerance)
        return {k: _json_float(v) for k, v in data.items()}


def _json_float(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan; "inf", "-inf", "nan" keep the information
    if isinstance(value, dict):
        return {k: _json_float(v) for k, v in value.items()}
    return value


def quantile_label(q: float) -> str:
    return "p" + f"{q * 100:.6g}"


def tensor_drift(
    name: str,
    ref: np.ndarray,
    cand: np.ndarray,
    tolerance: Tolerance = Tolerance(),
    *,
    quantiles: tuple[float, ...] = (0.99,),
    low_max: float = FP16_MAX,
) -> LayerDrift:
    """Reduce a reference/candidate pair to its drift metrics. Shapes must match (a ValueError says so)."""
    ref = np.asarray(ref)
    cand = np.asarray(cand)
    if ref.shape != cand.shape:
        raise ValueError(f"{name}: shape mismatch, reference {ref.shape} vs candidate {cand.shape}")
    r = _as_float(ref)
    c = _as_float(cand)
    n = r.size
    if n:
        fast = _fast_drift(name, ref, r, c, tolerance, quantiles, low_max)
        if fast is not None:
            return fast
    return _general_drift(name, ref, r, c, tolerance, quantiles, low_max)


def _fast_drift(name, ref, r, c, tol: Tolerance, quantiles, low_max) -> LayerDrift | None:
    """The all-finite case (nearly every tensor), in few passes and two temporaries; None when anything is
    non-finite (then `_general_drift` handles it). Same results as the general path (tests check it):
    sums accumulate in float64 without float64 copies, quantiles come from one in-place partition."""
    rf, cf = r.reshape(-1), c.reshape(-1)
    f64 = np.float64
    ref_sq = float(np.einsum("i,i->", rf, rf, dtype=f64))  # finite iff every element is finite
    cand_sq = float(np.einsum("i,i->", cf, cf, dtype=f64))
    if not (math.isfinite(ref_sq) and math.isfinite(cand_sq)):
        return None
    absdiff = np.subtract(cf, rf)
    np.abs(absdiff, out=absdiff)
    worst = int(np.argmax(absdiff))
    max_abs = float(absdiff[worst])
    if not math.isfinite(max_abs):  # finite inputs whose difference overflows: leave it to the general path
        return None
    dot = float(np.einsum("i,i->", rf, cf, dtype=f64))
    diff_sq = float(np.einsum("i,i->", absdiff, absdiff, dtype=f64))
    mean_abs = float(np.mean(absdiff, dtype=f64))
    ref_norm, cand_norm = math.sqrt(ref_sq), math.sqrt(cand_sq)
    rel_rms = math.sqrt(diff_sq) / ref_norm if ref_norm > 0 else (0.0 if diff_sq == 0 else float("inf"))
    if ref_norm > 0 and cand_norm > 0:
        cosine = dot / (ref_norm * cand_norm)
    else:
        cosine = 1.0 if ref_norm == cand_norm else 0.0
    max_ref = max(float(rf.max()), -float(rf.min()))

    # Polygraphy's relative difference: |c - r| / |r|, zeros in r replaced by epsilon (computed in place)
    reldiff = np.abs(rf)
    reldiff[reldiff == 0] = _EPS
    with np.errstate(over="ignore"):
        np.divide(absdiff, reldiff, out=reldiff)
    checked_q = {"median": 0.5, "quantile": tol.quantile}.get(tol.stat)
    qs = tuple(sorted(set(quantiles) | {0.5, 0.99} | ({checked_q} if checked_q is not None else set())))
    if tol.stat == "elemwise":
        over = absdiff > tol.atol
        over &= reldiff > tol.rtol
        passed, req_abs, req_rel = not bool(over.any()), max_abs, float(reldiff.max())
        del over
    elif tol.stat == "max":
        req_abs, req_rel = max_abs, float(reldiff.max())
    elif tol.stat == "mean":
        req_abs, req_rel = mean_abs, float(np.mean(reldiff, dtype=f64))
    else:  # median / quantile: the same statistic of both differences (reldiff is ours: partition it in place)
        req_rel = _partition_quantiles(reldiff, (checked_q,))[checked_q]
    del reldiff
    qvals = _partition_quantiles(absdiff, qs)  # absdiff is not needed after this: partitioned in place
    if checked_q is not None:
        req_abs = qvals[checked_q]
    if tol.stat != "elemwise":
        passed = not (req_abs > tol.atol and req_rel > tol.rtol)
    return LayerDrift(
        name=name, shape=[int(x) for x in ref.shape], dtype=str(ref.dtype), max_abs=max_abs, mean_abs=mean_abs,
        median_abs=qvals[0.5], p99_abs=qvals[0.99], rel_rms=rel_rms, cosine=cosine, nonfinite_ref=0,
        nonfinite_cand=0, headroom=max_ref / low_max if low_max else 0.0,
        worst_index=[int(i) for i in np.unravel_index(worst, ref.shape)] if ref.shape else [],
        worst_ref=float(rf[worst]), worst_cand=float(cf[worst]), passed=passed, tolerance=tol,
        quantiles={quantile_label(q): qvals[q] for q in quantiles}, required_atol=req_abs, required_rtol=req_rel,
    )  # fmt: skip


def _partition_quantiles(a: np.ndarray, qs) -> dict[float, float]:
    """numpy's default ('linear') quantiles of a 1-D array, partitioning `a` IN PLACE.

    One selection per distinct quantile, each on the tail the previous one left (p50 over n elements, p99 over
    n/2), and the interpolation neighbour as the tail's minimum: about half the work of np.quantile.
    """
    n = a.size
    pos = {q: q * (n - 1) for q in qs}
    values: dict[int, float] = {}
    start = 0
    for k in sorted({int(math.floor(p)) for p in pos.values()}):
        tail = a[start:]
        tail.partition(k - start)
        values[k] = float(a[k])
        start = k  # everything after k is >= a[k]: later selections only need a[k:]
    out = {}
    for q, p in pos.items():
        lo = int(math.floor(p))
        frac = p - lo
        if frac and lo + 1 < n:
            hi_v = values.get(lo + 1)
            if hi_v is None:
                hi_v = float(a[lo + 1 :].min())  # the next order statistic: the minimum of what lies above lo
            out[q] = values[lo] + (hi_v - values[lo]) * frac
        else:
            out[q] = values[lo]
    return out


def _general_drift(name, ref, r, c, tolerance, quantiles, low_max) -> LayerDrift:
    n = r.size
    finite_r = np.isfinite(r)
    finite_c = np.isfinite(c)
    nonfinite_ref = int(n - np.count_nonzero(finite_r))
    nonfinite_cand = int(n - np.count_nonzero(finite_c))

    absdiff = np.abs(c - r)  # inf - inf = nan: counts as a failure, as in Polygraphy (infinities unequal)
    if n == 0:
        return _empty(name, ref, tolerance)
    bad = ~np.isfinite(absdiff)
    any_bad = bool(bad.any())
    flat = absdiff.reshape(-1)
    if any_bad:
        worst = int(np.argmax(bad.reshape(-1)))
        max_abs = float("nan") if np.isnan(flat[worst]) else float("inf")
    else:
        worst = int(np.argmax(flat))
        max_abs = float(flat[worst])
    mean_abs = float(np.mean(absdiff, dtype=np.float64))
    qs = tuple(sorted(set(quantiles) | {0.5, 0.99}))
    qvals = _quantiles(flat, qs, any_bad)
    ref_sq, cand_sq, diff_sq, dot = _sums(r.reshape(-1), c.reshape(-1))
    ref_norm, cand_norm, diff_norm = math.sqrt(ref_sq), math.sqrt(cand_sq), math.sqrt(diff_sq)
    if ref_norm > 0:
        rel_rms = diff_norm / ref_norm
    else:
        rel_rms = 0.0 if diff_norm == 0 else float("inf")
    if any_bad:
        rel_rms = float("inf") if not np.isnan(max_abs) else float("nan")
    if ref_norm > 0 and cand_norm > 0:
        cosine = dot / (ref_norm * cand_norm)
    else:
        cosine = 1.0 if ref_norm == cand_norm else 0.0
    max_ref = float(np.max(np.abs(r))) if nonfinite_ref == 0 else float(np.max(np.abs(r[finite_r]), initial=0.0))

    passed, req_abs, req_rel = _check(r, absdiff, tolerance, qvals)
    worst_idx = [int(i) for i in np.unravel_index(worst, ref.shape)] if ref.shape else []
    return LayerDrift(
        name=name,
        shape=[int(s) for s in ref.shape],
        dtype=str(ref.dtype),
        max_abs=max_abs,
        mean_abs=mean_abs,
        median_abs=qvals[0.5],
        p99_abs=qvals[0.99],
        rel_rms=rel_rms,
        cosine=cosine,
        nonfinite_ref=nonfinite_ref,
        nonfinite_cand=nonfinite_cand,
        headroom=max_ref / low_max if low_max else 0.0,
        worst_index=worst_idx,
        worst_ref=float(r.reshape(-1)[worst]),
        worst_cand=float(c.reshape(-1)[worst]),
        passed=passed,
        tolerance=tolerance,
        quantiles={quantile_label(q): qvals[q] for q in quantiles},
        required_atol=req_abs,
        required_rtol=req_rel,
    )


_CHUNK = 1 << 20  # elements per float64 chunk: exact-enough sums without a float64 copy of a whole tensor


def _sums(r: np.ndarray, c: np.ndarray) -> tuple[float, float, float, float]:
    """sum r^2, sum c^2, sum (c-r)^2, sum r*c over elements finite on both sides, accumulated in float64."""
    ref_sq = cand_sq = diff_sq = dot = 0.0
    for start in range(0, r.size, _CHUNK):
        rc = r[start : start + _CHUNK].astype(np.float64)
        cc = c[start : start + _CHUNK].astype(np.float64)
        both = np.isfinite(rc) & np.isfinite(cc)
        if not both.all():
            rc, cc = rc[both], cc[both]
        ref_sq += float(np.dot(rc, rc))
        cand_sq += float(np.dot(cc, cc))
        dot += float(np.dot(rc, cc))
        cc -= rc
        diff_sq += float(np.dot(cc, cc))
    return ref_sq, cand_sq, diff_sq, dot


def merge_iterations(drifts: list[LayerDrift]) -> LayerDrift:
    """One row for a tensor compared over several iterations: the worst iteration's metrics (failing first,
    then largest rel_rms; NaN counts as worst), non-finite counts summed, passed only if every iteration passed."""
    if len(drifts) == 1:
        return drifts[0]

    def badness(item: tuple[int, LayerDrift]) -> tuple[bool, float]:
        d = item[1]
        return (not d.passed, math.inf if math.isnan(d.rel_rms) else d.rel_rms)

    worst_i, worst = max(enumerate(drifts), key=badness)
    merged = replace(worst)
    merged.nonfinite_ref = sum(d.nonfinite_ref for d in drifts)
    merged.nonfinite_cand = sum(d.nonfinite_cand for d in drifts)
    merged.passed = all(d.passed for d in drifts)
    merged.headroom = max(d.headroom for d in drifts)
    merged.iterations = sum(d.iterations for d in drifts)
    merged.worst_iteration = worst_i
    return merged


def _as_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float32 or a.dtype == np.float64:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer) and a.dtype.itemsize >= 4:
        return a.astype(np.float64)
    return a.astype(np.float32)  # float16, bfloat16 (ml_dtypes), small ints: exact in float32


def _quantiles(flat: np.ndarray, qs: tuple[float, ...], any_bad: bool) -> dict[float, float]:
    data = np.where(np.isnan(flat), np.inf, flat) if any_bad else flat
    with np.errstate(invalid="ignore"):  # inf - inf inside the interpolation; the result is still inf
        values = np.quantile(data, qs) if data.size else np.zeros(len(qs))
    return {q: float(v) for q, v in zip(qs, values)}


def _check(r: np.ndarray, absdiff: np.ndarray, tol: Tolerance, qvals: dict[float, float]) -> tuple[bool, float, float]:
    divisor = np.abs(r)
    if divisor.dtype.kind == "f":
        divisor = np.where(divisor == 0, _EPS, divisor)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # huge |d| / tiny |r| is inf, as intended
        reldiff = absdiff / divisor
    flat_rel = reldiff.reshape(-1)
    if tol.stat == "elemwise":
        over_abs = (absdiff > tol.atol) | np.isnan(absdiff)
        over_rel = (reldiff > tol.rtol) | np.isnan(reldiff)
        passed = not bool(np.any(over_abs & over_rel))
        return passed, _nanmax(absdiff), _nanmax(reldiff)
    if tol.stat == "max":
        a, rel = _nanmax(absdiff), _nanmax(reldiff)
    elif tol.stat == "mean":
        a, rel = float(np.mean(absdiff, dtype=np.float64)), float(np.mean(reldiff, dtype=np.float64))
    elif tol.stat == "median":
        a, rel = float(np.median(absdiff)), float(np.median(flat_rel))
    else:
        a = float(np.quantile(absdiff, tol.quantile))
        rel = float(np.quantile(flat_rel, tol.quantile))
    failed = (math.isnan(a) or a > tol.atol) and (math.isnan(rel) or rel > tol.rtol)
    return not failed, a, rel


def _nanmax(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    if np.isnan(a).any():
        return float("nan")
    return float(np.max(a))


def _empty(name: str, ref: np.ndarray, tolerance: Tolerance) -> LayerDrift:
    return LayerDrift(
        name=name, shape=[int(s) for s in ref.shape], dtype=str(ref.dtype), max_abs=0.0, mean_abs=0.0,
        median_abs=0.0, p99_abs=0.0, rel_rms=0.0, cosine=1.0, nonfinite_ref=0, nonfinite_cand=0, headroom=0.0,
        worst_index=[], worst_ref=0.0, worst_cand=0.0, passed=True, tolerance=tolerance,
    )  # fmt: skip
