"""An output target fails where some element's difference is inf/NaN, whatever its metric reads: cosine (taken
over the elements finite on both sides) and p99_abs (a quantile past one bad element) read fine beside a NaN,
an infinity of the other sign or one that moved, which passed a cosine target with --infinities-compare-equal
on as well as off. The same infinity on both sides passes only when counted equal (Polygraphy's switch)."""

import numpy as np
import pytest

from trt_tui.core.search.targets import Criterion, parse_target
from trt_tui.core.tolerance import TolerancePolicy

N = 200  # p99_abs of 200 elements stays finite past one bad element
REF = np.linspace(1.0, 2.0, N).astype(np.float32)
REF[0] = -np.inf


def _cand(first: float, second: float | None = None) -> np.ndarray:
    cand = REF.copy()
    cand[0] = first
    if second is not None:
        cand[1] = second
    return cand


def _passes(target: str, cand: np.ndarray, on: bool) -> bool:
    criterion = Criterion(["y"], [parse_target(target)], TolerancePolicy().with_infinities_equal(on))
    return criterion.check([{"y": REF}], [{"y": cand}])["y"].passed


@pytest.mark.parametrize("target", ["y:cosine>=0.999", "y:p99_abs<=1e-3", "y:rel_rms<=1e-3", "y:max_abs<=1e-3"])
@pytest.mark.parametrize("cand", [_cand(np.nan), _cand(np.inf), _cand(0.0, -np.inf)], ids=["nan", "other-sign", "moved"])
@pytest.mark.parametrize("on", [False, True])
def test_a_nonfinite_difference_fails_every_target(target, cand, on):
    assert not _passes(target, cand, on)


@pytest.mark.parametrize("target", ["y:cosine>=0.999", "y:p99_abs<=1e-3", "y:rel_rms<=1e-3", "y:max_abs<=1e-3"])
def test_the_same_infinity_passes_only_when_counted_equal(target):
    assert _passes(target, _cand(-np.inf), on=True)
    assert not _passes(target, _cand(-np.inf), on=False)  # inf - inf is NaN, as in Polygraphy
