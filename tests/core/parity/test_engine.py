import threading

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from polygraphy.comparator import RunResults
from polygraphy.comparator.struct import IterationResult

from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.parity.engine import CompareOptions, compare, make_batches, parse_size, prepare_comparison
from trt_tui.core.parity.inputs import InputSpec, random_feeds
from trt_tui.core.parity.metrics import Tolerance, TolerancePolicy
from trt_tui.core.parity.runners import make_runners
from trt_tui.core.graph import load_graph


def _by_name(result):
    return {d.name: d for d in result.tensors}


def test_results_do_not_depend_on_the_memory_budget(pair):
    ref, cand = pair
    one = compare(ref, f"onnx:{cand}", options=CompareOptions(max_memory=1 << 30), inputs=InputSpec(iterations=2))
    updates = []
    many = compare(ref, f"onnx:{cand}", options=CompareOptions(max_memory=8 << 10), inputs=InputSpec(iterations=2), on_batch=updates.append)
    assert one.batches == 1 and many.batches > 5 and len(updates) == many.batches
    assert [u.done for u in updates][-1] == updates[-1].total == len(many.tensors)
    assert [d.name for d in one.tensors] == [d.name for d in many.tensors]
    a, b = _by_name(one), _by_name(many)
    for name in a:
        assert (a[name].max_abs, a[name].rel_rms, a[name].iterations) == (b[name].max_abs, b[name].rel_rms, 2)
    # topological order, node/op filled, the first divergence is the first failing row
    assert [d.topo_index for d in many.tensors] == sorted(d.topo_index for d in many.tensors)
    assert many.first_divergence is many.failed[0] and many.first_divergence.op_type
    assert not many.passed and many.first_nonfinite is None


def test_identical_models_pass(pair):
    result = compare(pair[0], f"onnx:{pair[0]}")
    assert result.passed and all(d.max_abs == 0 for d in result.tensors)


def test_pairing_is_by_exact_name_never_by_position(pair, tmp_path):
    model = onnx.load(pair[1])
    # rename one tensor everywhere and list the graph outputs in another order: nothing may pair by position
    old = model.graph.node[3].output[0]
    for node in model.graph.node:
        node.output[:] = ["renamed" if t == old else t for t in node.output]
        node.input[:] = ["renamed" if t == old else t for t in node.input]
    path = tmp_path / "renamed.onnx"
    onnx.save(model, path)
    result = compare(pair[0], f"onnx:{path}")
    assert old not in _by_name(result) and "renamed" not in _by_name(result)
    assert result.unpaired["reference_only"] == [old]


def test_cancel_between_batches(pair):
    comparison = prepare_comparison(pair[0], f"onnx:{pair[1]}", options=CompareOptions(max_memory=8 << 10))
    cancel = threading.Event()
    seen = []
    for update in comparison.run(cancel=cancel):
        seen.append(update)
        cancel.set()
    result = comparison.result()
    assert len(seen) == 1 and result.cancelled and not result.passed
    assert len(result.tensors) == len(seen[0].drifts) < len(comparison.names)


def test_first_nonfinite_and_tolerance_patterns(pair, tmp_path):
    model = onnx.load(pair[0])
    # blow up the first layer-norm scale in the candidate: inf from there on
    for init in model.graph.initializer:
        if init.name in model.graph.node[0].input[1:2]:
            init.CopyFrom(numpy_helper.from_array(np.full(numpy_helper.to_array(init).shape, 3e38, np.float32), init.name))
    path = tmp_path / "inf.onnx"
    onnx.save(model, path)
    policy = TolerancePolicy(default=Tolerance(atol=1e9, rtol=1e9))
    result = compare(pair[0], f"onnx:{path}", options=CompareOptions(tolerances=policy))
    first = result.first_nonfinite
    assert first is not None and first.nonfinite_cand > 0 and first.nonfinite_ref == 0
    assert result.first_divergence is not None and result.first_divergence.topo_index <= first.topo_index + 1


