"""Per-tensor drift metrics and Polygraphy-compatible pass/fail: the one results schema for a tensor.

`tensor_drift(name, ref, cand, tolerance)` reduces a (reference, candidate) pair to a `LayerDrift` at once,
so callers never need to keep both arrays around. Metrics follow the research note: rel_rms, p99 |d|,
max |d|, cosine similarity and non-finite counts rank drift well; max relative error does not (it explodes
near zero) and is only used, as Polygraphy does, inside the pass/fail check.

Besides the statistics, each tensor keeps two small summaries for the drill-down (issue #8), computed during
the same reduction: a histogram of |c - r| over fixed decades (`HIST_LABELS`) and its top-k worst elements
with indices and both values.

Pass/fail semantics match Polygraphy's SimpleCompareFunc (0.53): `reldiff = |c - r| / |r|` with zeros in the
reference nudged by 2.2e-16; "elemwise" fails when any element exceeds BOTH atol and rtol (NaN counts as
exceeding); "max" / "mean" / "median" / "quantile" fail when that statistic of the absolute difference
exceeds atol AND the same statistic of the relative difference exceeds rtol.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from trt_tui.core.parity.constants import ERROR_STATS, TOP_K  # noqa: F401 - ERROR_STATS: re-exported

FP16_MAX = 65504.0
BF16_MAX = 3.3895313892515355e38
_EPS = 2.220446049250313e-16  # Polygraphy's epsilon for zeros in the divisor

# |c - r| histogram: fixed decade edges (the same bins for every tensor, run and iteration, so counts add up
# and compare across tensors), plus exact zeros, a below-range and an above-range bucket, and non-finite.
HIST_DECADES = tuple(range(-8, 5))  # edges 1e-8 ... 1e4
HIST_LABELS = ("0", "<1e-8", *(f"1e{a}..1e{b}" for a, b in zip(HIST_DECADES, HIST_DECADES[1:])), ">=1e4", "nonfinite")


# Tolerance, TolerancePolicy and default_tolerance live in trt_tui.core.tolerance (a building block presets,
# streaming and the search share); re-exported here for the code that imports them from this module.
from trt_tui.core.tolerance import Tolerance, TolerancePolicy, default_tolerance  # noqa: E402,F401


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
    # HIST_LABELS -> element count ("1e-4..1e-3" holds 1e-4 <= |d| < 1e-3); empty when not computed
    histogram: dict[str, int] = field(default_factory=dict)
    # the k largest |d|, worst first (ties: lowest index, NaN/inf first), each
    # {"index": [...], "ref": r, "cand": c, "abs": |d|, "iteration": i}
    worst: list[dict] = field(default_factory=list)
    # rel_rms / the largest rel_rms among the node's inputs (graph inputs and weights: rounded once);
    # >= DIVERGENCE_GROWTH marks a divergence of this node's own, not drift carried from upstream
    growth: float | None = None

    def nonfinite_difference(self) -> bool:
        """Whether some element's |c - r| is inf/NaN: an inf/NaN on one side only, infinities of the other
        sign, a NaN, or the same infinity on both sides unless counted equal (tolerance.infinities_equal). A
        target fails then whatever its metric says: cosine and p99_abs can look fine beside such elements."""
        return (self.nonfinite_cand > self.nonfinite_ref or not math.isfinite(self.max_abs)
                or self.histogram.get("nonfinite", 0) > 0)  # the histogram: every iteration of a merged row

    def to_json(self) -> dict:
        # fields one level deep (not asdict: its deep copy of every row's worst-k lists took 1.5 s of a
        # 1,572-tensor comparison's main thread); _json_float rebuilds the nested dicts and lists anyway
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tolerance"] = asdict(self.tolerance)
        return {k: _json_float(v) for k, v in data.items()}


def _json_float(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan; "inf", "-inf", "nan" keep the information
    if isinstance(value, dict):
        return {k: _json_float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_float(v) for v in value]
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
    top_k: int = TOP_K,
    workspace: Workspace | None = None,
) -> LayerDrift:
    """Reduce a reference/candidate pair to its drift metrics. Shapes must match (a ValueError says so).
    `workspace`: scratch arrays the calling thread reuses from tensor to tensor (same results without)."""
    ref = np.asarray(ref)
    cand = np.asarray(cand)
    if ref.shape != cand.shape:
        raise ValueError(f"{name}: shape mismatch, reference {ref.shape} vs candidate {cand.shape}")
    r = _as_float(ref)
    c = _as_float(cand)
    n = r.size
    if n:
        fast = _fast_drift(name, ref, r, c, tolerance, quantiles, low_max, top_k, workspace or Workspace())
        if fast is not None:
            return fast
    return _general_drift(name, ref, r, c, tolerance, quantiles, low_max, top_k)


class Workspace:
    """Scratch arrays one thread reuses from tensor to tensor (never share one between threads).

    A fresh temporary the size of a tensor costs its page faults, measured at ~1.5 ns an element: as much as
    the arithmetic of the whole reduction. Arrays above MAX_ELEMENTS are allocated per call as before, so a
    workspace holds at most ~10 bytes per element of that bound (a few MB at the usual sizes)."""

    MAX_ELEMENTS = 1 << 20

    def __init__(self):
        self._arrays: dict[tuple, np.ndarray] = {}

    def take(self, slot: str, dtype, n: int) -> np.ndarray:
        """An uninitialised 1-D array of n elements of `dtype`, the same memory each time for `slot`."""
        if n > self.MAX_ELEMENTS:
            return np.empty(n, dtype)
        held = self._arrays.get((slot, dtype))
        if held is None or held.size < n:
            held = self._arrays[slot, dtype] = np.empty(n, dtype)
        return held[:n]


def _fast_drift(name, ref, r, c, tol: Tolerance, quantiles, low_max, top_k, ws: Workspace) -> LayerDrift | None:
    """The all-finite case (nearly every tensor), in few passes over scratch arrays; None when anything is
    non-finite (then `_general_drift` handles it). Same results as the general path (tests check it):
    sums accumulate in float64 (`_f64_sums`); quantiles and the top-k threshold are exact order
    statistics selected without partitioning all of |d| (`_select_quantiles`), which stays in element order
    for the top-k indices."""
    rf, cf = r.reshape(-1), c.reshape(-1)
    n = rf.size
    absdiff = ws.take("absdiff", rf.dtype, n)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite inputs leave for the general path below
        np.subtract(cf, rf, out=absdiff)  # signed c - r until the sums below have used it
        # stat 'mean' decides on mean |d| itself: its verdict at the tolerance stays that of the float64 sums
        quick = (_f32_sums(rf, cf, absdiff, ws) if rf.dtype == np.float32 and n <= _F32_SUMS_MAX_N and tol.stat != "mean"
                 else None)  # fmt: skip
    np.abs(absdiff, out=absdiff)
    worst = int(np.argmax(absdiff))
    max_abs = float(absdiff[worst])
    if not math.isfinite(max_abs):  # a non-finite input, or finite inputs whose difference overflows
        return None
    max_ref = max(float(rf.max()), -float(rf.min()))
    if quick is not None and _f32_sums_exact_enough(max_ref, max_abs, *quick):
        ref_sq, cand_sq, diff_sq, c2_minus_r2 = quick
        abs_sum = float(np.add.reduce(absdiff))
        ref_norm, cand_norm = math.sqrt(ref_sq), math.sqrt(cand_sq)
        cosine = _cosine_from_gap(ref_norm, cand_norm, diff_sq, c2_minus_r2)
    else:
        ref_sq, cand_sq, dot, diff_sq, abs_sum = _f64_sums(rf, cf, absdiff, ws)
        if not (math.isfinite(ref_sq) and math.isfinite(cand_sq)):  # finite iff every element is finite
            return None
        ref_norm, cand_norm = math.sqrt(ref_sq), math.sqrt(cand_sq)
        cosine = dot / (ref_norm * cand_norm) if ref_norm > 0 and cand_norm > 0 else None
    if cosine is None:
        cosine = 1.0 if ref_norm == cand_norm else 0.0
    mean_abs = abs_sum / n
    rel_rms = math.sqrt(diff_sq) / ref_norm if ref_norm > 0 else (0.0 if diff_sq == 0 else float("inf"))

    # Polygraphy's relative difference: |c - r| / |r|, zeros in r replaced by epsilon
    reldiff = ws.take("reldiff", rf.dtype, n)
    np.abs(rf, out=reldiff)
    zeros = np.equal(reldiff, 0, out=ws.take("mask", np.bool_, n))
    if zeros.any():
        np.copyto(reldiff, _EPS, where=zeros)
    with np.errstate(over="ignore"):
        np.divide(absdiff, reldiff, out=reldiff)
    checked_q = {"median": 0.5, "quantile": tol.quantile}.get(tol.stat)
    qs = tuple(sorted(set(quantiles) | {0.5, 0.99} | ({checked_q} if checked_q is not None else set())))
    if tol.stat == "elemwise":
        over = np.greater(absdiff, tol.atol, out=ws.take("mask", np.bool_, n))
        over &= np.greater(reldiff, tol.rtol, out=ws.take("mask2", np.bool_, n))
        passed, req_abs, req_rel = not bool(over.any()), max_abs, float(reldiff.max())
    elif tol.stat == "max":
        req_abs, req_rel = max_abs, float(reldiff.max())
    elif tol.stat == "mean":
        req_abs, req_rel = mean_abs, float(np.mean(reldiff, dtype=np.float64))
    else:  # median / quantile: the same statistic of both differences (exact order statistics)
        req_rel = _select_quantiles(reldiff, (checked_q,), ws=ws)[0][checked_q]
    k = min(top_k, n)
    qvals, splits = _select_quantiles(absdiff, qs, extra=(n - k,) if 0 < k else (), ws=ws)
    histogram = _histogram_counts(absdiff, max_abs, ws)
    worst_k = _top_k_fast(absdiff, splits[n - k], k, ref.shape, rf, cf, ws) if k else []
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
        histogram=histogram, worst=worst_k,
    )  # fmt: skip


# The sums of the all-finite float32 case: float32 products summed by numpy's pairwise summation (relative
# error ~1e-7, bounded by ~2e-6), about 2x fewer element passes than float64 casts (measured ~3.5 -> ~1.5 ns an
# element, the largest part of a parakeet-scale comparison after ONNX Runtime). The cosine is not taken as
# dot / (|r| |c|), whose float32 rounding would swamp 1 - cos (~1e-8 for fp16 drift), but from the same sums
# through 1 - cos = (|d|^2 - (|c| - |r|)^2) / (2 |r| |c|), with |c| - |r| = sum (c - r)(c + r) / (|c| + |r|):
# every term is then accurate to ~1e-6 of 1 - cos itself. Products of values beyond [1e-15, 1e15] could
# overflow or underflow float32: such tensors (and any doubt) take the float64 sums (`_f64_sums`).
_F32_SUMS_MAX_N = 100_000_000  # n * 1e30 stays below float32's 3.4e38
_F32_SCALE = (1e-15, 1e15)


def _f32_sums(rf: np.ndarray, cf: np.ndarray, signed_d: np.ndarray, ws: Workspace) -> tuple[float, float, float, float]:
    """sum r*r, sum c*c, sum d*d, sum (c - r)(c + r) of float32 arrays (`signed_d` = c - r), pairwise in float32."""
    tmp = ws.take("product", np.float32, rf.size)
    add = np.add.reduce
    ref_sq = float(add(np.multiply(rf, rf, out=tmp)))
    cand_sq = float(add(np.multiply(cf, cf, out=tmp)))
    diff_sq = float(add(np.multiply(signed_d, signed_d, out=tmp)))
    np.add(cf, rf, out=tmp)
    gap = float(add(np.multiply(tmp, signed_d, out=tmp)))
    return ref_sq, cand_sq, diff_sq, gap


def _f32_sums_exact_enough(max_ref: float, max_abs: float, ref_sq: float, cand_sq: float, diff_sq: float,
                           c2_minus_r2: float) -> bool:  # fmt: skip
    """Whether no product of the float32 sums overflowed or lost more than ~1e-8 of its sum to underflow, and
    the candidate is near enough the reference for the cosine's identity: |d|^2 <= 2 |r| |c| / 100, so that
    |d|^2 and (|c| - |r|)^2 cancel little (their rounding stays within ~1e-8 of 1 - cos). A candidate further
    away (a wrong kernel, another scale) is rare: the float64 sums, as before. So is a gain error (d mostly
    along r: a scaled copy, a constant or 1-element tensor): (|c| - |r|)^2 > |d|^2 / 2 would cancel most of
    |d|^2, and the sums' ~1e-7 rounding would swamp 1 - cos (measured 2-7% of it at gains of 1-13%)."""
    lo, hi = _F32_SCALE
    if not (lo <= max_ref <= hi and (max_abs == 0.0 or lo <= max_abs <= hi) and max_ref + max_abs <= hi
            and cand_sq >= lo * lo and math.isfinite(cand_sq) and diff_sq <= 0.02 * math.sqrt(ref_sq * cand_sq)):  # fmt: skip
        return False
    gap = c2_minus_r2 / (math.sqrt(ref_sq) + math.sqrt(cand_sq))  # |c| - |r|, as _cosine_from_gap takes it
    return gap * gap <= 0.5 * diff_sq


