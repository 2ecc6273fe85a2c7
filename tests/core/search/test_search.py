"""The pin search: finds passing sets, stays within budget, stops on cancel, refuses unreachable targets."""

from __future__ import annotations

import json
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trt_tui.core import jsonio
from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.builder import GraphBuilder
from trt_tui.core.modelgen.streaming import RUNNING_SUM_UPDATE
from trt_tui.core.parity.inputs import InputSpec
from trt_tui.core.search.result import SCHEMA, PinRulesFound
from trt_tui.core.search.session import prepare_search
from trt_tui.core.search.targets import Criterion, parse_target
from trt_tui.core.streaming.contract_model import contract_from_model

DEMO_TARGET = "log_probs:rel_rms<=2.5e-4"  # fp16 everywhere gives ~3.2e-4 on the demo's random input
DEMO_TIGHT = "log_probs:rel_rms<=1.6e-4"  # half of it: the first predicted set passes, pruning goes on after it


def overflow_model() -> onnx.ModelProto:
    """x*300*300 overflows fp16 (90000 > 65504); the node that makes it and the one that reads it must stay FP32."""
    g = GraphBuilder("overflow", seed=5)
    x = g.input("x", TensorProto.FLOAT, [4, 16])
    h = g.op("Relu", [x], name="relu")
    h = g.op("Mul", [h, g.const(300.0)], name="scale1")
    h = g.op("Mul", [h, g.const(300.0)], name="scale2")
    h = g.op("Mul", [h, g.const(1.0 / 90000.0)], name="unscale")
    h = g.op("Add", [h, g.const(0.5)], name="shift")
    h = g.op("Sigmoid", [h], name="sigmoid")
    g.output(h, "y", TensorProto.FLOAT, [4, 16])
    return g.build()


def nondeterministic_model() -> onnx.ModelProto:
    g = GraphBuilder("noisy", seed=5)
    x = g.input("x", TensorProto.FLOAT, [4, 16])
    h = g.op("Relu", [x], name="relu")
    noise = g.op("RandomNormalLike", [h], name="noise", scale=1e-2)  # no seed: differs run to run
    g.output(g.op("Add", [h, noise], name="add"), "y", TensorProto.FLOAT, [4, 16])
    return g.build()


@pytest.fixture(scope="module")
def overflow_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "overflow.onnx"
    onnx.save(overflow_model(), path)
    return path


