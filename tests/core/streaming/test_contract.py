from __future__ import annotations

import copy
import json

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.streaming.contract import ContractError, load_contract, parse_contract
from trt_tui.core.streaming.contract_model import check_against_model, contract_from_model, input_candidates

from .conftest import DEMO_CONTRACT


def test_shipped_demo_contract_is_valid_for_the_demo_model(demo_model):
    c = load_contract(DEMO_CONTRACT)
    assert c.warnings == ()
    assert {p.input: p.output for p in c.state} == {
        "cache_last_channel": "cache_last_channel_next",
        "cache_last_time": "cache_last_time_next",
        "cache_last_channel_len": "cache_last_channel_len_next",
    }
    assert c.masks["cache_last_channel_next"].keep == "last"
    assert c.tolerance_for("log_probs").stat == "quantile" and c.tolerance_for("log_probs").quantile == 0.95
    assert c.tolerance_for("cache_last_time_next") == c.default_tolerance
    assert [i.describe() for i in c.invariants] == [
        "encoded_lengths == 8",
        "cache_last_channel_len_next non-decreasing",
        "cache_last_channel_len_next in [0, 16]",
    ]
    assert check_against_model(c, load_graph(demo_model)) == ([], [])


def test_every_problem_is_collected_with_its_key_path(demo_contract_doc):
    doc = copy.deepcopy(demo_contract_doc)
    doc["state"][0]["input"] = "cache_last_chanel"  # typo
    doc["state"][1]["output"] = "log_probs"  # shape differs from cache_last_time
    doc["tolerances"]["outputs"]["logprobs"] = {"atol": 1}
    doc["tolerances"]["default"]["stat"] = "p200"
    doc["invariants"].append({"output": "encoded_lengths", "check": "increasing"})
    doc["invariants"].append({"output": "encoded_lengths", "check": "range", "min": 3, "max": 1})
    doc["masks"]["cache_last_time_next"] = {"axis": 4, "length": {"output": "log_probs"}}
    doc["schedule"]["frames"] = [8, 9]
    doc["unexpected"] = 1
    with pytest.raises(ContractError) as err:
        parse_contract(doc)
    problems = err.value.problems
    expected = [
        "state[0].input: 'cache_last_chanel' is not an input",
        "state[1]: shape differs: output log_probs",
        "tolerances.outputs.logprobs: is not an output",
        "tolerances.default.stat: must be one of",
        "invariants[3].check: must be one of equals, monotonic, range, not 'increasing'",
        "invariants[4]: min (3) is above max (1)",
        "masks.cache_last_time_next.axis: axis 4 is out of range",
        "masks.cache_last_time_next.length.output: log_probs is float32; a length must be an integer output",
        "schedule.time_axes.audio_signal: axis 2 of audio_signal is fixed at 8 frames but the schedule asks for [8, 9]",
        "schedule.frames[1]: 9 frames fit no profile for audio_signal axis 2 (streaming 8..8)",
        "unexpected: unknown key",
    ]
    for e in expected:
        assert any(p.startswith(e) for p in problems), (e, problems)
    assert len(problems) == len(expected), problems
    assert "\n" not in err.value.one_line()


def test_schedule_must_fit_a_profile():
    doc = {
        "format": "trt-tui-contract", "version": 1, "dims": {"B": 1},
        "inputs": {"audio_signal": {"dtype": "float32", "shape": ["B", 128, "T"], "feed": {"kind": "normal"}}},
        "outputs": {"y": {"dtype": "float32", "shape": ["B", 2]}},
        "profiles": [{"name": "unified", "shapes": {"audio_signal": {"min": [1, 128, 584], "opt": [1, 128, 592], "max": [1, 128, 592]}}}],
        "schedule": {"frames": [592, 584], "time_axes": {"audio_signal": 2}},
    }  # fmt: skip
    c = parse_contract(doc)
    assert c.schedule.frames == (592, 584)
    doc["schedule"]["frames"] = [600, 584]
    with pytest.raises(ContractError, match=r"schedule.frames\[0\]: 600 frames fit no profile for audio_signal axis 2 \(unified 584..592\)"):
        parse_contract(doc)
    del doc["schedule"]
    with pytest.raises(ContractError, match=r"inputs.audio_signal.shape\[2\]: dim 'T' has no value"):
        parse_contract(doc)


