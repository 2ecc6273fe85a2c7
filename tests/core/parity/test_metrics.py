import numpy as np
import pytest

from trt_tui.core.parity.metrics import Tolerance, TolerancePolicy, tensor_drift


def test_metrics_equal_plain_numpy():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((4, 8, 16)).astype(np.float32)
    c = (r + rng.standard_normal(r.shape).astype(np.float32) * 1e-3).astype(np.float32)
    d = tensor_drift("t", r, c, quantiles=(0.95, 0.99))
    diff = np.abs(c - r)
    assert d.max_abs == pytest.approx(float(diff.max()))
    assert d.mean_abs == pytest.approx(float(diff.astype(np.float64).mean()))
    assert d.median_abs == pytest.approx(float(np.median(diff)))
    assert d.p99_abs == pytest.approx(float(np.quantile(diff, 0.99)))
    assert d.quantiles["p95"] == pytest.approx(float(np.quantile(diff, 0.95)))
    r64, c64 = r.astype(np.float64), c.astype(np.float64)
    assert d.rel_rms == pytest.approx(np.linalg.norm(c64 - r64) / np.linalg.norm(r64))
    assert d.cosine == pytest.approx(float(r64.ravel() @ c64.ravel() / np.linalg.norm(r64) / np.linalg.norm(c64)))
    assert tuple(d.worst_index) == np.unravel_index(np.argmax(diff), r.shape)
    assert d.headroom == pytest.approx(float(np.abs(r).max()) / 65504)


def test_nonfinite_counts_and_failure():
    r = np.ones(10, np.float32)
    c = r.copy()
    c[3] = np.inf
    c[5] = np.nan
    d = tensor_drift("t", r, c, Tolerance(atol=1.0, rtol=1.0))
    assert (d.nonfinite_ref, d.nonfinite_cand) == (0, 2)
    assert not d.passed and d.worst_index == [3] or d.worst_index == [5]


@pytest.mark.parametrize("stat", ["elemwise", "max", "mean", "median", "quantile"])
def test_pass_fail_thresholds(stat):
    r = np.linspace(1, 2, 100, dtype=np.float32)
    c = r + 1e-3
    assert tensor_drift("t", r, c, Tolerance(atol=2e-3, rtol=0, stat=stat)).passed
    assert not tensor_drift("t", r, c, Tolerance(atol=1e-4, rtol=1e-4, stat=stat)).passed
    assert tensor_drift("t", r, c, Tolerance(atol=0, rtol=1.01e-3, stat=stat)).passed


def test_policy_patterns():
    loose = Tolerance(atol=0.1)
    policy = TolerancePolicy(default=Tolerance(), rules=(("^cache_", loose),))
    assert policy.for_tensor("cache_last_time_next") is loose
    assert policy.for_tensor("log_probs") == Tolerance()


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        tensor_drift("t", np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("stat", ["elemwise", "max", "mean", "median", "quantile"])
def test_fast_path_equals_general_path(stat):
    from trt_tui.core.parity.metrics import _general_drift

    rng = np.random.default_rng(1)
    r = rng.standard_normal((3, 50, 7)).astype(np.float32)
    r[0, 0, :3] = 0  # zeros in the divisor
    c = (r + rng.standard_normal(r.shape).astype(np.float32) * 3e-4).astype(np.float32)
    tol = Tolerance(atol=3e-4, rtol=1e-3, stat=stat, quantile=0.9)
    fast = tensor_drift("t", r, c, tol, quantiles=(0.9, 0.999))
    slow = _general_drift("t", r, r, c, tol, (0.9, 0.999), 65504.0)
    for key in ("max_abs", "mean_abs", "median_abs", "p99_abs", "rel_rms", "cosine", "headroom", "worst_ref",
                "worst_cand", "required_atol", "required_rtol"):
        assert getattr(fast, key) == pytest.approx(getattr(slow, key), rel=1e-5), key
    assert fast.quantiles == pytest.approx(slow.quantiles, rel=1e-6)
    assert (fast.passed, fast.worst_index) == (slow.passed, slow.worst_index)
