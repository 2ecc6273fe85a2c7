"""The search runs nothing twice: the sensitivity pass reads the FP32 reference's tensors of the first sample
from the evaluation that ran them, through the one reference session;
the nothing-pinned plan serves the evaluator, the gated graph and that pass; each pin set's plan takes the
weights' peaks already read. The result is the same, bit for bit, as making each of them again."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from trt_tui.core import precision
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.modelgen.synth import transformer_encoder
from trt_tui.core.parity.inputs import InputSpec
from trt_tui.core.search import evaluate
from trt_tui.core.search.session import prepare_search

DEMO_TARGET = "log_probs:rel_rms<=2.5e-4"


def _made_again(monkeypatch) -> None:
    """What the search did before: the sensitivity pass makes its own plan and reference session (and runs the
    reference again); each pin set's plan reads the weights' peaks again."""

    def own(self):
        self.plan = self._kept = None
        return {}

    emulate = precision.emulate
    monkeypatch.setattr(evaluate.ModelEvaluator, "sensitivity_inputs", own)
    monkeypatch.setattr(precision, "emulate", lambda *a, peaks=None, **kw: emulate(*a, **kw))


def _comparable(result) -> dict:
    d = result.to_json()
    for key in ("elapsed_s", "inferences"):
        d.pop(key)
    for key in ("seconds", "inferences"):
        d["sensitivity"].pop(key)
    for e in d["log"]:
        e.pop("seconds")
    return d


def big_constant_model() -> onnx.ModelProto:
    """A constant above fp16's range (7e4): its reader stays FP32 in every pin set's plan (the peaks)."""
    g = GraphBuilder("big_constant", seed=3)
    x = g.input("x", TensorProto.FLOAT, [4, 16])
    h = g.op("MatMul", [x, g.const(np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32))], name="mm1")
    h = g.op("Mul", [h, g.const(np.full((16,), 7e4, np.float32))], name="big")
    h = g.op("Mul", [h, g.const(1.0 / 7e4)], name="unbig")
    h = g.op("Tanh", [h], name="tanh")
    h = g.op("MatMul", [h, g.const(np.random.default_rng(1).normal(size=(16, 16)).astype(np.float32))], name="mm2")
    g.output(h, "y", TensorProto.FLOAT, [4, 16])
    return g.build()


@pytest.fixture(scope="module")
def transformer_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("reuse") / "transformer_overflow.onnx"
    onnx.save(transformer_encoder(layers=2, d=32, ffn=64, seq=16, batch=1, logit_scale=2000.0), path)
    return path


@pytest.mark.parametrize(
    "case,per_set",
    [("demo", False), ("demo", True), ("transformer", False), ("big_constant", True)],
)
def test_same_result_as_running_each_again(case, per_set, demo_model, transformer_path, tmp_path, monkeypatch):
    if case == "demo":
        path, target, spec, minimal = demo_model, DEMO_TARGET, InputSpec(iterations=3), False
    elif case == "transformer":
        path, target, spec, minimal = transformer_path, "log_probs:rel_rms<=4e-4", InputSpec(iterations=2), True
    else:
        path = tmp_path / "big_constant.onnx"
        onnx.save(big_constant_model(), path)
        target, spec, minimal = "y:rel_rms<=1e-4", InputSpec(iterations=2), True
    if per_set:  # a rewrite and a session per pin set, as for a model of GBs
        monkeypatch.setattr(evaluate, "SWITCHABLE_MAX_BYTES", 0)
    reused = prepare_search(path, targets=[target], input_spec=spec).run(minimal=minimal)
    with monkeypatch.context() as m:
        _made_again(m)
        again = prepare_search(path, targets=[target], input_spec=spec).run(minimal=minimal)
    assert reused.status == "found" and reused.evaluations > 3
    assert _comparable(reused) == _comparable(again)
    # the first sample's FP32 reference once instead of twice (the all-low run is in the sensitivity model)
    assert again.inferences - reused.inferences == 1


def test_one_session_per_model(demo_model, monkeypatch):
    """The FP32 reference, the gated emulation and the sensitivity model: one ONNX Runtime session each."""
    labels = []
    init = evaluate.OrtModel.__init__

    def spy(self, model, outputs=None, label="candidate", *args, **kwargs):
        labels.append(label)
        init(self, model, outputs, label, *args, **kwargs)

    monkeypatch.setattr(evaluate.OrtModel, "__init__", spy)
    result = prepare_search(demo_model, targets=[DEMO_TARGET]).run()
    assert result.status == "found"
    assert sorted(labels) == ["FP32 reference", "fp32-pinned emulation (gated)", "sensitivity model"]