def test_malformed_json_is_one_line_with_line_and_column(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "format": "trt-tui-contract",\n  "version": 1,,\n}\n')
    with pytest.raises(UserError) as err:
        load_contract(bad)
    assert err.value.one_line().startswith(f"{bad}:3:16: invalid JSON")


def test_wrong_format_and_version(tmp_path):
    with pytest.raises(ContractError) as err:
        parse_contract({"format": "polygraphy", "version": 2, "inputs": {}, "outputs": {}})
    text = " | ".join(err.value.problems)
    assert "format: must be 'trt-tui-contract'" in text and "version: unsupported version 2" in text
    with pytest.raises(ContractError, match="must be an object, not a list"):
        parse_contract([])


def test_init_file_and_missing_file(tmp_path, demo_contract_doc):
    doc = copy.deepcopy(demo_contract_doc)
    doc["state"][0]["init"] = {"kind": "file", "path": "missing.npy"}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ContractError, match=r"state\[0\].init.path: no such file: .*missing.npy"):
        load_contract(p)


def test_input_candidates():
    assert input_candidates("cache_next")[0] == "cache"
    assert "h" in input_candidates("next_h")
    assert "state_in" in input_candidates("state_out")
    assert "past_key_values.0.key" in input_candidates("present.0.key")
    assert input_candidates("log_probs") == []


@pytest.mark.parametrize(
    ("fixture", "pairs"),
    [
        ("demo", {"cache_last_channel_next": "cache_last_channel", "cache_last_time_next": "cache_last_time",
                  "cache_last_channel_len_next": "cache_last_channel_len"}),
        ("conv_cache", {"conv_cache_next": "conv_cache"}),
        ("running_norm", {"running_sum_next": "running_sum", "frame_count_next": "frame_count"}),
    ],
)  # fmt: skip
def test_contract_from_model_guesses_pairs_and_validates(models, fixture, pairs):
    index = load_graph(models[fixture])
    doc = contract_from_model(index)
    assert {s["output"]: s["input"] for s in doc["state"]} == pairs
    assert all(s["guessed"].startswith("name:") for s in doc["state"])
    c = parse_contract(json.loads(json.dumps(doc)))
    assert any("guessed" in w for w in c.warnings)
    assert check_against_model(c, index) == ([], [])


def test_shape_only_guess_is_marked(models, tmp_path):
    from onnx import TensorProto

    from trt_tui.core.modelgen.builder import GraphBuilder

    g = GraphBuilder("h_model")
    x = g.input("x", TensorProto.FLOAT, [1, 4])
    h = g.input("hidden", TensorProto.FLOAT, [1, 2, 8])
    y = g.op("Add", [h, g.const(1.0)])
    g.output(g.op("ReduceSum", [x], keepdims=0), "y", TensorProto.FLOAT, [])
    g.output(y, "h_t", TensorProto.FLOAT, [1, 2, 8])
    p = tmp_path / "h.onnx"
    import onnx

    onnx.save(g.build(), p)
    doc = contract_from_model(load_graph(p))
    assert [(s["output"], s["input"]) for s in doc["state"]] == [("h_t", "hidden")]
    assert doc["state"][0]["guessed"].startswith("shape only")


