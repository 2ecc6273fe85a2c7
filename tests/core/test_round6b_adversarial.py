"""Adversarial review of round 6b: read_mapped (wire-level scan of an .onnx file's big inline weights) and a
preset's `[comparison] targets` deciding compare's verdict (JSON, kept runs, the TUI's Parity screen)."""

import json
import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trt_tui.core.mapped_weights import MAP_MIN_BYTES, read_mapped
from trt_tui.core.weights import WeightSource, is_external

BIG = MAP_MIN_BYTES // 4 + 16  # float32 elements: just over the mapping threshold


# ---- raw protobuf building blocks -------------------------------------------------------------------------
def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | 0x80 if v else b)
        if not v:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor_bytes(name: str, arr: np.ndarray, *, name_last: bool = False, extra: bytes = b"") -> bytes:
    """A TensorProto with raw_data, its fields in an order of our choosing (protobuf accepts any order)."""
    t = numpy_helper.from_array(arr, name)
    raw = t.raw_data
    t.ClearField("raw_data")
    t.ClearField("name")
    head = t.SerializeToString()
    name_f = _len_field(8, name.encode())
    raw_f = _len_field(9, raw)
    return (head + raw_f + name_f if name_last else name_f + raw_f + head) + extra


def _model_bytes(graph_parts: list[bytes], *, split_graph: bool = False, trailer: bytes = b"") -> bytes:
    """ModelProto bytes: opset + ir_version, then the graph (field 7) made of `graph_parts` (encoded GraphProto
    fields), in one occurrence or split in two (protobuf merges them)."""
    head = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    head.ClearField("graph")
    data = head.SerializeToString()
    if split_graph:
        half = len(graph_parts) // 2
        return data + _len_field(7, b"".join(graph_parts[:half])) + trailer + _len_field(7, b"".join(graph_parts[half:]))
    return data + _len_field(7, b"".join(graph_parts)) + trailer


def _graph_fields(graph: onnx.GraphProto) -> bytes:
    return graph.SerializeToString()  # a GraphProto's fields: a graph occurrence's payload


def _simple_graph(names: list[str]) -> onnx.GraphProto:
    """Graph without initializers: out_i = Add(x, name_i) for each initializer name (x: [BIG] float)."""
    nodes = [helper.make_node("Add", ["x", n], [f"out{i}"], name=f"add{i}") for i, n in enumerate(names)]
    outs = [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, [BIG]) for i in range(len(names))]
    return helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BIG])], outs)


def _materialised(model: onnx.ModelProto, path) -> onnx.ModelProto:
    """`model` with every reference into `path` itself replaced by the bytes it points at (read here, not
    through the code under test): what the mapped parse means."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    blob = path.read_bytes()
    for t in out.graph.initializer:
        info = {e.key: e.value for e in t.external_data}
        if t.data_location == TensorProto.EXTERNAL and info.get("location") == path.name:
            off, n = int(info["offset"]), int(info["length"])
            t.raw_data = blob[off : off + n]
            t.ClearField("data_location")
            del t.external_data[:]
    return out


def _plain_semantics(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            del t.external_data[:]  # ignored without data_location = EXTERNAL
    return out


def _assert_same_model(path) -> onnx.ModelProto | None:
    """read_mapped(path) is None or means exactly what onnx.load's parse of the same file means."""
    mapped = read_mapped(path)
    if mapped is None:
        return None
    plain = onnx.load_model(str(path), load_external_data=False)
    assert _plain_semantics(_materialised(mapped, path)).SerializeToString() == _plain_semantics(plain).SerializeToString()
    source = WeightSource(path.parent)
    for a, b in zip(plain.graph.initializer, mapped.graph.initializer, strict=True):
        if a.data_location != TensorProto.EXTERNAL:
            try:
                want = numpy_helper.to_array(a)
            except Exception:  # raw_data that does not fit its shape: a mapped read must refuse it too
                with pytest.raises(Exception):
                    source.array(b) if is_external(b) else numpy_helper.to_array(b)
                continue
            got = source.array(b) if is_external(b) else numpy_helper.to_array(b)
            assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    return mapped


