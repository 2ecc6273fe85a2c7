"""Adversarial checks of round 5's speed-ups: segments calling their ONNX Runtime session directly (infer_fn),
float32 sums in metrics._fast_drift, the weights' peaks read on two threads (precision.plan._peaks), and the
two CPU ONNX sides of a comparison run at once (engine.Comparison._run_sides). Each case holds the new
mechanism to the old one (metrics_before.py, the sides run in turn, the peaks read in order)."""

import gc
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.core.parity import metrics_before as before
from trt_tui.core.errors import UserError
from trt_tui.core.parity import segments
from trt_tui.core.parity.engine import CompareOptions, prepare_comparison
from trt_tui.core.parity.inputs import InputSpec
from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.precision import plan as plan_module

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


# ---- metrics: float32 sums -----------------------------------------------------------------------------------
def _exact_one_minus_cos(r: np.ndarray, c: np.ndarray) -> float:
    """1 - cos(r, c) from exactly rounded sums (math.fsum), through the same cancellation-free identity."""
    r64, c64 = np.asarray(r, np.float64).ravel(), np.asarray(c, np.float64).ravel()
    d = (np.asarray(c, np.float32).ravel() - np.asarray(r, np.float32).ravel()).astype(np.float64)
    rr, cc, dd = math.fsum(r64 * r64), math.fsum(c64 * c64), math.fsum(d * d)
    gap = math.fsum(d * (c64 + r64)) / (math.sqrt(rr) + math.sqrt(cc))
    return max(0.0, (dd - gap * gap) / (2 * math.sqrt(rr * cc)))


def _cosine_close(new: float, old: float) -> bool:
    """The claim: 1 - cosine within ~1e-6 of its own value, or ~1e-12 absolute."""
    return abs(new - old) <= 2e-6 * abs(1.0 - old) + 1e-12


@pytest.mark.parametrize("gain", [1e-3, 0.01, 0.05, 0.1, 0.13])
@pytest.mark.parametrize("noise", [0.0, 1e-4])
def test_a_candidate_with_a_gain_error_keeps_an_accurate_cosine(gain, noise):
    """c = (1 + gain) r (+ noise): |d|^2 and (|c| - |r|)^2 nearly cancel, and float32 sums of either swamp
    1 - cos (before the fix: 1 - cos 4.21e-9 for 3.91e-9 exact at gain 0.13, 9e-10 for 0 on a constant)."""
    rng = np.random.default_rng(5)
    r = rng.standard_normal(400_000).astype(np.float32)
    c = (r * np.float32(1 + gain) + rng.standard_normal(r.size).astype(np.float32) * np.float32(noise)).astype(np.float32)
    row, old = tensor_drift("t", r, c), before.tensor_drift("t", r, c)
    assert _cosine_close(row.cosine, old.cosine), (1 - row.cosine, 1 - old.cosine)
    exact = _exact_one_minus_cos(r, c)
    assert abs((1 - row.cosine) - exact) <= 2e-6 * exact + 1e-12


@pytest.mark.parametrize(
    "r,c",
    [([1e-3], [1.05e-3]), ([3.0, 4.0], [3.3, 4.4]), ([2.0] * 100_000, [2.2] * 100_000), ([1.0] * 1000, [1.0001] * 1000),
     ([[1.5]], [[1.5009766]]), (1.5, 1.6)],
)  # fmt: skip
def test_one_element_constant_and_scaled_tensors_keep_their_cosine(r, c):
    """A 1-element tensor, a constant one, a scaled copy: cos is 1 up to float64 rounding, as before."""
    r, c = np.asarray(r, np.float32), np.asarray(c, np.float32)
    row, old = tensor_drift("t", r, c), before.tensor_drift("t", r, c)
    assert _cosine_close(row.cosine, old.cosine), (1 - row.cosine, 1 - old.cosine)


