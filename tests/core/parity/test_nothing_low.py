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
    assert "kept FP32 (pinned FP32 by the user): /encoder/layers.0/self_attn/Softmax, /encoder/layers.1/self_attn/Softmax" in out


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