def test_check_against_model_reports_mismatches(demo_model, demo_contract_doc):
    doc = copy.deepcopy(demo_contract_doc)
    del doc["inputs"]["length"]
    doc["outputs"]["log_probs"]["dtype"] = "float16"
    doc["outputs"]["log_probs"]["shape"] = ["B", 8, 31]
    doc["outputs"]["extra"] = {"dtype": "float32", "shape": [1]}
    del doc["outputs"]["encoded_lengths"]
    doc["invariants"] = doc["invariants"][1:]
    del doc["tolerances"]["outputs"]["encoded_lengths"]
    del doc["profiles"][0]["shapes"]["length"]
    c = parse_contract(doc)
    problems, warnings = check_against_model(c, load_graph(demo_model))
    assert problems == [
        "inputs: the model input 'length' is missing (every input must be fed)",
        "outputs.log_probs.dtype: the model says float32, the contract float16",
        "outputs.log_probs.shape[2]: the model fixes 32, the contract says 31",
        "outputs.extra: the model has no output named 'extra' (log_probs, encoded_lengths, cache_last_channel_next, "
        "cache_last_time_next, cache_last_channel_len_next)",
    ]
    assert warnings == ["outputs: the model output 'encoded_lengths' is not in the contract and will not be compared"]


# ---- contract init on the names real stateful exports use (issue 11 item 5, issue 12 item 11) ---------------
from tests.core.streaming import stateful_models  # noqa: E402


def _init_doc(tmp_path, build):
    import onnx

    p = tmp_path / f"{build.__name__}.onnx"
    onnx.save(build(), p)
    index = load_graph(p)
    doc = contract_from_model(index)
    c = parse_contract(json.loads(json.dumps(doc)))  # contract init never writes what stream rejects
    assert check_against_model(c, index)[0] == []
    return doc


@pytest.mark.parametrize(
    ("build", "pairs"),
    [
        (stateful_models.lstm_vad, {"hn": "h", "cn": "c"}),
        (stateful_models.state_vad, {"stateN": "state"}),
        (stateful_models.gru_enhancer, {"hn": "h0", "cn": "c0"}),
        (stateful_models.enhancer_unnamed_states, {"cache_out": "cache_in", "erb_state_out": "erb_state_in"}),
        (stateful_models.conv_out_like_signal, {}),
        (stateful_models.prefixed_and_kv, {"out_hidden": "in_hidden", "present.0.key": "past_key_values.0.key",
                                           "new_mem": "mem", "next_cache_len": "cache_len"}),
    ],
)  # fmt: skip
def test_contract_init_pairs_states_by_name_never_the_signal_by_shape(tmp_path, build, pairs):
    doc = _init_doc(tmp_path, build)
    assert {s["output"]: s["input"] for s in doc["state"]} == pairs
    assert all(s["guessed"] for s in doc["state"])
    signal_outputs = {"output", "enhanced", "conv_out", "logits"}
    assert not signal_outputs & {s["output"] for s in doc["state"]}


def test_contract_init_does_not_pair_look_alike_outputs_by_shape(tmp_path):
    doc = _init_doc(tmp_path, stateful_models.conv_out_like_signal)
    assert doc["state"] == []
    assert any("neither is named like a state" in r for r in doc["_review"]) or any("no state pair" in r for r in doc["_review"])


def test_contract_init_unknown_and_negative_dims_validate(tmp_path):
    doc = _init_doc(tmp_path, stateful_models.unknown_dims)
    assert {s["output"]: s["input"] for s in doc["state"]} == {"h_next": "h"}
    shapes = [d for spec in (*doc["inputs"].values(), *doc["outputs"].values()) for d in spec["shape"]]
    assert all(isinstance(d, str) or d >= 0 for d in shapes)
    assert doc["schedule"]["time_axes"] == {"audio": 2}
    assert doc["inputs"]["h"]["shape"] == doc["outputs"]["h_next"]["shape"]