def _cosine_from_gap(ref_norm: float, cand_norm: float, diff_sq: float, c2_minus_r2: float) -> float | None:
    """cos(r, c) = 1 - (|d|^2 - (|c| - |r|)^2) / (2 |r| |c|); None when either norm is zero."""
    if not (ref_norm > 0 and cand_norm > 0):
        return None
    gap = c2_minus_r2 / (ref_norm + cand_norm)
    one_minus = (diff_sq - gap * gap) / (2.0 * ref_norm * cand_norm)
    return 1.0 - min(max(one_minus, 0.0), 2.0)


# numpy's reductions of float32 into float64 (`np.einsum("i,i->", x, y, dtype=np.float64)`, `np.mean(x,
# dtype=np.float64)`) cast through a buffer of _NUMPY_BUFFER elements: each buffer is summed on its own and the
# buffers' sums are added in order. `_f64_sums` gives exactly those sums from float64 blocks cast once (rows of
# _NUMPY_BUFFER elements, one einsum or add.reduce per row, then the same in-order addition): the four dot
# products and the sum of a tensor from three casts instead of five buffered reductions (~3.3 -> ~2.5 ns an
# element). `_blocked_sums_exact` checks it against numpy once per process; numpy's own calls otherwise.
_NUMPY_BUFFER = 8192
_F64_BLOCK = 8 * _NUMPY_BUFFER  # elements cast per step: three float64 blocks (1.5 MB) about fit a core's L2