def test_a_mean_verdict_at_its_tolerance_is_the_verdict_of_before():
    """stat='mean' decides on mean |d| itself: a tolerance between the float64 and the float32 means flipped
    `passed` (a field the rewrite keeps bit for bit). The mean statistic takes the float64 sums, as before."""
    rng = np.random.default_rng(3)
    r = rng.standard_normal(300_000).astype(np.float32)
    c = (r + rng.standard_normal(r.size).astype(np.float32) * np.float32(1e-3)).astype(np.float32)
    old_mean = before.tensor_drift("t", r, c).mean_abs
    fast_mean = tensor_drift("t", r, c).mean_abs  # the default statistic (median): float32 sums
    assert fast_mean == pytest.approx(old_mean, rel=1e-6)
    for atol in ((old_mean + fast_mean) / 2, old_mean, np.nextafter(old_mean, 0), np.nextafter(old_mean, 1)):
        tol = Tolerance(atol=float(atol), rtol=0.0, stat="mean")
        new, old = tensor_drift("t", r, c, tol), before.tensor_drift("t", r, c, tol)
        assert json.dumps(new.to_json(), sort_keys=True) == json.dumps(old.to_json(), sort_keys=True)


def _mixed_cases():
    rng = np.random.default_rng(9)
    n = 200_000
    tiny = (rng.standard_normal(n) * 1e-14).astype(np.float32)
    tiny[[3, 500, n - 1]] = [1.0, -0.7, 0.9]
    yield "1e-14 with a few ~1", tiny, tiny.astype(np.float16).astype(np.float32)
    perturbed = tiny.copy()
    perturbed[10:] = (perturbed[10:] * np.float32(1.001)).astype(np.float32)
    yield "1e-14 part perturbed", tiny, perturbed
    deep = (rng.standard_normal(n) * 1e-22).astype(np.float32)
    deep[0] = 1e-15  # squares underflow float32 below the largest one
    yield "1e-22 under one 1e-15", deep, (deep + (rng.standard_normal(n) * 1e-22).astype(np.float32)).astype(np.float32)
    ones = np.ones(n, np.float32)
    ulp = ones.copy()
    ulp[::2] = np.nextafter(np.float32(1), np.float32(2))
    yield "1-ulp differences", ones, ulp
    sub = np.full(n, 1e-30, np.float32)
    yield "subnormal differences", sub, (sub + np.float32(1e-44)).astype(np.float32)
    r = rng.standard_normal(n).astype(np.float32)
    yield "anti-correlated", r, -r
    yield "anti-correlated, noisy", r, (-r + rng.standard_normal(n).astype(np.float32) * np.float32(1e-3)).astype(np.float32)
    yield "orthogonal", r, rng.standard_normal(n).astype(np.float32)
    yield "cos near 0.99", r, (r + rng.standard_normal(n).astype(np.float32) * np.float32(0.14)).astype(np.float32)
    yield "at the |d|^2 <= 0.02 |r||c| edge", r, (r + rng.standard_normal(n).astype(np.float32) * np.float32(0.1414)).astype(np.float32)
    yield "float16", r.astype(np.float16), (r * np.float32(1.01)).astype(np.float16)
    yield "bfloat16", r.astype(ml_dtypes.bfloat16), (r * np.float32(1.01)).astype(ml_dtypes.bfloat16)
    yield "float64", r.astype(np.float64), (r * 1.01).astype(np.float64)
    yield "0-d", np.array(-2.0, np.float32), np.array(-2.001, np.float32)
    yield "zero candidate", r, np.zeros(n, np.float32)
    yield "zero reference, tiny candidate", np.zeros(n, np.float32), np.full(n, 1e-20, np.float32)


@pytest.mark.parametrize("label", [case[0] for case in _mixed_cases()])
def test_hostile_tensors_keep_every_field_of_before(label):
    """Mixed scales, underflowing squares, subnormal differences, anti-correlated and orthogonal candidates,
    other dtypes, 0-d: rel_rms and mean_abs within 1e-6, the cosine as claimed, every other field bit for bit."""
    _, r, c = next(case for case in _mixed_cases() if case[0] == label)
    for tol in (Tolerance(), Tolerance(atol=1e-4, rtol=5e-3, stat="median"), Tolerance(atol=1e-6, rtol=1e-6, stat="mean")):
        a, b = tensor_drift("t", r, c, tol).to_json(), before.tensor_drift("t", r, c, tol).to_json()
        for field in ("rel_rms", "mean_abs") + (("required_atol",) if tol.stat == "mean" else ()):
            new, old = a.pop(field), b.pop(field)
            assert new == old or abs(new - old) <= 1e-6 * abs(old), (field, new, old)
        assert _cosine_close(a.pop("cosine"), b.pop("cosine"))
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---- plan: the weights' peaks read on two threads --------------------------------------------------------------
def _overflow_model(tmp_path):
    """Ten external weights (enough for the threaded read), three beyond fp16, one node (a Gemm) reading two."""
    rng = np.random.default_rng(4)
    nodes, inits, h = [], [], "x"
    for k in range(10):
        w = rng.standard_normal((16,) if k == 6 else (16, 16)).astype(np.float32)
        if k in (2, 5, 6):
            w.reshape(-1)[k] = 1e5 * (k + 1)
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        if k == 5:  # w5 and w6 (its bias): both overflow, the node is kept FP32 once, by the first read
            nodes.append(helper.make_node("Gemm", [h, "w5", "w6"], ["h5"], name="both"))
            h = "h5"
        elif k != 6:
            nodes.append(helper.make_node("MatMul", [h, f"w{k}"], [f"h{k}"], name=f"mm{k}"))
            h = f"h{k}"
    graph = helper.make_graph(nodes, "peaks", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, [2, 16])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "peaks.onnx"
    onnx.save(model, path, save_as_external_data=True, location="peaks.onnx.data", size_threshold=0)
    return path