def _independent_check(model_path, pins, feeds, output, bound) -> float:
    """Re-check a reported set without the search's code: emulate, run on ORT, rel_rms by hand."""
    import onnxruntime as ort

    from trt_tui.core.precision import emulate

    emulated = emulate(str(model_path), "fp16", list(pins)).model
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    cand = ort.InferenceSession(emulated.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for feed in feeds:
        r = ref.run([output], feed)[0].astype(np.float64)
        c = cand.run([output], feed)[0].astype(np.float64)
        worst = max(worst, float(np.linalg.norm(c - r) / np.linalg.norm(r)))
    assert worst <= bound
    return worst


def test_demo_target_that_fp16_everywhere_misses_is_met(demo_model):
    job = prepare_search(demo_model, targets=[DEMO_TARGET], input_spec=InputSpec(iterations=3))
    result = job.run()
    assert result.status == "found" and result.passed and result.exit_code == 0
    assert result.outputs["log_probs"]["without"]["rel_rms"] > 2.5e-4 >= result.outputs["log_probs"]["with"]["rel_rms"]
    assert 0 < len(result.pins) < result.candidates
    assert result.held_out == {"samples": 1, "passed": True, "folded_in": False}
    assert result.evaluations == sum(1 for e in result.log if e["evaluation"] > 0) < 20
    feeds = job.evaluator.all_samples()
    _independent_check(demo_model, result.pins, feeds, "log_probs", 2.5e-4)
    data = json.loads(jsonio.dumps(result.to_json()))
    assert data["schema"] == SCHEMA
    assert {"schema", "pins", "rules", "passed", "evaluations", "outputs", "log", "elapsed_s"} <= set(data)
    assert data["log"][0]["phase"] == "fp32-check" and data["log"][1]["phase"] == "baseline"
    assert all({"pins", "errors", "passed"} <= set(e) for e in data["log"])


def test_overflow_finds_exactly_the_two_nodes(overflow_path):
    result = prepare_search(overflow_path, targets=["y:max_abs<=1e-3"]).run()
    assert result.passed and sorted(result.pins) == ["scale2", "unscale"]
    # the inf saturates the Sigmoid: a finite but wrong output
    assert result.outputs["y"]["without"]["max_abs"] > 0.1 >= 1e-3 >= result.outputs["y"]["with"]["max_abs"]
    assert result.sensitivity["top"][0]["node"] in ("scale2", "unscale")


def test_nothing_needed_when_fp16_meets_the_target(overflow_path):
    result = prepare_search(overflow_path, targets=["y:cosine>=0"]).run()
    assert result.status == "no-pins-needed" and result.passed and result.pins == [] and result.evaluations == 1


def test_budget_caps_evaluations_and_keeps_the_best_set(demo_model):
    full = prepare_search(demo_model, targets=[DEMO_TIGHT]).run()
    assert full.status == "found" and full.evaluations > 3
    result = prepare_search(demo_model, targets=[DEMO_TIGHT], budget=full.evaluations - 1).run()
    assert result.status == "budget" and result.evaluations == full.evaluations - 1
    assert result.passed and len(result.pins) < result.candidates  # the best set so far, smaller than everything


def test_budget_spent_before_any_passing_set_is_exit_1(demo_model):
    result = prepare_search(demo_model, targets=[DEMO_TARGET], budget=1).run()
    assert result.evaluations == 1 and result.status == "budget"  # nothing pinned, which fails
    assert not result.passed and result.pins == [] and result.exit_code == 1


def test_cancel_keeps_the_best_passing_set(demo_model):
    cancel = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p.phase)
        if p.best is not None and len(p.best) < p.candidates:
            cancel.set()  # as Ctrl-C does: the search stops before the next evaluation

    result = prepare_search(demo_model, targets=[DEMO_TIGHT]).run(cancel=cancel, on_progress=on_progress)
    assert result.status == "cancelled" and result.passed and 0 < len(result.pins) < result.candidates
    assert result.evaluations == len(seen) - 1  # the FP32 check is not an evaluation; nothing ran after the cancel


def test_cancel_before_any_passing_set_is_exit_1(demo_model):
    cancel = threading.Event()
    result = prepare_search(demo_model, targets=[DEMO_TARGET]).run(cancel=cancel, on_progress=lambda p: cancel.set())
    assert result.status == "cancelled" and not result.passed and result.pins == [] and result.exit_code == 1


def test_nondeterministic_fp32_model_is_reported_not_searched(tmp_path):
    path = tmp_path / "noisy.onnx"
    onnx.save(nondeterministic_model(), path)
    result = prepare_search(path, targets=["y:max_abs<=1e-6"]).run()
    assert result.status == "fp32-fails" and not result.passed and result.exit_code == 1
    assert result.evaluations == 0 and result.reasons
    assert "FP32 model itself" in result.message


