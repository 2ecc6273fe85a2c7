"""Issue 11 item 2 (compare side): a candidate that ran nothing in low precision never PASSes (exit 2), and
the nodes kept FP32 are listed with their reasons."""

from __future__ import annotations

import json

from trt_tui.cli import main
from trt_tui.core.parity.engine import compare, prepare_comparison


def test_everything_pinned_is_nothing_checked(demo_model, tmp_path, capsys):
    result = compare(demo_model, "emulate", precision="fp16", pins=[n for n in _all_nodes(demo_model)])
    assert result.nothing_low and not result.passed
    out = tmp_path / "r.json"
    assert main(["compare", str(demo_model), "--pin-match", ".", "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert "this comparison checks nothing" in captured.err and "NOTHING CHECKED" in captured.out
    data = json.loads(out.read_text())
    assert data["passed"] is False and data["nothing_low"].startswith("nothing runs in fp16")
    assert data["low_precision"]["ran_nothing_low"] is True and data["low_precision"]["kept_fp32"]


def test_kept_fp32_listed_with_reasons(demo_model, capsys):
    assert main(["compare", str(demo_model), "--pin-op", "Softmax", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "kept FP32, pinned FP32 by the user (2): /encoder/layers.0/self_attn/Softmax, /encoder/layers.1/self_attn/Softmax" in out


def test_bit_identical_candidate_in_low_precision_is_detected(pair):
    ref, _ = pair
    comparison = prepare_comparison(ref, f"onnx:{ref}")  # no trt_tui metadata: told from the values
    comparison.precision = "fp16"  # as if an fp16 engine had been asked for
    list(comparison.run())
    result = comparison.result()
    assert result.nothing_low and "bit-identical" in result.nothing_low and not result.passed
    assert compare(ref, f"onnx:{ref}").passed  # no low precision asked for: FP32 vs FP32 may pass


def _all_nodes(model):
    from trt_tui.core.graph import load_graph

    return [n.name for n in load_graph(model).top_level_nodes]


def test_an_already_fp16_model_is_named_so_not_fp32_against_fp32(demo_model, tmp_path, capsys):
    """A model converted to fp16 compared again: both sides ran fp16; the verdict says so, naming the precision."""
    fp16 = tmp_path / "demo_fp16.onnx"
    assert main(["convert", str(demo_model), "--precision", "fp16", "-o", str(fp16)]) == 0
    capsys.readouterr()
    assert main(["compare", str(fp16), "--top", "1"]) == 2
    captured = capsys.readouterr()
    assert "FP32 against FP32" not in captured.out + captured.err
    assert "NOTHING CHECKED: the model is already fp16: the fp16 candidate ran it as it is, fp16 against fp16" in captured.out
    assert captured.err.startswith("trt-tui: error: the model is already fp16") and len(captured.err.splitlines()) == 1
    assert main(["compare", str(demo_model), "--pin-match", ".", "--top", "1"]) == 2  # all pinned: FP32 both sides
    assert "NOTHING CHECKED: FP32 against FP32, nothing runs in fp16" in capsys.readouterr().out