def test_the_overflow_list_is_the_list_of_the_peaks_read_in_order(tmp_path, monkeypatch):
    path = _overflow_model(tmp_path)
    threaded = []
    real = plan_module._peaks

    def spy(plan, names):
        threaded.append(len([n for n in names if plan_module.is_external(plan.consts[n])]))
        return real(plan, names)

    monkeypatch.setattr(plan_module, "_peaks", spy)
    got = plan_module.make_plan(path, "fp16", [])
    assert threaded and threaded[0] >= 8  # the threaded read ran
    monkeypatch.setattr(plan_module, "_peaks", lambda plan, names: {n: plan.const_max_abs(n) for n in names})
    want = plan_module.make_plan(path, "fp16", [])
    assert [(o.name, o.max_abs, o.kept_fp32) for o in got.overflow] == [(o.name, o.max_abs, o.kept_fp32) for o in want.overflow]
    assert [(o.name, o.kept_fp32) for o in got.overflow] == [("w2", ("mm2",)), ("w5", ("both",))]
    assert [n.mode for n in got.nodes] == [n.mode for n in want.nodes]


# ---- engine: the two CPU ONNX sides at once -------------------------------------------------------------------
def _side_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("trt_tui_reference")]


def test_both_sides_failing_report_the_reference_first_as_in_turn(pair, monkeypatch):
    """Run in turn, a reference failing at run time stopped the comparison before the candidate ran: its error
    is the one reported. At once, the candidate fails first: the reference's error still wins."""

    def run(self, i):
        reference = self.executor.label == "reference side"
        time.sleep(0.05 if reference else 0.0)
        raise UserError(f"{'reference' if reference else 'candidate'} broke")

    monkeypatch.setattr(segments.SegmentRun, "run", run)
    for concurrent in (False, True):
        comparison = prepare_comparison(pair[0], "emulate", precision="fp16")
        comparison.reference.executor.label = "reference side"
        comparison._concurrent = concurrent
        with pytest.raises(UserError, match="reference broke"):
            for _ in comparison.run():
                pass


def test_an_interrupt_while_waiting_for_the_reference_lets_it_finish_first(pair, monkeypatch):
    """Ctrl-C while the main thread waits for the reference's inference: the segments must not close (their
    sessions' weights freed) under a session still running on the reference's thread."""
    comparison = prepare_comparison(pair[0], "emulate", precision="fp16")
    finished, closed = [], []
    real_run, real_exit = segments.SegmentRun.run, segments.SegmentRun.__exit__

    def run(self, i):
        if self.executor is comparison.reference.executor:
            time.sleep(0.3)
            out = real_run(self, i)
            finished.append(i)
            return out
        return real_run(self, i)

    def exit_(self, *exc):
        closed.append(list(finished))
        return real_exit(self, *exc)

    class Interrupted(ThreadPoolExecutor):
        def submit(self, fn, *args):
            future = super().submit(fn, *args)

            def result(timeout=None):
                raise KeyboardInterrupt

            future.result = result
            return future

    monkeypatch.setattr(segments.SegmentRun, "run", run)
    monkeypatch.setattr(segments.SegmentRun, "__exit__", exit_)
    comparison._side_pool = Interrupted(max_workers=1, thread_name_prefix="trt_tui_reference")
    with pytest.raises(KeyboardInterrupt):
        for _ in comparison.run():
            pass
    assert closed and all(done == [0] for done in closed)
    comparison._side_pool.shutdown(wait=True)