def test_several_samples_from_a_folder_all_pass(overflow_path, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "samples"
    folder.mkdir()
    for k in range(4):
        np.savez(folder / f"s{k}.npz", x=rng.uniform(0, 1 + k, (4, 16)).astype(np.float32))
    job = prepare_search(overflow_path, targets=["y:max_abs<=1e-3"], inputs=[folder])
    assert len(job.evaluator.samples.search) == 3 and len(job.evaluator.samples.held_out) == 1
    result = job.run()
    assert result.passed and result.held_out["passed"] and result.samples == {"search": 3, "held_out": 1}
    assert result.log[-1]["samples"] == 4  # the answer was checked on every sample


def test_held_out_failure_folds_the_samples_in(overflow_path, tmp_path):
    # search samples stay below the overflow; the held-out one overflows: the first answer (nothing) fails it
    a, b = tmp_path / "small.npz", tmp_path / "big.npz"
    np.savez(a, x=np.full((4, 16), 0.1, np.float32))
    np.savez(b, x=np.full((4, 16), 1.0, np.float32))
    job = prepare_search(overflow_path, targets=["y:max_abs<=1e-3"], inputs=[a, b])
    result = job.run()
    assert result.passed and sorted(result.pins) == ["scale2", "unscale"]


def test_stateful_fixture_finds_the_state_update(models, tmp_path):
    path = models["running_norm"]
    contract = tmp_path / "rn.contract.json"
    contract.write_text(json.dumps(contract_from_model(load_graph(path))))
    result = prepare_search(path, contract=contract, chunks=60).run()
    assert result.passed, result.reasons
    assert RUNNING_SUM_UPDATE in result.pins
    assert result.sensitivity["top"][0]["node"] == RUNNING_SUM_UPDATE
    assert result.samples == {"stream_chunks": 60}
    assert result.outputs["running_sum_next"]["failed_without"]


def test_bad_requests_are_user_errors(demo_model, models):
    with pytest.raises(UserError, match="no target"):
        prepare_search(demo_model)
    with pytest.raises(UserError, match="names no graph output"):
        prepare_search(demo_model, targets=["nope:rel_rms<=1"])
    with pytest.raises(UserError, match="budget"):
        prepare_search(demo_model, targets=[DEMO_TARGET], budget=0)
    with pytest.raises(UserError, match="subgraph"):
        prepare_search(models["if_subgraph"], targets=["rel_rms<=1"])
    with pytest.raises(UserError, match="--chunks"):
        prepare_search(demo_model, targets=[DEMO_TARGET], chunks=3)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("logits:rel_rms<=1e-3", ("logits", "rel_rms", "<=", 1e-3)),
        ("cosine>=0.999", (None, "cosine", ">=", 0.999)),
        ("a:b:max_abs <= 0.5", ("a:b", "max_abs", "<=", 0.5)),
        ("p99_abs<=2", (None, "p99_abs", "<=", 2.0)),
    ],
)
def test_parse_target(text, expected):
    t = parse_target(text)
    assert (t.output, t.metric, t.op, t.value) == expected


def test_a_target_text_keeps_its_bound():
    assert parse_target("x:cosine>=0.99999999").text == "x:cosine>=0.99999999"  # :g said cosine>=1
    assert parse_target("rel_rms<=1e-3").text == "rel_rms<=0.001"


@pytest.mark.parametrize("text", ["rel_rms", "rel_rms>=1", "cosine<=1", "mse<=1", "rel_rms<=x", "rel_rms<=-1", "max_abs<=inf"])
def test_bad_targets(text):
    with pytest.raises(UserError, match="--target"):
        parse_target(text)


def test_criterion_only_checks_targeted_outputs():
    c = Criterion(["a", "b"], [parse_target("a:rel_rms<=0.1")])
    assert c.outputs == ["a"]
    r = {"a": np.ones(4, np.float32), "b": np.ones(4, np.float32)}
    bad = {"a": np.ones(4, np.float32), "b": np.zeros(4, np.float32)}
    assert all(ch.passed for ch in c.check([r], [bad]).values())
    inf = {"a": np.array([1, 1, 1, np.inf], np.float32)}
    assert not c.check([r], [inf])["a"].passed


