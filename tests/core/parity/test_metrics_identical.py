"""The per-tensor metrics give the results of the code they replaced (a frozen copy in metrics_before.py):
every field of every row bit for bit, on random and adversarial arrays, with and without a reused workspace,
but for the three sums-based fields of the all-finite float32 case, which float32 pairwise sums now give
(metrics._f32_sums): rel_rms and mean_abs within 1e-6 of theirs, 1 - cosine within 1e-6 of its value.
Any speed-up of core/parity/metrics.py must keep these passing."""

import json
import math

import ml_dtypes
import numpy as np
import pytest

from tests.core.parity import metrics_before as before
from trt_tui.core.parity import metrics
from trt_tui.core.parity.metrics import Tolerance, Workspace, tensor_drift

TOLERANCES = [
    Tolerance(),
    Tolerance(atol=1e-4, rtol=5e-3, stat="median"),
    Tolerance(atol=1e-3, rtol=1e-3, stat="elemwise"),
    Tolerance(atol=1e-3, rtol=1e-2, stat="max"),
    Tolerance(atol=1e-5, rtol=1e-4, stat="mean"),
    Tolerance(atol=1e-4, rtol=1e-3, stat="quantile", quantile=0.9),
    Tolerance(atol=0.0, rtol=0.0, stat="quantile", quantile=0.999),
]