def _f64_sums(rf: np.ndarray, cf: np.ndarray, d: np.ndarray, ws: Workspace) -> tuple[float, float, float, float, float]:
    """sum r*r, sum c*c, sum r*c, sum d*d, sum d for 1-D arrays, accumulated in float64 exactly as numpy's
    einsum (the products) and mean (the sum) do it."""
    if rf.dtype == np.float32 and _blocked_sums_exact():
        return _blocked_sums(rf, cf, d, ws)
    f64 = np.float64
    return (float(np.einsum("i,i->", rf, rf, dtype=f64)), float(np.einsum("i,i->", cf, cf, dtype=f64)),
            float(np.einsum("i,i->", rf, cf, dtype=f64)), float(np.einsum("i,i->", d, d, dtype=f64)),
            float(np.add.reduce(d, dtype=f64)))  # fmt: skip


def _blocked_sums(rf, cf, d, ws: Workspace) -> tuple[float, float, float, float, float]:
    n, b = rf.size, _NUMPY_BUFFER
    parts: list[list[float]] = [[], [], [], [], []]
    for start in range(0, n, _F64_BLOCK):
        stop = min(start + _F64_BLOCK, n)
        size = stop - start
        r64, c64, d64 = (ws.take(slot, np.float64, size) for slot in ("r64", "c64", "d64"))
        np.copyto(r64, rf[start:stop])
        np.copyto(c64, cf[start:stop])
        np.copyto(d64, d[start:stop])
        rows = size // b * b  # whole buffers; only the last block has a remainder
        if rows:
            r2, c2, d2 = (x[:rows].reshape(-1, b) for x in (r64, c64, d64))
            parts[0] += np.einsum("ij,ij->i", r2, r2).tolist()
            parts[1] += np.einsum("ij,ij->i", c2, c2).tolist()
            parts[2] += np.einsum("ij,ij->i", r2, c2).tolist()
            parts[3] += np.einsum("ij,ij->i", d2, d2).tolist()
            parts[4] += np.add.reduce(d2, axis=1).tolist()
        if rows < size:
            rt, ct, dt = r64[rows:], c64[rows:], d64[rows:]
            parts[0].append(float(np.einsum("i,i->", rt, rt)))
            parts[1].append(float(np.einsum("i,i->", ct, ct)))
            parts[2].append(float(np.einsum("i,i->", rt, ct)))
            parts[3].append(float(np.einsum("i,i->", dt, dt)))
            parts[4].append(float(np.add.reduce(dt)))
    sums = []
    for values in parts:
        total = 0.0
        for v in values:  # in order, as numpy adds its buffers' sums
            total += v
        sums.append(total)
    return tuple(sums)


