"""Issue 11: verdicts that mean something (weights never diverge, per-precision tolerances, own divergence)."""

from __future__ import annotations

import onnx
import pytest

from trt_tui.core.graph import load_graph
from trt_tui.core.parity.engine import CompareOptions, compare
from trt_tui.core.parity.metrics import Tolerance, TolerancePolicy, default_tolerance

from tests.fixtures.parity_models import weights_and_hotspot


@pytest.fixture(scope="module")
def hotspot(tmp_path_factory):
    path = tmp_path_factory.mktemp("hot") / "hotspot.onnx"
    onnx.save(weights_and_hotspot(), path)
    return path


def test_tensors_computed_from_constants_alone_are_weights(hotspot):
    index = load_graph(hotspot)
    assert {"table", "ids", "W", "big", "emb"} <= index.constant_tensors
    assert not {"h0", "h", "shifted", "back", "y"} & index.constant_tensors


@pytest.mark.parametrize("tight", [False, True])
def test_first_divergence_is_the_node_that_adds_error_never_a_weight(hotspot, tight):
    options = CompareOptions(tolerances=TolerancePolicy(Tolerance())) if tight else CompareOptions()
    result = compare(hotspot, "emulate", precision="fp16", options=options)
    names = {d.name for d in result.tensors}
    assert not names & {"table", "W", "emb", "big"}  # weights (and a Gather of constants) are never compared
    assert result.constants_skipped >= 1
    first = result.first_divergence
    assert first is not None and first.name == "back", first
    assert first.growth > 10
    by = {d.name: d for d in result.tensors}
    if not tight:  # the per-precision default passes what rounding explains
        assert by["h"].passed and by["shifted"].passed
    assert result.to_json()["first_divergence"]["growth"] > 10


def test_per_precision_defaults_pass_the_benign_demo(demo_model):
    result = compare(demo_model, "emulate", precision="fp16")
    assert result.passed and result.first_divergence is None
    assert default_tolerance("fp16").stat == "median" and default_tolerance("bf16").rtol > default_tolerance("fp16").rtol
    assert default_tolerance(None) == Tolerance()


@pytest.mark.parametrize("field", ["atol", "rtol"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_tolerance_rejects_non_finite_and_negative(field, value):
    with pytest.raises(ValueError, match=field):
        Tolerance(**{field: value})
