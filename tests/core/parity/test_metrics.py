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


def _plain_histogram(diff: np.ndarray) -> list[int]:
    """The HIST_LABELS buckets with plain numpy, in float64 against the exact decades."""
    d = diff.astype(np.float64).ravel()
    finite = d[np.isfinite(d)]
    decades = [10.0**e for e in range(-8, 5)]
    pos = finite[finite > 0]
    inner = np.histogram(pos, bins=[0.0, *decades, np.inf])[0].tolist()  # bins [a, b); no element is inf
    return [int((finite == 0).sum()), *inner, int(d.size - finite.size)]


def _diff_cases():
    rng = np.random.default_rng(7)
    r = rng.standard_normal((6, 40, 33)).astype(np.float32)
    scale = (10.0 ** rng.uniform(-10, 5, r.shape)).astype(np.float32)  # |d| over every decade, both ends
    c = (r + rng.standard_normal(r.shape).astype(np.float32) * scale).astype(np.float32)
    c.reshape(-1)[:50] = r.reshape(-1)[:50]  # exact zeros
    edge = np.float32(1e-3)  # elements sitting exactly on a float32-rounded edge
    c.reshape(-1)[50:60] = r.reshape(-1)[50:60] + edge
    yield "float32", r, c
    yield "float64", r.astype(np.float64), c.astype(np.float64) * (1 + 1e-12)
    yield "ties", np.zeros((5, 7), np.float32), np.zeros((5, 7), np.float32)
    bad = c.copy()
    bad[0, 0, 0], bad[1, 2, 3], bad[2, 0, 5] = np.nan, np.inf, -np.inf
    yield "nonfinite", r, bad


@pytest.mark.parametrize("case", ["float32", "float64", "ties", "nonfinite"])
def test_histogram_and_top_k_equal_plain_numpy(case):
    from trt_tui.core.parity.metrics import HIST_LABELS

    name, r, c = next(item for item in _diff_cases() if item[0] == case)
    d = tensor_drift("t", r, c, Tolerance(atol=1e-3, rtol=1e-3), top_k=8)
    diff = np.abs(c - r)
    assert list(d.histogram) == list(HIST_LABELS)
    assert sum(d.histogram.values()) == r.size
    assert list(d.histogram.values()) == _plain_histogram(diff)
    # top-k: numpy's stable sort, worst first (NaN ranks as inf), ties by lowest flat index
    key = np.where(np.isnan(diff), np.inf, diff).ravel()
    expected = np.argsort(-key, kind="stable")[:8]
    assert [tuple(e["index"]) for e in d.worst] == [np.unravel_index(i, r.shape) for i in expected]
    for e in d.worst:
        i = tuple(e["index"])
        np.testing.assert_array_equal([e["ref"], e["cand"], e["abs"]], [r[i], c[i], diff[i]])  # NaN == NaN here
        assert e["iteration"] == 0
    assert d.worst[0]["index"] == d.worst_index


def test_top_k_size_and_fast_equals_general():
    from trt_tui.core.parity.metrics import _general_drift

    rng = np.random.default_rng(3)
    r = rng.standard_normal(1000).astype(np.float32)
    c = r + rng.standard_normal(1000).astype(np.float32) * 1e-3
    for k in (0, 1, 3, 20):
        fast = tensor_drift("t", r, c, top_k=k)
        slow = _general_drift("t", r, r, c, Tolerance(), (0.99,), 65504.0, k)
        assert len(fast.worst) == k and fast.worst == slow.worst and fast.histogram == slow.histogram
    assert len(tensor_drift("t", r[:3], c[:3], top_k=8).worst) == 3  # fewer elements than k
    empty = tensor_drift("t", np.zeros(0, np.float32), np.zeros(0, np.float32))
    assert empty.worst == [] and empty.histogram == {}


def test_merge_iterations_sums_histograms_and_merges_worst():
    from trt_tui.core.parity.metrics import merge_iterations

    rng = np.random.default_rng(5)
    r = rng.standard_normal((2, 50)).astype(np.float32)
    drifts = [tensor_drift("t", r, r + rng.standard_normal(r.shape).astype(np.float32) * s, top_k=4) for s in (1e-4, 1e-2, 1e-3)]
    merged = merge_iterations(drifts)
    assert sum(merged.histogram.values()) == 3 * r.size
    assert merged.histogram == {k: sum(d.histogram[k] for d in drifts) for k in merged.histogram}
    everything = sorted(((e["abs"], i) for i, d in enumerate(drifts) for e in d.worst), key=lambda t: -t[0])[:4]
    assert [(e["abs"], e["iteration"]) for e in merged.worst] == everything
    assert {e["iteration"] for e in merged.worst} == {1}  # the noisiest iteration holds the worst elements
    json_row = merged.to_json()
    assert json_row["worst"][0]["index"] == merged.worst[0]["index"] and json_row["histogram"] == merged.histogram


def test_histogram_edges_are_the_real_decades():
    # float32(1e-8) lies just below 1e-8, float32(1e-3) just above 1e-3: the buckets follow the real values
    c = np.array([1e-8, 1e-3, 0.0, 2e4], np.float32)
    h = tensor_drift("t", np.zeros(4, np.float32), c).histogram
    assert {k: v for k, v in h.items() if v} == {"0": 1, "<1e-8": 1, "1e-3..1e-2": 1, ">=1e4": 1}