@functools.cache
def _blocked_sums_exact() -> bool:
    """Whether `_blocked_sums` gives numpy's own sums on this numpy (a probe of a few buffers and a remainder)."""
    rng = np.random.default_rng(0)
    n = 3 * _F64_BLOCK + 5 * _NUMPY_BUFFER + 123
    r = rng.standard_normal(n).astype(np.float32)
    c = (r + rng.standard_normal(n).astype(np.float32) * 1e-3).astype(np.float32)
    d = np.abs(c - r)
    f64 = np.float64
    want = (float(np.einsum("i,i->", r, r, dtype=f64)), float(np.einsum("i,i->", c, c, dtype=f64)),
            float(np.einsum("i,i->", r, c, dtype=f64)), float(np.einsum("i,i->", d, d, dtype=f64)))  # fmt: skip
    got = _blocked_sums(r, c, d, Workspace())
    return got[:4] == want and got[4] / n == float(np.mean(d, dtype=f64))


# Order statistics of arrays at most this long are selected by one partition of a copy; longer ones through a
# sample (`_select_positions`): a full partition costs ~7-13 ns per element, a band around a sample's estimate
# ~1 ns. The sample grows with the array (about sqrt(n) * 28, 4096 to 16384 elements): gathering the band
# costs ~0.2 ns an element while it holds under ~2.5% of the array and ~0.8 ns above (numpy's nonzero skips
# empty words of the mask), and a band's width shrinks as the sample grows.
_PARTITION_MAX = 32768
_SAMPLE_MIN, _SAMPLE_MAX = 4096, 16384
_SAMPLE_FACTOR = 28
_MERGE_FRACTION = 64 / 4096  # bands closer than this (in sample ranks) are one band (about 1.6% of the array)