def _rounded(r: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(over="ignore"):
        return r.astype(dtype).astype(r.dtype)


def _cases():
    """(label, reference, candidate): the sizes cross the selection's (32768), the float64 sums' (65536)
    and the workspace's (1M elements) thresholds; the values cover what real tensors and hostile ones hold."""
    rng = np.random.default_rng(2024)
    for n in (1, 2, 7, 1000, 8191, 8193, 32768, 32769, 75776, 131073, 337920):
        r = rng.standard_normal(n).astype(np.float32) * np.float32(10.0 ** rng.integers(-3, 3))
        yield f"fp16 rounding n={n}", r, _rounded(r, np.float16)
        yield f"bf16 rounding n={n}", r, _rounded(r, ml_dtypes.bfloat16)
    big = rng.standard_normal(1_100_000).astype(np.float32)
    yield "beyond the workspace", big, _rounded(big, np.float16)
    n = 40_000
    r = rng.standard_normal(n).astype(np.float32)
    c = _rounded(r, np.float16)
    yield "identical", r, r.copy()
    yield "all zeros", np.zeros(n, np.float32), np.zeros(n, np.float32)
    yield "zero reference", np.zeros(n, np.float32), c
    z = r.copy()
    z[::3] = 0
    yield "zeros in the reference", z, _rounded(z, np.float16)
    yield "negative zeros", -np.zeros(n, np.float32), np.zeros(n, np.float32)
    half = c.copy()
    half[: n // 2] = r[: n // 2]
    yield "half exact (ties at zero)", r, half
    tiny = np.full(n, 1e-45, np.float32)  # float32 denormals
    yield "denormals", tiny, tiny * np.float32(2)
    yield "denormal differences", r, (r + np.float32(1e-44)).astype(np.float32)
    m = 3000  # non-finite values take the general path whatever the size
    huge = np.full(m, 3e38, np.float32)
    yield "huge", huge, (huge * np.float32(0.99)).astype(np.float32)
    opposite = huge.copy()
    opposite[5] = -3e38
    yield "difference overflows", huge, opposite
    fp16 = np.array([65504, -65504, 6.1e-5, 5.96e-8, 65520, 1e5, 0.0, 1.0] * 400, np.float32)
    yield "fp16 extremes", fp16, _rounded(fp16, np.float16)
    for label, value in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
        bad = c[:m].copy()
        bad[[3, 17, m - 1]] = value
        yield f"candidate {label}", r[:m], bad
        yield f"reference {label}", bad, c[:m]
        yield f"both {label}", bad, bad.copy()
    yield "all nan", np.full(m, np.nan, np.float32), c[:m]
    yield "constant", np.full(n, 0.5, np.float32), np.full(n, 0.5001, np.float32)
    s = np.abs(r)
    s[:: n // 4096 or 1] = 1e6  # what the strided sample sees is unrepresentative
    yield "sample-hostile", r, (r + s * np.float32(1e-3)).astype(np.float32)
    yield "sorted", np.sort(r), _rounded(np.sort(r), np.float16)
    shaped = rng.standard_normal((2, 3, 74, 40)).astype(np.float32)
    yield "4-d", shaped, _rounded(shaped, np.float16)
    yield "0-d", np.array(1.5, np.float32), np.array(1.5009766, np.float32)
    yield "empty", np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)
    yield "float16 inputs", r.astype(np.float16), c.astype(np.float16)
    yield "bfloat16 inputs", r.astype(ml_dtypes.bfloat16), c.astype(ml_dtypes.bfloat16)
    yield "float64 inputs", r.astype(np.float64), c.astype(np.float64)
    ints = rng.integers(-1000, 1000, n)
    yield "int64 inputs", ints, ints + (rng.random(n) < 0.01)
    yield "int32 inputs", ints.astype(np.int32), ints.astype(np.int32)
    yield "bool inputs", ints > 0, ints > 1


CASES = list(_cases())
KWARGS = ({}, {"quantiles": (0.5, 0.9, 0.99, 0.999), "top_k": 3, "low_max": metrics.BF16_MAX}, {"top_k": 0})
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # both versions warn alike on overflowing inputs


SUMMED = ("rel_rms", "mean_abs", "cosine")


def _close(field: str, new: float, old: float) -> bool:
    if new == old or (isinstance(new, float) and isinstance(old, float) and math.isnan(new) and math.isnan(old)):
        return True
    if field == "cosine":  # what matters is 1 - cos (~1e-8 for fp16 drift): its own relative error
        return abs(new - old) <= 1e-6 * abs(1.0 - old) + 1e-12
    return abs(new - old) <= 1e-6 * abs(old)


def _same(new, old) -> None:
    a, b = new.to_json(), old.to_json()
    summed = SUMMED + (("required_atol",) if b["tolerance"]["stat"] == "mean" else ())  # the mean of |d| itself
    size = math.prod(a["shape"])
    if a["cosine"] == "nan" and b["cosine"] in (1.0, 0.0) and a["nonfinite_ref"] + a["nonfinite_cand"] >= size:
        a["cosine"] = b["cosine"]  # intended: no element finite on both sides gives NaN now (it said 1.0 or 0.0)
    for field in summed:
        assert _close(field, a.pop(field), b.pop(field)), field
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.mark.parametrize("label", [c[0] for c in CASES])
def test_tensor_drift_is_bit_identical_to_before(label):
    _, r, c = next(case for case in CASES if case[0] == label)
    shared = Workspace()
    combos = [(tol, kwargs) for tol in TOLERANCES for kwargs in KWARGS]
    if np.size(r) > 100_000:  # the big ones: every statistic once (CI time)
        combos = [(tol, KWARGS[i % 2]) for i, tol in enumerate(TOLERANCES)]
    for tol, kwargs in combos:
        old = before.tensor_drift("t", r, c, tol, **kwargs)
        _same(tensor_drift("t", r, c, tol, **kwargs), old)
        _same(tensor_drift("t", r, c, tol, **kwargs, workspace=shared), old)  # stale scratch from other calls


def test_float64_sums_equal_numpy_with_and_without_the_blocked_path(monkeypatch):
    """The blocked float64 sums are numpy's einsum/mean to the bit here; the fallback (another numpy) too."""
    assert metrics._blocked_sums_exact()
    rng = np.random.default_rng(7)
    for n in (1, 8191, 8192, 8193, 131072, 131072 + 8192 * 3 + 5, 500_001):
        r = (rng.standard_normal(n) * 10.0 ** rng.integers(-20, 20)).astype(np.float32)
        c = _rounded(r, np.float16)
        d = np.abs(c - r)
        f64 = np.float64
        want = (float(np.einsum("i,i->", r, r, dtype=f64)), float(np.einsum("i,i->", c, c, dtype=f64)),
                float(np.einsum("i,i->", r, c, dtype=f64)), float(np.einsum("i,i->", d, d, dtype=f64)))  # fmt: skip
        got = metrics._f64_sums(r, c, d, Workspace())
        assert got[:4] == want and got[4] / n == float(np.mean(d, dtype=f64))
    monkeypatch.setattr(metrics, "_blocked_sums_exact", lambda: False)
    r, c = CASES[8][1], CASES[8][2]
    _same(tensor_drift("t", r, c), before.tensor_drift("t", r, c))


def test_merge_iterations_is_identical_to_before():
    """Rows of three iterations (one of them non-finite, or failing) merge alike, also a row merged twice."""
    for label, r, c in CASES[::4]:
        noisy = (np.asarray(c, np.float32) * np.float32(1.001)).astype(np.float32).reshape(np.shape(r))
        broken = noisy.copy()
        broken.reshape(-1)[:1] = np.nan
        rows_new, rows_old = [], []
        for cand, tol in ((c, TOLERANCES[1]), (noisy, TOLERANCES[2]), (broken, TOLERANCES[5])):
            rows_new.append(tensor_drift("t", r, cand, tol, top_k=3))
            rows_old.append(before.tensor_drift("t", r, cand, tol, top_k=3))
        _same(metrics.merge_iterations(rows_new), before.merge_iterations(rows_old))
        _same(metrics.merge_iterations([metrics.merge_iterations(rows_new[:2]), rows_new[2]]),
              before.merge_iterations([before.merge_iterations(rows_old[:2]), rows_old[2]]))  # fmt: skip


def _exact_sums(r: np.ndarray, c: np.ndarray) -> tuple[float, float, float, float]:
    r64, c64 = np.asarray(r, np.float64).ravel(), np.asarray(c, np.float64).ravel()
    d = np.asarray(c, np.float32).ravel() - np.asarray(r, np.float32).ravel()  # the float32 difference, as |d| is
    d64 = d.astype(np.float64)
    return math.fsum(r64 * r64), math.fsum(c64 * c64), math.fsum(d64 * d64), math.fsum(np.abs(d64))


@pytest.mark.parametrize("scale", [1e-12, 1e-3, 1.0, 1e4, 1e12])
def test_float32_sums_against_exact_sums(scale):
    """rel_rms, mean_abs and 1 - cosine of the float32 sums against exactly rounded sums (math.fsum)."""
    rng = np.random.default_rng(11)
    for n in (3, 1000, 40_000, 337_920):
        r = (rng.standard_normal(n) * scale).astype(np.float32)
        for c in (_rounded(r, np.float16), _rounded(r, ml_dtypes.bfloat16), (r * np.float32(1.0009765625)).astype(np.float32)):
            if not np.isfinite(c).all():
                continue
            row = tensor_drift("t", r, c)
            rr, cc, dd, sabs = _exact_sums(r, c)
            assert row.rel_rms == pytest.approx(math.sqrt(dd / rr), rel=1e-6)
            assert row.mean_abs == pytest.approx(sabs / n, rel=1e-6)
            if cc == 0:  # fp16 flushed a tiny tensor to zeros: no cosine to check
                continue
            r64, c64 = np.asarray(r, np.float64), np.asarray(c, np.float64)
            gap = math.fsum((c64 - r64) * (c64 + r64)) / (math.sqrt(cc) + math.sqrt(rr))
            one_minus = max(0.0, (math.fsum((c64 - r64) ** 2) - gap * gap) / (2 * math.sqrt(rr * cc)))
            assert 1.0 - row.cosine == pytest.approx(one_minus, rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("scale", [1e-30, 1e-17, 1e17, 1e30])
def test_values_beyond_the_float32_range_take_the_float64_sums(scale):
    """Squares that could underflow or overflow float32: the float64 sums, as before, to the bit."""
    rng = np.random.default_rng(12)
    r = (rng.standard_normal(50_000) * scale).astype(np.float32)
    c = (r * np.float32(1.001)).astype(np.float32)
    got, old = tensor_drift("t", r, c).to_json(), before.tensor_drift("t", r, c).to_json()
    assert json.dumps(got, sort_keys=True) == json.dumps(old, sort_keys=True)
