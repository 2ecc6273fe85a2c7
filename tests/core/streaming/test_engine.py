"""The chunk loop: functional vs closed loop, fp16 accumulation on the fixtures, invariants, streaming API."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from trt_tui.core import jsonio
from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.modelgen.streaming import RUNNING_SUM_UPDATE
from trt_tui.core.parity.runners import make_runners
from trt_tui.core.streaming.contract import load_contract, parse_contract
from trt_tui.core.streaming.contract_model import contract_from_model
from trt_tui.core.streaming.engine import run_stream
from trt_tui.core.streaming.feeds import StreamInputs
from trt_tui.core.streaming.session import setup_stream, stream

from .conftest import DEMO_CONTRACT


def _fixture_contract(path, **trend) -> object:
    doc = contract_from_model(load_graph(path))
    doc["trend"].update(trend)
    return parse_contract(doc)


class _Perturb:
    """A candidate that is the reference plus a constant added to one state output (a state-carried error)."""

    def __init__(self, runner, output: str, delta: float) -> None:
        self.runner, self.output, self.delta = runner, output, delta

    def infer(self, feed_dict):
        out = dict(self.runner.infer(feed_dict))
        out[self.output] = out[self.output] + np.float32(self.delta)
        return out


def test_identical_sides_pass_with_zero_error(demo_model):
    c = load_contract(DEMO_CONTRACT)
    with make_runners(str(demo_model), f"onnx:{demo_model}") as pair:
        for mode in ("closed-loop", "functional"):
            report = run_stream(c, pair.reference, pair.candidate, mode=mode, chunks=4)
            assert report.passed and report.pass_rate == 1.0, report.reasons
            assert all(e == 0.0 for r in report.results for e in r.errors.values())
    # the attention-cache mask: 8 valid frames after chunk 0, all 16 after
    assert [r.valid_entries["cache_last_channel_next"] for r in report.results] == [2 * 8 * 64, 2 * 16 * 64, 2048, 2048]


def test_closed_loop_carries_state_error_functional_does_not(models):
    path = models["running_norm"]
    c = _fixture_contract(path)
    with make_runners(str(path), f"onnx:{path}") as pair:
        cand = _Perturb(pair.candidate, "running_sum_next", 1.0)
        closed = run_stream(c, pair.reference, cand, mode="closed-loop", chunks=6)
        functional = run_stream(c, pair.reference, cand, mode="functional", chunks=6)
    # closed loop: the candidate's own (perturbed) sum goes back in, so chunk k is k+1 off
    np.testing.assert_allclose(closed.series("running_sum_next"), [1, 2, 3, 4, 5, 6], rtol=1e-5)
    np.testing.assert_allclose(functional.series("running_sum_next"), [1] * 6, rtol=1e-5)
    assert functional.series("y")[0] == 0.0 and max(functional.series("y")) == 0.0
    assert closed.series("y")[-1] > closed.series("y")[1] > 0


def test_fp16_conv_cache_does_not_accumulate_running_sum_does(models):
    conv = models["conv_cache"]
    s = setup_stream(conv, _fixture_contract(conv))
    r = stream(s, mode="closed-loop", chunks=120)
    assert r.trend_outputs == ("y",)
    assert not r.trends["y"].significant and not r.growing, r.trends["y"].describe()

    norm = models["running_norm"]
    c = _fixture_contract(norm)
    closed = stream(setup_stream(norm, c), mode="closed-loop", chunks=120)
    fit = closed.trends["y"]
    assert fit.growing and fit.significant and fit.p_value < 1e-6, fit.describe()
    assert closed.growing == ["y"] and not closed.passed
    assert any("error grows chunk after chunk: y" in reason for reason in closed.reasons)
    # the same candidate in functional mode: one step of error per chunk, no growth
    functional = stream(setup_stream(norm, c), mode="functional", chunks=120)
    assert not functional.trends["y"].growing, functional.trends["y"].describe()
    # pinning the state update to FP32 flattens the closed-loop trend
    pinned = stream(setup_stream(norm, c, pins=[RUNNING_SUM_UPDATE]), mode="closed-loop", chunks=120)
    assert not pinned.trends["y"].growing, pinned.trends["y"].describe()
    assert pinned.trends["y"].slope < fit.slope / 10


def test_demo_fp16_closed_loop_is_stable_and_passes(demo_model):
    report = stream(setup_stream(demo_model, DEMO_CONTRACT), mode="closed-loop", chunks=60)
    assert report.passed, report.reasons
    assert not report.trends["log_probs"].growing
    assert report.invariant_failures == []
    json.loads(jsonio.dumps(report.to_json()))  # strict JSON through the one encoder (numpy bools included)


def test_invariants_catch_a_broken_cache_length(models):
    report = stream(setup_stream(models["broken_cache_len"], DEMO_CONTRACT), chunks=4)
    assert not report.passed
    fails = report.invariant_failures
    assert [(i, f.side, f.check) for i, f in fails] == [
        (1, "reference", "cache_last_channel_len_next non-decreasing"),
        (1, "candidate", "cache_last_channel_len_next non-decreasing"),
        (3, "reference", "cache_last_channel_len_next non-decreasing"),
        (3, "candidate", "cache_last_channel_len_next non-decreasing"),
    ]
    assert fails[0][1].detail == "decreased from 8 to 0 at [0]"
    assert report.first_failure == 1
    assert "invariant violation" in report.reasons[-1]


def test_callback_streams_each_chunk_and_cancel_stops_between_chunks(demo_model):
    seen = []
    cancel = threading.Event()

    def on_chunk(result):
        seen.append((result.index, round(result.errors["log_probs"], 9)))
        if result.index == 2:
            cancel.set()

    report = stream(setup_stream(demo_model, DEMO_CONTRACT), chunks=50, on_chunk=on_chunk, cancel=cancel)
    assert [i for i, _ in seen] == [0, 1, 2]
    assert report.cancelled and report.chunks_run == 3 and report.chunks_requested == 50
    assert [round(e, 9) for e in report.series("log_probs")] == [e for _, e in seen]


def test_inputs_file_feeds_the_stream(demo_model, tmp_path):
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((3, 1, 32, 8)).astype(np.float32)
    np.savez(tmp_path / "in.npz", audio_signal=audio)
    c = load_contract(DEMO_CONTRACT)
    inputs = StreamInputs(c, tmp_path / "in.npz")
    assert inputs.available_chunks == 3
    seen = []

    class Spy:
        def __init__(self, runner):
            self.runner = runner

        def infer(self, feed_dict):
            seen.append(feed_dict["audio_signal"].copy())
            return self.runner.infer(feed_dict)

    with make_runners(str(demo_model), f"onnx:{demo_model}") as pair:
        run_stream(c, Spy(pair.reference), pair.candidate, chunks=3, inputs=inputs)
        with pytest.raises(UserError, match="holds 3 chunks but 4 were asked for"):
            run_stream(c, pair.reference, pair.candidate, chunks=4, inputs=inputs)
    np.testing.assert_array_equal(np.stack(seen), audio)


def test_generated_inputs_are_reproducible_per_chunk():
    c = load_contract(DEMO_CONTRACT)
    from trt_tui.core.streaming.schedule import ChunkPlan

    a = StreamInputs(c).feeds(ChunkPlan(7, 8))
    b = StreamInputs(c).feeds(ChunkPlan(7, 8))
    np.testing.assert_array_equal(a["audio_signal"], b["audio_signal"])
    assert a["audio_signal"].shape == (1, 32, 8) and a["length"].tolist() == [8]


def test_setup_rejects_a_contract_for_another_model(models):
    with pytest.raises(UserError, match="the model input 'x' is missing"):
        setup_stream(models["conv_cache"], DEMO_CONTRACT)
    with pytest.raises(UserError, match="must be a runner, not saved outputs"):
        setup_stream(models["demo"], DEMO_CONTRACT, candidate="outputs:x.json")


def test_inputs_from_polygraphy_json_and_per_chunk_npz(tmp_path):
    from polygraphy.json import save_json

    from trt_tui.core.streaming.schedule import ChunkPlan

    c = load_contract(DEMO_CONTRACT)
    rng = np.random.default_rng(5)
    chunks = [{"audio_signal": rng.standard_normal((1, 32, 8)).astype(np.float32)} for _ in range(2)]
    save_json(chunks, str(tmp_path / "inputs.json"))
    np.savez(tmp_path / "per_chunk.npz", **{f"audio_signal:{i}": ch["audio_signal"] for i, ch in enumerate(chunks)})
    for name in ("inputs.json", "per_chunk.npz"):
        inputs = StreamInputs(c, tmp_path / name)
        assert inputs.available_chunks == 2
        np.testing.assert_array_equal(inputs.feeds(ChunkPlan(1, 8))["audio_signal"], chunks[1]["audio_signal"])
    np.savez(tmp_path / "bad.npz", audio_signal=np.zeros((2, 1, 32, 7), np.float32))
    with pytest.raises(UserError, match=r"audio_signal of chunk 0 has shape \[1, 32, 7\], the contract expects \[1, 32, 8\]"):
        StreamInputs(c, tmp_path / "bad.npz").feeds(ChunkPlan(0, 8))
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="junk.json"):
        StreamInputs(c, tmp_path / "junk.json")


def test_guard_reports_state_fed_noise_and_outputs_that_never_differ(tmp_path):
    """Issue 11 item 5: a state input fed noise, a state that never moves, an output with zero error everywhere."""
    import json

    import onnx

    from trt_tui.core.streaming.contract import parse_contract
    from trt_tui.core.streaming.session import setup_stream, stream
    from tests.core.streaming import stateful_models

    model = tmp_path / "vad.onnx"
    onnx.save(stateful_models.lstm_vad(), model)
    doc = {
        "format": "trt-tui-contract", "version": 1, "dims": {"batch": 1},
        "inputs": {"input": {"dtype": "float32", "shape": ["batch", 512], "feed": {"kind": "normal"}},
                   "sr": {"dtype": "int64", "shape": [], "feed": {"kind": "constant", "value": 16000}},
                   "h": {"dtype": "float32", "shape": [2, "batch", 64], "feed": {"kind": "random"}},
                   "c": {"dtype": "float32", "shape": [2, "batch", 64]}},
        "outputs": {"output": {"dtype": "float32", "shape": ["batch", 512]},
                    "hn": {"dtype": "float32", "shape": [2, "batch", 64]},
                    "cn": {"dtype": "float32", "shape": [2, "batch", 64]}},
        "state": [{"output": "cn", "input": "c"}],
        "schedule": {"chunks": 4},
    }  # fmt: skip
    setup = setup_stream(model, parse_contract(json.loads(json.dumps(doc))), candidate="emulate")
    assert any(n.startswith("this contract checks nothing for h:") for n in setup.unchecked)
    report = stream(setup, chunks=4)
    notes = report.unchecked
    # c starts at zeros and tanh(0) == 0: the state never moves
    assert any(n.startswith("this contract checks nothing for c:") and "initial value" in n for n in notes), notes
    assert any(n.startswith("this contract checks nothing for h:") for n in notes)
    assert any(n.startswith("this contract checks nothing for cn:") and "exactly 0" in n for n in notes), notes
    assert report.to_json()["checks_nothing"] == notes