def _arr(seed: int, n: int = BIG, dtype=np.float32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 10).astype(dtype)


# ---- read_mapped: unusual but valid protobuf ----------------------------------------------------------------
def test_fields_out_of_order_name_after_raw_data_and_unknown_fields(tmp_path):
    g = _simple_graph(["A", "B"])
    unknown = _len_field(1000, b"opaque") + _varint(1001 << 3 | 0) + _varint(7)  # fields onnx.proto does not know
    parts = [_graph_fields(g), _len_field(5, _tensor_bytes("A", _arr(1), name_last=True, extra=unknown)),
             _len_field(5, _tensor_bytes("B", _arr(2)))]  # fmt: skip
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_bytes(parts, trailer=unknown))
    mapped = _assert_same_model(path)
    assert mapped is not None and [is_external(t) for t in mapped.graph.initializer] == [True, True]


def test_graph_split_in_two_occurrences_is_merged_as_protobuf_does(tmp_path):
    g = _simple_graph(["A", "B"])
    parts = [_len_field(5, _tensor_bytes("A", _arr(1))), _graph_fields(g), _len_field(5, _tensor_bytes("B", _arr(2)))]
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_bytes(parts, split_graph=True))
    mapped = _assert_same_model(path)
    assert mapped is not None and [t.name for t in mapped.graph.initializer] == ["A", "B"]


@pytest.mark.parametrize("big_first", [True, False])
def test_duplicate_initializer_names_keep_each_ones_own_bytes(tmp_path, big_first):
    """Invalid ONNX, but the parse must not turn it into another model: each initializer keeps its own values."""
    g = _simple_graph(["A"])
    big = [_len_field(5, _tensor_bytes("A", _arr(1))), _len_field(5, _tensor_bytes("A", _arr(2)))]
    small = _len_field(5, _tensor_bytes("A", _arr(3, n=16)))
    parts = [_graph_fields(g), *(big + [small] if big_first else [small] + big)]
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_bytes(parts))
    _assert_same_model(path)


def test_raw_data_and_external_entries_zero_length_typed_and_other_dtypes(tmp_path):
    names = ["ext_entries", "empty", "i64", "f16", "u8", "typed", "b"]
    g = _simple_graph([])
    ext = numpy_helper.from_array(_arr(4), "ext_entries")
    e = ext.external_data.add()
    e.key, e.value = "location", "elsewhere.bin"  # DEFAULT location: entries are ignored, raw_data is the data
    empty = helper.make_tensor("empty", TensorProto.FLOAT, [0], vals=b"", raw=True)
    i64 = numpy_helper.from_array(np.arange(BIG, dtype=np.int64) - 5, "i64")
    f16 = numpy_helper.from_array(_arr(5, dtype=np.float16, n=2 * BIG), "f16")
    u8 = numpy_helper.from_array((np.arange(4 * BIG) % 251).astype(np.uint8), "u8")
    typed = helper.make_tensor("typed", TensorProto.FLOAT, [BIG], _arr(6).tolist())
    b = numpy_helper.from_array(_arr(7, dtype=np.float64), "b")
    inits = [ext, empty, i64, f16, u8, typed, b]
    parts = [_graph_fields(g)] + [_len_field(5, t.SerializeToString()) for t in inits]
    path = tmp_path / "m.onnx"
    path.write_bytes(_model_bytes(parts))
    mapped = _assert_same_model(path)
    assert [t.name for t in mapped.graph.initializer] == names
    assert [is_external(t) for t in mapped.graph.initializer] == [True, False, True, True, True, False, True]


def test_subgraph_and_sparse_initializers_stay_inline(tmp_path):
    then_init = numpy_helper.from_array(_arr(8), "then_w")
    then_g = helper.make_graph([helper.make_node("Identity", ["then_w"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [BIG])], [then_init])  # fmt: skip
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [BIG])])  # fmt: skip
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    values = numpy_helper.from_array(_arr(9), "sv")
    indices = numpy_helper.from_array(np.arange(BIG, dtype=np.int64), "si")
    sparse = helper.make_sparse_tensor(values, indices, [2 * BIG])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("x", TensorProto.FLOAT, [BIG])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BIG])],
                              [numpy_helper.from_array(_arr(10), "top")], sparse_initializer=[sparse])  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    mapped = _assert_same_model(path)
    assert [is_external(t) for t in mapped.graph.initializer] == [True]
    then = next(a.g for a in mapped.graph.node[0].attribute if a.name == "then_branch")
    assert not is_external(then.initializer[0])
    assert mapped.graph.sparse_initializer[0].values.raw_data == sparse.values.raw_data