def test_an_abandoned_or_failed_comparison_leaves_no_side_thread(pair, monkeypatch):
    """The TUI drops a comparison half-way (an error, a closed screen): its reference thread goes with it."""
    before_threads = set(_side_threads())
    comparison = prepare_comparison(pair[0], "emulate", precision="fp16", options=CompareOptions(max_memory=8 << 10),
                                    inputs=InputSpec(iterations=2))  # fmt: skip
    run = comparison.run()
    next(run)
    assert set(_side_threads()) - before_threads  # running at once
    run.close()
    del run, comparison
    gc.collect()
    deadline = time.monotonic() + 5
    while set(_side_threads()) - before_threads and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not set(_side_threads()) - before_threads


def test_rows_at_once_equal_rows_in_turn_with_cancellation(pair):
    """Cancelled after the first batch: the same batches and rows whether the sides ran at once or in turn."""

    def rows(concurrent: bool):
        comparison = prepare_comparison(pair[0], f"onnx:{pair[1]}", options=CompareOptions(max_memory=8 << 10),
                                        inputs=InputSpec(iterations=3))  # fmt: skip
        assert comparison._concurrent
        comparison._concurrent = concurrent
        cancel = threading.Event()
        updates = []
        for update in comparison.run(cancel=cancel):
            updates.append(update.batch)
            if len(updates) == 2:
                cancel.set()
        return updates, comparison.cancelled, [d.to_json() for d in comparison.result().tensors]

    assert rows(True) == rows(False)


@pytest.mark.parametrize("offset", [0.0, 5.0])
def test_rounding_drift_still_takes_the_float32_sums(offset, monkeypatch):
    """The gain-error guard leaves the common case fast: fp16/bf16 rounding (also of a tensor with a large mean)."""
    from trt_tui.core.parity import metrics

    taken = []
    real = metrics._f32_sums_exact_enough
    monkeypatch.setattr(metrics, "_f32_sums_exact_enough", lambda *a: taken.append(real(*a)) or taken[-1])
    rng = np.random.default_rng(6)
    r = (rng.standard_normal(200_000) + offset).astype(np.float32)
    for low in (np.float16, ml_dtypes.bfloat16):
        tensor_drift("t", r, r.astype(low).astype(np.float32))
    assert taken == [True, True]


# ---- segments: the session called directly ---------------------------------------------------------------------
def _reshaping_model(tmp_path):
    """x [N, 4] -> Reshape to [2, 4] -> Relu -> Mul by a weight: runs only for N = 2."""
    w = numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), "w")
    shape = numpy_helper.from_array(np.array([2, 4], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="reshape"),
             helper.make_node("Relu", ["flat"], ["act"], name="relu"),
             helper.make_node("Mul", ["act", "w"], ["y"], name="mul")]  # fmt: skip
    graph = helper.make_graph(nodes, "reshaping", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w, shape])  # fmt: skip
    path = tmp_path / "reshaping.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_run_time_failure_is_one_line_naming_the_side(tmp_path):
    from trt_tui.core.parity.engine import compare

    path = _reshaping_model(tmp_path)
    assert compare(path, "emulate", precision="fp16", inputs=InputSpec(dims={"N": 2})).tensors  # runs for N = 2
    with pytest.raises(UserError) as failure:
        compare(path, "emulate", precision="fp16", inputs=InputSpec(dims={"N": 3}))
    line = failure.value.one_line()
    assert "\n" not in line and "failed running the" in line and "--dim" in line


def test_the_session_called_directly_gives_polygraphys_outputs(tmp_path, monkeypatch):
    """infer_fn on a segment's runner: the outputs of Polygraphy's infer, by name, bit for bit."""
    from trt_tui.core.parity.engine import compare

    path = _reshaping_model(tmp_path)
    spec = InputSpec(dims={"N": 2}, iterations=2)
    direct = [d.to_json() for d in compare(path, "emulate", precision="fp16", inputs=spec).tensors]
    monkeypatch.setattr(segments, "infer_fn", lambda runner: lambda feeds: runner.infer(feeds, check_inputs=False))
    polygraphy = [d.to_json() for d in compare(path, "emulate", precision="fp16", inputs=spec).tensors]
    assert direct == polygraphy and len(direct) >= 2
