"""For the same run results, our metrics equal Polygraphy's SimpleCompareFunc and plain numpy."""

import numpy as np
import onnx
import pytest
from polygraphy import constants
from polygraphy.backend.onnx import ModifyOutputs
from polygraphy.comparator import Comparator, DataLoader
from polygraphy.comparator.compare import SimpleCompareFunc

from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.parity.segments import ort_runner


@pytest.fixture(scope="module")
def run_results(pair):
    runners = []
    for path, name in ((pair[1], "cand"), (pair[0], "ref")):  # reference SECOND: Polygraphy divides by it
        model = ModifyOutputs(onnx.load(path), outputs=constants.MARK_ALL)()
        runners.append(ort_runner(model.SerializeToString(), name=name))
    return Comparator.run(runners, data_loader=DataLoader(seed=3, iterations=1))


@pytest.mark.parametrize("stat", ["elemwise", "max", "mean", "median"])
def test_absdiff_stats_and_verdicts_match_simple_compare_func(run_results, stat):
    tol = Tolerance(atol=2e-4, rtol=1e-3, stat=stat)
    exact = lambda name, index, out: [name] if name in out else []  # noqa: E731  (never positional pairing)
    func = SimpleCompareFunc(atol=tol.atol, rtol=tol.rtol, check_error_stat=stat, find_output_func=exact)
    acc = Comparator.compare_accuracy(run_results, compare_func=[func])
    if hasattr(acc, "lst"):  # 0.53 returns AccuracyResults, one entry per compare function; older a single one
        acc = acc[0]
    theirs = acc[("cand", "ref")][0]
    ref, cand = run_results["ref"][0], run_results["cand"][0]
    assert len(theirs) > 30
    verdicts_differ = 0
    for name, res in theirs.items():
        ours = tensor_drift(name, ref[name], cand[name], tol)
        assert ours.max_abs == pytest.approx(float(res.max_absdiff), rel=1e-6, abs=1e-12), name
        assert ours.mean_abs == pytest.approx(float(res.mean_absdiff), rel=1e-5, abs=1e-12), name
        assert ours.median_abs == pytest.approx(float(res.median_absdiff), rel=1e-6, abs=1e-12), name
        verdicts_differ += ours.passed != bool(res)
    assert verdicts_differ == 0


def test_every_metric_equals_plain_numpy(run_results):
    ref, cand = run_results["ref"][0], run_results["cand"][0]
    for name in list(ref.keys())[::5]:
        r, c = np.asarray(ref[name], np.float64), np.asarray(cand[name], np.float64)
        d = tensor_drift(name, ref[name], cand[name], quantiles=(0.5, 0.9))
        diff = np.abs(np.asarray(cand[name]) - np.asarray(ref[name]))
        assert d.max_abs == pytest.approx(diff.max())
        assert d.mean_abs == pytest.approx(diff.astype(np.float64).mean())
        assert d.median_abs == pytest.approx(np.median(diff))
        assert d.p99_abs == pytest.approx(np.quantile(diff, 0.99))
        assert d.quantiles["p90"] == pytest.approx(np.quantile(diff, 0.9))
        assert d.rel_rms == pytest.approx(np.linalg.norm(c - r) / np.linalg.norm(r))
        assert d.cosine == pytest.approx(r.ravel() @ c.ravel() / np.linalg.norm(r) / np.linalg.norm(c))
        assert d.headroom == pytest.approx(np.abs(r).max() / 65504)
        assert tuple(d.worst_index) == np.unravel_index(np.argmax(diff), diff.shape)
        assert (d.worst_ref, d.worst_cand) == (float(ref[name][tuple(d.worst_index)]), float(cand[name][tuple(d.worst_index)]))
        assert (d.nonfinite_ref, d.nonfinite_cand) == (0, 0)