def test_rules_name_whole_op_types():
    nodes = [helper.make_node("Softmax", ["x"], [f"s{k}"], name=f"sm{k}") for k in range(3)]
    nodes.append(helper.make_node("Relu", ["x"], ["r"], name="relu"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [])
    model = helper.make_model(graph)
    rules = PinRulesFound.from_pins(model, ["sm0", "sm1", "sm2", "relu"])
    assert rules.op_types == {"Softmax": 3} and rules.names == ["relu"]
    assert rules.text() == "Softmax (3) + 1 named node"
    assert PinRulesFound.from_pins(model, ["sm0", "sm1"]).op_types == {}


def test_minimal_drops_each_pin_it_can_and_every_drop_was_evaluated(demo_model):
    plain = prepare_search(demo_model, targets=[DEMO_TIGHT]).run()
    job = prepare_search(demo_model, targets=[DEMO_TIGHT])
    result = job.run(minimal=True)
    assert result.status == "found" and result.passed
    assert set(result.pins) <= set(plain.pins) and len(result.pins) <= len(plain.pins)
    steps = [e for e in result.log if e["phase"] == "minimal"]
    assert steps and result.evaluations == plain.evaluations + len(steps)
    kept = set(result.pins)
    for e in steps:  # a passing drop is the set from then on; the answer is the last passing one
        if e["passed"]:
            assert set(e["pins"]) >= kept
    _independent_check(demo_model, result.pins, job.evaluator.all_samples(), "log_probs", 1.6e-4)


def test_minimal_within_a_budget_keeps_the_last_passing_set(demo_model):
    plain = prepare_search(demo_model, targets=[DEMO_TIGHT]).run()
    result = prepare_search(demo_model, targets=[DEMO_TIGHT], budget=plain.evaluations + 1).run(minimal=True)
    assert result.status == "budget" and result.passed and len(result.pins) <= len(plain.pins)


def test_a_model_with_external_data_is_searched(demo_model, tmp_path):
    """Weights in an external data file (every ONNX over 2 GB, and some smaller exports): the sessions read
    them from the model's folder, not the working directory."""
    model = onnx.load(str(demo_model))
    path = tmp_path / "weights_apart" / "demo.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="demo.data", size_threshold=0)
    inline = prepare_search(demo_model, targets=[DEMO_TARGET]).run()
    result = prepare_search(path, targets=[DEMO_TARGET]).run()
    assert result.status == "found" and result.passed
    assert result.outputs["log_probs"]["without"]["rel_rms"] == pytest.approx(inline.outputs["log_probs"]["without"]["rel_rms"], rel=1e-3)


def test_big_derived_weights_run_in_segments_with_the_same_result(demo_model, tmp_path, monkeypatch):
    """A pin set's rounded weights above DERIVED_MAX_BYTES: its emulation (and the sensitivity model) run in
    segments, each rounding only its own weights (a parakeet-scale search: 7.9 -> 5.0 GB anonymous peak).
    Same pins, errors and log as one session holding every rounded weight."""
    from trt_tui.core.search import evaluate

    model = onnx.load(str(demo_model))
    path = tmp_path / "demo.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="demo.data", size_threshold=0)
    monkeypatch.setattr(evaluate, "SWITCHABLE_MAX_BYTES", 0)  # the per-set emulation, as on a model of GBs
    whole = prepare_search(path, targets=[DEMO_TARGET]).run()
    segmented = []
    init = evaluate.OrtModel.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        segmented.append(self.segmented)

    monkeypatch.setattr(evaluate.OrtModel, "__init__", spy)
    monkeypatch.setattr(evaluate, "DERIVED_MAX_BYTES", 16 << 10)
    parts = prepare_search(path, targets=[DEMO_TARGET]).run()
    assert sum(segmented) >= 2  # the sensitivity model and every pin set's emulation
    assert parts.status == whole.status == "found" and parts.pins == whole.pins
    assert parts.outputs == whole.outputs
    assert [(e["pins"], e["errors"]) for e in parts.log] == [(e["pins"], e["errors"]) for e in whole.log]


def test_progress_shows_minimals_smaller_set_as_the_best_at_once(demo_model):
    """A new user's finding: the bar's last frame said 'best 4 pins' while the answer was 3 (--minimal's drop
    that passed on every sample became the best only after its progress report)."""
    from trt_tui.core.search.session import prepare_search

    frames = []
    job = prepare_search(demo_model, targets=["log_probs:rel_rms<=1.5e-4"])
    result = job.run(on_progress=frames.append, minimal=True)
    assert result.passed
    drops = [f for f in frames if f.phase == "minimal" and f.last.passed]
    assert drops, "the demo's --minimal drops a pin at this target"
    assert all(f.best == f.last.pins for f in drops)  # each passing drop is the best in its own report