# ---- contract init: the time axis of a cache whose valid length is another state (issue: new-user pass) ---------
def _cache_model(layout: str, *, concat: bool = True, clamp: bool = True):
    """A NeMo-like cache model. layout: "LBTD" (NeMo cache_last_channel [layers, batch, time, d_model]),
    "BLTD" ([batch, layers, time, d_model], the other export), "LBDT" (time last, like cache_last_time).
    The cache is read one layer at a time (Gather on the layer axis), concatenated with the new frames along
    time and the newest T kept; the length is min(len + T, C)."""
    import numpy as np
    from onnx import TensorProto

    from trt_tui.core.modelgen.builder import GraphBuilder

    L, C, D, T = 2, 16, 8, 4
    dims = {"L": L, "B": "B", "T": C, "D": D}
    shape = [dims[c] for c in layout]
    g = GraphBuilder("cache_" + layout)
    x = g.input("audio_signal", TensorProto.FLOAT, ["B", T, D] if layout != "LBDT" else ["B", D, T])
    cache = g.input("cache_last_channel", TensorProto.FLOAT, shape)
    n = g.input("cache_last_channel_len", TensorProto.INT64, ["B"])
    layer_axis, time_axis = layout.index("L"), layout.index("T")
    t_in_layer = time_axis - (layer_axis < time_axis)  # the time axis once the layer axis is gone
    parts = []
    for layer in range(L):
        one = g.op("Gather", [cache, g.const(np.array(layer, dtype=np.int64), np.int64)], axis=layer_axis)
        if concat:
            h = g.op("Concat", [one, x], axis=t_in_layer)
            keep = g.op("Slice", [h, g.const([T], np.int64), g.const([T + C], np.int64), g.const([t_in_layer], np.int64)])
        else:
            keep = g.op("Add", [one, g.const(1.0)])
        parts.append(g.op("Unsqueeze", [keep, g.const([layer_axis], np.int64)]))
    cache_next = g.op("Concat", parts, axis=layer_axis)
    n_next = g.op("Add", [n, g.const([T], np.int64)])
    if clamp:
        n_next = g.op("Min", [n_next, g.const([C], np.int64)])
    g.output(g.op("Identity", [x]), "log_probs", TensorProto.FLOAT, None)
    g.output(cache_next, "cache_last_channel_next", TensorProto.FLOAT, shape)
    g.output(n_next, "cache_last_channel_len_next", TensorProto.INT64, ["B"])
    return g.build()


@pytest.mark.parametrize(("layout", "axis", "batch"), [("LBTD", 2, 1), ("BLTD", 2, 0), ("LBDT", 3, 1)])
def test_contract_init_masks_the_cache_on_the_axis_the_graph_concatenates(tmp_path, layout, axis, batch):
    doc = _init_doc(tmp_path, lambda: _cache_model(layout))
    mask = doc["masks"]["cache_last_channel_next"]
    assert (mask["axis"], mask.get("batch_axis"), mask["keep"]) == (axis, batch, "last")
    assert mask["length"] == {"output": "cache_last_channel_len_next"}
    assert "Concat" in mask["guessed"]
    assert {"output": "cache_last_channel_len_next", "check": "range", "min": 0, "max": 16} == {
        k: v for k, v in doc["invariants"][-1].items() if k != "guessed"}


def test_contract_init_mask_from_the_length_clamp_or_none(tmp_path):
    doc = _init_doc(tmp_path, lambda: _cache_model("LBTD", concat=False))  # the clamp min(len + T, 16) tells
    assert doc["masks"]["cache_last_channel_next"]["axis"] == 2
    assert "clamps" in doc["masks"]["cache_last_channel_next"]["guessed"]
    doc = _init_doc(tmp_path, lambda: _cache_model("LBTD", concat=False, clamp=False))  # nothing tells: no guess
    assert doc["masks"] == {}
    assert any("add its mask by hand" in r for r in doc["_review"])


def test_contract_init_on_the_demo_matches_its_shipped_mask(demo_model):
    doc = contract_from_model(load_graph(demo_model))
    shipped = json.loads(DEMO_CONTRACT.read_text())["masks"]["cache_last_channel_next"]
    guessed = doc["masks"]["cache_last_channel_next"]
    assert {k: v for k, v in guessed.items() if k != "guessed"} == shipped
    c = parse_contract(json.loads(json.dumps(doc)))
    assert any(w.startswith("masks.cache_last_channel_next: guessed") for w in c.warnings)
