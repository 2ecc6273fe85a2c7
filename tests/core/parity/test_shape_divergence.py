"""Issue 11 item 7: a shape divergence is one finding (tensor, producer, both shapes), not an error per tensor."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from trt_tui.cli import main
from trt_tui.core.parity.engine import compare

from tests.fixtures.parity_models import length_from_float


@pytest.fixture(scope="module")
def model_and_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("shape")
    onnx.save(length_from_float(), d / "len.onnx")
    np.savez(d / "x.npz", x=np.array(700.9, np.float32))
    return d / "len.onnx", d / "x.npz"


def test_first_shape_divergence_is_a_finding(model_and_inputs):
    model, inputs = model_and_inputs
    result = compare(model, "emulate", precision="fp16", inputs=inputs)
    sd = result.shape_divergence
    assert sd is not None and sd.name == "wave" and sd.node == "wave/Cast" and sd.op_type == "Cast"
    assert sd.reference_shape == [700] and sd.candidate_shape == [701] and sd.downstream == 1  # y too
    assert not result.errors and not result.passed
    assert result.to_json()["shape_divergence"]["candidate_shape"] == [701]


def test_cli_prints_one_line_and_json(model_and_inputs, tmp_path, capsys):
    model, inputs = model_and_inputs
    out = tmp_path / "r.json"
    assert main(["compare", str(model), "--inputs", str(inputs), "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "first shape divergence: #4 wave (Cast node wave/Cast): reference 700 vs candidate 701; 1 more" in text
    assert "error:" not in text
    assert json.loads(out.read_text())["shape_divergence"]["name"] == "wave"
