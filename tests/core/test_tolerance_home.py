"""Tolerance is a shared building block (core/tolerance.py); parity.metrics keeps re-exporting it."""

from trt_tui.core import tolerance
from trt_tui.core.parity import metrics
from trt_tui.core.preset import model


def test_one_tolerance_type_everywhere():
    assert metrics.Tolerance is tolerance.Tolerance is model.Tolerance
    assert metrics.TolerancePolicy is tolerance.TolerancePolicy and metrics.default_tolerance is tolerance.default_tolerance
    assert tolerance.TolerancePolicy(rules=(("^y$", tolerance.Tolerance(atol=1.0)),)).for_tensor("y").atol == 1.0