# ---- read_mapped: truncated / garbled files ---------------------------------------------------------------
def _fuzz_base(tmp_path) -> bytes:
    g = _simple_graph(["A", "B"])
    parts = [_graph_fields(g), _len_field(5, _tensor_bytes("A", _arr(1))), _len_field(5, _tensor_bytes("B", _arr(2), name_last=True))]
    return _model_bytes(parts)


def _outcome(path):
    """None, a mapped model equal in meaning to onnx.load's, or an error the callers turn into one line."""
    from google.protobuf.message import DecodeError

    try:
        return _assert_same_model(path)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:  # what graph.read_model reports in one line
        try:
            onnx.load_model(str(path), load_external_data=False)
        except Exception:
            return None  # the plain parse fails too: the same one-line report
        raise AssertionError(f"read_mapped failed on a file onnx.load parses: {exc!r}") from None


def test_truncated_files_never_give_a_wrong_model(tmp_path):
    data = _fuzz_base(tmp_path)
    path = tmp_path / "m.onnx"
    cuts = sorted({*range(0, 200), *range(len(data) - 200, len(data)), *random.Random(0).sample(range(len(data)), 300)})
    for cut in cuts:
        path.write_bytes(data[:cut])
        _outcome(path)


def test_garbled_files_never_give_a_wrong_model(tmp_path):
    data = bytearray(_fuzz_base(tmp_path))
    path = tmp_path / "m.onnx"
    rng = random.Random(1)
    # the structure (keys, lengths) sits in the first bytes and around each raw_data: garble there mostly
    hot = [i for i in range(len(data)) if i < 400 or abs(i - len(data) // 2) < 64 or i > len(data) - 64]
    for _ in range(400):
        garbled = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            garbled[rng.choice(hot)] = rng.randrange(256)
        path.write_bytes(bytes(garbled))
        _outcome(path)


# ---- the compare command end to end: mapped and plain give the same rows; nothing mapped is written ---------
def _lstm(tmp_path):
    from tests.core.test_mapped_weights import _lstm_model

    return _lstm_model(tmp_path / "m.onnx")


@pytest.mark.parametrize("candidate", ["emulate", "mixed"])
def test_build_request_mapped_and_plain_give_identical_rows(tmp_path, candidate):
    from trt_tui.core.parity.request import build_request

    path = _lstm(tmp_path)
    rows = {}
    for mapped in (False, True):
        request = build_request(path, candidate=candidate, precision="fp16", map_weights=mapped, dims={"T": 4})
        assert any(is_external(t) for t in request.index.model.graph.initializer) == mapped
        comparison = request.prepare()
        for _ in comparison.run():
            pass
        result = comparison.result()
        rows[mapped] = [d.to_json() for d in result.tensors]
    assert rows[True] == rows[False] and rows[True]


def test_compare_cli_with_csv_json_and_model_explorer_writes_no_model(tmp_path, capsys):
    from trt_tui.cli import main

    path = _lstm(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    args = ["compare", str(path), "--dim", "T=4", "--csv", str(out / "r.csv"), "--json", str(out / "r.json"),
            "--model-explorer", str(out / "me.json")]  # fmt: skip
    assert main(args) in (0, 1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # the model untouched
    assert not [p for p in out.iterdir() if p.suffix in (".onnx", ".data", ".bin")]
    assert json.loads((out / "r.json").read_text())["tensors"]


# ---- targets: JSON, kept runs, TUI ------------------------------------------------------------------------
def _result_with_targets(measured: float, passed: bool):
    from trt_tui.core.parity.metrics import LayerDrift
    from trt_tui.core.parity.results import CompareResult
    from trt_tui.core.tolerance import Tolerance

    row = LayerDrift(name="y", node="n", op_type="Relu", topo_index=0, shape=[2], dtype="float32", max_abs=1.0,
                     mean_abs=1.0, median_abs=1.0, p99_abs=1.0, rel_rms=1.0, cosine=0.5, nonfinite_ref=0,
                     nonfinite_cand=0, headroom=0.0, worst_index=[0], worst_ref=1.0, worst_cand=2.0, passed=False,
                     tolerance=Tolerance())  # fmt: skip
    targets = [{"target": "y:rel_rms<=2", "output": "y", "measured": measured, "passed": passed}]
    return CompareResult(model="m.onnx", reference="fp32", candidate="emulate", precision="fp16", tensors=[row],
                         targets=targets)  # fmt: skip


def test_targets_json_keeps_non_finite_measurements_distinct_from_not_compared():
    from trt_tui.core import jsonio

    data = json.loads(jsonio.dumps(_result_with_targets(float("nan"), False).to_json()))
    assert data["targets"][0]["measured"] == "nan"  # null would read as "not compared"  # as every other non-finite float of the schema


def test_a_kept_run_decided_by_targets_keeps_its_verdict(tmp_path):
    from trt_tui.core.runstore import RunStore, verdict_of

    result = _result_with_targets(1.0, True)
    assert result.passed  # the target decides: the tensor's tolerance is only information
    store = RunStore(tmp_path)
    record = store.save(result)
    assert record.verdict == "PASS"
    again = store.load(record.id)
    assert again.targets == result.targets and verdict_of(again) == "PASS"
    nan = store.load(store.save(_result_with_targets(float("nan"), False)).id)
    assert np.isnan(nan.targets[0]["measured"]) and not nan.passed


def test_a_kept_run_with_nothing_low_is_never_a_pass_when_reopened(tmp_path):
    from trt_tui.core.runstore import RunStore, verdict_of

    result = _result_with_targets(1.0, True)
    result.nothing_low = "every node is pinned to FP32"
    result.targets, result.tensors[0].passed = [], True
    store = RunStore(tmp_path)
    record = store.save(result)
    assert record.verdict == "FAIL" and verdict_of(store.load(record.id)) == "FAIL"


def _targets_preset(tmp_path, demo_model, targets: list[str]):
    preset = tmp_path / "t.toml"
    preset.write_text(
        f'# a comment that must survive\nschema = 1\nname = "t"\nmodel = "{demo_model}"\n\n[precision]\nmode = "fp16"\n\n'
        '[[profiles]]\nname = "b2"\nbatch = 2\n\n[comparison]\nseed = 1\n'
        f"targets = {json.dumps(targets)}  # kept\n\n[comparison.default]\natol = 0.0\nrtol = 0.0\n"
    )
    return preset


def test_roundtrip_keeps_targets_and_comments(tmp_path, demo_model):
    from trt_tui.core.preset import load_preset
    from trt_tui.core.preset.roundtrip import read_source, roundtrip_text

    path = _targets_preset(tmp_path, demo_model, ["log_probs:rel_rms<=1", "cosine>=0.5"])
    preset = load_preset(path)
    assert preset.comparison.targets == ["log_probs:rel_rms<=1", "cosine>=0.5"]
    preset.comparison.seed = 2
    text = roundtrip_text(preset, read_source(path))
    assert "# a comment that must survive" in text and "# kept" in text and "seed = 2" in text
    path.write_text(text)
    assert load_preset(path).comparison.targets == ["log_probs:rel_rms<=1", "cosine>=0.5"]
    preset.comparison.targets = ["rel_rms<=0.5"]
    assert 'targets = ["rel_rms<=0.5"]' in roundtrip_text(preset, read_source(path))


def test_compare_targets_over_iterations_cosine_and_a_missing_output(tmp_path, demo_model):
    """Targets judge the worst iteration; a cosine target; an output the comparison did not compare (--match)
    fails its target and says 'not compared' rather than passing silently."""
    from trt_tui.core.parity.request import build_request

    preset = _targets_preset(tmp_path, demo_model, ["log_probs:rel_rms<=1", "cosine>=0.5"])
    request = build_request(preset=preset, iterations=2)
    comparison = request.prepare()
    for _ in comparison.run():
        pass
    result = comparison.result()
    assert not all(d.passed for d in result.tensors)  # atol = rtol = 0: the tolerances alone fail it
    assert result.targets and result.passed == all(t["passed"] for t in result.targets)
    assert {t["target"] for t in result.targets} == {"log_probs:rel_rms<=1", "cosine>=0.5"}
    assert all(t["measured"] is not None for t in result.targets)
    only = build_request(preset=preset, match="^cache_last_channel_next$")
    comparison = only.prepare()
    for _ in comparison.run():
        pass
    result = comparison.result()
    missing = [t for t in result.targets if t["output"] == "log_probs"]
    assert missing and missing[0]["measured"] is None and not missing[0]["passed"] and not result.passed


async def test_parity_screen_verdict_follows_the_preset_targets_and_the_kept_run_agrees(tmp_path, demo_model):
    from tests.ui.helpers import SIZE, make_app, settle
    from trt_tui.core.runstore import RunStore

    preset = _targets_preset(tmp_path, demo_model, ["log_probs:rel_rms<=1", "cosine>=0.5"])
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4", "r")
        await settle(app, pilot)
        screen = app.screen
        result = screen.result
        assert result is not None and result.targets
        verdict = "PASS" if result.passed else "FAIL"
        assert str(screen.query_one("#parity-status").render()).startswith(verdict)
        store = RunStore(tmp_path / "state")
        runs = store.runs()
        assert runs and runs[0].verdict == verdict
        assert ("PASS" if store.load(runs[0].id).passed else "FAIL") == verdict


def test_an_every_output_target_with_no_output_compared_is_not_met_silently(tmp_path, demo_model):
    """--match keeps only an internal tensor: an every-output target checks nothing, which is not a pass by
    the tolerances in its stead (the preset's targets would have vanished from the verdict)."""
    import re

    from trt_tui.core.graph import load_graph
    from trt_tui.core.parity.request import build_request

    index = load_graph(demo_model)
    outputs = {t.name for t in index.outputs}
    internal = next(n.outputs[0] for n in index.nodes if n.op_type == "MatMul" and n.outputs[0] not in outputs)
    preset = _targets_preset(tmp_path, demo_model, ["cosine>=0.5"])
    (tmp_path / "t.toml").write_text(preset.read_text().replace("atol = 0.0\nrtol = 0.0", "atol = 1.0\nrtol = 1.0"))
    comparison = build_request(preset=preset, match=f"^{re.escape(internal)}$").prepare()
    for _ in comparison.run():
        pass
    result = comparison.result()
    assert all(d.passed for d in result.tensors)  # the tolerances alone would pass it
    assert result.targets and not result.targets[0]["passed"] and result.targets[0]["measured"] is None
    assert not result.passed


async def test_the_tui_search_dialog_takes_the_preset_targets_as_search_does(tmp_path, demo_model, monkeypatch):
    """`trt-tui search --preset P` searches for P's `[comparison] targets`; the Parity screen's search dialog
    (no target typed) must search for the same ones, not for P's tolerances."""
    from textual.widgets import Input

    import trt_tui.core.search.session as session
    from tests.ui.helpers import SIZE, make_app, settle
    from trt_tui.cli import main
    from trt_tui.core.errors import UserError
    from trt_tui.ui.screens.search import SearchScreen

    preset = _targets_preset(tmp_path, demo_model, ["log_probs:rel_rms<=1", "cosine>=0.5"])
    seen = []

    def capture(request, **search):
        seen.append(search["targets"])
        raise UserError("captured")

    monkeypatch.setattr(session, "search_request", capture)
    assert main(["search", "--preset", str(preset), "--samples", "1"]) == 2
    app = make_app(preset=preset, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4", "s")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one("#search-samples", Input).value = "1"
        app.screen.action_start()
        await settle(app, pilot)
    assert seen == [["log_probs:rel_rms<=1", "cosine>=0.5"]] * 2