def _kth(ks: list[int], size: int) -> list[int]:
    """Partition indices for `ndarray.partition`, two at least: numpy's single-index float32 partition (SIMD)
    measured ~3x slower here than its general selection, which gives the same values."""
    if len(ks) == 1 and size > 1:
        return [ks[0], 0 if ks[0] else 1]
    return ks


def _select_quantiles(a: np.ndarray, qs, extra=(), ws: Workspace | None = None) -> tuple[dict[float, float], dict[int, float]]:
    """numpy's default ('linear') quantiles of a 1-D array without NaN, and the values at the `extra` sorted
    positions (n - k: the top-k threshold): ({q: value}, {position: value}). `a` is left as it is."""
    n = a.size
    pos = {q: q * (n - 1) for q in qs}
    wanted = set(extra)
    for p in pos.values():
        lo = int(math.floor(p))
        wanted.add(lo)
        if p - lo and lo + 1 < n:
            wanted.add(lo + 1)  # the interpolation's upper neighbour
    values = _select_positions(a, sorted(wanted), ws)
    out = {}
    for q, p in pos.items():
        lo = int(math.floor(p))
        frac = p - lo
        out[q] = values[lo] + (values[lo + 1] - values[lo]) * frac if frac and lo + 1 < n else values[lo]
    return out, values