def test_saved_outputs_reference_json_and_npz(pair, tmp_path):
    index = load_graph(pair[0])
    feeds = random_feeds(index, InputSpec(seed=5))
    with make_runners(pair[0], f"onnx:{pair[0]}", outputs=["log_probs"]) as runners:
        ref_out, _ = runners.infer(feeds[0])
    results = RunResults()
    results.append(("torch", [IterationResult(ref_out, runner_name="torch")]))
    results.save(str(tmp_path / "ref.json"))
    np.savez(tmp_path / "ref.npz", **ref_out)
    np.savez(tmp_path / "inputs.npz", **feeds[0])
    for ref in (f"outputs:{tmp_path / 'ref.json'}", f"outputs:{tmp_path / 'ref.npz'}"):
        result = compare(pair[0], f"onnx:{pair[0]}", reference=ref, inputs=tmp_path / "inputs.npz")
        assert [d.name for d in result.tensors] == ["log_probs"] and result.passed
        assert len(result.unpaired["reference_only"]) == 0
    with pytest.raises(UserError, match="--inputs"):
        compare(pair[0], f"onnx:{pair[0]}", reference=f"outputs:{tmp_path / 'ref.npz'}")


def test_bad_input_is_a_user_error(pair, tmp_path):
    with pytest.raises(MissingBackendError, match="TensorRT"):
        compare(pair[0], f"engine:{pair[1]}")  # no TensorRT here; the path exists
    with pytest.raises(UserError, match="no such file"):
        compare(pair[0], "engine:/nonexistent.plan")
    with pytest.raises(UserError, match="unknown candidate"):
        compare(pair[0], "tensorrt")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="bad.json"):
        compare(pair[0], f"outputs:{bad}", inputs=InputSpec())


def test_batches_and_sizes():
    assert make_batches(["a", "b", "c"], {"a": 10, "b": 10, "c": 100}, 45) == [["a", "b"], ["c"]]
    assert parse_size("1.5G") == 3 << 29 and parse_size("512M") == 512 << 20 and parse_size("4096") == 4096
    with pytest.raises(UserError):
        parse_size("lots")


def test_emulated_fp16_finds_the_decomposed_layernorm_overflow(models):
    # residual stream ~900: (x - mean)^2 overflows fp16 in the Pow, which only a per-tensor inf count shows
    spec = InputSpec(dims={"T": 8}, ranges={"x": (-900, 900)})
    result = compare(models["transformer_decomposed_ln"], "emulate", precision="fp16", inputs=spec)
    assert result.first_nonfinite is not None and result.first_nonfinite.op_type == "Pow"
    assert result.precision == "fp16" and not result.passed
    pow_nodes = [d.node for d in result.tensors if d.op_type == "Pow"]
    pinned = compare(models["transformer_decomposed_ln"], "emulate", pins=pow_nodes, inputs=spec)
    assert pinned.first_nonfinite is None or pinned.first_nonfinite.op_type != "Pow"
    assert len(pinned.tensors) == len(result.tensors)


def test_sides_run_at_once_give_the_rows_of_sides_run_in_turn(pair, monkeypatch):
    """Two CPU ONNX sides run on two threads, each with half the cores: the same rows as one after the other
    (an intra-op thread computes whole output elements); any other pair of sides runs in turn as before."""
    from trt_tui.core.parity import engine

    def rows(concurrent: bool):
        comparison = prepare_comparison(pair[0], "emulate", precision="fp16", options=CompareOptions(max_memory=8 << 10),
                                        inputs=InputSpec(iterations=2))  # fmt: skip
        assert comparison._concurrent and comparison.reference.threads == max(1, engine.CORES // 2)
        comparison._concurrent = concurrent
        for _ in comparison.run():
            pass
        return [d.to_json() for d in comparison.result().tensors]

    assert rows(True) == rows(False)


def test_a_failing_candidate_run_waits_for_the_reference_run(pair, monkeypatch):
    """The candidate's inference fails while the reference's still runs on its thread: the error is the
    candidate's, and the reference's inference is over before the segments close."""
    import time

    from trt_tui.core.parity import segments

    comparison = prepare_comparison(pair[0], "emulate", precision="fp16")
    finished = []
    real_run = segments.SegmentRun.run

    def run(self, i):
        if self.executor is comparison.candidate.executor:
            raise UserError("candidate broke")
        time.sleep(0.2)
        out = real_run(self, i)
        finished.append(i)
        return out

    closed = []
    real_exit = segments.SegmentRun.__exit__

    def exit_(self, *exc):
        closed.append(list(finished))
        return real_exit(self, *exc)

    monkeypatch.setattr(segments.SegmentRun, "run", run)
    monkeypatch.setattr(segments.SegmentRun, "__exit__", exit_)
    with pytest.raises(UserError, match="candidate broke"):
        for _ in comparison.run():
            pass
    assert closed and all(done == [0] for done in closed)