def test_sample_stride_does_not_alias_with_rows(monkeypatch):
    """An attention map 8x74x330: a stride dividing 330 (15) sampled 22 of the 330 key positions of every row,
    its band missed the median and the whole tensor was partitioned. A prime stride sees every column."""
    from trt_tui.core.parity import metrics

    rng = np.random.default_rng(5)
    cols = np.where(np.arange(330) % 15 == 0, 1.0, 1e-3).astype(np.float32)  # the aliased columns stand out
    a = (cols * np.abs(rng.standard_normal((8, 74, 330))).astype(np.float32)).reshape(-1)
    assert a.size // min(metrics._SAMPLE_MAX, max(metrics._SAMPLE_MIN, int(metrics._SAMPLE_FACTOR * a.size**0.5))) == 15
    whole = []
    partition = np.partition
    monkeypatch.setattr(np, "partition", lambda x, k, *args, **kw: whole.append(x.size) or partition(x, k, *args, **kw))
    n = a.size
    positions = [n // 2 - 1, n // 2, int(0.99 * (n - 1))]
    ranked = np.sort(a)
    assert metrics._select_positions(a, positions) == {k: float(ranked[k]) for k in positions}
    assert whole == []  # no fallback to a full partition


def _selection_cases(n: int):
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal(n)).astype(np.float32)
    yield "random", x
    yield "sorted", np.sort(x)
    yield "reversed", np.sort(x)[::-1].copy()
    z = x.copy()
    z[: n * 2 // 3] = 0  # a run of equal values over the median
    yield "mostly zero", z
    s = x.copy()
    s[::4096] = 1e6  # exactly what the strided sample sees is unrepresentative
    yield "sample-hostile", s
    yield "constant", np.full(n, 0.5, np.float32)
    yield "with inf", np.where(x > 2.5, np.float32(np.inf), x)  # reldiff can overflow


@pytest.mark.parametrize("case", ["random", "sorted", "reversed", "mostly zero", "sample-hostile", "constant", "with inf"])
def test_sampled_selection_is_exact(case):
    """Tensors over _PARTITION_MAX elements take the sampled route: every order statistic must be what a full
    sort gives, and the quantiles numpy's own."""
    from trt_tui.core.parity.metrics import _PARTITION_MAX, _select_positions, _select_quantiles

    n = 3 * _PARTITION_MAX + 17
    a = dict(_selection_cases(n))[case]
    before = a.copy()
    ranked = np.sort(a)
    positions = [0, 1, n // 2 - 1, n // 2, n // 2 + 1, int(0.99 * (n - 1)), n - 9, n - 1]
    got = _select_positions(a, positions)
    assert got == {k: float(ranked[k]) for k in positions}
    np.testing.assert_array_equal(a, before)  # left as it was
    qs, _ = _select_quantiles(a, (0.5, 0.9, 0.99))
    for q, v in qs.items():
        expected = float(np.quantile(a.astype(np.float64), q)) if np.isfinite(ranked[-1]) else None
        if expected is not None:
            assert v == pytest.approx(expected, rel=1e-6, abs=0)


def test_big_tensor_drift_equals_general_path():
    from trt_tui.core.parity.metrics import HIST_LABELS, _general_drift

    rng = np.random.default_rng(5)
    r = rng.standard_normal((74, 1500)).astype(np.float32)
    c = r.astype(np.float16).astype(np.float32)
    c[:, :10] = r[:, :10]  # exact zeros in |d|
    tol = Tolerance(atol=1e-3, rtol=1e-3, stat="median")
    fast = tensor_drift("t", r, c, tol, quantiles=(0.9, 0.999))
    slow = _general_drift("t", r, r, c, tol, (0.9, 0.999), 65504.0)
    assert (fast.median_abs, fast.p99_abs, fast.quantiles) == (slow.median_abs, slow.p99_abs, slow.quantiles)
    assert (fast.required_atol, fast.required_rtol) == pytest.approx((slow.required_atol, slow.required_rtol), rel=1e-6)
    assert list(fast.histogram) == list(HIST_LABELS) and fast.histogram == slow.histogram
    assert [e["index"] for e in fast.worst] == [e["index"] for e in slow.worst]


@pytest.mark.parametrize("n", [5000, 150001])
def test_p99_interpolates_with_the_next_order_statistic(n):
    """numpy's linear quantile between the two order statistics around q*(n-1), also when the top-k threshold
    is selected in the same call (the in-place partition it replaced lost the upper neighbour then)."""
    from trt_tui.core.parity.metrics import _select_quantiles

    rng = np.random.default_rng(11)
    for _ in range(20):
        a = np.abs(rng.standard_normal(n)).astype(np.float32)
        a[rng.random(n) < 0.3] = 0
        s = np.sort(a).astype(np.float64)
        p = 0.99 * (n - 1)
        lo = int(np.floor(p))
        assert _select_quantiles(a, (0.5, 0.99), extra=(n - 8,))[0][0.99] == s[lo] + (s[lo + 1] - s[lo]) * (p - lo)


def test_cosine_is_nan_where_no_element_is_finite_on_both_sides():
    """magika's LayerNorm sums overflow fp16 to inf in a 1-element tensor: the cosine over elements finite on
    both sides has no element; it said 1.0 next to max |d| = inf."""
    ref = np.array([106058.6], np.float32)
    d = tensor_drift("t", ref, np.array([np.inf], np.float32), Tolerance())
    assert d.max_abs == np.inf and d.rel_rms == np.inf and np.isnan(d.cosine) and not d.passed
    partly = tensor_drift("t", np.array([1.0, 2.0], np.float32), np.array([1.0, np.inf], np.float32), Tolerance())
    assert partly.cosine == 1.0  # the finite pair agrees
