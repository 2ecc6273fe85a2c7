"""Polygraphy's infinities_compare_equal: the same +-inf on both sides is no difference (a masked logit, a log
of 0). Off (the default, Polygraphy's too), inf - inf is NaN and fails; on, the metrics are those of the finite
elements, and an infinity on one side only (or of the other sign) still fails."""

import math

import numpy as np
import pytest
from polygraphy.comparator import IterationResult
from polygraphy.comparator.compare import SimpleCompareFunc

from trt_tui.core.parity.metrics import Tolerance, tensor_drift
from trt_tui.core.tolerance import TolerancePolicy

REF = np.array([-np.inf, 1.0, 2.0, -np.inf, 4.0], dtype=np.float32)
CAND = np.array([-np.inf, 1.0005, 2.0, -np.inf, 4.001], dtype=np.float32)


def test_off_matching_infinities_fail_as_in_polygraphy():
    d = tensor_drift("y", REF, CAND, Tolerance(atol=1e-2, rtol=1e-2))
    assert not d.passed and not math.isfinite(d.rel_rms)


def test_on_the_metrics_are_the_finite_elements_and_it_passes():
    on = tensor_drift("y", REF, CAND, Tolerance(atol=1e-2, rtol=1e-2, infinities_equal=True))
    finite = tensor_drift("y", REF[[1, 2, 4]], CAND[[1, 2, 4]], Tolerance(atol=1e-2, rtol=1e-2))
    assert on.passed
    assert on.rel_rms == pytest.approx(finite.rel_rms, rel=1e-12)
    assert on.cosine == pytest.approx(finite.cosine, rel=1e-12)
    assert on.max_abs == pytest.approx(finite.max_abs, rel=1e-12)


@pytest.mark.parametrize("cand_value", [0.0, np.inf, np.nan])
def test_on_an_infinity_on_one_side_or_of_the_other_sign_still_fails(cand_value):
    cand = CAND.copy()
    cand[0] = cand_value
    d = tensor_drift("y", REF, cand, Tolerance(atol=1e-2, rtol=1e-2, infinities_equal=True))
    assert not d.passed


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # Polygraphy's own inf - inf, not ours
@pytest.mark.parametrize("on", [False, True])
def test_the_verdict_is_polygraphys(on):
    ours = tensor_drift("y", REF, CAND, Tolerance(atol=1e-2, rtol=1e-2, stat="elemwise", infinities_equal=on))
    func = SimpleCompareFunc(atol=1e-2, rtol=1e-2, check_error_stat="elemwise", infinities_compare_equal=on)
    theirs = func(IterationResult({"y": CAND}, runner_name="cand"), IterationResult({"y": REF}, runner_name="ref"))
    assert ours.passed == bool(theirs["y"]) == on  # Polygraphy divides by the second (the reference)


def test_the_policy_stamps_every_tolerance():
    policy = TolerancePolicy(Tolerance(), (("^y$", Tolerance(atol=1.0)),)).with_infinities_equal(True)
    assert policy.for_tensor("y").infinities_equal and policy.for_tensor("other").infinities_equal
    assert policy.for_tensor("y").atol == 1.0


def test_a_scalar_tensor_too():
    inf = np.array(-np.inf, np.float32)
    assert tensor_drift("s", inf, inf, Tolerance(infinities_equal=True)).passed
    assert not tensor_drift("s", inf, np.array(1.0, np.float32), Tolerance(infinities_equal=True)).passed