@functools.lru_cache(maxsize=256)
def _sample_stride(step: int) -> int:
    """The smallest prime >= step: a stride that shares a factor with a tensor's row length samples the same
    columns of every row (an attention map 8x74x330 read every 15th element sees 22 of its 330 key positions),
    and the band around its estimate missed the median on 436 of a parakeet-scale comparison's tensors, each
    then partitioned whole (1.8 s). A prime stride visits every column of any shorter row."""
    if step <= 1:
        return 1
    p = step
    while any(p % d == 0 for d in range(2, math.isqrt(p) + 1)):
        p += 1
    return p


def _select_positions(a: np.ndarray, positions: list[int], ws: Workspace | None = None) -> dict[int, float]:
    """{k: the k-th smallest element of `a`} (exact, as a full sort would give), for a 1-D array without NaN.

    Floyd-Rivest style: a strided sample's order statistics bracket each wanted rank in a value band [lo, hi];
    counting what lies below lo and gathering the band costs a few vectorised passes, and only the band (a few
    percent of `a`) is partitioned. The result is exact whenever the band holds the rank, which is checked;
    when it does not (a sample that misjudged structured data), that rank falls back to a full partition."""
    n = a.size
    if n <= _PARTITION_MAX:
        parted = np.partition(a, _kth(positions, n))
        return {k: float(parted[k]) for k in positions}
    ws = ws or Workspace()
    sample = a[:: _sample_stride(n // min(_SAMPLE_MAX, max(_SAMPLE_MIN, int(_SAMPLE_FACTOR * math.sqrt(n)))))].copy()
    s = sample.size
    values: dict[int, float] = {}
    missed: list[int] = []
    groups: list[tuple[int, int, list[int]]] = []  # (sample rank lo, hi, positions), near bands merged
    for k in positions:
        r = k / (n - 1) * (s - 1)
        margin = 3.0 * math.sqrt(s * (k / n) * (1 - k / n)) + 3
        lo_r, hi_r = int(math.floor(r - margin)), int(math.ceil(r + margin))
        if groups and lo_r <= groups[-1][1] + s * _MERGE_FRACTION:  # e.g. p99 and the top-k threshold: one band
            groups[-1] = (groups[-1][0], max(hi_r, groups[-1][1]), [*groups[-1][2], k])
        else:
            groups.append((lo_r, hi_r, [k]))
    ranks = sorted({r for lo_r, hi_r, _ in groups for r in (lo_r, hi_r) if 0 <= r < s})
    if ranks:  # only the sample's order statistics at the band edges are read: select them, no full sort
        sample.partition(_kth(ranks, s))
    for lo_r, hi_r, ks in groups:
        lo = sample[lo_r] if lo_r >= 0 else None
        hi = sample[hi_r] if hi_r < s else None
        if lo is None and hi is None:
            missed.extend(ks)
            continue
        mask = ws.take("mask", np.bool_, n)
        if lo is not None and hi is not None and lo == hi:  # a run of equal values (e.g. exact zeros)
            below, band = int(np.count_nonzero(np.less(a, lo, out=mask))), None
            inside = int(np.count_nonzero(np.equal(a, lo, out=mask)))
        else:
            if lo is None:
                np.less_equal(a, hi, out=mask)
                below = 0
            else:
                np.greater_equal(a, lo, out=mask)
                below = n - int(np.count_nonzero(mask))
                if hi is not None:
                    mask &= np.less_equal(a, hi, out=ws.take("mask2", np.bool_, n))
            band = np.extract(mask, a)  # the band in element order (faster than a[mask])
            inside = band.size
        held = [k for k in ks if below <= k < below + inside]
        missed.extend(k for k in ks if k not in held)
        if not held:
            continue
        if band is None:
            values.update({k: float(lo) for k in held})
            continue
        band.partition(_kth([k - below for k in held], band.size))
        values.update({k: float(band[k - below]) for k in held})
    if missed:
        parted = np.partition(a, _kth(missed, n))
        values.update({k: float(parted[k]) for k in missed})
    return values


@functools.lru_cache(maxsize=8)  # one list per dtype: building it costs more than counting a small tensor
def _hist_edges(dtype: np.dtype) -> tuple:
    """The edges as `dtype` values compared with `>=` exactly as the real decade: the smallest value of the
    type that is >= 10**e (float32(1e-8) rounds below 1e-8), preceded by the smallest positive value (zero
    bucket) and padded by +inf (the top bucket)."""
    dt = np.dtype(dtype)
    edges = [np.nextafter(dt.type(0), dt.type(1))]
    for e in HIST_DECADES:
        v = dt.type(10.0**e)
        if float(v) < 10.0**e:
            v = np.nextafter(v, dt.type(np.inf))
        edges.append(v)
    return tuple(edges)


def _counts_to_histogram(n: int, at_least: list[int], nonfinite: int) -> dict[str, int]:
    """n finite elements and, per `_hist_edges` edge, how many are >= it -> the HIST_LABELS buckets."""
    bounds = [n, *at_least, 0]
    counts = [bounds[i] - bounds[i + 1] for i in range(len(bounds) - 1)]
    return dict(zip(HIST_LABELS, [*counts, nonfinite]))


def _histogram_counts(absdiff: np.ndarray, max_abs: float, ws: Workspace) -> dict[str, int]:
    """Histogram of an all-finite |d|: per edge, how many are >= it (edges above the maximum count nothing
    without a look). One compare-and-count pass per edge: gathering the elements above an edge to count the
    next ones on fewer costs more than it saves (measured on a parakeet-scale comparison's tensors)."""
    mask = ws.take("mask", np.bool_, absdiff.size)
    at_least = [int(np.count_nonzero(np.greater_equal(absdiff, edge, out=mask))) if edge <= max_abs else 0
                for edge in _hist_edges(absdiff.dtype)]  # fmt: skip
    return _counts_to_histogram(absdiff.size, at_least, 0)


def _histogram_plain(absdiff: np.ndarray) -> dict[str, int]:
    """The same histogram straight from |d| that may hold inf/NaN (the general, rare path)."""
    flat = absdiff.reshape(-1)
    finite = np.isfinite(flat)
    nonfinite = int(flat.size - np.count_nonzero(finite))
    if nonfinite:
        flat = flat[finite]
    at_least = [int(np.count_nonzero(flat >= edge)) for edge in _hist_edges(flat.dtype)]
    return _counts_to_histogram(flat.size, at_least, nonfinite)


def _worst_entries(flat_idx: list[int], shape, rf, cf, values: list[float]) -> list[dict]:
    """Entries for flat indices (already in rank order), their multi-indices unravelled in one call."""
    if not flat_idx:
        return []
    idx = np.array(flat_idx, dtype=np.intp)
    multi = np.stack(np.unravel_index(idx, shape), axis=1).tolist() if shape else [[] for _ in flat_idx]
    refs, cands = rf[idx].tolist(), cf[idx].tolist()
    return [{"index": m, "ref": float(r), "cand": float(c), "abs": v, "iteration": 0}
            for m, r, c, v in zip(multi, refs, cands, values)]  # fmt: skip


def _top_k_fast(absdiff: np.ndarray, threshold, k: int, shape, rf, cf, ws: Workspace) -> list[dict]:
    """The k largest of an all-finite |d| given the k-th largest (`threshold`): those above it, then ties at it
    by lowest index; worst first. One comparison pass; only the few candidates are ordered."""
    cand = np.flatnonzero(np.greater_equal(absdiff, threshold, out=ws.take("mask", np.bool_, absdiff.size)))
    if cand.size > k:  # ties at the threshold (e.g. many exact zeros): all above it, then the first ties
        vals = absdiff[cand]
        above = cand[vals > threshold]
        cand = np.concatenate([above, cand[vals == threshold][: k - above.size]])
    vals = absdiff[cand].tolist()
    order = sorted(zip(vals, cand.tolist()), key=lambda vi: (-vi[0], vi[1]))
    return _worst_entries([i for _, i in order], shape, rf, cf, [v for v, _ in order])


def _top_k_general(absdiff: np.ndarray, k: int, shape, rf, cf) -> list[dict]:
    """The k largest |d| where inf/NaN may occur: non-finite ranks worst (NaN as inf), ties by lowest index."""
    flat = absdiff.reshape(-1)
    n = flat.size
    k = min(k, n)
    if k == 0:
        return []
    key = np.where(np.isnan(flat), np.inf, flat)
    top = np.argpartition(key, n - k)[n - k :]
    threshold = key[top].min()
    above = np.flatnonzero(key > threshold)
    ties = np.flatnonzero(key == threshold)[: k - above.size]
    cand = np.concatenate([above, ties])
    order = sorted(cand.tolist(), key=lambda i: (-float(key[i]), i))
    return _worst_entries(order, shape, rf, cf, flat[order].tolist())


def _general_drift(name, ref, r, c, tolerance, quantiles, low_max, top_k=TOP_K) -> LayerDrift:
    n = r.size
    finite_r = np.isfinite(r)
    finite_c = np.isfinite(c)
    nonfinite_ref = int(n - np.count_nonzero(finite_r))
    nonfinite_cand = int(n - np.count_nonzero(finite_c))

    with np.errstate(invalid="ignore", over="ignore"):  # no RuntimeWarning on stderr: the nan is the answer
        absdiff = np.abs(c - r)  # inf - inf = nan: counts as a failure, as in Polygraphy (infinities unequal)
    if tolerance.infinities_equal:  # ... unless asked otherwise (Polygraphy's infinities_compare_equal)
        absdiff = np.where(np.isinf(r) & (r == c), np.float32(0.0), absdiff)  # np.where: a scalar tensor too
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
    elif any_bad and not np.any(finite_r & finite_c):
        cosine = float("nan")  # taken over elements finite on both sides: there is none (was 1.0, next to inf)
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
        histogram=_histogram_plain(absdiff),
        worst=_top_k_general(absdiff, top_k, ref.shape, r.reshape(-1), c.reshape(-1)),
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
    then largest rel_rms; NaN counts as worst), non-finite counts summed, passed only if every iteration passed.

    The histogram and the worst elements are merged over all iterations instead of taken from the worst one:
    the bins are fixed, so counts add up to the elements compared in all iterations, and the k worst elements
    of any iteration are what a user chasing outliers wants (each entry says its iteration)."""
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
    if all(d.histogram for d in drifts):
        counts = [[d.histogram.get(label, 0) for label in HIST_LABELS] for d in drifts]
        merged.histogram = dict(zip(HIST_LABELS, map(sum, zip(*counts))))
    k = max(len(d.worst) for d in drifts)
    offsets = [0, *itertools.accumulate(d.iterations for d in drifts)]  # rows that already merge several
    entries = [{**e, "iteration": offsets[i] + e["iteration"]} for i, d in enumerate(drifts) for e in d.worst]
    merged.worst = sorted(entries, key=_worst_rank)[:k]
    return merged


def _worst_rank(entry: dict) -> tuple[float, int, list[int]]:
    """Worst first: largest |d| (NaN as inf), then earlier iteration, then lower index."""
    v = entry["abs"]
    return (-math.inf if math.isnan(v) else -v, entry["iteration"], entry["index"])


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
